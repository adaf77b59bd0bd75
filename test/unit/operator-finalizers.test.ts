import { describe, expect, it } from 'vitest';
import { addedFinalizer, finalizersPatch, removedFinalizer, TENANT_FINALIZER } from '../../src/operator/finalizers.js';
import { tenantNameOf } from '../../src/operator/resources.js';

const cr = (metadata: Record<string, unknown>) => ({ metadata: { name: 'x', namespace: 'n', ...metadata }, spec: { name: 'acme' } }) as never;

describe('operator: the Tenant finalizer', () => {
  it('is added once, never to an object being deleted, and removed keeping other finalizers', () => {
    expect(addedFinalizer(cr({}))).toEqual([TENANT_FINALIZER]);
    expect(addedFinalizer(cr({ finalizers: ['other'] }))).toEqual(['other', TENANT_FINALIZER]);
    expect(addedFinalizer(cr({ finalizers: [TENANT_FINALIZER] }))).toBeUndefined();
    expect(addedFinalizer(cr({ deletionTimestamp: '2026-11-29T10:00:00Z' }))).toBeUndefined();
    expect(removedFinalizer(cr({ finalizers: ['other', TENANT_FINALIZER] }))).toEqual(['other']);
    expect(removedFinalizer(cr({ finalizers: ['other'] }))).toBeUndefined();
  });
  it('patches with the resourceVersion it read, and names the tenant by its spec', () => {
    expect(finalizersPatch(cr({ resourceVersion: '42' }), ['a'])).toEqual({ metadata: { finalizers: ['a'], resourceVersion: '42' } });
    expect(tenantNameOf(cr({}))).toBe('acme');
  });
});
