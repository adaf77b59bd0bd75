import pg from 'pg';
import { isDnsLabel } from '../compile/names.js';
import { DATABASE_SECRET } from '../compile/secret-names.js';

/** Where Secret values are read from: the Kubernetes API (KubernetesTarget), or a test's map. */
export interface SecretSource {
  readSecretValue(namespace: string, name: string, key: string): Promise<string | undefined>;
}

export interface TenantDatabasesOptions {
  secrets: SecretSource;
  /** The tenant's namespace (where its `systemprompt-database` Secret is); undefined: not a tenant we serve. */
  namespaceOf: (tenant: string) => string | undefined;
  /** Connections per tenant; default 5. */
  max?: number;
  /** Default 30 s. */
  idleTimeoutMillis?: number;
  /** Default 10 s. */
  connectionTimeoutMillis?: number;
}

/** A tenant's database could not be reached; the message never holds a password or URL. */
export class TenantDatabaseError extends Error {
  constructor(
    message: string,
    readonly tenant: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TenantDatabaseError';
  }
}

interface Entry {
  pool: pg.Pool;
}

/** PostgreSQL's "password authentication failed" and "invalid authorization": the Secret may have moved on. */
const STALE_CREDENTIALS = new Set(['28P01', '28000']);

/**
 * One connection pool per tenant, each opened with that tenant's own credentials: the DATABASE_URL
 * of the Secret `systemprompt-database` in the tenant's namespace, the role apply created for it
 * alone. So a pool can only ever reach its tenant's database; there is no shared or admin
 * connection here to misuse. A pool whose login fails (the password was rotated by an apply) is
 * rebuilt once from the Secret as it is now.
 */
export class TenantDatabases {
  private readonly entries = new Map<string, Promise<Entry>>();
  private closed = false;

  constructor(private readonly opts: TenantDatabasesOptions) {}

  /** The tenant's pool, opened on first use. */
  async pool(tenant: string): Promise<pg.Pool> {
    return (await this.entry(tenant)).pool;
  }

  /**
   * Runs `work` with a client of the tenant's pool (released after). A login refused because the
   * credentials changed is retried once with the Secret read again.
   */
  async withClient<T>(tenant: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await (await this.entry(tenant)).pool.connect();
    } catch (e) {
      if (!STALE_CREDENTIALS.has((e as { code?: string }).code ?? '')) throw this.wrap(tenant, e);
      await this.forget(tenant);
      try {
        client = await (await this.entry(tenant)).pool.connect();
      } catch (again) {
        throw this.wrap(tenant, again);
      }
    }
    try {
      return await work(client);
    } finally {
      client.release();
    }
  }

  /** Drops a tenant's pool (its Secret is read again on next use). */
  async forget(tenant: string): Promise<void> {
    const e = this.entries.get(tenant);
    this.entries.delete(tenant);
    if (e) await e.then((x) => x.pool.end()).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.then((x) => x.pool.end()).catch(() => undefined)));
  }

  private entry(tenant: string): Promise<Entry> {
    if (this.closed) return Promise.reject(new TenantDatabaseError('closed', tenant));
    let e = this.entries.get(tenant);
    if (!e) {
      e = this.open(tenant);
      this.entries.set(tenant, e);
      // A failed open is not cached: the next call tries again.
      e.catch(() => {
        if (this.entries.get(tenant) === e) this.entries.delete(tenant);
      });
    }
    return e;
  }

  private async open(tenant: string): Promise<Entry> {
    if (!isDnsLabel(tenant)) throw new TenantDatabaseError(`"${tenant.slice(0, 64)}" is not a tenant name`, tenant);
    const namespace = this.opts.namespaceOf(tenant);
    if (namespace === undefined) throw new TenantDatabaseError(`tenant ${tenant} is not one this process serves`, tenant);
    let url: string | undefined;
    try {
      url = await this.opts.secrets.readSecretValue(namespace, DATABASE_SECRET, 'DATABASE_URL');
    } catch (e) {
      throw new TenantDatabaseError(`tenant ${tenant}: cannot read Secret ${namespace}/${DATABASE_SECRET}: ${(e as Error).message}`, tenant, { cause: e });
    }
    if (!url) throw new TenantDatabaseError(`tenant ${tenant}: Secret ${namespace}/${DATABASE_SECRET} has no DATABASE_URL (has the tenant been applied?)`, tenant);
    const pool = new pg.Pool({
      connectionString: url,
      max: this.opts.max ?? 5,
      idleTimeoutMillis: this.opts.idleTimeoutMillis ?? 30_000,
      connectionTimeoutMillis: this.opts.connectionTimeoutMillis ?? 10_000,
      application_name: 'systemprompt',
    });
    // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
    pool.on('error', () => undefined);
    return { pool };
  }

  private wrap(tenant: string, e: unknown): TenantDatabaseError {
    if (e instanceof TenantDatabaseError) return e;
    const code = (e as { code?: string }).code;
    // pg's messages name the role and database, never the password.
    return new TenantDatabaseError(`tenant ${tenant}: database: ${(e as Error).message}${code ? ` (${code})` : ''}`, tenant, { cause: e });
  }
}
