import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { snapshot, sp, tempDir } from '../helpers/admin.js';

const FIXTURE = path.join(PROJECT_ROOT, 'test/fixtures/admin/commented');

function copy(): string {
  const dir = tempDir();
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

describe('cloud tenant create', () => {
  it('writes tenants/<name>.yaml with the modeline the other tenants use', async () => {
    const dir = tempDir();
    await sp(dir, 'init');
    const r = await sp(dir, 'cloud', 'tenant', 'create', '--name', 'customer-b', '--display-name', 'Customer B');
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'tenants/customer-b.yaml'), 'utf8')).toBe(
      '# yaml-language-server: $schema=../schemas/tenant.schema.json\nname: customer-b\ndisplay_name: Customer B\nusers: []\n',
    );
  });

  it('refuses bad names, existing tenants and a second tenant when tenancy is disabled', async () => {
    const dir = copy();
    const before = snapshot(dir);
    expect((await sp(dir, 'cloud', 'tenant', 'create', '--name', 'Customer_A')).stderr).toContain('invalid tenant name "Customer_A"');
    expect((await sp(dir, 'cloud', 'tenant', 'create', '--name', 'acme')).stderr).toContain('tenant `acme` already exists (tenants/acme.yaml)');
    expect(snapshot(dir)).toEqual(before);

    const off = tempDir();
    await sp(off, 'init');
    const project = path.join(off, 'systemprompt.yaml');
    writeFileSync(project, readFileSync(project, 'utf8').replace('enabled: true ', 'enabled: false'));
    const r = await sp(off, 'cloud', 'tenant', 'create', '--name', 'customer-a');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('multi-tenancy is disabled');
    expect(existsSync(path.join(off, 'tenants/customer-a.yaml'))).toBe(false);
  });
});

describe('cloud tenant list', () => {
  it('shows a table or one JSON document', async () => {
    const r = await sp(FIXTURE, 'cloud', 'tenant', 'list');
    expect(r.stdout.split('\n')[0]).toMatch(/^NAME\s+DISPLAY NAME\s+USERS\s+AGENTS\s+FILE$/);
    expect(r.stdout).toMatch(/default \(default\)\s+Default\s+2\s+assistant\s+tenants\/default\.yaml/);
    const j = JSON.parse((await sp(FIXTURE, 'cloud', 'tenant', 'list', '-o', 'json')).stdout);
    expect(j.default_tenant).toBe('default');
    expect(j.tenants.map((t: { name: string }) => t.name)).toEqual(['acme', 'beta', 'default']);
  });
});

describe('cloud tenant delete', () => {
  it('removes the file and says what the next apply does', async () => {
    const dir = copy();
    const r = await sp(dir, 'cloud', 'tenant', 'delete', 'acme');
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(dir, 'tenants/acme.yaml'))).toBe(false);
    expect(r.stdout).toContain('the next `systemprompt apply` plans the removal of realm acme with its 2 users and namespace tenant-acme; database tenant_acme (deletion_policy: delete: dropped by `apply --allow-destroy`)');
  });

  it('refuses the default tenant unless --force', async () => {
    const dir = copy();
    const before = snapshot(dir);
    const r = await sp(dir, 'cloud', 'tenant', 'delete', '--name', 'default');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refusing to delete the default tenant `default`');
    expect(r.stderr).toContain('database tenant_default is kept (deletion_policy: retain)');
    expect(snapshot(dir)).toEqual(before);
    const forced = await sp(dir, 'cloud', 'tenant', 'delete', '--name', 'default', '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain('warning SP035');
    expect(existsSync(path.join(dir, 'tenants/default.yaml'))).toBe(false);
  });

  it('--dry-run shows the deletion as a diff', async () => {
    const dir = copy();
    const before = snapshot(dir);
    const r = await sp(dir, 'cloud', 'tenant', 'delete', 'beta', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('--- a/tenants/beta.yaml\n+++ /dev/null\n@@ -1,5 +0,0 @@\n-name: beta\n-quotas:\n-    cpu: "1"\n-    pods: 4\n-# no users yet\n');
    expect(snapshot(dir)).toEqual(before);
    expect((await sp(dir, 'cloud', 'tenant', 'delete', 'nope')).stderr).toContain('tenant `nope` does not exist');
  });
});
