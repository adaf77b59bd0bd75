import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import { diffSpec } from '../../src/plan/diff.js';
import { mappersOf, namesRequired } from '../../src/targets/keycloak.js';
import { normalizeQuantities, project } from '../../src/targets/kubernetes.js';
import { scramVerifier } from '../../src/targets/passwords.js';
import { exampleRepo } from '../helpers/repo.js';

const desired = compile(exampleRepo());
const spec = (kind: string, name: string) => desired.resources.find((r) => r.target === 'kubernetes' && r.kind === kind && r.name === name)!.spec;

describe('Kubernetes live objects in the shape of the desired spec', () => {
  it('decodes Secret data and compares secret references by presence only', () => {
    const live = project('Secret', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'systemprompt-database', namespace: 'tenant-customer-a', labels: { 'app.kubernetes.io/managed-by': 'systemprompt', 'systemprompt.io/tenant': 'customer-a' }, resourceVersion: '7' },
      type: 'Opaque',
      data: Object.fromEntries(Object.entries({ DATABASE_URL: 'postgresql://x:y@127.0.0.1:5432/tenant_customer-a', PGHOST: '127.0.0.1', PGPORT: '5432', PGDATABASE: 'tenant_customer-a', PGUSER: 'tenant_customer-a', PGPASSWORD: 'y' }).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    } as never);
    expect(diffSpec(spec('Secret', 'tenant-customer-a/systemprompt-database'), live)).toEqual([]);
    (live.stringData as Record<string, string>).PGPORT = '5433';
    expect(diffSpec(spec('Secret', 'tenant-customer-a/systemprompt-database'), live)).toEqual([{ path: 'stringData.PGPORT', before: '5433', after: '5432' }]);
  });

  it('treats quantities the API server rewrote as equal, and real changes as changes', () => {
    const want = spec('LimitRange', 'tenant-customer-a/systemprompt-limits');
    const live = project('LimitRange', {
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: { name: 'systemprompt-limits', namespace: 'tenant-customer-a', labels: { 'app.kubernetes.io/managed-by': 'systemprompt', 'systemprompt.io/tenant': 'customer-a' } },
      spec: { limits: [{ type: 'Container', default: { cpu: '0.5', memory: '512Mi' }, defaultRequest: { cpu: '100m', memory: '134217728' } }] },
    } as never);
    normalizeQuantities(want, live);
    expect(diffSpec(want, live)).toEqual([]);
    (live.spec as any).limits[0].default.cpu = '1';
    normalizeQuantities(want, live);
    expect(diffSpec(want, live).map((d) => d.path)).toEqual(['spec.limits']);
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
