import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import type { DesiredState } from '../../src/compile/desired.js';
import { isSecretRef, type Json, type JsonObject, type LiveResource } from '../../src/model/resource.js';
import { computePlan, EMPTY_LIVE } from '../../src/plan/plan.js';
import { selectTargets } from '../../src/plan/select.js';
import { renderPlanText } from '../../src/plan/render.js';
import { diffSpec } from '../../src/plan/diff.js';
import { exampleRepo } from '../helpers/repo.js';

/** What the live state looks like right after a perfect apply (secrets filled in). */
function liveFrom(state: DesiredState): LiveResource[] {
  const fill = (v: Json): Json => (isSecretRef(v) ? 'xxxx' : Array.isArray(v) ? v.map(fill) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)])) : v);
  return state.resources.map((r) => ({
    target: r.target, kind: r.kind, name: r.name, tenant: r.tenant, managed: true,
    spec: fill(r.spec) as JsonObject,
    ...(r.kind === 'Database' ? { retain: r.spec.comment?.toString().includes('retain') } : {}),
  }));
}

describe('plan', () => {
  const desired = compile(exampleRepo());

  it('offline: creates everything, in dependency order', () => {
    const plan = computePlan(desired, EMPTY_LIVE, { offline: true });
    expect(plan.summary.create).toBe(desired.resources.length);
    expect(plan.changes.every((c) => c.action === 'create')).toBe(true);
    const pos = new Map(plan.changes.map((c, i) => [`${c.target}:${c.kind}:${c.name}`, i]));
    for (const [i, c] of plan.changes.entries()) for (const d of c.dependsOn) expect(pos.get(d)!, `${c.name} after ${d}`).toBeLessThan(i);
  });

  it('is empty when the live state matches', () => {
    const plan = computePlan(desired, { resources: liveFrom(desired), requests: { kubernetes: 3 } });
    expect(plan.changes).toEqual([]);
    expect(plan.summary.unchanged).toBe(desired.resources.length);
    expect(renderPlanText(plan)).toContain('No changes.');
  });

  it('changes exactly the quota whose value moved, with a field diff', () => {
    const live = liveFrom(desired);
    const quota = live.find((r) => r.kind === 'ResourceQuota' && r.name === 'tenant-customer-a/systemprompt-quota')!;
    (quota.spec.spec as any).hard['limits.cpu'] = '2';
    const plan = computePlan(desired, { resources: live, requests: {} });
    expect(plan.changes).toHaveLength(1);
    expect(plan.changes[0]).toMatchObject({ action: 'update', kind: 'ResourceQuota', destructive: false });
    expect(plan.changes[0]!.diff).toEqual([{ path: 'spec.hard["limits.cpu"]', before: '2', after: '4' }]);
  });

  it('deletes a removed tenant: destructive realm and namespace, children folded in, database retained', () => {
    const live = liveFrom(desired);
    const withoutA = { ...desired, resources: desired.resources.filter((r) => r.tenant !== 'customer-a') };
    const plan = computePlan(withoutA, { resources: live, requests: {} });
    const names = plan.changes.map((c) => `${c.action} ${c.target} ${c.kind} ${c.name}${c.destructive ? ' !' : ''}`);
    expect(names).toEqual(['delete keycloak Realm customer-a !', 'delete kubernetes Namespace tenant-customer-a !']);
    expect(plan.retained.map((r) => `${r.kind} ${r.name}`)).toEqual(['Database tenant_customer-a', 'Role tenant_customer-a']);
    expect(plan.summary.destructive).toBe(2);
  });

  it('drops the database of a tenant under deletion_policy: delete', () => {
    const live = liveFrom(desired);
    const withoutB = { ...desired, resources: desired.resources.filter((r) => r.tenant !== 'customer-b') };
    const plan = computePlan(withoutB, { resources: live, requests: {} });
    expect(plan.changes.map((c) => `${c.kind} ${c.name}`)).toEqual(['Database tenant_customer-b', 'Realm customer-b', 'Namespace tenant-customer-b', 'Role tenant_customer-b']);
  });

  it('never updates or deletes what lacks our marker', () => {
    const live = liveFrom(desired).map((r) => (r.kind === 'Namespace' && r.name === 'tenant-customer-a' ? { ...r, managed: false, spec: {} } : r));
    live.push({ target: 'postgres', kind: 'Database', name: 'tenant_lookalike', managed: false, spec: {} });
    const plan = computePlan(desired, { resources: live, requests: {} });
    expect(plan.changes).toEqual([]);
    expect(plan.conflicts.map((c) => c.name)).toEqual(['tenant-customer-a']);
  });

  it('compares secrets by presence only and never renders them', () => {
    expect(diffSpec({ a: { secretRef: 'p' } } as JsonObject, { a: 'live-value' })).toEqual([]);
    const d = diffSpec({ a: { secretRef: 'p' } } as JsonObject, {});
    expect(d).toEqual([{ path: 'a', after: '(sensitive)', sensitive: true }]);
    const text = renderPlanText(computePlan(desired, EMPTY_LIVE, { offline: true }), { verbose: true });
    expect(text).toContain('PGPASSWORD: (sensitive)');
  });

  it('fingerprints the live state independent of order', () => {
    const live = liveFrom(desired);
    const a = computePlan(desired, { resources: live, requests: {} }).liveFingerprint;
    const b = computePlan(desired, { resources: [...live].reverse(), requests: {} }).liveFingerprint;
    expect(a).toBe(b);
    live[0]!.spec = { changed: true };
    expect(computePlan(desired, { resources: live, requests: {} }).liveFingerprint).not.toBe(a);
  });
});

describe('plan while a namespace is terminating', () => {
  it('plans nothing for objects inside it', () => {
    const desired = compile(exampleRepo());
    const live = liveFrom(desired);
    const gone = { ...desired, resources: desired.resources.filter((r) => r.tenant !== 'customer-a') };
    for (const r of live) if (r.kind === 'Namespace' && r.name === 'tenant-customer-a') r.terminating = true;
    const plan = computePlan(selectTargets(gone, ['kubernetes']), { resources: live.filter((r) => r.target === 'kubernetes'), requests: {} });
    expect(plan.changes).toEqual([]);
    live.find((r) => r.kind === 'Namespace' && r.name === 'tenant-customer-a')!.terminating = false;
    const before = computePlan(selectTargets(gone, ['kubernetes']), { resources: live.filter((r) => r.target === 'kubernetes'), requests: {} });
    expect(before.changes.map((c) => `${c.action} ${c.kind} ${c.name}`)).toEqual(['delete Namespace tenant-customer-a']);
  });
});
