import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
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
const read = (dir: string, rel: string): string => readFileSync(path.join(dir, rel), 'utf8');
const original = (rel: string): string => readFileSync(path.join(FIXTURE, rel), 'utf8');

/** `after` equals `before` with exactly `from` replaced by `to` (once): byte-identical elsewhere. */
function expectOnly(before: string, after: string, from: string, to: string): void {
  expect(before.split(from).length, `"${from}" occurs once`).toBe(2);
  expect(after).toBe(before.replace(from, to));
}

describe('admin users list and show', () => {
  it('lists every tenant as a table, or one tenant, or JSON', async () => {
    const r = await sp(FIXTURE, 'admin', 'users', 'list');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^TENANT\s+EMAIL\s+SCOPES\s+ENABLED$/);
    expect(r.stdout).toMatch(/default\s+Founder@Example\.com\s+user,admin\s+yes/);
    const one = await sp(FIXTURE, 'admin', 'users', 'list', '--tenant', 'acme', '-o', 'json');
    expect(JSON.parse(one.stdout).users.map((u: { email: string }) => u.email)).toEqual(['alice@acme.example', 'ops@example.com']);
    expect((await sp(FIXTURE, 'admin', 'users', 'list', '--tenant', 'nope')).stderr).toContain('tenant `nope` does not exist');
  });

  it('shows a user with its file and line; emails compare without case', async () => {
    const r = await sp(FIXTURE, 'admin', 'users', 'show', 'founder@EXAMPLE.com', '-o', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ email: 'Founder@Example.com', tenant: 'default', scopes: ['user', 'admin'], enabled: true, file: 'tenants/default.yaml', line: 8 });
  });

  it('an email in several tenants needs --tenant, and the error lists them', async () => {
    const r = await sp(FIXTURE, 'admin', 'users', 'show', 'ops@example.com');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('user ops@example.com is in 2 tenants: acme (tenants/acme.yaml:4), default (tenants/default.yaml:14)');
    expect(r.stderr).toContain('hint: pick one with --tenant TENANT');
    const ok = await sp(FIXTURE, 'admin', 'users', 'show', 'ops@example.com', '--tenant', 'acme');
    expect(ok.stdout).toMatch(/tenant:\s+acme/);
  });
});

describe('admin users create', () => {
  it('appends to a commented block list in its style; every other byte stays', async () => {
    const dir = copy();
    const r = await sp(dir, 'admin', 'users', 'create', '--email', 'new@example.com', '--scopes', 'read,write');
    expect(r.code, r.stderr).toBe(0);
    expectOnly(
      original('tenants/default.yaml'),
      read(dir, 'tenants/default.yaml'),
      '        enabled: true\n',
      '        enabled: true\n    -   email: "new@example.com"\n        scopes:\n          - read\n          - write\n',
    );
  });

  it('appends to a flow list, and adds a users key where there is none', async () => {
    const dir = copy();
    expect((await sp(dir, 'admin', 'users', 'create', '--email', 'bob@acme.example', '--scopes', 'read', '--tenant', 'acme')).code).toBe(0);
    expectOnly(original('tenants/acme.yaml'), read(dir, 'tenants/acme.yaml'), '{email: ops@example.com, scopes: [user]}]', '{email: ops@example.com, scopes: [user]}, {email: bob@acme.example, scopes: [read]}]');
    expect((await sp(dir, 'admin', 'users', 'create', '--email', 'b@beta.example', '--tenant', 'beta', '--disabled')).code).toBe(0);
    expectOnly(original('tenants/beta.yaml'), read(dir, 'tenants/beta.yaml'), '    pods: 4\n', '    pods: 4\nusers:\n    - email: b@beta.example\n      enabled: false\n');
  });

  it('keeps CRLF line endings and a byte-order mark', async () => {
    const dir = copy();
    const text = '\uFEFFname: beta\r\nusers: []   # none\r\n';
    writeFileSync(path.join(dir, 'tenants/beta.yaml'), text);
    expect((await sp(dir, 'admin', 'users', 'create', '--email', 'a@b.example', '--scopes', 'read', '--tenant', 'beta')).code).toBe(0);
    expect(read(dir, 'tenants/beta.yaml')).toBe('\uFEFFname: beta\r\nusers:   # none\r\n  - email: a@b.example\r\n    scopes: [read]\r\n');
  });
});

