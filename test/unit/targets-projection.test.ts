import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import { diffSpec } from '../../src/plan/diff.js';
import { comparable } from '../../src/plan/plan.js';
import { kcError, mappersOf, namesRequired } from '../../src/targets/keycloak.js';
import { TargetError } from '../../src/errors.js';
import { ownedProjection } from '../../src/targets/kubernetes.js';
import { scramVerifier } from '../../src/targets/passwords.js';
import { exampleRepo } from '../helpers/repo.js';

const desired = compile(exampleRepo());
const resource = (kind: string, name: string) => desired.resources.find((r) => r.target === 'kubernetes' && r.kind === kind && r.name === name)!;
const spec = (kind: string, name: string) => resource(kind, name).spec;
/** What the plan compares a live projection with. */
const wanted = (kind: string, name: string) => comparable(resource(kind, name));

/** The managedFields entry the API server records for an apply of `obj` by our field manager. */
function appliedBy(manager: string, obj: Record<string, unknown>, operation = 'Apply'): Record<string, unknown> {
  const fields = (v: unknown): Record<string, unknown> => {
    if (!v || typeof v !== 'object') return {};
    if (Array.isArray(v)) return { '.': {}, ...Object.fromEntries(v.map((_, i) => [`i:${i}`, {}])) };
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [`f:${k}`, x && typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length ? { '.': {}, ...fields(x) } : Array.isArray(x) ? {} : {}]));
  };
  const { apiVersion: _a, kind: _k, ...rest } = obj;
  const meta = { ...(rest.metadata as Record<string, unknown>) };
  delete meta.name;
  delete meta.namespace;
  return { manager, operation, fieldsType: 'FieldsV1', fieldsV1: fields({ ...rest, metadata: meta }) };
}

describe('Kubernetes live objects: what our field manager owns', () => {
  const quota = spec('ResourceQuota', 'tenant-customer-a/systemprompt-quota');

  it('projects only the fields we own; a field we stopped sending is a removal, one another manager added is not ours', () => {
    const hard = { ...((quota.spec as { hard: Record<string, string> }).hard), 'limits.ephemeral-storage': '2Gi' };
    const applied: Record<string, unknown> = { ...quota, spec: { hard } };
    const live = {
      ...applied,
      spec: { hard: { ...hard, services: '5' } },
      metadata: { ...(applied.metadata as object), resourceVersion: '9', managedFields: [appliedBy('systemprompt', applied), { manager: 'kubectl-edit', operation: 'Update', fieldsV1: { 'f:spec': { 'f:hard': { 'f:services': {} } } } }] },
    };
    const projected = ownedProjection('ResourceQuota', live as never, (live.metadata.managedFields[0] as { fieldsV1: Record<string, unknown> }).fieldsV1);
    expect((projected.spec as { hard: Record<string, string> }).hard.services).toBeUndefined();
    expect(diffSpec(wanted('ResourceQuota', 'tenant-customer-a/systemprompt-quota'), projected)).toEqual([{ path: 'spec.hard["limits.ephemeral-storage"]', before: '2Gi' }]);
  });

  it('hashes Secret data, never carries a value, and compares plain values by their hash', () => {
    const want = spec('Secret', 'tenant-customer-a/systemprompt-database');
    const values = { DATABASE_URL: 'postgresql://x:y@127.0.0.1:5432/tenant_customer-a', PGHOST: '127.0.0.1', PGPORT: '5432', PGDATABASE: 'tenant_customer-a', PGUSER: 'tenant_customer-a', PGPASSWORD: 'y' };
    const obj = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'systemprompt-database', namespace: 'tenant-customer-a', labels: (want.metadata as { labels: object }).labels, annotations: { 'systemprompt.io/password-digest': 'abc' } },
      type: 'Opaque',
      data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    };
    const live = ownedProjection('Secret', obj as never, appliedBy('systemprompt', obj).fieldsV1 as Record<string, unknown>);
    expect(JSON.stringify(live)).not.toContain('tenant_customer-a');
    expect(JSON.stringify(live)).not.toContain(Buffer.from('y').toString('base64'));
    expect(diffSpec(wanted('Secret', 'tenant-customer-a/systemprompt-database'), live)).toEqual([]);
    (live.data as Record<string, unknown>).PGPORT = (ownedProjection('Secret', { data: { PGPORT: Buffer.from('5433').toString('base64') } } as never, { 'f:data': { 'f:PGPORT': {} } }).data as Record<string, unknown>).PGPORT;
    expect(diffSpec(wanted('Secret', 'tenant-customer-a/systemprompt-database'), live)).toEqual([{ path: 'data.PGPORT', before: '(sensitive)', after: '(sensitive)', sensitive: true }]);
  });
});

describe('Keycloak representations', () => {
  it('compares protocol mappers by name, type and config, whatever the order and ids', () => {
    const live = mappersOf([
      { id: 'b', name: 'user_id', protocol: 'openid-connect', protocolMapper: 'p2', config: { b: '2', a: '1' } },
      { id: 'a', name: 'audience', protocol: 'openid-connect', protocolMapper: 'p1', config: {} },
    ]);
    expect(live).toEqual([
      { name: 'audience', protocolMapper: 'p1', config: {} },
      { name: 'user_id', protocolMapper: 'p2', config: { a: '1', b: '2' } },
    ]);
  });

  it('sees whether a realm user profile requires names', () => {
    expect(namesRequired({ attributes: [{ name: 'firstName', required: { roles: ['user'] } }, { name: 'email' }] })).toBe(true);
    expect(namesRequired({ attributes: [{ name: 'firstName' }, { name: 'lastName' }] })).toBe(false);
  });

  it('retries an admin API 401 (a token that expired in a busy server\'s queue) and 5xx, not 403 or 404', () => {
    const answer = (status: number) => kcError('list users of t', Object.assign(new Error(`HTTP ${status}`), { response: { status } })) as TargetError;
    expect(answer(401).transient).toBe(true);
    expect(answer(503).transient).toBe(true);
    expect(answer(403).transient).toBe(false);
    expect(answer(404).transient).toBe(false);
    expect(answer(401).message).toBe('keycloak: list users of t failed (401): HTTP 401');
  });
});

describe('PostgreSQL passwords', () => {
  it('travel as SCRAM-SHA-256 verifiers, never as the password', () => {
    const v = scramVerifier('s3cret', Buffer.alloc(16, 1));
    expect(v).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(v).not.toContain('s3cret');
    expect(scramVerifier('s3cret', Buffer.alloc(16, 1))).toBe(v);
    expect(scramVerifier('s3cret')).not.toBe(v); // a fresh salt each time
  });
});
