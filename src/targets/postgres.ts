import pg from 'pg';
import type { DesiredState } from '../compile/desired.js';
import { checkDatabaseName, quoteIdent } from '../compile/names.js';
import { PG_MARKER_PREFIX } from '../compile/postgres.js';
import { TargetError } from '../errors.js';
import type { JsonObject, LiveResource } from '../model/resource.js';
import type { Change } from '../plan/plan.js';
import { scramVerifier } from './passwords.js';
import { isTransient, requestRunner, type RequestKind } from './retry.js';
import type { ApplyContext, Target } from './target.js';

/** PostgreSQL through `pg`: one login role and one database per tenant, marked by a comment. */
export class PostgresTarget implements Target {
  readonly name = 'postgres' as const;
  readonly requests = { reads: 0, writes: 0 };
  private pool: pg.Pool | undefined;

  constructor(private readonly adminUrl: string, debug?: (line: string) => void) {
    this.call = requestRunner('postgres', this.requests, pgError, debug);
  }

  private db(): pg.Pool {
    if (!this.pool) {
      this.pool = new pg.Pool({ connectionString: this.adminUrl, max: 4, connectionTimeoutMillis: 10_000 });
      this.pool.on('error', () => {
        /* an idle client's error surfaces on the next query */
      });
    }
    return this.pool;
  }

  private readonly call: ReturnType<typeof requestRunner>;

  /** Run SQL; `what` is what gets logged and reported, never the SQL (it may hold a verifier). */
  private q(what: string, kind: RequestKind, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    return this.call(what, kind, () => this.db().query(sql, params));
  }

  /** Two queries, whatever the number of tenants: every role and every database. */
  async read(_desired: DesiredState): Promise<LiveResource[]> {
    const roles = await this.q(
      'list roles',
      'read',
      `SELECT r.rolname, r.rolcanlogin, shobj_description(r.oid, 'pg_authid') AS comment,
              (SELECT a.rolpassword IS NOT NULL FROM pg_authid a WHERE a.oid = r.oid) AS has_password
         FROM pg_roles r WHERE r.rolname !~ '^pg_'`,
    );
    const dbs = await this.q(
      'list databases',
      'read',
      `SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, shobj_description(d.oid, 'pg_database') AS comment,
              EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                       WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_connect
         FROM pg_database d WHERE NOT d.datistemplate`,
    );
    const out: LiveResource[] = [];
    const managedRoles = new Set<string>();
    for (const r of roles.rows as Array<{ rolname: string; rolcanlogin: boolean; comment: string | null; has_password: boolean | null }>) {
      const marker = parseMarker(r.comment);
      if (marker) managedRoles.add(r.rolname);
      const spec: JsonObject = { login: r.rolcanlogin, comment: r.comment ?? '' };
      if (r.has_password !== false) spec.password = '(set)';
      out.push({ target: 'postgres', kind: 'Role', name: r.rolname, managed: !!marker, spec, ...(marker ? { tenant: marker.tenant } : {}) });
    }
    for (const d of dbs.rows as Array<{ datname: string; owner: string; comment: string | null; public_connect: boolean }>) {
      let marker = parseMarker(d.comment);
      // CREATE DATABASE cannot share a transaction with its COMMENT: a database left without its
      // comment by an interrupted apply is still ours when its owner is our role of the same name.
      if (!marker && d.comment === null && d.owner === d.datname && managedRoles.has(d.owner)) {
        const role = out.find((r) => r.kind === 'Role' && r.name === d.owner)!;
        marker = parseMarker(String(role.spec.comment));
      }
      out.push({
        target: 'postgres',
        kind: 'Database',
        name: d.datname,
        managed: !!marker,
        spec: { owner: d.owner, publicConnect: d.public_connect, comment: d.comment ?? '' },
        ...(marker ? { tenant: marker.tenant, retain: marker.retain } : {}),
      });
    }
    return out;
  }

