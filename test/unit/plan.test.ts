import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import type { DesiredState } from '../../src/compile/desired.js';
import { isSecretRef, redact, type DesiredResource, type Json, type JsonObject, type LiveResource } from '../../src/model/resource.js';
import { comparable, computePlan, EMPTY_LIVE } from '../../src/plan/plan.js';
import { selectTargets } from '../../src/plan/select.js';
import { renderPlanText } from '../../src/plan/render.js';
import { diffSpec } from '../../src/plan/diff.js';
import { exampleRepo } from '../helpers/repo.js';

/** What the live state looks like right after a perfect apply (secrets filled in). */
function liveFrom(state: DesiredState): LiveResource[] {
  const fill = (v: Json): Json => (isSecretRef(v) ? 'xxxx' : Array.isArray(v) ? v.map(fill) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)])) : v);
  // Kubernetes objects as the target projects them: the owned fields, Secret data hashed.
  const project = (r: DesiredResource): JsonObject => {
    if (r.target !== 'kubernetes') return fill(r.spec) as JsonObject;
    const spec = fill(comparable(r)) as JsonObject;
    if (spec.data) spec.data = Object.fromEntries(Object.entries(spec.data as Record<string, string>).map(([k, v]) => [k, redact(v)]));
    return spec;
  };
  return state.resources.map((r) => ({
    target: r.target, kind: r.kind, name: r.name, tenant: r.tenant, managed: true,
    spec: project(r),
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

  it('selecting every target leaves the desired state as it is (no copy)', () => {
    expect(selectTargets(desired, ['keycloak', 'postgres', 'kubernetes'])).toBe(desired);
    expect(selectTargets(desired, ['keycloak', 'postgres']).resources.every((r) => r.target !== 'kubernetes')).toBe(true);
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

describe('plan: convergence', () => {
  const desired = compile(exampleRepo());
  const key = (r: { target: string; kind: string; name: string }): string => `${r.target}:${r.kind}:${r.name}`;

  it('shows a role repair when its password digest and its Secret disagree (a kill between the two writes)', () => {
    const live = liveFrom(desired);
    const secret = live.find((r) => r.kind === 'Secret' && r.name === 'tenant-customer-a/systemprompt-database')!;
    (secret.spec.metadata as JsonObject).annotations = { 'systemprompt.io/password-digest': 'new0000000000000' };
    const role = live.find((r) => r.kind === 'Role' && r.target === 'postgres' && r.tenant === 'customer-a')!;
    role.spec.password = { $digest: 'old0000000000000' };
    const plan = computePlan(desired, { resources: live, requests: {} });
    expect(plan.changes.map(key)).toEqual([key(role)]);
    expect(plan.changes[0]!.diff).toEqual([{ path: 'password', before: '(out of step with its Secret)', after: '(sensitive)', sensitive: true }]);
    role.spec.password = { $digest: 'new0000000000000' };
    expect(computePlan(desired, { resources: live, requests: {} }).changes).toEqual([]);
  });

  it('plans the removal of a field we own and no longer want', () => {
    const live = liveFrom(desired);
    const ns = live.find((r) => r.kind === 'Namespace' && r.tenant === 'customer-a')!;
    (ns.spec.metadata as JsonObject).annotations = { 'systemprompt.io/requests-per-minute': '600', ...(((ns.spec.metadata as JsonObject).annotations as JsonObject) ?? {}) };
    const client = live.find((r) => r.kind === 'Client' && r.tenant === 'customer-a')!;
    client.spec.redirectUris = [...(client.spec.redirectUris as string[]), 'https://gone.example/*'];
    const plan = computePlan(withoutRate(desired, 'customer-a'), { resources: live, requests: {} });
    const diffs = plan.changes.flatMap((c) => c.diff.map((d) => `${c.kind} ${d.path}`));
    expect(diffs).toContain('Namespace metadata.annotations["systemprompt.io/requests-per-minute"]');
    expect(diffs).toContain('Client redirectUris');
  });

  it('never plans the deletion of a labelled object we did not write, and prints no Secret value', () => {
    const live = liveFrom(desired);
    live.push({ target: 'kubernetes', kind: 'Secret', name: 'tenant-customer-a/hand-made', tenant: 'customer-a', managed: false, spec: {} });
    const plan = computePlan(desired, { resources: live, requests: {} });
    expect(plan.changes).toEqual([]);
    const fresh = computePlan(desired, EMPTY_LIVE);
    const text = JSON.stringify(fresh) + renderPlanText(fresh, { verbose: true });
    for (const v of ['127.0.0.1', 'tenant_customer-a']) expect(JSON.stringify(fresh.changes.filter((c) => c.kind === 'Secret'))).not.toContain(v);
    expect(text).toContain('(sensitive)');
  });
});

function withoutRate(d: DesiredState, tenant: string): DesiredState {
  return {
    ...d,
    resources: d.resources.map((r) => {
      if (r.kind !== 'Namespace' || r.tenant !== tenant) return r;
      const { annotations: _a, ...meta } = r.spec.metadata as JsonObject;
      return { ...r, spec: { ...r.spec, metadata: meta } };
    }),
  };
}
