import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { sp } from '../helpers/admin.js';

const FIXTURE = path.join(PROJECT_ROOT, 'test/fixtures/admin/commented');

describe('admin config show', () => {
  it('tenancy: effective values, defaults filled in, each with its source', async () => {
    const r = await sp(FIXTURE, 'admin', 'config', 'show', 'tenancy');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/enabled\s+true\s+default\n/);
    expect(r.stdout).toMatch(/default_tenant\s+default\s+systemprompt\.yaml:3\n/);
    expect(r.stdout).toMatch(/naming\.namespace\s+tenant-\{\{tenant_id\}\}\s+default\n/);
    expect(r.stdout).toContain('tenants: acme, beta, default (default)');
  });

  it('-o json is one document', async () => {
    const r = await sp(FIXTURE, 'admin', 'config', 'show', 'tenancy', '-o', 'json');
    expect(JSON.parse(r.stdout)).toEqual({
      tenancy: { enabled: true, isolation: 'per_tenant', default_tenant: 'default', naming: { realm: '{{tenant_id}}', namespace: 'tenant-{{tenant_id}}', database: 'tenant_{{tenant_id}}' } },
      sources: { enabled: 'default', isolation: 'default', default_tenant: 'systemprompt.yaml:3', 'naming.realm': 'default', 'naming.namespace': 'default', 'naming.database': 'default' },
      tenants: ['acme', 'beta', 'default'],
    });
  });

  it('scopes: the catalog with its lines; an unknown section is a usage error', async () => {
    const r = await sp(FIXTURE, 'admin', 'config', 'show', 'scopes', '-o', 'json');
    expect(JSON.parse(r.stdout).sources).toEqual({ user: 'systemprompt.yaml:6', read: 'systemprompt.yaml:7', write: 'systemprompt.yaml:8', admin: 'systemprompt.yaml:9' });
    const bad = await sp(FIXTURE, 'admin', 'config', 'show', 'tenancyy');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("'tenancyy' is invalid for argument 'section'. Allowed choices are tenancy, scopes");
  });
});
