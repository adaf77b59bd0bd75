import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { renderTemplate, usesVariable } from '../compile/templates.js';
import { refusalHeaders, replyError, TokenError } from '../gateway/errors.js';
import { httpJwksFetcher, JwksCache } from '../gateway/jwks.js';
import { TokenVerifier } from '../gateway/tokens.js';
import { TenantDatabaseError, TenantDatabases, type TenantDatabasesOptions } from '../runtime/tenant-db.js';
import { createContext, type SystemPromptContext } from './context.js';
import { resolveIssuers, type Issuers } from './issuers.js';

declare module 'http' {
  interface IncomingMessage {
    /** Set by the systemprompt SDK's middleware once the request's bearer token is verified. */
    systemprompt?: SystemPromptContext;
  }
}

/** The namespace of a tenant unless `namespaceOf` says otherwise (the default `tenancy.naming.namespace`). */
export const DEFAULT_NAMESPACE = 'tenant-{{tenant_id}}';

/** Build the TenantDatabases from where the tenants' Secrets are read. */
export interface DatabasesOptions extends Omit<TenantDatabasesOptions, 'namespaceOf'> {
  /** A template (default `tenant-{{tenant_id}}`, as `tenancy.naming.namespace`) or a function; only tenants of `issuers` get one. */
  namespaceOf?: string | ((tenant: string) => string | undefined);
}

export interface SystemPromptOptions {
  /** The agent's name: its OAuth client id, which every accepted token's `aud` must hold. */
  agent: string;
  /** Issuer URL (exactly as in the tokens' `iss`) → its tenants. Default: the JSON in SYSTEMPROMPT_ISSUERS. */
  issuers?: Issuers;
  /** Scopes every request must hold (403 otherwise). Per route: `requireScope()`. */
  required?: string | readonly string[];
  /** The tenants' databases for `req.systemprompt.db`: a TenantDatabases, or where to read the Secrets from. */
  databases?: TenantDatabases | DatabasesOptions;
  /** The realms' signing keys; default fetched from each realm's JWKS endpoint and cached. */
  jwks?: JwksCache;
  /** Seconds of clock skew tolerated for `exp`/`nbf`; default 30. */
  clockToleranceSeconds?: number;
  /** Where SYSTEMPROMPT_ISSUERS is read; default process.env. */
  env?: Record<string, string | undefined>;
  /** Told about errors `wrap()` answers with 500 or 503 (not refused tokens); default: one line on stderr. */
  onError?: (err: unknown, req: IncomingMessage) => void;
}

export type NextFunction = (err?: unknown) => void;

/** What Fastify hands a hook (only what is used here). */
export interface FastifyRequestLike {
  headers: IncomingHttpHeaders;
  systemprompt?: SystemPromptContext | null;
}
export interface FastifyReplyLike {
  code(statusCode: number): this;
  header(key: string, value: string): this;
  send(payload?: unknown): this;
}
export type FastifyHook = (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>;

/** One check, in the shapes of the three servers. */
export interface Guard {
  /** Express / Connect middleware: answers 401/403/503 itself, else `next()`. */
  (req: IncomingMessage, res: ServerResponse, next: NextFunction): void;
  /**
   * A `node:http` request listener running `handler` after the check. A TokenError thrown by the
   * handler (`requireScope`) is answered like a failed check; any other error with 500 (503 when
   * the tenant's database cannot be reached).
   */
  wrap<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
    handler: (req: Req & { systemprompt: SystemPromptContext }, res: Res) => unknown,
  ): (req: Req, res: Res) => void;
  /** A Fastify `onRequest` / `preHandler` hook: `(request, reply)`. */
  fastify: FastifyHook;
}

export interface FastifyInstanceLike {
  decorateRequest(name: string, value: unknown): unknown;
  hasRequestDecorator?(name: string): boolean;
  addHook(name: 'onRequest', hook: FastifyHook): unknown;
}
/** A Fastify plugin (`fastify.register(sp.plugin)`) adding the hook to every route of the instance. */
export type FastifyPlugin = ((instance: FastifyInstanceLike, opts: unknown, done: (err?: Error) => void) => void) & Record<symbol, unknown>;

export interface SystemPromptMiddleware extends Guard {
  /** Verifies a request's bearer token (for other frameworks); throws TokenError. */
  authenticate(req: { headers: IncomingHttpHeaders }): Promise<SystemPromptContext>;
  plugin: FastifyPlugin;
  /** Closes the database pools it opened (not those of a TenantDatabases passed in). */
  close(): Promise<void>;
}

/**
 * The middleware of an agent: verifies the request's bearer token (the issuer one of `issuers`,
 * the signature with that realm's keys, not expired, an access token, `aud` holding `agent`,
 * `tenant_id` one of the issuer's tenants, the `required` scopes) and sets `req.systemprompt`.
 * It never reads the gateway's `X-SystemPrompt-*` headers: whoever can reach the agent without the
 * gateway could write them.
 */
