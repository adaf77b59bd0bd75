import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import type { DesiredState } from '../../src/compile/desired.js';
import { loadRepository } from '../../src/config/repository.js';
import { computePlan } from '../../src/plan/plan.js';
import { readLive } from '../../src/reconcile/reconcile.js';
import { connectTargets, type Connected } from '../../src/targets/connect.js';
import { compileEnvironment } from '../../src/targets/environment.js';
import type { ReadScope } from '../../src/targets/target.js';
import { endpoints, exampleFiles, makeRepo, resetTargets, sp } from './helpers.js';

/**
 * The read the operator's per-tenant reconcile makes: only one tenant's realm, namespace, role and
 * database, on the real stack with the example's three tenants applied. It sees what the full read
 * sees of that tenant, costs a fraction of the requests, and its plan never reaches another tenant.
 */
const enc = new TextEncoder();

function desiredOf(files: Record<string, string>): DesiredState {
  const loaded = loadRepository(new Map(Object.entries(files).map(([k, v]) => [k, enc.encode(v)])));
  if (!loaded.repo) throw new Error(JSON.stringify(loaded.diagnostics));
  return compile(loaded.repo, compileEnvironment({ keycloakUrl: endpoints.keycloak.url, postgresUrl: endpoints.postgresUrl }));
}

describe('a read scoped to one tenant', () => {
  const files = exampleFiles();
  const all = desiredOf(files);
  const a = all.tenants.find((t) => t.name === 'customer-a')!;
  const scope: ReadScope = { tenants: ['customer-a'], realms: [a.realm], namespaces: [a.namespace], pgNames: [a.database, a.dbRole] };
  const onlyA = (d: DesiredState): DesiredState => ({ tenants: d.tenants.filter((t) => t.name === 'customer-a'), resources: d.resources.filter((r) => r.tenant === 'customer-a') });
  let connected: Connected;

  beforeAll(async () => {
    await resetTargets();
    const r = await sp(makeRepo(files), 'apply', '--auto-approve');
    expect(r.code, r.stderr).toBe(0);
    connected = await connectTargets(endpoints);
  });
  afterAll(async () => {
    await connected?.close();
    await resetTargets();
  });

  it('sees exactly what the full read sees of that tenant, with fewer requests, and plans nothing', async () => {
    const full = await readLive(all, connected.targets);
    const scoped = await readLive(onlyA(all), connected.targets, scope);
    const key = (r: { target: string; kind: string; name: string }) => `${r.target} ${r.kind} ${r.name}`;
    const ofA = full.resources.filter((r) => r.tenant === 'customer-a' || (r.target === 'keycloak' && r.name.startsWith(`${a.realm}/`)));
    expect(scoped.resources.map(key).sort()).toEqual(ofA.map(key).sort());
    expect(scoped.resources.length).toBeGreaterThan(10);
    // Keycloak: one realm's reads instead of every realm's. Kubernetes: a list per kind either way,
    // inside one namespace instead of across the cluster.
    expect(scoped.requests.keycloak!).toBeLessThan(full.requests.keycloak!);
    expect(scoped.requests.kubernetes!).toBeLessThanOrEqual(full.requests.kubernetes!);
    expect(scoped.resources.length).toBeLessThan(full.resources.length);
    expect(computePlan(onlyA(all), scoped).changes).toEqual([]);
  });

  it("plans the removal of that tenant only, when it is gone from the desired state", async () => {
    const none: DesiredState = { tenants: [], resources: [] };
    const plan = computePlan(none, await readLive(none, connected.targets, scope));
    // What lives inside the realm and the namespace goes with them: two deletes, nothing of another tenant.
    expect(plan.changes.length).toBeGreaterThan(0);
    expect(plan.changes.every((c) => c.action === 'delete' && c.tenant === 'customer-a')).toBe(true);
    expect(plan.changes.filter((c) => c.destructive).map((c) => `${c.kind} ${c.name}`).sort()).toEqual([`Namespace ${a.namespace}`, `Realm ${a.realm}`]);
  });
});