describe('admin users edit', () => {
  it('adds and removes scopes in place, block and flow', async () => {
    const dir = copy();
    expect((await sp(dir, 'admin', 'users', 'edit', 'founder@example.com', '--add-scope', 'read', '--remove-scope', 'user')).code).toBe(0);
    expectOnly(original('tenants/default.yaml'), read(dir, 'tenants/default.yaml'), '          - user\n          # admin since day one\n          - admin\n', '          # admin since day one\n          - admin\n          - read\n');
    const r = await sp(dir, 'admin', 'users', 'edit', 'alice@acme.example', '--add-scope', 'write', '--add-scope', 'admin', '--disable');
    expect(r.stdout).toContain('updated user alice@acme.example (acme): added scopes write, admin; disabled');
    expectOnly(original('tenants/acme.yaml'), read(dir, 'tenants/acme.yaml'), '{email: alice@acme.example, scopes: [user, read]}', '{email: alice@acme.example, scopes: [user, read, write, admin], enabled: false}');
  });

  it('--enable on an enabled user, or adding a held scope, changes nothing and says so', async () => {
    const dir = copy();
    const before = snapshot(dir);
    const r = await sp(dir, 'admin', 'users', 'edit', 'ops@example.com', '--tenant', 'default', '--enable', '--add-scope', 'read');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no change');
    expect(snapshot(dir)).toEqual(before);
  });

  it('--tenant T moves a user found only in another tenant; --move-to moves a selected one', async () => {
    const dir = copy();
    const r = await sp(dir, 'admin', 'users', 'edit', 'alice@acme.example', '--tenant', 'beta');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('moved from acme to beta');
    expectOnly(original('tenants/acme.yaml'), read(dir, 'tenants/acme.yaml'), '{email: alice@acme.example, scopes: [user, read]}, ', '');
    expectOnly(original('tenants/beta.yaml'), read(dir, 'tenants/beta.yaml'), '    pods: 4\n', '    pods: 4\nusers:\n    - email: alice@acme.example\n      scopes: [user, read]\n');
    const m = await sp(dir, 'admin', 'users', 'edit', 'ops@example.com', '--tenant', 'acme', '--move-to', 'beta');
    expect(m.code, m.stderr).toBe(0);
    expect(read(dir, 'tenants/acme.yaml')).toContain('users: []\n');
  });

  it('refuses ambiguous or clashing moves without changing anything', async () => {
    const dir = copy();
    const before = snapshot(dir);
    const amb = await sp(dir, 'admin', 'users', 'edit', 'ops@example.com', '--tenant', 'beta');
    expect(amb.code).toBe(1);
    expect(amb.stderr).toContain('is in 2 tenants (acme, default), none of them `beta`');
    const clash = await sp(dir, 'admin', 'users', 'edit', 'ops@example.com', '--tenant', 'acme', '--move-to', 'default');
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain('already exists in tenant `default`');
    const nothing = await sp(dir, 'admin', 'users', 'edit', 'alice@acme.example');
    expect(nothing.stderr).toContain('nothing to change');
    const both = await sp(dir, 'admin', 'users', 'edit', 'alice@acme.example', '--enable', '--disable');
    expect(both.code).toBe(1);
    expect(snapshot(dir)).toEqual(before);
  });
});

