import { describe, expect, it } from 'vitest';
import { resourcesAsFiles, type CustomResource } from '../../src/operator/resources.js';
import { tenantStatus } from '../../src/operator/status.js';
import { loadRepository } from '../../src/config/repository.js';
import type { ReconcileResult } from '../../src/reconcile/reconcile.js';

const cr = (status?: Record<string, unknown>, generation = 3): CustomResource => ({ metadata: { name: 'acme', namespace: 'teams', generation }, spec: { name: 'acme', users: [] }, ...(status ? { status } : {}) });
const outcome = (over: Partial<ReconcileResult['result']> = {}, conflicts: ReconcileResult['plan']['conflicts'] = []): ReconcileResult =>
  ({ plan: { changes: [], conflicts } as never, result: { applied: 0, failed: [], skipped: 0, writes: 0, ...over }, deferred: [] }) as ReconcileResult;
const names = { realm: 'acme', namespace: 'tenant-acme', database: 'tenant_acme' };
const now = new Date('2026-11-29T10:00:00.000Z');

describe('operator: Tenant status', () => {
  it('is Ready with the observed generation and names, and is not rewritten when nothing changed', () => {
    const s = tenantStatus(cr(), { tenant: 'acme', outcome: outcome(), failure: undefined, names, now })!;
    expect(s).toMatchObject({ observedGeneration: 3, ...names });
    expect(s.conditions.map((c) => [c.type, c.status, c.observedGeneration])).toEqual([['Ready', 'True', 3], ['Reconciling', 'False', 3], ['Stalled', 'False', 3]]);
    expect(s.conditions[0]!.lastTransitionTime).toBe('2026-11-29T10:00:00Z');
    expect(tenantStatus(cr(s as never), { tenant: 'acme', outcome: outcome(), failure: undefined, names, now: new Date('2026-11-29T11:00:00Z') })).toBeUndefined();
    // a new generation is written, and an unchanged condition keeps its transition time
    const next = tenantStatus(cr(s as never, 4), { tenant: 'acme', outcome: outcome(), failure: undefined, names, now: new Date('2026-11-29T11:00:00Z') })!;
    expect(next.observedGeneration).toBe(4);
    expect(next.conditions[0]!.lastTransitionTime).toBe('2026-11-29T10:00:00Z');
  });

  it('is Stalled on a conflict or an invalid configuration, not Ready on a failed change of its own', () => {
    const conflict = tenantStatus(cr(), { tenant: 'acme', outcome: outcome({}, [{ target: 'kubernetes', kind: 'Namespace', name: 'tenant-acme', tenant: 'acme', reason: 'exists, but systemprompt did not write it' }]), failure: undefined, names, now })!;
    expect(conflict.conditions.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'Conflict' });
    const invalid = tenantStatus(cr(), { tenant: 'acme', outcome: undefined, failure: 'the configuration does not validate: Tenant teams/acme:3:5: SP010: ...', names: undefined, now })!;
    expect(invalid.conditions.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidConfiguration' });
    expect(invalid.lastError).toMatch(/Tenant teams\/acme:3:5/);
    const failed = tenantStatus(cr(), { tenant: 'acme', outcome: outcome({ failed: [{ change: { tenant: 'acme', kind: 'Realm', name: 'acme' } as never, error: 'boom' }] }), failure: undefined, names, now })!;
    expect(failed.conditions[0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'ApplyFailed', message: 'Realm acme: boom' });
    const other = tenantStatus(cr(), { tenant: 'acme', outcome: outcome({ failed: [{ change: { tenant: 'zeta', kind: 'Realm', name: 'zeta' } as never, error: 'boom' }] }), failure: undefined, names, now })!;
    expect(other.conditions[0]!.status).toBe('True'); // another tenant's failure is not this one's
  });
});

describe('operator: resources as repository files', () => {
  it('validates Tenant and Agent specs with the same loader as files, and skips objects being deleted', () => {
    const tenants: CustomResource[] = [
      { metadata: { name: 'a', namespace: 'x' }, spec: { name: 'alpha', users: [{ email: 'ann@example.com', scopes: ['read'] }] } },
      { metadata: { name: 'gone', namespace: 'x', deletionTimestamp: '2026-11-29T10:00:00Z' }, spec: { name: 'gone', users: [] } },
    ];
    const { files, origins } = resourcesAsFiles(tenants, [], 'tenancy:\n  default_tenant: alpha\n');
    expect([...files.keys()].sort()).toEqual(['systemprompt.yaml', 'tenants/alpha.yaml']);
    expect(origins.get('tenants/alpha.yaml')).toEqual({ kind: 'Tenant', namespace: 'x', name: 'a' });
    const loaded = loadRepository(files);
    expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(loaded.repo!.tenants.map((t) => t.name)).toEqual(['alpha']);
    const bad = loadRepository(resourcesAsFiles([{ metadata: { name: 'b', namespace: 'x' }, spec: { name: 'beta', users: [{ email: 'ann@example.com', scopes: ['nope'] }] } }], []).files);
    expect(bad.repo).toBeUndefined();
    expect(bad.diagnostics.some((d) => d.file === 'tenants/beta.yaml' && d.line > 0)).toBe(true);
  });
});
