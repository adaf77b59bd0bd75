import type pg from 'pg';
import type { ScopeRequirement } from '../gateway/scopes.js';
import type { TenantDatabases } from './tenant-db.js';

/**
 * Usage and audit, kept in each tenant's own database (schema `systemprompt`), written by the
 * gateway in batches with the tenant's own credentials, read by `admin usage` / `admin audit`.
 */

/** One decision of the gateway about a request whose token was verified (so the user is known). */
export interface DecisionRecord {
  /** Milliseconds since the epoch. */
  time: number;
  tenant: string;
  userId: string;
  email: string | undefined;
  agent: string;
  method: string;
  /** Without the query string. */
  path: string;
  /** The card's requirement: alternatives of scope sets. */
  required: ScopeRequirement;
  /** The scopes the token held. */
  held: readonly string[];
  allowed: boolean;
  /** The HTTP status answered (the upstream's, when allowed). */
  status: number;
  /** Why it was refused or failed (`missing_scope`, `rate_limited`, `upstream_timeout`, ...). */
  reason: string | undefined;
  bytesIn: number;
  bytesOut: number;
}

/** One row of `systemprompt.usage_daily`: per UTC day, user and agent. `requests` counts every decided request, `denials` those refused. */
export interface UsageRow {
  day: string;
  userId: string;
  email: string | undefined;
  agent: string;
  requests: number;
  denials: number;
  bytesIn: number;
  bytesOut: number;
}

/** Sums records into usage rows, one per (UTC day, user, agent) (pure). */
export function usageRows(records: readonly DecisionRecord[]): UsageRow[] {
  const rows = new Map<string, UsageRow>();
  for (const r of records) {
    const day = new Date(r.time).toISOString().slice(0, 10);
    const key = `${day}\u0000${r.userId}\u0000${r.agent}`;
    let row = rows.get(key);
    if (!row) rows.set(key, (row = { day, userId: r.userId, email: r.email, agent: r.agent, requests: 0, denials: 0, bytesIn: 0, bytesOut: 0 }));
    row.requests++;
    if (!r.allowed) row.denials++;
    row.bytesIn += r.bytesIn;
    row.bytesOut += r.bytesOut;
    if (r.email !== undefined) row.email = r.email;
  }
  return [...rows.values()];
}

/** `[["read","write"],["admin"]]` → `["read write", "admin"]`: one text per alternative. */
export const requirementText = (required: ScopeRequirement): string[] => required.map((alt) => alt.join(' '));

export const USAGE_SCHEMA = 'systemprompt';

/** Idempotent; run under an advisory lock so that two gateways creating it at once do not collide. */
const DDL = [
  `CREATE SCHEMA IF NOT EXISTS ${USAGE_SCHEMA}`,
  `CREATE TABLE IF NOT EXISTS ${USAGE_SCHEMA}.usage_daily (
    day date NOT NULL,
    user_id text NOT NULL,
    agent text NOT NULL,
    email text,
    requests bigint NOT NULL DEFAULT 0,
    denials bigint NOT NULL DEFAULT 0,
    bytes_in bigint NOT NULL DEFAULT 0,
    bytes_out bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, user_id, agent))`,
  `CREATE TABLE IF NOT EXISTS ${USAGE_SCHEMA}.audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    user_id text NOT NULL,
    email text,
    agent text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    scopes_required text[] NOT NULL,
    scopes_held text[] NOT NULL,
    decision text NOT NULL CHECK (decision IN ('allowed', 'denied')),
    status integer NOT NULL,
    reason text)`,
  `CREATE INDEX IF NOT EXISTS audit_at ON ${USAGE_SCHEMA}.audit (at)`,
];
/** pg_advisory_xact_lock key for the DDL ("sp-usage" as a number). */
const DDL_LOCK = 0x73702d7573616765n.toString();

const INSERT_AUDIT = `INSERT INTO ${USAGE_SCHEMA}.audit (at, user_id, email, agent, method, path, scopes_required, scopes_held, decision, status, reason)
  SELECT to_timestamp(t.ms / 1000.0), t.user_id, t.email, t.agent, t.method, t.path,
         ARRAY(SELECT jsonb_array_elements_text(t.req)), ARRAY(SELECT jsonb_array_elements_text(t.held)),
         t.decision, t.status, t.reason
  FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::jsonb[], $9::text[], $10::int[], $11::text[])
    AS t(ms, user_id, email, agent, method, path, req, held, decision, status, reason)`;

const UPSERT_USAGE = `INSERT INTO ${USAGE_SCHEMA}.usage_daily AS u (day, user_id, agent, email, requests, denials, bytes_in, bytes_out)
  SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
  ON CONFLICT (day, user_id, agent) DO UPDATE SET
    requests = u.requests + EXCLUDED.requests,
    denials = u.denials + EXCLUDED.denials,
    bytes_in = u.bytes_in + EXCLUDED.bytes_in,
    bytes_out = u.bytes_out + EXCLUDED.bytes_out,
    email = COALESCE(EXCLUDED.email, u.email)`;

/** Where batches go: one tenant's records at a time, all or nothing. */
export interface UsageStore {
  write(tenant: string, records: readonly DecisionRecord[]): Promise<void>;
}

/** Writes batches into the tenant's own database, through its own pool (TenantDatabases). */
export class TenantUsageStore implements UsageStore {
  private readonly ready = new Set<string>();

  constructor(private readonly dbs: TenantDatabases) {}

