import { describe, expect, it } from 'vitest';
import { snapshot, sp, tempDir } from '../helpers/admin.js';

describe('admin write commands with -o json', () => {
  it('print one JSON document saying what happened, and nothing else on stdout', async () => {
    const dir = tempDir();
    expect((await sp(dir, 'init')).code).toBe(0);
    const created = await sp(dir, 'admin', 'users', 'create', '--email', 'a@example.com', '--scopes', 'read', '-o', 'json');
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toEqual({ result: 'written', message: 'admin: create user a@example.com in tenant default with scopes read', files: ['tenants/default.yaml'] });

    const before = snapshot(dir);
    const dry = await sp(dir, 'admin', 'users', 'edit', 'a@example.com', '--add-scope', 'write', '--dry-run', '-o', 'json');
    const doc = JSON.parse(dry.stdout);
    expect(doc.result).toBe('dry-run');
    expect(doc.diff).toContain('+    scopes: [read, write]');
    expect(snapshot(dir)).toEqual(before);

    const same = await sp(dir, 'admin', 'users', 'edit', 'a@example.com', '--add-scope', 'read', '-o', 'json');
    expect(JSON.parse(same.stdout)).toMatchObject({ result: 'unchanged', files: [] });

    const tenant = await sp(dir, 'cloud', 'tenant', 'create', '--name', 'acme', '-o', 'json');
    expect(JSON.parse(tenant.stdout)).toMatchObject({ result: 'written', files: ['tenants/acme.yaml'] });
  });

  it('still fails with diagnostics on stderr and an exit code, writing nothing', async () => {
    const dir = tempDir();
    await sp(dir, 'init');
    const before = snapshot(dir);
    const r = await sp(dir, 'admin', 'users', 'create', '--email', 'a@example.com', '--scopes', 'wrte', '-o', 'json');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/wrte/);
    expect(snapshot(dir)).toEqual(before);
  });
});
