import type pg from 'pg';
import type { Io } from '../cli/io.js';
import { compile } from '../compile/compile.js';
import { DEFAULT_ENVIRONMENT } from '../compile/desired.js';
import { SystemPromptError, UsageError } from '../errors.js';
import { TenantDatabaseError, TenantDatabases, type SecretSource } from '../runtime/tenant-db.js';
import { USAGE_SCHEMA } from '../runtime/usage.js';
import { loadValidRepository } from './load.js';
import { findTenant } from './lookup.js';
import { LiveSession } from './session.js';
import { renderTable } from './table.js';

interface Common {
  dir: string;
  tenant: string;
  /** Email (any case) or Keycloak user id. */
  user?: string | undefined;
  /** ISO date/time, or an age: `30m`, `24h`, `7d`. */
  since?: string | undefined;
  output: 'text' | 'json';
  /** Tests hand in the Secret reader; the CLI reads Kubernetes. */
  secrets?: SecretSource;
}

export type UsageOptions = Common;
export interface AuditOptions extends Common {
  /** The newest this many records (shown oldest first); default 100. */
  limit: number;
}

const DAY_MS = 86_400_000;

/** `--since`: an ISO date or time, or an age before `now` (`90s`, `30m`, `24h`, `7d`). */
export function parseSince(v: string, now: number): Date {
  const age = /^(\d+)(s|m|h|d)$/.exec(v.trim());
  if (age) return new Date(now - Number(age[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS }[age[2] as 's' | 'm' | 'h' | 'd']);
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v.trim())) {
    const d = new Date(v.trim());
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new UsageError(`--since ${v}: expected an ISO date or time (2026-11-29, 2026-11-29T10:00:00Z) or an age (30m, 24h, 7d)`);
}

/** The tenant's namespace as the repository compiles it, and a pool on its database with its own credentials. */
async function openTenant(io: Io, o: Common): Promise<{ read: <R extends pg.QueryResultRow>(text: string, values: unknown[]) => Promise<R[]>; close: () => Promise<void> }> {
  const { repo } = await loadValidRepository(o.dir, io, { quietWarnings: true });
  findTenant(repo, o.tenant);
  const namespace = compile(repo, DEFAULT_ENVIRONMENT).tenants.find((t) => t.name === o.tenant)!.namespace;
  let session: LiveSession | undefined;
  let secrets = o.secrets;
  if (!secrets) {
    session = new LiveSession(io.env, ['kubernetes']);
    secrets = (await session.connect()).kubernetes;
  }
  const dbs = new TenantDatabases({ secrets, namespaceOf: (t) => (t === o.tenant ? namespace : undefined), max: 1 });
  return {
    read: async <R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> => {
      try {
        return await dbs.withClient(o.tenant, async (c) => {
          try {
            return (await c.query<R>(text, values)).rows;
          } catch (e) {
            // Nothing recorded yet: the gateway creates the schema and tables on its first write.
            if (['42P01', '3F000'].includes((e as { code?: string }).code ?? '')) return [];
            throw e;
          }
        });
      } catch (e) {
        if (e instanceof TenantDatabaseError) throw new SystemPromptError(e.message, { hint: 'usage and audit are read with the tenant\'s own credentials (its systemprompt-database Secret): is the tenant applied, and are KUBECONFIG and the database reachable from here?', cause: e });
        throw e;
      }
    },
    close: async () => {
      await dbs.close();
      await session?.close();
    },
  };
}

export interface UsageJson {
  day: string;
  userId: string;
  email: string | null;
  agent: string;
  requests: number;
  denials: number;
  bytesIn: number;
  bytesOut: number;
}

