import pg from 'pg';
import type { DesiredState } from '../compile/desired.js';
import { checkDatabaseName, quoteIdent } from '../compile/names.js';
import { POSTGRES_PASSWORD_REF } from '../compile/kubernetes.js';
import { parsePgMarker, PG_MARKER_PREFIX, pgRoleComment, type PgMarker } from '../model/ownership.js';
import { TargetError } from '../errors.js';
import { secretDigest, type JsonObject, type LiveResource } from '../model/resource.js';
import type { Change } from '../plan/plan.js';
import { scramVerifier } from './passwords.js';
import { isTransient, requestRunner, type RequestKind } from './retry.js';
import type { ApplyContext, ReadScope, Target } from './target.js';

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

  /**
   * Two queries, whatever the number of tenants: every role and every database. Works as an admin
   * that is not a superuser (managed PostgreSQL): nothing reads pg_authid. Whether a role's
   * password matches its tenant's Secret is told by the digest recorded in the role's comment.
   */
  async read(_desired: DesiredState, scope?: ReadScope): Promise<LiveResource[]> {
    // Scoped: the named roles and databases, and those whose marker names one of the tenants.
    const markers = scope?.tenants.map((t) => `${PG_MARKER_PREFIX} tenant=${t} `) ?? [];
    const only = (name: string, comment: string): string =>
      scope ? ` AND (${name} = ANY($1::text[]) OR EXISTS (SELECT 1 FROM unnest($2::text[]) m WHERE starts_with(coalesce(${comment}, ''), m)))` : '';
    const params = scope ? [scope.pgNames, markers] : [];
    const roleComment = "shobj_description(r.oid, 'pg_authid')";
    const dbComment = "shobj_description(d.oid, 'pg_database')";
    const roles = await this.q('list roles', 'read', `SELECT r.rolname, r.rolcanlogin, ${roleComment} AS comment FROM pg_roles r WHERE r.rolname !~ '^pg_'${only('r.rolname', roleComment)}`, params);
    const dbs = await this.q(
      'list databases',
      'read',
      `SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, ${dbComment} AS comment,
              EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                       WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_connect
         FROM pg_database d WHERE NOT d.datistemplate${only('d.datname', dbComment)}`,
      params,
    );
    const out: LiveResource[] = [];
    const roleMarkers = new Map<string, PgMarker>();
    for (const r of roles.rows as Array<{ rolname: string; rolcanlogin: boolean; comment: string | null }>) {
      const marker = parsePgMarker(r.comment);
      if (marker) roleMarkers.set(r.rolname, marker);
      const spec: JsonObject = { login: r.rolcanlogin, comment: marker?.comment ?? r.comment ?? '' };
      if (marker?.passwordDigest) spec.password = { $digest: marker.passwordDigest };
      out.push({ target: 'postgres', kind: 'Role', name: r.rolname, managed: !!marker, spec, ...(marker ? { tenant: marker.tenant } : {}) });
    }
    for (const d of dbs.rows as Array<{ datname: string; owner: string; comment: string | null; public_connect: boolean }>) {
      let marker = parsePgMarker(d.comment);
      // CREATE DATABASE cannot share a transaction with its COMMENT: a database left without its
      // comment by an interrupted apply is still ours when its owner is our role of the same name.
      if (!marker && d.comment === null && d.owner === d.datname) marker = roleMarkers.get(d.owner);
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
    if (change.kind === 'Role') {
      if (change.action === 'delete') {
        await this.q(`drop role ${name}`, 'write', `DROP ROLE IF EXISTS ${id}`);
        return;
      }
      const spec = ctx.specOf(change);
      const password = await ctx.secrets.resolve(change.tenant!, POSTGRES_PASSWORD_REF);
      // An admin that is not a superuser (managed PostgreSQL) must be a member of a role to create,
      // restrict, comment on or drop a database it owns: every role write grants that first.
      const member = `GRANT ${id} TO CURRENT_USER;`;
      if (change.action === 'create') {
        // Created with its marker but without a password, in one statement: a failure here (the
        // role exists already: an interrupted apply) is logged by the server without any verifier.
        try {
          await this.q(`create role ${name}`, 'write', `CREATE ROLE ${id} LOGIN; COMMENT ON ROLE ${id} IS ${literal(String(spec.comment))}; ${member}`);
        } catch (e) {
          if (!(e instanceof TargetError && e.sqlstate === DUPLICATE_OBJECT)) throw e;
        }
      }
      // The password travels as a SCRAM verifier, so not even the server's statement log sees it;
      // its digest goes into the comment in the same statement (one implicit transaction), so the
      // comment always tells which password the role has. Killed before this, the role has no
      // digest, and the next plan sets its password.
      const comment = literal(pgRoleComment(String(spec.comment), secretDigest(password)));
      await this.q(`set password of role ${name}`, 'write', `${member} ALTER ROLE ${id} LOGIN PASSWORD ${literal(scramVerifier(password))}; COMMENT ON ROLE ${id} IS ${comment};`);
      return;
    }
    if (change.kind === 'Database') {
      if (change.action === 'delete') {
        const owner = (await this.q(`find owner of ${name}`, 'read', 'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [name])).rows[0] as { owner: string } | undefined;
        if (!owner) return;
        if (!checkDatabaseName(owner.owner)) await this.q(`join role ${owner.owner}`, 'write', `GRANT ${quoteIdent(owner.owner)} TO CURRENT_USER`);
        await this.q(`drop database ${name}`, 'write', `DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
        return;
      }
      const spec = ctx.specOf(change);
      const owner = String(spec.owner);
      const ownerProblem = checkDatabaseName(owner);
      if (ownerProblem) throw new TargetError('postgres', `refusing unsafe owner ${JSON.stringify(owner)}`);
      await this.q(`join role ${owner}`, 'write', `GRANT ${quoteIdent(owner)} TO CURRENT_USER`);
      if (change.action === 'create') {
        try {
          await this.q(`create database ${name}`, 'write', `CREATE DATABASE ${id} OWNER ${quoteIdent(owner)}`);
        } catch (e) {
          if (!(e instanceof TargetError && e.sqlstate === DUPLICATE_DATABASE)) throw e;
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

/** SQLSTATEs the target acts on. */
const DUPLICATE_OBJECT = '42710';
const DUPLICATE_DATABASE = '42P04';

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
    ...(typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) ? { sqlstate: err.code } : {}),
    ...(err.code === '28P01' || err.code === '28000' ? { hint: 'check SYSTEMPROMPT_POSTGRES_URL: the admin login was refused' } : {}),
    ...(transient && /ECONNREFUSED/.test(msg) ? { hint: 'is PostgreSQL running? `systemprompt dev status`' } : {}),
    cause: e,
  });
}
