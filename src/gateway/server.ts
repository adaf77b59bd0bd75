import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { gatewayCard } from './card.js';
import { refusalHeaders, replyError as reply, TokenError } from './errors.js';
import { downstreamHeaderList, forwardableHeaders, HeaderValueError, upstreamHeaders, type ForwardedHeaders } from './headers.js';
import { batchedLines } from './lines.js';
import { requestChecks, type RateCheck, type RateDecision, type RateLimiter } from './ratelimit.js';
import { hostAndPort, route, type Route } from './route.js';
import type { DecisionRecord } from '../runtime/usage.js';
import type { ScopeRequirement } from './scopes.js';
import type { Principal, VerifyRequest } from './tokens.js';

/** An agent behind the gateway: where its API is served, and what its card requires of a token. */
export interface GatewayAgent {
  /** `http(s)://host:port[/base]`; the request's path under `/api/v1/agents/<agent>` is appended. */
  upstream: string;
  required: ScopeRequirement;
}

export interface GatewayTenant {
  /** The realm's issuer URL (for the OAuth endpoints). */
  issuer: string;
  quotas: { requestsPerMinute?: number; requestsPerMinutePerUser?: number };
  /** The agents this tenant has, each with its compiled card. */
  cards: ReadonlyMap<string, Record<string, unknown>>;
  /**
   * Agent → its upstream as rendered for this tenant (`{{tenant_id}}` may put each tenant's calls on
   * an agent of its own); an agent absent here uses GatewayAgent.upstream.
   */
  upstreams?: ReadonlyMap<string, string>;
}

/** One consistent view of the configuration; a reload swaps the whole object, requests in flight keep theirs. */
export interface GatewayConfig {
  baseDomain?: string;
  agents: ReadonlyMap<string, GatewayAgent>;
  tenants: ReadonlyMap<string, GatewayTenant>;
}

/** One line of the access log: who did what and how it ended. No token, no header, no query string, no body. */
export interface AccessLogEntry {
  time: string;
  method: string;
  /** The path without its query (a query may carry an authorization code or a state). */
  path: string;
  /** What route() made of the request (`unknown` until it did). */
  route: Route['kind'] | 'unknown';
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  tenant?: string;
  user?: string;
  agent?: string;
  /** Why the gateway answered as it did when it refused or failed (a TokenFailure, `rate_limited`, ...). */
  reason?: string;
  /** `unchecked`: the request passed without its rate limits being checked (their shared store was unavailable). */
  rateLimit?: 'unchecked';
}

export interface GatewayOptions {
  /** Called once per request; return a new object to reload. */
  config: () => GatewayConfig;
  /** TokenVerifier: verifyNow answers at once for a remembered token, else with a promise. */
  verifier: { verifyNow(req: VerifyRequest): Principal | Promise<Principal> };
  limiter: RateLimiter;
  /** Default: one JSON line per request on stdout (written once per event-loop turn, see batchedLines). */
  log?: (entry: AccessLogEntry) => void;
  /** Milliseconds since the epoch, for rate-limit windows. */
  now?: () => number;
  /** Where clients reach the gateway when no base domain is configured, e.g. `https://gw.example.com`; default `<publicScheme>://<Host>`. */
  publicUrl?: string;
  /** The scheme clients use (`https` behind a TLS-terminating proxy); default `http`. Card URLs are built with it. */
  publicScheme?: 'http' | 'https';
  /** Largest request body forwarded; default 1 MiB. Larger: 413. */
  maxBodyBytes?: number;
  /** An upstream that has not answered (or gone quiet) this long: 504. Default 30 s. */
  upstreamTimeoutMs?: number;
  /** A client that has not sent its whole request in this long is cut off. Default 30 s. */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** See UpstreamHeaderOptions.forwardAuthorization; default true. */
  forwardAuthorization?: boolean;
  /**
   * Told, once the response is done, of every decision about an agent request whose token was
   * verified (allowed, or refused for its scopes, tenant, agent or rate): usage and audit.
   */
  record?: (r: DecisionRecord) => void;
}

