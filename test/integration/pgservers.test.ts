import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { compile } from '../../src/compile/compile.js';
import { loadRepository } from '../../src/config/repository.js';
import { placeAndPlan } from '../../src/plan/placement.js';
import { selectTargets } from '../../src/plan/select.js';
import { readLive } from '../../src/reconcile/reconcile.js';
import { connectTargets } from '../../src/targets/connect.js';
import { endpointsFromEnvironment } from '../../src/targets/endpoints.js';
import { compileEnvironment, postgresUrlsFromVariables } from '../../src/targets/environment.js';
import type { ReadScope } from '../../src/targets/target.js';
import { bufferIo } from '../helpers/io.js';
import { endpoints, makeRepo, resetTargets, secretValue, targetEnv, writeRepo, type CliResult } from './helpers.js';

/**
 * postgres.servers against two real PostgreSQL servers (the stack's `postgres` and `postgres-2`):
 * databases spread over both, each tenant's DATABASE_URL logs in on its own server only, a later
 * plan never moves what exists, and the plan after each apply is empty.
 */
const SERVERS = { main: endpoints.postgresUrl, second: endpoints.postgresMore?.[0] ?? endpoints.postgresNamed?.SECOND };
const TARGET = ['--target', 'kubernetes,postgres'];
const MARKER = 'managed-by=systemprompt ';

type Server = keyof typeof SERVERS;
type Placement = { tenant: string; database: string; server: Server; new: boolean; reason: string };

/** Both servers by name, whatever their order in the list (SYSTEMPROMPT_POSTGRES_URL_<NAME>). */
function env(without?: Server): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...targetEnv(), SYSTEMPROMPT_POSTGRES_URL_MAIN: SERVERS.main, SYSTEMPROMPT_POSTGRES_URL_SECOND: SERVERS.second };
  if (without) delete e[`SYSTEMPROMPT_POSTGRES_URL_${without.toUpperCase()}`];
  return e;
}