  async apply(change: Change, ctx: ApplyContext): Promise<void> {
    const name = change.name;
    const problem = checkDatabaseName(name);
    if (problem) throw new TargetError('postgres', `refusing unsafe name ${JSON.stringify(name)}: ${problem.message}`);
    const id = quoteIdent(name);
    const spec = change.spec ?? {};
    if (change.kind === 'Role') {
      if (change.action === 'delete') {
        await this.q(`drop role ${name}`, 'write', `DROP ROLE IF EXISTS ${id}`);
        return;
      }
      const password = await ctx.secrets.resolve(change.tenant!, 'postgres-password');
      const verifier = scramVerifier(password);
      const comment = literal(String(spec.comment));
      // One simple query is one implicit transaction: a role never exists without its marker. The password travels as a SCRAM
      // verifier, so not even the server's statement log sees it.
      const sql =
        change.action === 'create'
          ? `CREATE ROLE ${id} LOGIN PASSWORD ${literal(verifier)}; COMMENT ON ROLE ${id} IS ${comment};`
          : `ALTER ROLE ${id} LOGIN PASSWORD ${literal(verifier)}; COMMENT ON ROLE ${id} IS ${comment};`;
      try {
        await this.q(`${change.action} role ${name}`, 'write', sql);
      } catch (e) {
        if (change.action === 'create' && e instanceof TargetError && /already exists/.test(e.message)) {
          await this.q(`update role ${name}`, 'write', `ALTER ROLE ${id} LOGIN PASSWORD ${literal(verifier)}; COMMENT ON ROLE ${id} IS ${comment};`);
          return;
        }
        throw e;
      }
      return;
    }
    if (change.kind === 'Database') {
      if (change.action === 'delete') {
        await this.q(`drop database ${name}`, 'write', `DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
        return;
      }
      const owner = String(spec.owner);
      const ownerProblem = checkDatabaseName(owner);
      if (ownerProblem) throw new TargetError('postgres', `refusing unsafe owner ${JSON.stringify(owner)}`);
      if (change.action === 'create') {
        try {
          await this.q(`create database ${name}`, 'write', `CREATE DATABASE ${id} OWNER ${quoteIdent(owner)}`);
        } catch (e) {
          if (!(e instanceof TargetError && /already exists/.test(e.message))) throw e;
        }
      } else {
        await this.q(`set owner of ${name}`, 'write', `ALTER DATABASE ${id} OWNER TO ${quoteIdent(owner)}`);
      }
      await this.q(
        `restrict connect on ${name}`,
        'write',
        `REVOKE CONNECT ON DATABASE ${id} FROM PUBLIC; GRANT CONNECT ON DATABASE ${id} TO ${quoteIdent(owner)}; COMMENT ON DATABASE ${id} IS ${literal(String(spec.comment))};`,
      );
      return;
    }
    throw new TargetError('postgres', `unknown kind ${change.kind}`);
  }

  async close(): Promise<void> {
    await this.pool?.end();
    this.pool = undefined;
  }
}

function parseMarker(comment: string | null): { tenant: string; retain: boolean } | undefined {
  if (!comment || !comment.startsWith(PG_MARKER_PREFIX)) return undefined;
  const tenant = /(?:^| )tenant=([a-z0-9-]+)/.exec(comment)?.[1];
  if (!tenant) return undefined;
  return { tenant, retain: !/deletion_policy=delete/.test(comment) };
}

/** A SQL string literal. Only used for values we generate or validated (comments, verifiers). */
function literal(s: string): string {
  if (s.includes('\0')) throw new Error('NUL in literal');
  return `'${s.replace(/'/g, "''")}'`;
}

export function pgError(what: string, e: unknown): unknown {
  if (e instanceof TargetError) return e;
  const err = e as { code?: string; message?: string };
  const transient = isTransient(e);
  const msg = (err.message ?? String(e)).replace(/SCRAM-SHA-256\$[^'\s]+/g, '(verifier)');
  return new TargetError('postgres', `${what} failed: ${msg}${err.code ? ` (SQLSTATE ${err.code})` : ''}`, {
    transient,
    ...(err.code === '28P01' || err.code === '28000' ? { hint: 'check SYSTEMPROMPT_POSTGRES_URL: the admin login was refused' } : {}),
    ...(transient && /ECONNREFUSED/.test(msg) ? { hint: 'is PostgreSQL running? `systemprompt dev status`' } : {}),
    cause: e,
  });
}
