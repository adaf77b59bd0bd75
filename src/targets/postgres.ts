import pg from 'pg';
import type { DesiredState } from '../compile/desired.js';
import { checkDatabaseName, quoteIdent } from '../compile/names.js';
import { pgResourceName, splitPgResourceName } from '../compile/postgres.js';
import { PG_SERVER_KIND } from '../plan/placement.js';
import { postgresUrlVariable } from './endpoints.js';
import { mapLimit } from './limit.js';
import { POSTGRES_PASSWORD_REF } from '../compile/kubernetes.js';
import { parsePgMarker, PG_MARKER_PREFIX, pgRoleComment, type PgMarker } from '../model/ownership.js';
import { TargetError } from '../errors.js';
import { secretDigest, type JsonObject, type LiveResource } from '../model/resource.js';
import type { Change } from '../plan/plan.js';
import { scramVerifier } from './passwords.js';
import { isTransient, requestRunner, type RequestKind } from './retry.js';
import type { ApplyContext, ReadScope, Target } from './target.js';

/** The admin URL of each named server of postgres.servers, in list order (an error naming what to set when one is missing). */
export type PostgresServerUrls = (servers: readonly string[]) => Array<{ name: string; url: string }>;

/** How many servers are read at once. */
const SERVER_CONCURRENCY = 4;

/** One server's connection: its own pool (at most 4 connections) and request runner. */
interface Server {
  pool: pg.Pool;
  call: ReturnType<typeof requestRunner>;
}

/**
 * PostgreSQL through `pg`: one login role and one database per tenant, marked by a comment. One
 * server (the admin URL), or the servers of postgres.servers the desired state names, each with its
 * own pool; their objects are then named `server/name`.
 */
export class PostgresTarget implements Target {
  readonly name = 'postgres' as const;
  readonly requests = { reads: 0, writes: 0 };
  /** By admin URL: a pool is made on first use. */
  private readonly servers = new Map<string, Server>();

  constructor(
    private readonly adminUrl: string,
    private readonly debug?: (line: string) => void,
    private readonly serverUrls?: PostgresServerUrls,
  ) {}