  async write(tenant: string, records: readonly DecisionRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.dbs.withClient(tenant, async (c) => {
      if (!this.ready.has(tenant)) {
        await ensureUsageSchema(c);
        this.ready.add(tenant);
      }
      await c.query('BEGIN');
      try {
        await c.query(INSERT_AUDIT, [
          records.map((r) => r.time),
          records.map((r) => r.userId),
          records.map((r) => r.email ?? null),
          records.map((r) => r.agent),
          records.map((r) => r.method),
          records.map((r) => r.path),
          records.map((r) => JSON.stringify(requirementText(r.required))),
          records.map((r) => JSON.stringify(r.held)),
          records.map((r) => (r.allowed ? 'allowed' : 'denied')),
          records.map((r) => r.status),
          records.map((r) => r.reason ?? null),
        ]);
        const rows = usageRows(records);
        await c.query(UPSERT_USAGE, [
          rows.map((r) => r.day),
          rows.map((r) => r.userId),
          rows.map((r) => r.agent),
          rows.map((r) => r.email ?? null),
          rows.map((r) => r.requests),
          rows.map((r) => r.denials),
          rows.map((r) => r.bytesIn),
          rows.map((r) => r.bytesOut),
        ]);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        // The tables may have been dropped under us: create them again next time.
        if ((e as { code?: string }).code === '42P01' || (e as { code?: string }).code === '3F000') this.ready.delete(tenant);
        throw e;
      }
    });
  }
}

export async function ensureUsageSchema(c: pg.ClientBase): Promise<void> {
  await c.query('BEGIN');
  try {
    await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [DDL_LOCK]);
    for (const statement of DDL) await c.query(statement);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

export interface UsageRecorderOptions {
  store: UsageStore;
  /** A tenant's records are written at least this often; default 1 s. */
  flushMs?: number;
  /** A tenant with this many waiting is written at once; default 500. */
  batchSize?: number;
  /**
   * Records kept per tenant while its database cannot be written; beyond it the oldest are dropped
   * (and counted). Default 100,000.
   */
  maxBuffered?: number;
  /** Told of a failed write (at most once a minute per tenant) and of dropped records. */
  warn?: (message: string) => void;
  now?: () => number;
}

/**
 * Collects decisions in memory and writes them per tenant in batches (one transaction per tenant
 * and batch): a request never waits for the database. A batch that fails stays queued and is tried
 * again at the next flush, so a database that is briefly away loses nothing; `close()` writes what
 * is left.
 */
export class UsageRecorder {
  private readonly queues = new Map<string, DecisionRecord[]>();
  private readonly writing = new Map<string, Promise<void>>();
  private readonly lastWarned = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  /** Records written, and dropped because a tenant's queue was full (for tests and metrics). */
  written = 0;
  dropped = 0;

  constructor(private readonly opts: UsageRecorderOptions) {
    this.timer = setInterval(() => void this.flush(), opts.flushMs ?? 1000);
    this.timer.unref();
  }

  record(r: DecisionRecord): void {
    let q = this.queues.get(r.tenant);
    if (!q) this.queues.set(r.tenant, (q = []));
    q.push(r);
    this.trim(r.tenant);
    if (q.length >= (this.opts.batchSize ?? 500)) void this.flushTenant(r.tenant);
  }

  /** Records waiting to be written, over all tenants. */
  get pending(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Writes every tenant's waiting records (resolves when done, failed ones queued again). */
  async flush(): Promise<void> {
    await Promise.all([...this.queues.keys()].map((t) => this.flushTenant(t)));
  }

  /** Stops the timer and writes what is left (one attempt). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    // A writer already running may have taken its batch before the last records came: flush twice.
    await this.flush();
    await this.flush();
    const left = this.pending;
    if (left > 0) this.opts.warn?.(`usage: ${left} record${left === 1 ? '' : 's'} could not be written before stopping`);
  }

  /** One writer per tenant at a time; it writes batch after batch until the queue is empty or a write fails. */
  private flushTenant(tenant: string): Promise<void> {
    let running = this.writing.get(tenant);
    if (!running) {
      running = this.drain(tenant).finally(() => this.writing.delete(tenant));
      this.writing.set(tenant, running);
    }
    return running;
  }

  private async drain(tenant: string): Promise<void> {
    for (;;) {
      const q = this.queues.get(tenant);
      if (!q || q.length === 0) return;
      const batch = q.splice(0, this.opts.batchSize ?? 500);
      try {
        await this.opts.store.write(tenant, batch);
        this.written += batch.length;
      } catch (e) {
        // Back at the front, in order; the next flush tries again.
        const rest = this.queues.get(tenant) ?? [];
        this.queues.set(tenant, [...batch, ...rest]);
        this.trim(tenant);
        this.warnOnce(tenant, `usage: tenant ${tenant}: ${batch.length} records not written yet (${(e as Error).message}); will retry`);
        return;
      }
    }
  }

  /** Drops the oldest records of a tenant beyond maxBuffered. */
  private trim(tenant: string): void {
    const q = this.queues.get(tenant);
    const max = this.opts.maxBuffered ?? 100_000;
    if (!q || q.length <= max) return;
    const n = q.length - max;
    q.splice(0, n);
    this.dropped += n;
    this.warnOnce(`${tenant}\u0000dropped`, `usage: tenant ${tenant}: ${n} oldest records dropped (more than ${max} waiting)`);
  }

  private warnOnce(key: string, message: string): void {
    const now = (this.opts.now ?? Date.now)();
    if (now - (this.lastWarned.get(key) ?? -Infinity) < 60_000) return;
    this.lastWarned.set(key, now);
    this.opts.warn?.(message);
  }
}