/** `systemprompt admin usage --tenant T`: requests, denials and bytes per day, user and agent, from the tenant's own database. */
export async function runUsage(io: Io, o: UsageOptions, now = Date.now()): Promise<number> {
  const since = o.since !== undefined ? parseSince(o.since, now) : new Date(now - 30 * DAY_MS);
  const { read, close } = await openTenant(io, o);
  let rows: UsageJson[];
  try {
    const r = await read<{ day: string; user_id: string; email: string | null; agent: string; requests: string; denials: string; bytes_in: string; bytes_out: string }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, user_id, email, agent, requests, denials, bytes_in, bytes_out
         FROM ${USAGE_SCHEMA}.usage_daily
        WHERE day >= ($1::timestamptz AT TIME ZONE 'UTC')::date
          AND ($2::text IS NULL OR user_id = $2 OR lower(email) = lower($2))
        ORDER BY day, email, user_id, agent`,
      [since.toISOString(), o.user ?? null],
    );
    rows = r.map((x) => ({ day: x.day, userId: x.user_id, email: x.email, agent: x.agent, requests: Number(x.requests), denials: Number(x.denials), bytesIn: Number(x.bytes_in), bytesOut: Number(x.bytes_out) }));
  } finally {
    await close();
  }
  if (o.output === 'json') {
    io.out(`${JSON.stringify({ tenant: o.tenant, since: since.toISOString(), usage: rows }, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    io.out(`No usage recorded for tenant ${o.tenant}${o.user ? ` and user ${o.user}` : ''} since ${since.toISOString().slice(0, 10)}.\n`);
    return 0;
  }
  io.out(
    renderTable(
      ['DAY', 'USER', 'AGENT', 'REQUESTS', 'DENIED', 'BYTES IN', 'BYTES OUT'],
      rows.map((r) => [r.day, r.email ?? r.userId, r.agent, String(r.requests), String(r.denials), String(r.bytesIn), String(r.bytesOut)]),
    ),
  );
  return 0;
}

export interface AuditJson {
  time: string;
  userId: string;
  email: string | null;
  agent: string;
  method: string;
  path: string;
  scopesRequired: string[];
  scopesHeld: string[];
  decision: 'allowed' | 'denied';
  status: number;
  reason: string | null;
}

/** `systemprompt admin audit --tenant T`: the gateway's decisions about the tenant's users, from the tenant's own database. */
export async function runAudit(io: Io, o: AuditOptions, now = Date.now()): Promise<number> {
  const since = o.since !== undefined ? parseSince(o.since, now) : new Date(now - DAY_MS);
  if (!Number.isInteger(o.limit) || o.limit < 1) throw new UsageError(`--limit ${o.limit}: expected a whole number of at least 1`);
  const { read, close } = await openTenant(io, o);
  let rows: AuditJson[];
  try {
    const r = await read<{ at: Date; user_id: string; email: string | null; agent: string; method: string; path: string; scopes_required: string[]; scopes_held: string[]; decision: 'allowed' | 'denied'; status: number; reason: string | null }>(
      `SELECT * FROM (
         SELECT id, at, user_id, email, agent, method, path, scopes_required, scopes_held, decision, status, reason
           FROM ${USAGE_SCHEMA}.audit
          WHERE at >= $1::timestamptz
            AND ($2::text IS NULL OR user_id = $2 OR lower(email) = lower($2))
          ORDER BY at DESC, id DESC
          LIMIT $3) newest
       ORDER BY at, id`,
      [since.toISOString(), o.user ?? null, o.limit],
    );
    rows = r.map((x) => ({ time: x.at.toISOString(), userId: x.user_id, email: x.email, agent: x.agent, method: x.method, path: x.path, scopesRequired: x.scopes_required, scopesHeld: x.scopes_held, decision: x.decision, status: x.status, reason: x.reason }));
  } finally {
    await close();
  }
  if (o.output === 'json') {
    io.out(`${JSON.stringify({ tenant: o.tenant, since: since.toISOString(), audit: rows }, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    io.out(`No audit records for tenant ${o.tenant}${o.user ? ` and user ${o.user}` : ''} since ${since.toISOString()}.\n`);
    return 0;
  }
  io.out(
    renderTable(
      ['TIME', 'USER', 'AGENT', 'REQUEST', 'REQUIRED', 'HELD', 'DECISION', 'STATUS', 'REASON'],
      rows.map((r) => [
        r.time,
        r.email ?? r.userId,
        r.agent,
        `${r.method} ${r.path}`,
        r.scopesRequired.join(' | ') || '-',
        r.scopesHeld.join(' ') || '-',
        r.decision,
        String(r.status),
        r.reason ?? '-',
      ]),
    ),
  );
  return 0;
}