describe('admin users delete', () => {
  it('removes the entry lines only', async () => {
    const dir = copy();
    const r = await sp(dir, 'admin', 'users', 'delete', 'ops@example.com', '--tenant', 'default');
    expect(r.code, r.stderr).toBe(0);
    expectOnly(original('tenants/default.yaml'), read(dir, 'tenants/default.yaml'), '    -   email: "ops@example.com"\n        scopes: [ user, read ]   # read-only operator\n        enabled: true\n', '');
    expect((await sp(dir, 'admin', 'users', 'delete', 'nobody@example.com')).stderr).toContain('user nobody@example.com does not exist');
  });
});

describe('every write', () => {
  it('--dry-run prints a unified diff and writes nothing', async () => {
    const dir = copy();
    const before = snapshot(dir);
    const r = await sp(dir, 'admin', 'users', 'edit', 'alice@acme.example', '--move-to', 'default', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--- a/tenants/acme.yaml\n+++ b/tenants/acme.yaml\n');
    expect(r.stdout).toContain('-users: [{email: alice@acme.example, scopes: [user, read]}, {email: ops@example.com, scopes: [user]}]\n+users: [{email: ops@example.com, scopes: [user]}]\n');
    expect(r.stdout).toContain('--- a/tenants/default.yaml\n+++ b/tenants/default.yaml\n@@ -14,5 +14,9 @@\n');
    expect(r.stdout).toContain('         enabled: true\n+    -   email: "alice@acme.example"\n+        scopes:\n+          - user\n+          - read\n \n # agents: all tenant_aware ones\n');
    expect(r.stderr).toContain('dry run: nothing was written');
    expect(snapshot(dir)).toEqual(before);
  });

  it('refuses a result the whole-repository validation rejects, with its diagnostics', async () => {
    const dir = copy();
    const before = snapshot(dir);
    const long = `t${'x'.repeat(58)}`; // a valid tenant name whose namespace tenant-<name> exceeds 63 characters
    const r = await sp(dir, 'cloud', 'tenant', 'create', '--name', long);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`tenants/${long}\\.yaml:\\d+:\\d+: error SP022`));
    expect(r.stderr).toContain('error: the change would make the repository invalid; nothing was changed');
    expect(snapshot(dir)).toEqual(before);
  });

  it('refuses to edit an invalid repository', async () => {
    const dir = copy();
    writeFileSync(path.join(dir, 'tenants/beta.yaml'), 'name: beta\nusers:\n  - email: a@b.example\n    scopes: [nope]\n');
    const before = snapshot(dir);
    const r = await sp(dir, 'admin', 'users', 'create', '--email', 'x@example.com', '--scopes', 'read');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error SP030');
    expect(r.stderr).toContain('the config repository is invalid');
    expect(snapshot(dir)).toEqual(before);
  });

  it('--commit commits exactly the changed files, with a descriptive message', async () => {
    const dir = copy();
    const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' } });
    git('init', '-q');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'init');
    git('config', 'user.name', 't');
    git('config', 'user.email', 't@example.com');
    writeFileSync(path.join(dir, 'unrelated.txt'), 'not mine\n');
    const r = await sp(dir, 'admin', 'users', 'edit', 'alice@acme.example', '--tenant', 'beta', '--commit');
    expect(r.code, r.stderr).toBe(0);
    expect(git('log', '-1', '--format=%s').trim()).toBe('admin: edit user alice@acme.example (beta): moved from acme to beta');
    expect(git('show', '--name-only', '--format=', 'HEAD').trim().split('\n').sort()).toEqual(['tenants/acme.yaml', 'tenants/beta.yaml']);
    expect(git('status', '--porcelain').trim()).toBe('?? unrelated.txt');
  });

  it('--commit outside a git repository is a clear error and changes nothing', async () => {
    const dir = copy();
    const before = snapshot(dir);
    const r = await sp(dir, 'admin', 'users', 'create', '--email', 'x@example.com', '--commit');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not inside a git repository; nothing was changed');
    expect(snapshot(dir)).toEqual(before);
  });
});
