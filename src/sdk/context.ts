import type pg from 'pg';
import { TokenError } from '../gateway/errors.js';
import { missingScopes } from '../gateway/scopes.js';
import type { Principal } from '../gateway/tokens.js';
import type { TenantDatabases } from '../runtime/tenant-db.js';

type Row = pg.QueryResultRow;

/** Statements on the request's tenant database. */
export interface TenantQuery {
  query<R extends Row = Record<string, any>>(text: string, values?: readonly unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * The database of the request's tenant, reached with that tenant's own credentials (its
 * `systemprompt-database` Secret). Bound to the tenant of the verified token: nothing here takes a
 * tenant name, so no request can reach another tenant's database through it.
 */
export interface TenantDb extends TenantQuery {
  readonly tenant: string;
  /** Runs `work` inside BEGIN ... COMMIT on one connection; ROLLBACK when it throws. */
  transaction<T>(work: (tx: TenantQuery) => Promise<T>): Promise<T>;
  /**
   * The tenant's pg Pool itself, for libraries that want one (query builders). Shared by every
   * request of the tenant: do not `end()` it. `query`/`transaction` also re-read the Secret once
   * when the password was rotated; a Pool held from here does not.
   */
  pool(): Promise<pg.Pool>;
}

/** What a verified request carries: `req.systemprompt` (Fastify: `request.systemprompt`). */
export interface SystemPromptContext {
  /** The token's `tenant_id`, checked against the issuers the agent accepts. Never from a header. */
  readonly tenant: string;
  readonly user: { readonly id: string; readonly email: string | undefined };
  /** The token's scopes, sorted. */
  readonly scopes: readonly string[];
  /** The realm that issued the token. */
  readonly issuer: string;
  /** The token's `exp`, seconds since the epoch. */
  readonly expiresAt: number;
  /** True when the token holds every one of `scopes`. */
  hasScope(...scopes: string[]): boolean;
  /** Throws a TokenError (403 `missing_scope`) unless the token holds every one of `scopes`. */
  requireScope(...scopes: string[]): void;
  readonly db: TenantDb;
}

const noDatabases = (): Promise<never> => Promise.reject(new Error('systemprompt: no databases configured (pass `databases` to systemprompt())'));

/** The request's context for a verified principal; `db` is bound to `principal.tenant` and nothing else. */
export function createContext(principal: Principal, databases: TenantDatabases | undefined): SystemPromptContext {
  const tenant = principal.tenant;
  const scopes = Object.freeze([...principal.scopes]);
  const held = new Set(scopes);
  const run = <T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> => (databases ? databases.withClient(tenant, work) : noDatabases());
  const db: TenantDb = Object.freeze({
    tenant,
    query: <R extends Row>(text: string, values?: readonly unknown[]) => run((c) => c.query<R>(text, values as unknown[] | undefined)),
    transaction: <T>(work: (tx: TenantQuery) => Promise<T>) =>
      run(async (c) => {
        await c.query('BEGIN');
        try {
          const out = await work({ query: <R extends Row>(text: string, values?: readonly unknown[]) => c.query<R>(text, values as unknown[] | undefined) });
          await c.query('COMMIT');
          return out;
        } catch (e) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }),
    pool: () => (databases ? databases.pool(tenant) : noDatabases()),
  });
  return Object.freeze({
    tenant,
    user: Object.freeze({ id: principal.userId, email: principal.email }),
    scopes,
    issuer: principal.issuer,
    expiresAt: principal.expiresAt,
    hasScope: (...wanted: string[]) => wanted.every((s) => held.has(s)),
    requireScope: (...wanted: string[]) => {
      const missing = missingScopes(held, [wanted]);
      if (missing.length) throw new TokenError('missing_scope', { missingScopes: missing });
    },
    db,
  });
}