  /** The pool and runner of a server; `variable` names its URL in the hint of a refused login. */
  private server(url: string, variable = 'SYSTEMPROMPT_POSTGRES_URL'): Server {
    let s = this.servers.get(url);
    if (!s) {
      const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 10_000 });
      pool.on('error', () => {
        /* an idle client's error surfaces on the next query */
      });
      s = { pool, call: requestRunner('postgres', this.requests, (what, e) => pgError(what, e, variable), this.debug) };
      this.servers.set(url, s);
    }
    return s;
  }

  /** The servers the desired state names (postgres.servers), or undefined for the one implicit server. */
  private named(desired: DesiredState): Array<{ name: string; url: string }> | undefined {
    const names = desired.postgresServers?.map((s) => s.name);
    if (!names) return undefined;
    if (!this.serverUrls) throw new TargetError('postgres', 'postgres.servers is set, but this target knows only one server');
    return this.serverUrls(names);
  }

  /** Run SQL; `what` is what gets logged and reported, never the SQL (it may hold a verifier). */
  private q(on: Server, what: string, kind: RequestKind, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    return on.call(what, kind, () => on.pool.query(sql, params));
  }

  /**
   * Two queries per server, whatever the number of tenants: every role and every database. Works
   * as an admin that is not a superuser (managed PostgreSQL): nothing reads pg_authid. Whether a
   * role's password matches its tenant's Secret is told by the digest recorded in the role's
   * comment. With postgres.servers, each listed server is read (a few at once), its objects are
   * named `server/name`, and a `Server` object per server says how many of our databases it holds.
   */
  async read(desired: DesiredState, scope?: ReadScope): Promise<LiveResource[]> {
    const servers = this.named(desired);
    if (!servers) return this.readServer(this.server(this.adminUrl), undefined, scope);
    const parts = await mapLimit(servers, SERVER_CONCURRENCY, (s) => this.readServer(this.server(s.url, postgresUrlVariable(s.name)), s.name, scope));
    const out: LiveResource[] = [];
    for (const part of parts) for (const r of part) out.push(r);
    return out;
  }

  private async readServer(on: Server, server: string | undefined, scope?: ReadScope): Promise<LiveResource[]> {
    const where = server === undefined ? '' : ` on ${server}`;
    // Scoped: the named roles and databases, and those whose marker names one of the tenants.
    const markers = scope?.tenants.map((t) => `${PG_MARKER_PREFIX} tenant=${t} `) ?? [];
    const only = (name: string, comment: string): string =>
      scope ? ` AND (${name} = ANY($1::text[]) OR EXISTS (SELECT 1 FROM unnest($2::text[]) m WHERE starts_with(coalesce(${comment}, ''), m)))` : '';
    const params = scope ? [scope.pgNames, markers] : [];
    const roleComment = "shobj_description(r.oid, 'pg_authid')";
    const dbComment = "shobj_description(d.oid, 'pg_database')";
    const roles = await this.q(on, `list roles${where}`, 'read', `SELECT r.rolname, r.rolcanlogin, ${roleComment} AS comment FROM pg_roles r WHERE r.rolname !~ '^pg_'${only('r.rolname', roleComment)}`, params);
    const dbs = await this.q(
      on,
      `list databases${where}`,
      'read',
      `SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, ${dbComment} AS comment,
              EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                       WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_connect
         FROM pg_database d WHERE NOT d.datistemplate${only('d.datname', dbComment)}`,
      params,
    );
    const out: LiveResource[] = [];
    const named = (n: string): string => pgResourceName(n, server);
    const roleMarkers = new Map<string, PgMarker>();
    for (const r of roles.rows as Array<{ rolname: string; rolcanlogin: boolean; comment: string | null }>) {
      const marker = parsePgMarker(r.comment);
      if (marker) roleMarkers.set(r.rolname, marker);
      const spec: JsonObject = { login: r.rolcanlogin, comment: marker?.comment ?? r.comment ?? '' };
      if (marker?.passwordDigest) spec.password = { $digest: marker.passwordDigest };
      out.push({ target: 'postgres', kind: 'Role', name: named(r.rolname), managed: !!marker, spec, ...(marker ? { tenant: marker.tenant } : {}) });
    }
    let ours = 0;
    for (const d of dbs.rows as Array<{ datname: string; owner: string; comment: string | null; public_connect: boolean }>) {
      let marker = parsePgMarker(d.comment);
      // CREATE DATABASE cannot share a transaction with its COMMENT: a database left without its
      // comment by an interrupted apply is still ours when its owner is our role of the same name.
      if (!marker && d.comment === null && d.owner === d.datname) marker = roleMarkers.get(d.owner);
      if (marker) ours++;
      out.push({
        target: 'postgres',
        kind: 'Database',
        name: named(d.datname),
        managed: !!marker,
        spec: { owner: d.owner, publicConnect: d.public_connect, comment: d.comment ?? '' },
        ...(marker ? { tenant: marker.tenant, retain: marker.retain } : {}),
      });
    }
    if (server !== undefined) {
      // How full the server is, for placing new databases: every database of ours, also outside the scope.
      if (scope) {
        const count = await this.q(on, `count databases${where}`, 'read', `SELECT count(*)::int AS n FROM pg_database d WHERE starts_with(coalesce(${dbComment}, ''), $1)`, [`${PG_MARKER_PREFIX} `]);
        ours = (count.rows[0] as { n: number }).n;
      }
      out.push({ target: 'postgres', kind: PG_SERVER_KIND, name: server, managed: false, spec: { databases: ours } });
    }
    return out;
  }

  async apply(change: Change, ctx: ApplyContext): Promise<void> {
    // With postgres.servers, `server/name`: the server's own pool, and its name in what is reported.
    const { server: serverName, name } = ctx.desired.postgresServers ? splitPgResourceName(change.name) : { server: undefined, name: change.name };
    let on: Server;
    if (serverName === undefined) on = this.server(this.adminUrl);
    else {
      const s = this.named(ctx.desired)!.find((x) => x.name === serverName);
      if (!s) throw new TargetError('postgres', `${change.kind} ${change.name} is on server ${serverName}, which postgres.servers does not list`);
      on = this.server(s.url, postgresUrlVariable(s.name));
    }
    const at = serverName === undefined ? '' : ` on ${serverName}`;
    const q = (what: string, kind: RequestKind, sql: string, params: unknown[] = []): Promise<pg.QueryResult> => this.q(on, `${what}${at}`, kind, sql, params);
    const problem = checkDatabaseName(name);
    if (problem) throw new TargetError('postgres', `refusing unsafe name ${JSON.stringify(name)}: ${problem.message}`);
    const id = quoteIdent(name);
    if (change.kind === 'Role') {
      if (change.action === 'delete') {
        await q(`drop role ${name}`, 'write', `DROP ROLE IF EXISTS ${id}`);
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
          await q(`create role ${name}`, 'write', `CREATE ROLE ${id} LOGIN; COMMENT ON ROLE ${id} IS ${literal(String(spec.comment))}; ${member}`);
        } catch (e) {
          if (!(e instanceof TargetError && e.sqlstate === DUPLICATE_OBJECT)) throw e;
        }
      }
      // The password travels as a SCRAM verifier, so not even the server's statement log sees it;
      // its digest goes into the comment in the same statement (one implicit transaction), so the
      // comment always tells which password the role has. Killed before this, the role has no
      // digest, and the next plan sets its password.
      const comment = literal(pgRoleComment(String(spec.comment), secretDigest(password)));
      await q(`set password of role ${name}`, 'write', `${member} ALTER ROLE ${id} LOGIN PASSWORD ${literal(scramVerifier(password))}; COMMENT ON ROLE ${id} IS ${comment};`);
      return;
    }
    if (change.kind === 'Database') {
      if (change.action === 'delete') {
        const owner = (await q(`find owner of ${name}`, 'read', 'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [name])).rows[0] as { owner: string } | undefined;
        if (!owner) return;
        if (!checkDatabaseName(owner.owner)) await q(`join role ${owner.owner}`, 'write', `GRANT ${quoteIdent(owner.owner)} TO CURRENT_USER`);
        await q(`drop database ${name}`, 'write', `DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
        return;
      }
      const spec = ctx.specOf(change);
      const owner = String(spec.owner);
      const ownerProblem = checkDatabaseName(owner);
      if (ownerProblem) throw new TargetError('postgres', `refusing unsafe owner ${JSON.stringify(owner)}`);
      await q(`join role ${owner}`, 'write', `GRANT ${quoteIdent(owner)} TO CURRENT_USER`);
      if (change.action === 'create') {
        try {
          await q(`create database ${name}`, 'write', `CREATE DATABASE ${id} OWNER ${quoteIdent(owner)}`);
        } catch (e) {
          if (!(e instanceof TargetError && e.sqlstate === DUPLICATE_DATABASE)) throw e;
        }
      } else {
        await q(`set owner of ${name}`, 'write', `ALTER DATABASE ${id} OWNER TO ${quoteIdent(owner)}`);
      }
      await q(
        `restrict connect on ${name}`,
        'write',
        `REVOKE CONNECT ON DATABASE ${id} FROM PUBLIC; GRANT CONNECT ON DATABASE ${id} TO ${quoteIdent(owner)}; COMMENT ON DATABASE ${id} IS ${literal(String(spec.comment))};`,
      );
      return;
    }
    throw new TargetError('postgres', `unknown kind ${change.kind}`);
  }

  async close(): Promise<void> {
    const pools = [...this.servers.values()].map((s) => s.pool);
    this.servers.clear();
    await Promise.all(pools.map((p) => p.end()));
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

export function pgError(what: string, e: unknown, variable = 'SYSTEMPROMPT_POSTGRES_URL'): unknown {
  if (e instanceof TargetError) return e;
  const err = e as { code?: string; message?: string };
  const transient = isTransient(e);
  const msg = (err.message ?? String(e)).replace(/SCRAM-SHA-256\$[^'\s]+/g, '(verifier)');
  return new TargetError('postgres', `${what} failed: ${msg}${err.code ? ` (SQLSTATE ${err.code})` : ''}`, {
    transient,
    ...(typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) ? { sqlstate: err.code } : {}),
    ...(err.code === '28P01' || err.code === '28000' ? { hint: `check ${variable}: the admin login was refused` } : {}),
    ...(transient && /ECONNREFUSED/.test(msg) ? { hint: 'is PostgreSQL running? `systemprompt dev status`' } : {}),
    cause: e,
  });
}