/** What the agent route decided, for `record`. */
interface Decided {
  principal: Principal;
  agent: string;
  required: ScopeRequirement;
  allowed: boolean;
}

/** One request's state, shared by its handler and its `close` listener. */
interface Exchange {
  entry: AccessLogEntry;
  /** Set once a verified token's request is decided (for `record`). */
  decided: Decided | undefined;
  /** Set once the request is sent upstream. */
  relay: Relay | undefined;
  /** Set while its body is being read: the client went away. */
  bodyAborted: (() => void) | undefined;
}

/**
 * An upstream call's answer, relayed to the client as undici's dispatch handler: the status and
 * headers (hop-by-hop fields dropped), then the body as it comes, with backpressure (undici is
 * paused while the client's socket is full, resumed on its `drain`). An upstream that fails before
 * answering gets 502 (504 when it timed out); one that breaks off mid-answer cuts the client's
 * connection, so that a cut answer never looks whole.
 */
class Relay implements Dispatcher.DispatchHandlers {
  private abort: ((reason?: Error) => void) | undefined;
  private resume: (() => void) | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly entry: AccessLogEntry,
  ) {}

  /** The client went away before the whole answer: stop the upstream request. */
  abortUpstream(): void {
    this.abort?.();
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.abort = abort;
  }

  onError(err: Error): void {
    const { res, entry } = this;
    const code = (err as { code?: string }).code;
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
    if (!res.headersSent) {
      entry.reason = timeout ? 'upstream_timeout' : 'upstream_unreachable';
      reply(res, timeout ? 504 : 502, entry.reason, { connection: 'close' });
    } else if (!res.destroyed) {
      // Mid-answer: the client must not take a cut answer for a whole one.
      entry.reason = timeout ? 'upstream_timeout' : 'upstream_aborted';
      res.destroy();
    }
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null, resume: () => void): boolean {
    this.resume = resume;
    if (this.res.destroyed) return false;
    this.res.writeHead(statusCode, downstreamHeaderList(rawHeaders));
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.entry.bytesOut += chunk.length;
    if (this.res.write(chunk)) return true;
    // The client's socket is full: undici pauses until it drains (a listener only then).
    if (this.resume) this.res.once('drain', this.resume);
    return false;
  }

  onComplete(): void {
    this.res.end();
  }
}

/** An agent's API call, as route() found it. */
type AgentRoute = Extract<Route, { kind: 'agent' }>;

/** Where an upstream request goes: the pool's origin, the `Host` it is sent with, the base path its path is appended to. */
interface Target {
  origin: string;
  host: string;
  path: string;
}

/**
 * The gateway's HTTP server (not listening yet): routes each request (route.ts), serves cards,
 * sends OAuth logins to the tenant's realm, and proxies an agent's API to its upstream only after
 * the token (tokens.ts) and the rate limits (ratelimit.ts) allow it, with the gateway's
 * X-SystemPrompt-* headers (headers.ts). Every request ends in one access-log line.
 */
