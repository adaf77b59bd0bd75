import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import type { DesiredState } from '../../src/compile/desired.js';
import { DEFAULT_ENVIRONMENT } from '../../src/compile/desired.js';
import { pgComment, POSTGRES_SERVER_ANNOTATION } from '../../src/model/ownership.js';
import { isSecretRef, redact, resourceKey, type DesiredResource, type Json, type JsonObject, type LiveResource } from '../../src/model/resource.js';
import { comparable, computePlan, EMPTY_LIVE, type LiveState } from '../../src/plan/plan.js';
import { PG_SERVER_KIND, placeAndPlan, placeDatabases, PlacementError } from '../../src/plan/placement.js';
import { renderPlanText } from '../../src/plan/render.js';
import { selectTargets } from '../../src/plan/select.js';
import { mustLoad, textFiles } from '../helpers/repo.js';

const ADDRESSES = { main: { host: 'db-main', port: 5432 }, second: { host: 'db-second', port: 6432 }, third: { host: 'db-third', port: 7432 } };

/** A repository with `servers` (undefined: no postgres.servers) and tenants, some pinned. */
function desiredOf(servers: string[] | undefined, tenants: Array<string | [string, string]>): DesiredState {
  const files: Record<string, string> = {};
  if (servers) files['systemprompt.yaml'] = `postgres:\n  servers:\n${servers.map((s) => `    - name: ${s}\n`).join('')}`;
  for (const t of tenants) {
    const [name, pin] = typeof t === 'string' ? [t, undefined] : t;
    files[`tenants/${name}.yaml`] = `name: ${name}\ndeletion_policy: delete\n${pin ? `postgres:\n  server: ${pin}\n` : ''}`;
  }
  return compile(mustLoad(textFiles(files)), { ...DEFAULT_ENVIRONMENT, postgresServers: ADDRESSES });
}

/** The live state of the PostgreSQL servers: our databases (server -> databases) and each server's count. */
function servers(dbs: Record<string, string[]>, extra: LiveResource[] = []): LiveState {
  const resources: LiveResource[] = [...extra];
  for (const [server, names] of Object.entries(dbs)) {
    for (const db of names) {
      const tenant = db.replace(/^tenant_/, '').replace(/_/g, '-');
      resources.push({ target: 'postgres', kind: 'Database', name: `${server}/${db}`, tenant, managed: true, retain: false, spec: { owner: db, publicConnect: false, comment: pgComment(tenant, 'delete', server) } });
    }
    resources.push({ target: 'postgres', kind: PG_SERVER_KIND, name: server, managed: false, spec: { databases: names.length } });
  }
  return { resources, requests: { postgres: 2 * Object.keys(dbs).length, kubernetes: 8 } };
}

/** A live database Secret of `tenant` that records `server` (written by an earlier apply). */
function recordedSecret(tenant: string, server: string): LiveResource {
  return { target: 'kubernetes', kind: 'Secret', name: `tenant-${tenant}/systemprompt-database`, tenant, managed: true, spec: { metadata: { annotations: { [POSTGRES_SERVER_ANNOTATION]: server } } } };
}

const where = (d: DesiredState): Record<string, string> => Object.fromEntries((d.placements ?? []).map((p) => [p.tenant, `${p.server}${p.new ? ' (new)' : ''}`]));

function placementError(f: () => unknown): PlacementError {
  try {
    f();
  } catch (e) {
    if (e instanceof PlacementError) return e;
    throw e;
  }
  throw new Error('no PlacementError');
}