export function systemprompt(options: SystemPromptOptions): SystemPromptMiddleware {
  if (typeof options?.agent !== 'string' || options.agent === '') throw new Error('systemprompt: `agent` (the agent\'s client id) is required');
  const issuers = resolveIssuers(options.issuers, options.env ?? process.env);
  const served = new Set([...issuers.values()].flatMap((s) => [...s]));
  const verifier = new TokenVerifier({
    issuers,
    keys: options.jwks ?? new JwksCache(httpJwksFetcher()),
    ...(options.clockToleranceSeconds !== undefined ? { clockToleranceSeconds: options.clockToleranceSeconds } : {}),
  });
  const required = options.required === undefined ? [] : [typeof options.required === 'string' ? [options.required] : [...options.required]];
  const { databases, owned } = tenantDatabases(options.databases, served);
  const agent = options.agent;

  const authenticate = async (req: { headers: IncomingHttpHeaders }): Promise<SystemPromptContext> => {
    const principal = await verifier.verify({ authorization: req.headers.authorization, audience: agent, required });
    return createContext(principal, databases);
  };
  const g = guard(async (holder) => {
    // Whatever an earlier layer put here is replaced, never trusted.
    holder.systemprompt = undefined;
    holder.systemprompt = await authenticate(holder);
  }, options.onError);

  const hook = g.fastify;
  const plugin = Object.assign(
    (instance: FastifyInstanceLike, _opts: unknown, done: (err?: Error) => void) => {
      if (!instance.hasRequestDecorator?.('systemprompt')) instance.decorateRequest('systemprompt', null);
      instance.addHook('onRequest', hook);
      done();
    },
    // What fastify-plugin sets: the hook applies to the instance registering it, not a child context.
    { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'systemprompt' },
  );
  return Object.assign(g, {
    authenticate,
    plugin,
    close: async () => {
      if (owned) await databases?.close();
    },
  });
}

/**
 * A check that the request's verified token holds every one of `scopes` (403 `missing_scope`
 * otherwise), after `systemprompt()`: `app.post('/notes', requireScope('write'), handler)`.
 */
export function requireScope(...scopes: string[]): Guard {
  if (scopes.length === 0 || scopes.some((s) => typeof s !== 'string' || s === '')) throw new Error('requireScope: name at least one scope');
  return guard(async (holder) => {
    const ctx = holder.systemprompt;
    if (!ctx) throw new Error('requireScope: the request has not passed systemprompt() first');
    ctx.requireScope(...scopes);
  });
}

/**
 * Express error middleware (`app.use(errorHandler)`, last): a TokenError thrown by a handler
 * (`req.systemprompt.requireScope`) is answered like the middleware answers, a tenant database
 * that cannot be reached with 503; anything else goes on to the next error handler.
 */
export function errorHandler(err: unknown, _req: IncomingMessage, res: ServerResponse, next: NextFunction): void {
  if (res.headersSent || !(err instanceof TokenError || err instanceof TenantDatabaseError)) return next(err);
  answer(res, err);
}

type Holder = { headers: IncomingHttpHeaders; systemprompt?: SystemPromptContext | null | undefined };

function guard(check: (holder: Holder) => Promise<void>, onError: SystemPromptOptions['onError'] = logError): Guard {
  const express = (req: IncomingMessage, res: ServerResponse, next: NextFunction): void => {
    check(req).then(
      () => next(),
      (err: unknown) => (err instanceof TokenError ? answer(res, err) : next(err)),
    );
  };
  const wrap = <Req extends IncomingMessage, Res extends ServerResponse>(handler: (req: Req & { systemprompt: SystemPromptContext }, res: Res) => unknown) => {
    return (req: Req, res: Res): void => {
      check(req)
        .then(() => handler(req as Req & { systemprompt: SystemPromptContext }, res))
        .catch((err: unknown) => {
          if (res.headersSent) {
            if (!(err instanceof TokenError)) onError(err, req);
            res.destroy();
            return;
          }
          // A refused token is the caller's business; anything else (a database down included) is the operator's.
          if (!(err instanceof TokenError)) onError(err, req);
          answer(res, err);
        });
    };
  };
  const fastify: FastifyHook = async (request, reply) => {
    try {
      await check(request);
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      const { status, headers, body } = refusal(err);
      reply.code(status);
      for (const [k, v] of Object.entries(headers)) reply.header(k, v);
      reply.send(body);
      return reply;
    }
    return undefined;
  };
  return Object.assign(express, { wrap, fastify });
}

/** The gateway's answer to a refused token: status, `{error}`, and the RFC 6750 challenge. */
function refusal(err: TokenError): { status: number; headers: Record<string, string>; body: { error: string } } {
  return { status: err.status, headers: refusalHeaders(err), body: { error: err.reason } };
}

function answer(res: ServerResponse, err: unknown): void {
  if (err instanceof TokenError) replyError(res, err.status, err.reason, refusalHeaders(err));
  else if (err instanceof TenantDatabaseError) replyError(res, 503, 'database_unavailable');
  else replyError(res, 500, 'internal_error');
}

function logError(err: unknown, req: IncomingMessage): void {
  const path = (req.url ?? '').split('?')[0];
  process.stderr.write(`systemprompt: ${req.method} ${path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}

function tenantDatabases(d: SystemPromptOptions['databases'], served: ReadonlySet<string>): { databases: TenantDatabases | undefined; owned: boolean } {
  if (d === undefined) return { databases: undefined, owned: false };
  if (d instanceof TenantDatabases) return { databases: d, owned: false };
  const { namespaceOf = DEFAULT_NAMESPACE, ...rest } = d;
  if (typeof rest.secrets?.readSecretValue !== 'function') throw new Error('systemprompt: `databases.secrets` must be a SecretSource (e.g. fromKubernetes())');
  let of: (tenant: string) => string | undefined;
  if (typeof namespaceOf === 'function') of = namespaceOf;
  else {
    if (!usesVariable(namespaceOf, 'tenant_id')) throw new Error('systemprompt: `databases.namespaceOf` must contain {{tenant_id}}');
    of = (tenant) => renderTemplate(namespaceOf, { tenant_id: tenant });
  }
  // Only tenants the agent accepts tokens of have a database here.
  return { databases: new TenantDatabases({ ...rest, namespaceOf: (t) => (served.has(t) ? of(t) : undefined) }), owned: true };
}