export function createGateway(opts: GatewayOptions): http.Server {
  const stdoutLines = opts.log ? undefined : batchedLines((chunk) => process.stdout.write(chunk));
  const log = opts.log ?? ((e: AccessLogEntry) => stdoutLines!.push(accessLogLine(e)));
  const now = opts.now ?? Date.now;
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const upstreamTimeout = opts.upstreamTimeoutMs ?? 30_000;

  const server = http.createServer({ requestTimeout: opts.requestTimeoutMs ?? 30_000, headersTimeout: opts.headersTimeoutMs ?? 10_000 }, (req, res) => {
    const started = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    // Every field from the start (one object shape for every request); undefined ones are left out of the line.
    const entry: AccessLogEntry = {
      time: isoTime(Date.now()),
      method: req.method ?? '',
      path: q < 0 ? url : url.slice(0, q),
      route: 'unknown',
      status: 0,
      durationMs: 0,
      bytesIn: 0,
      bytesOut: 0,
      tenant: undefined,
      user: undefined,
      agent: undefined,
      reason: undefined,
      rateLimit: undefined,
    };
    const exchange: Exchange = { entry, decided: undefined, relay: undefined, bodyAborted: undefined };
    // `close` comes once: `on`, without once()'s wrapper.
    res.on('close', () => {
      // The client went away before its whole request (no upstream call then) or the whole answer (stop the upstream's).
      exchange.bodyAborted?.();
      if (!res.writableFinished) exchange.relay?.abortUpstream();
      // The client went away before it had sent its whole request (whatever the handler was doing).
      if (!req.complete && entry.reason === undefined) entry.reason = 'client_aborted';
      // No answer went out (the client left first): 499, as nginx logs it, rather than Node's default 200.
      entry.status = res.headersSent ? res.statusCode : 499;
      entry.durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      log(entry);
      const d = exchange.decided;
      if (d && opts.record) {
        const p = d.principal;
        opts.record({
          time: now(),
          tenant: p.tenant,
          userId: p.userId,
          email: p.email,
          agent: d.agent,
          method: entry.method,
          path: entry.path,
          required: d.required,
          held: p.scopes,
          allowed: d.allowed,
          status: entry.status,
          reason: entry.reason,
          bytesIn: entry.bytesIn,
          bytesOut: entry.bytesOut,
        });
      }
    });
    // The handler answers at once when nothing has to be waited for (a remembered token, limits in memory, the body already in).
    try {
      const pending = handle(req, res, exchange);
      if (pending) pending.catch((err: unknown) => failed(res, entry, err));
    } catch (err) {
      failed(res, entry, err);
    }
  });
  server.keepAliveTimeout = opts.keepAliveTimeoutMs ?? 5_000;
  // One connection pool per upstream origin (undici: far less work per request than http.request).
  const pools = new Map<string, Pool>();
  const poolFor = (origin: string): Pool => {
    let pool = pools.get(origin);
    if (!pool) pools.set(origin, (pool = new Pool(origin, { headersTimeout: upstreamTimeout, bodyTimeout: upstreamTimeout, keepAliveTimeout: 4_000 })));
    return pool;
  };
  server.on('close', () => {
    for (const pool of pools.values()) void pool.close().catch(() => undefined);
    pools.clear();
    stdoutLines?.flush();
  });
  /** An upstream base URL (`http://host:port[/base]`) parsed once: its origin, `Host` and base path. */
  const bases = new Map<string, Target>();
  const targetOf = (base: string): Target => {
    let t = bases.get(base);
    if (!t) {
      const u = new URL(base);
      t = { origin: u.origin, host: u.host, path: u.pathname.replace(/\/+$/, '') };
      if (bases.size >= 1000) bases.clear(); // bounded: a configuration names few upstreams
      bases.set(base, t);
    }
    return t;
  };
  return server;

  /** Routes and answers one request: at once (undefined) or with a promise of the answer having been sent. */
  function handle(req: IncomingMessage, res: ServerResponse, exchange: Exchange): Promise<void> | void {
    const entry = exchange.entry;
    const cfg = opts.config();
    const r = route(req.headers.host, req.url ?? '/', cfg.baseDomain ? { baseDomain: cfg.baseDomain } : {});
    entry.route = r.kind;
    switch (r.kind) {
      case 'bad_request':
        entry.reason = r.reason;
        return reply(res, 400, r.reason);
      case 'not_found':
        return reply(res, 404, 'not_found');
      case 'health': {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end('ok\n');
        return;
      }
      case 'card': {
        entry.agent = r.agent;
        if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'method_not_allowed', { allow: 'GET, HEAD' });
        if (r.tenant === undefined) return reply(res, 400, (entry.reason = 'tenant_required'));
        entry.tenant = r.tenant;
        const card = cfg.tenants.get(r.tenant)?.cards.get(r.agent);
        if (!card) return reply(res, 404, 'not_found');
        const scheme = opts.publicScheme ?? 'http';
        const base = cfg.baseDomain || !opts.publicUrl ? `${scheme}://${hostAndPort(req.headers.host) ?? 'localhost'}` : opts.publicUrl;
        const body = JSON.stringify(gatewayCard(card, { base, tenant: r.tenant, agent: r.agent, tenantInHost: Boolean(cfg.baseDomain) }));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'public, max-age=60' });
        entry.bytesOut = Buffer.byteLength(body);
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      case 'oauth': {
        if (r.tenant === undefined) return reply(res, 400, (entry.reason = 'tenant_required'));
        entry.tenant = r.tenant;
        const tenant = cfg.tenants.get(r.tenant);
        if (!tenant) return reply(res, 404, (entry.reason = 'unknown_tenant'));
        const realm = tenant.issuer.replace(/\/+$/, '');
        if (r.endpoint === 'authorize') {
          if (req.method !== 'GET') return reply(res, 405, 'method_not_allowed', { allow: 'GET' });
          const params = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
          params.delete('tenant');
          const qs = params.toString();
          res.writeHead(302, { location: `${realm}/protocol/openid-connect/auth${qs ? `?${qs}` : ''}`, 'cache-control': 'no-store' });
          res.end();
          return;
        }
        if (req.method !== 'POST') return reply(res, 405, 'method_not_allowed', { allow: 'POST' });
        // The token endpoint: the client's request as sent (its own credentials included), to the realm.
        return proxy(req, res, exchange, targetOf(`${realm}/protocol/openid-connect/token`), '', forwardableHeaders(req.headers, { forwarded: forwardedOf(req) }));
      }
      case 'agent': {
        entry.agent = r.agent;
        const agent = cfg.agents.get(r.agent);
        if (!agent) return reply(res, 404, 'not_found');
        let verified: Principal | Promise<Principal>;
        try {
          verified = opts.verifier.verifyNow({ authorization: req.headers.authorization, audience: r.agent, required: agent.required, expectedTenant: r.tenant });
        } catch (err) {
          return refused(res, exchange, r, agent, err);
        }
        if (verified instanceof Promise) {
          return verified.then(
            (principal) => authorized(req, res, exchange, cfg, r, agent, principal),
            (err: unknown) => refused(res, exchange, r, agent, err),
          );
        }
        return authorized(req, res, exchange, cfg, r, agent, verified);
      }
    }
  }

  /** The token was refused (a TokenError; anything else is the handler's failure). */
  function refused(res: ServerResponse, exchange: Exchange, r: AgentRoute, agent: GatewayAgent, err: unknown): void {
    if (!(err instanceof TokenError)) throw err;
    const entry = exchange.entry;
    entry.reason = err.reason;
    if (err.principal) {
      entry.tenant = err.principal.tenant;
      entry.user = err.principal.userId;
      exchange.decided = { principal: err.principal, agent: r.agent, required: agent.required, allowed: false };
    }
    reply(res, err.status, err.reason, refusalHeaders(err));
  }

  /** The token is good for this agent: the tenant has it, the rate limits allow it, then upstream. */
  function authorized(req: IncomingMessage, res: ServerResponse, exchange: Exchange, cfg: GatewayConfig, r: AgentRoute, agent: GatewayAgent, principal: Principal): Promise<void> | void {
    const entry = exchange.entry;
    entry.tenant = principal.tenant;
    entry.user = principal.userId;
    exchange.decided = { principal, agent: r.agent, required: agent.required, allowed: false };
    const tenant = cfg.tenants.get(principal.tenant);
    if (!tenant?.cards.has(r.agent)) return reply(res, 403, (entry.reason = 'agent_not_in_tenant'));
    const decision = opts.limiter.hitAll(checksOf(principal, tenant.quotas), now());
    if (decision instanceof Promise) return decision.then((d) => limited(req, res, exchange, tenant, r, agent, principal, d));
    return limited(req, res, exchange, tenant, r, agent, principal, decision);
  }

  /** The rate limits decided: 429, or the request goes upstream with the gateway's headers. */
  function limited(req: IncomingMessage, res: ServerResponse, exchange: Exchange, tenant: GatewayTenant, r: AgentRoute, agent: GatewayAgent, principal: Principal, decision: RateDecision): Promise<void> | void {
    const entry = exchange.entry;
    if (decision.unchecked) entry.rateLimit = 'unchecked';
    if (!decision.allowed) {
      entry.reason = 'rate_limited';
      return reply(res, 429, 'rate_limited', { 'retry-after': String(decision.retryAfterSeconds) });
    }
    exchange.decided!.allowed = true;
    const headers = upstreamHeaders(req.headers, principal, { forwardAuthorization: opts.forwardAuthorization ?? true, forwarded: forwardedOf(req) });
    return proxy(req, res, exchange, targetOf(tenant.upstreams?.get(r.agent) ?? agent.upstream), r.path, headers);
  }

  /**
   * Sends the request to `target` and streams its answer back, within the body limit and the
   * upstream timeout. The request body (at most `maxBody`) is read whole first, so an upstream never
   * sees a request the gateway would refuse or a client abandoned; the answer is streamed, with
   * backpressure, through undici's dispatch handler (one pool per origin). A client that goes away
   * aborts the upstream request; an upstream that breaks off cuts the client's answer.
   */
  function proxy(req: IncomingMessage, res: ServerResponse, exchange: Exchange, target: Target, path: string, headers: ForwardedHeaders): Promise<void> | void {
    const entry = exchange.entry;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) {
      entry.reason = 'body_too_large';
      reply(res, 413, 'body_too_large', { connection: 'close' });
      return;
    }
    const whole = bodyIfComplete(req, entry, declared);
    if (whole !== undefined) return send(whole);
    // Node calls the handler from inside its parser, at the request's head, before it parses the
    // rest of the same read: a body sent with the head is in once that read is done, which is when
    // a microtask runs. Then it is read at once, without a 'data' listener (its flowing mode costs
    // several ticks a request); a body still to come is read as it comes.
    return Promise.resolve().then(() => {
      const body = bodyIfComplete(req, entry, declared);
      if (body !== undefined) return send(body);
      return readBody(req, res, exchange).then((b) => (b === undefined ? undefined : send(b)));
    });

    function send(body: Buffer | null): void {
      headers.host = target.host;
      const relay = new Relay(res, entry);
      exchange.relay = relay;
      poolFor(target.origin).dispatch({ path: target.path + path || '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body }, relay);
    }
  }

  /**
   * The request body when the whole of it has arrived already (small bodies usually have, by the
   * time the token is checked): null when empty; undefined when more is to come (then readBody).
   */
  function bodyIfComplete(req: IncomingMessage, entry: AccessLogEntry, declared: number): Buffer | null | undefined {
    if (req.destroyed) return undefined;
    // Whole once the parser is done with it, or once all of a declared length is in (the parser
    // marks it done only after the callbacks of the read that brought its last bytes).
    if (!req.complete && !(declared > 0 && req.readableLength === declared)) return undefined;
    if (req.readableLength === 0) return null;
    if (req.readableLength > maxBody) return undefined;
    const chunks: Buffer[] = [];
    for (let chunk = req.read() as Buffer | null; chunk !== null; chunk = req.read() as Buffer | null) chunks.push(chunk);
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    entry.bytesIn += body.length;
    return body.length === 0 ? null : body;
  }

  /**
   * The request body, whole (null when empty); undefined when it was too large (413 sent) or the
   * client went away (the request's `close` listener calls exchange.bodyAborted).
   */
  function readBody(req: IncomingMessage, res: ServerResponse, exchange: Exchange): Promise<Buffer | null | undefined> {
    const entry = exchange.entry;
    if (req.complete && req.readableLength === 0) return Promise.resolve(null);
    // Gone already while its token was being checked: its `close` has been and will not come again.
    if (res.destroyed || (req.destroyed && !req.complete)) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const settle = (v: Buffer | null | undefined): void => {
        if (settled) return;
        settled = true;
        exchange.bodyAborted = undefined;
        req.removeListener('data', onData);
        req.removeListener('end', onEnd);
        resolve(v);
      };
      const onData = (chunk: Buffer): void => {
        entry.bytesIn += chunk.length;
        if (entry.bytesIn > maxBody) {
          entry.reason = 'body_too_large';
          reply(res, 413, 'body_too_large', { connection: 'close' });
          settle(undefined);
          return;
        }
        chunks.push(chunk);
      };
      const onEnd = (): void => settle(chunks.length === 0 ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      req.on('data', onData);
      req.on('end', onEnd);
      // The close listener logs it as client_aborted.
      exchange.bodyAborted = () => settle(undefined);
    });
  }
}