/** The live state right after a perfect apply of `d` (as in plan.test.ts), with each server's count. */
function liveAfterApply(d: DesiredState): LiveState {
  const fill = (v: Json): Json => (isSecretRef(v) ? 'xxxx' : Array.isArray(v) ? v.map(fill) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)])) : v);
  const project = (r: DesiredResource): JsonObject => {
    if (r.target !== 'kubernetes') return fill(r.spec) as JsonObject;
    const spec = fill(comparable(r)) as JsonObject;
    if (spec.data) spec.data = Object.fromEntries(Object.entries(spec.data as Record<string, string>).map(([k, v]) => [k, redact(v)]));
    return spec;
  };
  const resources: LiveResource[] = d.resources.map((r) => ({ target: r.target, kind: r.kind, name: r.name, tenant: r.tenant, managed: true, spec: project(r), ...(r.kind === 'Database' ? { retain: false } : {}) }));
  for (const s of d.postgresServers ?? []) {
    resources.push({ target: 'postgres', kind: PG_SERVER_KIND, name: s.name, managed: false, spec: { databases: (d.placements ?? []).filter((p) => p.server === s.name).length } });
  }
  return { resources, requests: { postgres: 4, kubernetes: 8 } };
}

describe('placeDatabases', () => {
  it('without postgres.servers changes nothing: same state, same names, no placements in the plan', () => {
    const d = desiredOf(undefined, ['a', 'b']);
    expect(d.postgresServers).toBeUndefined();
    expect(placeDatabases(d, EMPTY_LIVE, { postgresRead: true })).toBe(d);
    const { plan } = placeAndPlan(d, EMPTY_LIVE, { offline: true });
    expect(plan.placements).toBeUndefined();
    expect(plan.changes.filter((c) => c.target === 'postgres').map((c) => c.name)).toEqual(['tenant_a', 'tenant_a', 'tenant_b', 'tenant_b']);
    expect(renderPlanText(plan)).not.toContain('PostgreSQL servers');
  });

  it('puts new databases on the least-loaded server, counting those placed before in the same plan; ties by list order', () => {
    const d = desiredOf(['main', 'second', 'third'], ['a', 'b', 'c', 'd', 'e']);
    const placed = placeDatabases(d, servers({ main: ['tenant_x', 'tenant_y'], second: [], third: [] }), { postgresRead: true });
    // main holds 2; second and third tie at 0 (second listed first), then alternate; e finds all at 2.
    expect(where(placed)).toEqual({ a: 'second (new)', b: 'third (new)', c: 'second (new)', d: 'third (new)', e: 'main (new)' });
    expect(placed.placements!.every((p) => p.reason === 'least-loaded')).toBe(true);
    // Offline: every server empty, so the list order spreads them.
    expect(where(placeDatabases(d, EMPTY_LIVE, { postgresRead: true }))).toEqual({ a: 'main (new)', b: 'second (new)', c: 'third (new)', d: 'main (new)', e: 'second (new)' });
  });

  it('never moves an existing database: not for load, not when the list is reordered', () => {
    const live = servers({ main: ['tenant_a', 'tenant_b', 'tenant_c'], second: [] });
    const d = desiredOf(['main', 'second'], ['a', 'b', 'c', 'd']);
    expect(where(placeDatabases(d, live, { postgresRead: true }))).toEqual({ a: 'main', b: 'main', c: 'main', d: 'second (new)' });
    const reordered = desiredOf(['second', 'main'], ['a', 'b', 'c', 'd']);
    const placed = placeDatabases(reordered, live, { postgresRead: true });
    expect(where(placed)).toEqual({ a: 'main', b: 'main', c: 'main', d: 'second (new)' });
    expect(placed.placements!.find((p) => p.tenant === 'a')!.reason).toBe('exists');
  });

  it('honours a pin for a new database, even onto the fullest server', () => {
    const d = desiredOf(['main', 'second'], [['a', 'main'], 'b']);
    const placed = placeDatabases(d, servers({ main: ['tenant_x', 'tenant_y'], second: [] }), { postgresRead: true });
    expect(where(placed)).toEqual({ a: 'main (new)', b: 'second (new)' });
    expect(placed.placements!.map((p) => p.reason)).toEqual(['pinned', 'least-loaded']);
  });

  it('refuses to move an existing database to the server it is pinned to', () => {
    const d = desiredOf(['main', 'second'], [['a', 'second']]);
    const e = placementError(() => placeDatabases(d, servers({ main: ['tenant_a'], second: [] }), { postgresRead: true }));
    expect(e.problems).toEqual(['tenant a: pinned to PostgreSQL server second (postgres.server), but its database tenant_a exists on main; a database is never moved']);
    expect(e.exitCode).toBe(1);
    expect(e.hint).toMatch(/never moved/);
  });

  it('refuses a server removed from the list while the Secret records a database there', () => {
    const d = desiredOf(['main'], ['a', 'b']);
    const e = placementError(() => placeDatabases(d, servers({ main: [] }, [recordedSecret('a', 'second')]), { postgresRead: true }));
    expect(e.problems).toEqual(['tenant a: its database tenant_a is on PostgreSQL server second (recorded on Secret tenant-a/systemprompt-database), which postgres.servers no longer lists']);
    expect(e.message).toMatch(/cannot place the tenants' databases/);
    expect(e.hint).toMatch(/put a removed server back in postgres.servers/);
  });

  it('refuses a whole postgres.servers list removed while a Secret records a server its one server lacks', () => {
    const d = desiredOf(undefined, ['a']);
    const e = placementError(() => placeDatabases(d, { resources: [recordedSecret('a', 'second')], requests: { postgres: 2 } }, { postgresRead: true }));
    expect(e.problems[0]).toMatch(/tenant a: its database tenant_a is on PostgreSQL server second .* the server of SYSTEMPROMPT_POSTGRES_URL does not hold it/);
    // The database on the one server (it was the first listed): fine, the record goes with the next apply.
    const here: LiveResource = { target: 'postgres', kind: 'Database', name: 'tenant_a', tenant: 'a', managed: true, spec: {} };
    expect(placeDatabases(d, { resources: [recordedSecret('a', 'main'), here], requests: { postgres: 2 } }, { postgresRead: true })).toBe(d);
  });

  it('makes a database gone from its recorded server again there; a pin decides when nothing exists', () => {
    const d = desiredOf(['main', 'second'], ['a', ['b', 'main']]);
    const live = servers({ main: ['tenant_x', 'tenant_y'], second: [] }, [recordedSecret('a', 'main'), recordedSecret('b', 'second')]);
    const placed = placeDatabases(d, live, { postgresRead: true });
    expect(where(placed)).toEqual({ a: 'main (new)', b: 'main (new)' });
    expect(placed.placements!.map((p) => p.reason)).toEqual(['recorded', 'pinned']);
  });

  it('refuses a database found on two servers', () => {
    const d = desiredOf(['main', 'second'], ['a']);
    const e = placementError(() => placeDatabases(d, servers({ main: ['tenant_a'], second: ['tenant_a'] }), { postgresRead: true }));
    expect(e.problems).toEqual(['tenant a: its database tenant_a exists on PostgreSQL servers main and second; a tenant has one database']);
  });

  it('reports every problem of a plan at once', () => {
    const d = desiredOf(['main', 'second'], [['a', 'second'], 'b', 'c']);
    const live = servers({ main: ['tenant_a', 'tenant_b'], second: ['tenant_b'] }, [recordedSecret('c', 'gone')]);
    expect(placementError(() => placeDatabases(d, live, { postgresRead: true })).problems).toHaveLength(3);
  });

  it('without the servers read (--target kubernetes), keeps recorded servers and refuses to guess the others', () => {
    const d = selectTargets(desiredOf(['main', 'second'], ['a', 'b']), ['kubernetes']);
    const live: LiveState = { resources: [recordedSecret('a', 'second')], requests: { kubernetes: 8 } };
    const e = placementError(() => placeAndPlan(d, live));
    expect(e.problems).toEqual(["tenant b: its database tenant_b has no server yet, and placing it needs the PostgreSQL servers' live state"]);
    const onlyA = selectTargets(desiredOf(['main', 'second'], ['a']), ['kubernetes']);
    const placed = placeDatabases(onlyA, live, { postgresRead: false });
    expect(placed.placements).toEqual([{ tenant: 'a', database: 'tenant_a', server: 'second', new: false, reason: 'recorded' }]);
  });

  it('is deterministic: the same inputs in any order give the same placement and the same bytes', () => {
    const d = desiredOf(['main', 'second', 'third'], ['e', 'd', 'c', 'b', 'a']);
    const live = servers({ main: ['tenant_x'], second: ['tenant_y'], third: [] });
    const shuffled: LiveState = { ...live, resources: [...live.resources].reverse() };
    const one = placeAndPlan(d, live);
    const two = placeAndPlan(desiredOf(['main', 'second', 'third'], ['a', 'b', 'c', 'd', 'e']), shuffled);
    expect(where(one.desired)).toEqual({ a: 'third (new)', b: 'main (new)', c: 'second (new)', d: 'third (new)', e: 'main (new)' });
    expect(two.desired.placements).toEqual(one.desired.placements);
    expect(two.plan.desiredFingerprint).toBe(one.plan.desiredFingerprint);
  });

  it("names the role and database after their server, and points the tenant's Secret at it", () => {
    const d = desiredOf(['main', 'second'], ['a']);
    const placed = placeDatabases(d, servers({ main: ['tenant_x'], second: [] }), { postgresRead: true });
    const byKey = new Map(placed.resources.map((r) => [resourceKey(r), r]));
    const role = byKey.get('postgres:Role:second/tenant_a')!;
    const db = byKey.get('postgres:Database:second/tenant_a')!;
    expect(role.dependsOn).toEqual(['kubernetes:Secret:tenant-a/systemprompt-database']);
    expect(role.spec.comment).toBe('managed-by=systemprompt tenant=a deletion_policy=delete');
    expect(db.dependsOn).toEqual(['postgres:Role:second/tenant_a']);
    expect(db.spec).toEqual({ owner: 'tenant_a', publicConnect: false, comment: 'managed-by=systemprompt tenant=a deletion_policy=delete server=second' });
    const secret = byKey.get('kubernetes:Secret:tenant-a/systemprompt-database')!.spec;
    expect(secret.data).toMatchObject({
      DATABASE_URL: { secretRef: 'postgres-password', format: 'postgresql://tenant_a:{}@db-second:6432/tenant_a' },
      PGHOST: 'db-second',
      PGPORT: '6432',
      POSTGRES_SERVER: 'second',
    });
    expect((secret.metadata as JsonObject).annotations).toMatchObject({ [POSTGRES_SERVER_ANNOTATION]: 'second' });
    expect([...byKey.keys()].filter((k) => k.startsWith('postgres:'))).toEqual(['postgres:Role:second/tenant_a', 'postgres:Database:second/tenant_a']);
    expect(() => placeDatabases(placed, EMPTY_LIVE, { postgresRead: true })).toThrow(/placed twice/);
    expect(() => computePlan(d, EMPTY_LIVE)).toThrow(/not placed/);
  });

  it('plans nothing after a perfect apply, and keeps a removed tenant\'s retained database and role on their server', () => {
    const d = desiredOf(['main', 'second'], ['a', 'b']);
    const first = placeAndPlan(d, servers({ main: [], second: [] }));
    expect(first.plan.placements!.map((p) => `${p.database}@${p.server}`)).toEqual(['tenant_a@main', 'tenant_b@second']);
    const text = renderPlanText(first.plan);
    expect(text).toContain('+ postgres   Database       second/tenant_b');
    expect(text).toContain('PostgreSQL servers: 2 new databases: tenant_a on main (least loaded), tenant_b on second (least loaded); 0 databases stay where they are.');
    const live = liveAfterApply(first.desired);
    const again = placeAndPlan(desiredOf(['second', 'main'], ['a', 'b']), live);
    expect(again.plan.changes).toEqual([]);
    expect(renderPlanText(again.plan)).toContain('PostgreSQL servers: no new database; 2 databases stay where they are.');
    // b removed under deletion_policy: retain: its database and owner role stay on second.
    for (const r of live.resources) if (r.kind === 'Database' && r.tenant === 'b') r.retain = true;
    const withoutB = placeAndPlan(desiredOf(['main', 'second'], ['a']), live);
    expect(withoutB.plan.retained.map((r) => `${r.kind} ${r.name}`)).toEqual(['Database second/tenant_b', 'Role second/tenant_b']);
  });
});