async function sp(dir: string, args: string[], e = env()): Promise<CliResult> {
  const io = bufferIo(dir, e);
  const code = await run(['node', 'systemprompt', ...args, '--dir', dir], io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

async function query<T>(server: Server, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: SERVERS[server] });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** How many of our databases each server holds now (what placement counts). */
async function load(): Promise<Record<Server, number>> {
  const count = async (s: Server) => (await query<{ n: number }>(s, `SELECT count(*)::int AS n FROM pg_database WHERE starts_with(coalesce(shobj_description(oid, 'pg_database'), ''), $1)`, [MARKER]))[0]!.n;
  return { main: await count('main'), second: await count('second') };
}

/** Our test databases on a server, with their comments. */
async function testDatabases(server: Server): Promise<Record<string, string>> {
  const rows = await query<{ datname: string; comment: string | null }>(server, `SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname LIKE 'tenant_pgs-%' ORDER BY 1`);
  return Object.fromEntries(rows.map((r) => [r.datname, r.comment ?? '']));
}

/** Where least-loaded placement puts `tenants` (name order), given the servers' counts and list order. */
function expectedPlaces(tenants: string[], counts: Record<Server, number>, order: Server[]): Record<string, Server> {
  const n = { ...counts };
  const out: Record<string, Server> = {};
  for (const t of [...tenants].sort()) {
    const s = order.reduce((best, x) => (n[x] < n[best] ? x : best), order[0]!);
    out[t] = s;
    n[s]++;
  }
  return out;
}

/** A repository: servers in `order`, tenants with an optional pin. */
function files(order: Server[], tenants: Record<string, Server | undefined>): Record<string, string> {
  const out: Record<string, string> = { 'systemprompt.yaml': `postgres:\n  servers:\n${order.map((s) => `    - name: ${s}\n`).join('')}` };
  for (const [t, pin] of Object.entries(tenants)) out[`tenants/${t}.yaml`] = `name: ${t}\ndeletion_policy: delete\n${pin ? `postgres:\n  server: ${pin}\n` : ''}`;
  return out;
}

async function planJson(dir: string): Promise<{ changes: Array<{ action: string; target: string; kind: string; name: string; tenant?: string }>; placements: Placement[] }> {
  const r = await sp(dir, ['plan', '-o', 'json', ...TARGET]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

/** Logs in with a DATABASE_URL; the server's port and the login, or the SQLSTATE of the refusal. */
async function logIn(url: string): Promise<{ port: number; who: string } | { refused: string }> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query(`SELECT current_user AS u, current_database() AS d, current_setting('port')::int AS port`);
    return { port: r.rows[0].port, who: `${r.rows[0].u}@${r.rows[0].d}` };
  } catch (e) {
    return { refused: (e as { code?: string }).code ?? String(e) };
  } finally {
    await c.end().catch(() => undefined);
  }
}

const portOf = (s: Server): number => Number(new URL(SERVERS[s]!).port || 5432);
const other = (s: Server): Server => (s === 'main' ? 'second' : 'main');

describe('tenant databases across two PostgreSQL servers', () => {
  let dir: string;
  /** Where each tenant's database went in the first apply. */
  const first: Record<string, Server> = {};

  /** Everything of the test tenants gone from both servers (they are deletion_policy: delete). */
  const cleanUp = async (): Promise<void> => {
    const empty = makeRepo(files(['main', 'second'], {}));
    const r = await sp(empty, ['apply', '--auto-approve', '--allow-destroy', '--lock-timeout', '60s', ...TARGET]);
    expect(r.code, r.stderr).toBe(0);
  };

  beforeAll(async () => {
    if (!SERVERS.second) throw new Error('a second PostgreSQL server is needed: `systemprompt dev up` runs one; with targets from the environment, set SYSTEMPROMPT_POSTGRES_URL_SECOND');
    await resetTargets();
    await cleanUp();
  });

  afterAll(async () => {
    await cleanUp();
    expect({ main: await testDatabases('main'), second: await testDatabases('second') }).toEqual({ main: {}, second: {} });
  });

  it('spreads new databases over both servers: pinned ones to their server, the rest to the least loaded', async () => {
    const before = await load();
    const tenants = { 'pgs-a': undefined, 'pgs-b': undefined, 'pgs-c': undefined, 'pgs-m': 'main', 'pgs-s': 'second' } as const;
    dir = makeRepo(files(['main', 'second'], tenants));
    const plan = await planJson(dir);
    // Name order: pgs-a, pgs-b, pgs-c by load (the stack may hold other tests' retained databases), then the pins.
    const expected: Record<string, Server> = { ...expectedPlaces(['pgs-a', 'pgs-b', 'pgs-c'], before, ['main', 'second']), 'pgs-m': 'main', 'pgs-s': 'second' };
    expect(Object.fromEntries(plan.placements.map((p) => [p.tenant, p.server]))).toEqual(expected);
    expect(plan.placements.every((p) => p.new)).toBe(true);
    expect(plan.placements.filter((p) => p.reason === 'pinned').map((p) => p.tenant)).toEqual(['pgs-m', 'pgs-s']);
    expect(plan.changes.filter((c) => c.kind === 'Database').map((c) => c.name).sort()).toEqual(Object.entries(expected).map(([t, s]) => `${s}/tenant_${t}`).sort());
    const text = await sp(dir, ['plan', ...TARGET]);
    expect(text.stdout).toContain('PostgreSQL servers: 5 new databases:');

    const t0 = Date.now();
    const applied = await sp(dir, ['apply', '--auto-approve', ...TARGET]);
    expect(applied.code, applied.stderr).toBe(0);
    process.stderr.write(`pgservers: load before ${JSON.stringify(before)}; placed ${JSON.stringify(expected)}; apply ${((Date.now() - t0) / 1000).toFixed(1)} s; load after ${JSON.stringify(await load())}\n`);
    Object.assign(first, expected);
    const on = { main: await testDatabases('main'), second: await testDatabases('second') };
    for (const [t, s] of Object.entries(expected)) {
      expect(on[s][`tenant_${t}`]).toBe(`managed-by=systemprompt tenant=${t} deletion_policy=delete server=${s}`);
      expect(on[other(s)][`tenant_${t}`]).toBeUndefined();
    }
    expect(new Set(Object.values(expected))).toEqual(new Set(['main', 'second']));
  });

  it("logs each tenant in with its own DATABASE_URL on its own server, and is refused on the other", async () => {
    for (const [t, s] of Object.entries(first)) {
      const ns = `tenant-${t}`;
      expect(await secretValue(ns, 'systemprompt-database', 'POSTGRES_SERVER')).toBe(s);
      expect(await secretValue(ns, 'systemprompt-database', 'PGPORT')).toBe(String(portOf(s)));
      const url = await secretValue(ns, 'systemprompt-database', 'DATABASE_URL');
      expect(await logIn(url)).toEqual({ port: portOf(s), who: `tenant_${t}@tenant_${t}` });
      // The same login and password against the other server: no such role there.
      const elsewhere = new URL(url);
      elsewhere.port = String(portOf(other(s)));
      expect(await logIn(elsewhere.toString())).toEqual({ refused: '28P01' });
    }
  });

  it('plans nothing after the apply', async () => {
    const r = await sp(dir, ['plan', '--detailed-exitcode', ...TARGET]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('PostgreSQL servers: no new database; 5 databases stay where they are.');
  });

  it("reads one tenant as the operator does: its own role and database, and every server's full count", async () => {
    const loaded = loadRepository(new Map(Object.entries(files(['main', 'second'], { 'pgs-a': undefined })).map(([k, v]) => [k, new TextEncoder().encode(v)])));
    const e = env();
    const desired = selectTargets(compile(loaded.repo!, compileEnvironment({ keycloakUrl: e.SYSTEMPROMPT_KEYCLOAK_URL, postgresUrl: e.SYSTEMPROMPT_POSTGRES_URL, postgresServers: postgresUrlsFromVariables(e, ['main', 'second']) })), ['kubernetes', 'postgres']);
    const connected = await connectTargets(endpointsFromEnvironment(e)!, ['kubernetes', 'postgres']);
    try {
      const scope: ReadScope = { tenants: ['pgs-a'], realms: [], namespaces: ['tenant-pgs-a'], pgNames: ['tenant_pgs-a'] };
      const live = await readLive(desired, connected.targets, scope);
      const pgs = live.resources.filter((r) => r.target === 'postgres');
      const s = first['pgs-a']!;
      expect(pgs.filter((r) => r.kind !== 'Server').map((r) => `${r.kind} ${r.name}`).sort()).toEqual([`Database ${s}/tenant_pgs-a`, `Role ${s}/tenant_pgs-a`]);
      expect(Object.fromEntries(pgs.filter((r) => r.kind === 'Server').map((r) => [r.name, r.spec.databases]))).toEqual(await load());
      expect(live.requests.postgres).toBe(6); // roles, databases and a count, per server
      const { plan } = placeAndPlan(desired, live);
      expect(plan.changes).toEqual([]);
      expect(plan.placements).toEqual([{ tenant: 'pgs-a', database: 'tenant_pgs-a', server: s, new: false, reason: 'exists' }]);
    } finally {
      await connected.close();
    }
  });

  it('moves nothing when tenants are added and the servers listed the other way round', async () => {
    const before = await load();
    const added = ['pgs-d', 'pgs-e', 'pgs-f'];
    writeRepo(dir, files(['second', 'main'], { 'pgs-a': undefined, 'pgs-b': undefined, 'pgs-c': undefined, 'pgs-m': 'main', 'pgs-s': 'second', ...Object.fromEntries(added.map((t) => [t, undefined])) }));
    const plan = await planJson(dir);
    const placed = Object.fromEntries(plan.placements.map((p) => [p.tenant, p]));
    for (const [t, s] of Object.entries(first)) expect(placed[t]).toEqual({ tenant: t, database: `tenant_${t}`, server: s, new: false, reason: 'exists' });
    const expected = expectedPlaces(added, before, ['second', 'main']);
    for (const t of added) expect(placed[t]).toMatchObject({ server: expected[t], new: true, reason: 'least-loaded' });
    // Only the new tenants change: nothing of the existing ones, not even their comments or Secrets.
    expect([...new Set(plan.changes.map((c) => c.tenant))].sort()).toEqual(added);

    const applied = await sp(dir, ['apply', '--auto-approve', ...TARGET]);
    expect(applied.code, applied.stderr).toBe(0);
    process.stderr.write(`pgservers: reordered [second, main], load before ${JSON.stringify(before)}; added ${JSON.stringify(expected)}; load after ${JSON.stringify(await load())}\n`);
    const r = await sp(dir, ['plan', '--detailed-exitcode', ...TARGET]);
    expect(r.code, r.stdout).toBe(0);
    const on = { main: await testDatabases('main'), second: await testDatabases('second') };
    for (const [t, s] of Object.entries({ ...first, ...expected })) expect(Object.keys(on[s])).toContain(`tenant_${t}`);
    expect(Object.keys(on.main).length + Object.keys(on.second).length).toBe(8);
  });

  it('refuses, changing nothing, to move a database by pinning it elsewhere, to drop a server that holds databases, or to run without a server URL', async () => {
    const tenants = Object.fromEntries(['pgs-a', 'pgs-b', 'pgs-c', 'pgs-d', 'pgs-e', 'pgs-f', 'pgs-m', 'pgs-s'].map((t) => [t, undefined])) as Record<string, Server | undefined>;
    const before = { main: await testDatabases('main'), second: await testDatabases('second') };

    writeRepo(dir, files(['main', 'second'], { ...tenants, 'pgs-a': other(first['pgs-a']!) }));
    const pinned = await sp(dir, ['apply', '--auto-approve', ...TARGET]);
    expect(pinned.code).toBe(1);
    expect(pinned.stderr).toContain(`tenant pgs-a: pinned to PostgreSQL server ${other(first['pgs-a']!)} (postgres.server), but its database tenant_pgs-a exists on ${first['pgs-a']}; a database is never moved`);

    writeRepo(dir, files(['main'], tenants));
    const removed = await sp(dir, ['plan', ...TARGET]);
    expect(removed.code).toBe(1);
    expect(removed.stderr).toContain('tenant pgs-s: its database tenant_pgs-s is on PostgreSQL server second (recorded on Secret tenant-pgs-s/systemprompt-database), which postgres.servers no longer lists');

    writeRepo(dir, files(['main', 'second'], tenants));
    const missing = await sp(dir, ['apply', '--auto-approve', ...TARGET], env('second'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('SYSTEMPROMPT_POSTGRES_URL_SECOND is not set');
    // No admin password in any message.
    for (const url of Object.values(SERVERS)) expect(`${pinned.stderr}${removed.stderr}${missing.stderr}`).not.toContain(decodeURIComponent(new URL(url!).password));

    expect({ main: await testDatabases('main'), second: await testDatabases('second') }).toEqual(before);
    expect((await sp(dir, ['plan', '--detailed-exitcode', ...TARGET])).code).toBe(0);
  });
});