/** The handler failed (not a refusal): 500 when nothing was sent yet, else the connection is cut. */
function failed(res: ServerResponse, entry: AccessLogEntry, err: unknown): void {
  entry.reason ??= err instanceof HeaderValueError ? 'unrepresentable_claims' : 'internal_error';
  if (!res.headersSent) reply(res, 500, entry.reason);
  else res.destroy();
}

/**
 * The request's rate-limit checks (requestChecks), made once per remembered token's principal
 * (shared and frozen) and tenant quotas: the same key strings every request, no new objects.
 */
const checksMemo = new WeakMap<Principal, { quotas: GatewayTenant['quotas']; checks: RateCheck[] }>();
function checksOf(principal: Principal, quotas: GatewayTenant['quotas']): RateCheck[] {
  const memo = checksMemo.get(principal);
  if (memo !== undefined && memo.quotas === quotas) return memo.checks;
  const checks = requestChecks(principal.tenant, principal.userId, quotas);
  if (Object.isFrozen(principal)) checksMemo.set(principal, { quotas, checks });
  return checks;
}

/**
 * An access-log entry as one JSON line (with its newline): the same as JSON.stringify of the entry
 * with its fields in a fixed order, written out for the fields it has (the gateway writes one per request).
 */
export function accessLogLine(e: AccessLogEntry): string {
  // `method` as Node's parser accepted it (a token) and `route` (one of route()'s kinds) need no escape.
  let line = `{"time":"${e.time}","method":"${e.method}","path":${jsonString(e.path)},"route":"${e.route}","status":${e.status},"durationMs":${e.durationMs},"bytesIn":${e.bytesIn},"bytesOut":${e.bytesOut}`;
  if (e.tenant !== undefined) line += `,"tenant":${jsonString(e.tenant)}`;
  if (e.user !== undefined) line += `,"user":${jsonString(e.user)}`;
  if (e.agent !== undefined) line += `,"agent":${jsonString(e.agent)}`;
  if (e.reason !== undefined) line += `,"reason":${jsonString(e.reason)}`;
  if (e.rateLimit !== undefined) line += `,"rateLimit":${jsonString(e.rateLimit)}`;
  return `${line}}\n`;
}

/** `new Date(ms).toISOString()`: its date and time of day made once per second, the milliseconds added. */
let lastIsoSecond = -1;
let lastIsoPrefix = '';
export function isoTime(ms: number): string {
  const whole = Math.floor(ms);
  const second = Math.floor(whole / 1000);
  if (second !== lastIsoSecond) {
    lastIsoSecond = second;
    lastIsoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // up to and with the `.`
  }
  const milli = whole - second * 1000;
  return `${lastIsoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** Printable ASCII but `"` and `\`: the characters JSON writes as they are. */
const JSON_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** JSON.stringify of a string, without its call for the (usual) strings that need no escape. */
const jsonString = (s: string): string => (JSON_PLAIN.test(s) ? `"${s}"` : JSON.stringify(s));

function forwardedOf(req: IncomingMessage): { for?: string; proto: 'http' } {
  const ip = req.socket.remoteAddress;
  return ip ? { for: ip, proto: 'http' } : { proto: 'http' };
}

