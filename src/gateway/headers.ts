import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from './tokens.js';

/** The headers the gateway sets for the upstream. Whatever a client sends under `X-SystemPrompt-*` is dropped first. */
export const TENANT_HEADER = 'X-SystemPrompt-Tenant';
export const USER_HEADER = 'X-SystemPrompt-User';
export const USER_EMAIL_HEADER = 'X-SystemPrompt-User-Email';
/** Space-separated, sorted, as in OAuth's `scope`. */
export const SCOPES_HEADER = 'X-SystemPrompt-Scopes';
const RESERVED_PREFIX = 'x-systemprompt-';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the proxy's own and `host` (the upstream's is set by the client library). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);
/**
 * Not sent on either: the gateway sends the body it read whole, framed by its client library
 * (`content-length`), and answers `Expect: 100-continue` itself.
 */
const FRAMING = new Set(['content-length', 'expect']);
/** Client-sent forwarding claims are not believed: the gateway is the edge and writes its own. */
const FORWARDING = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip']);

export class HeaderValueError extends Error {
  constructor(readonly header: string) {
    super(`value of ${header} cannot be sent as an HTTP header`);
    this.name = 'HeaderValueError';
  }
}

/** Visible ASCII, space and tab only: no CR, LF, NUL or other control characters, no bytes a peer might decode differently. */
const SAFE_VALUE = /^[\t\x20-\x7e]*$/;

export function checkHeaderValue(header: string, value: string): string {
  if (!SAFE_VALUE.test(value)) throw new HeaderValueError(header);
  return value;
}

export interface UpstreamHeaderOptions {
  /**
   * Keep the client's `Authorization` (default true). The token's audience is this agent, so the
   * upstream is its intended recipient: it can verify the token again (the SDK does; a header
   * alone is only as trustworthy as the network path to the upstream) or call on the user's behalf.
   */
  forwardAuthorization?: boolean;
  /** What the gateway saw of the connection, written as `X-Forwarded-*` in place of anything the client sent. */
  forwarded?: { for?: string; host?: string; proto?: 'http' | 'https' };
}

/** Headers as sent on (names lowercased but the gateway's own; values as received). */
export type ForwardedHeaders = Record<string, string | string[]>;

/**
 * The client's headers minus hop-by-hop fields (and those its `Connection` names), the body's
 * framing (`content-length`, `expect`), client-sent forwarding fields and every `X-SystemPrompt-*`
 * field in any letter case; with the gateway's own
 * `X-Forwarded-*`. What the gateway forwards anywhere (an agent, a realm's token endpoint) starts here.
 */
export function forwardableHeaders(incoming: IncomingHttpHeaders, opts: UpstreamHeaderOptions = {}): ForwardedHeaders {
  const connectionNamed = namedByConnection(incoming.connection);
  const out: ForwardedHeaders = {};
  // for...in over Node's header object (own, enumerable, already lowercased; lowercased again for other callers).
  for (const rawName in incoming) {
    const value = incoming[rawName];
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (HOP_BY_HOP.has(name) || FRAMING.has(name) || FORWARDING.has(name) || name.startsWith(RESERVED_PREFIX) || connectionNamed?.has(name)) continue;
    if (name === 'authorization' && opts.forwardAuthorization === false) continue;
    out[name] = value;
  }
  const f = opts.forwarded;
  if (f?.for !== undefined) out['x-forwarded-for'] = checkHeaderValue('x-forwarded-for', f.for);
  if (f?.host !== undefined) out['x-forwarded-host'] = checkHeaderValue('x-forwarded-host', f.host);
  if (f?.proto !== undefined) out['x-forwarded-proto'] = f.proto;
  return out;
}

/** The field names a `Connection` header lists (lowercased), beyond `keep-alive` and `close`; undefined when none. */
function namedByConnection(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  let named: Set<string> | undefined;
  for (const v of typeof connection === 'string' ? [connection] : connection) {
    const lower = v.toLowerCase();
    // The common values name no other field: no split, no set.
    if (lower === 'keep-alive' || lower === 'close') continue;
    for (const part of lower.split(',')) {
      const name = part.trim();
      if (name) (named ??= new Set()).add(name);
    }
  }
  return named;
}

/**
 * The headers to send to an agent's upstream: forwardableHeaders, plus the principal's tenant,
 * user, email and scopes, which no client can set. Throws HeaderValueError when a claim cannot be a
 * header value (CR/LF, non-ASCII).
 */
export function upstreamHeaders(incoming: IncomingHttpHeaders, principal: Principal, opts: UpstreamHeaderOptions = {}): ForwardedHeaders {
  const out = forwardableHeaders(incoming, opts);
  out[TENANT_HEADER] = checkHeaderValue(TENANT_HEADER, principal.tenant);
  out[USER_HEADER] = checkHeaderValue(USER_HEADER, principal.userId);
  if (principal.email !== undefined) out[USER_EMAIL_HEADER] = checkHeaderValue(USER_EMAIL_HEADER, principal.email);
  out[SCOPES_HEADER] = scopesHeader(principal.scopes);
  return out;
}

/** Joined and checked once per scopes array: a remembered token's principal shares its (frozen) array across requests. */
const joinedScopes = new WeakMap<readonly string[], string>();
function scopesHeader(scopes: readonly string[]): string {
  let value = joinedScopes.get(scopes);
  if (value === undefined) {
    value = checkHeaderValue(SCOPES_HEADER, scopes.join(' '));
    if (Object.isFrozen(scopes)) joinedScopes.set(scopes, value);
  }
  return value;
}

/**
 * An upstream's raw response headers (undici's `name, value, name, value, ...`) as the flat list
 * `res.writeHead` takes, minus hop-by-hop fields and those its `Connection` names (Node sets its own
 * framing). Repeated fields stay repeated, in order.
 */
export function downstreamHeaderList(raw: readonly (Buffer | string)[] | null): string[] {
  const out: string[] = [];
  if (!raw) return out;
  let connectionNamed: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    if (name === 'connection') {
      const named = namedByConnection(raw[i + 1]!.toString('latin1'));
      if (named) for (const n of named) (connectionNamed ??= new Set()).add(n);
      continue;
    }
    if (HOP_BY_HOP.has(name)) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (!connectionNamed) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!connectionNamed.has(out[i]!)) kept.push(out[i]!, out[i + 1]!);
  return kept;
}
