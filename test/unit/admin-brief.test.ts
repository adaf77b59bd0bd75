import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { shellWords, snapshot, sp, tempDir } from '../helpers/admin.js';

/**
 * The brief's "User Management via CLI" and "Getting Started" command lines, verbatim and in order,
 * run in a repository fresh from `systemprompt init`.
 */
const BRIEF_LINES = [
  'systemprompt admin users list',
  'systemprompt admin users create --email user@example.com --scopes read,write',
  'systemprompt admin users edit user@example.com --add-scope admin',
  'systemprompt admin users show user@example.com',
  'systemprompt admin config show tenancy',
  'systemprompt cloud tenant create --name "customer-a"',
  'systemprompt admin users edit user@example.com --tenant customer-a',
];

describe('the brief, verbatim', () => {
  it('runs every line in order in a fresh repository; the result validates with the user in customer-a', async () => {
    const dir = tempDir();
    expect((await sp(dir, 'init')).code).toBe(0);
    const outputs: string[] = [];
    for (const line of BRIEF_LINES) {
      const [cmd, ...args] = shellWords(line);
      expect(cmd).toBe('systemprompt');
      const r = await sp(dir, ...args);
      expect(r.code, `${line}\n${r.stderr}`).toBe(0);
      outputs.push(r.stdout);
    }
    expect(outputs[0]).toContain('No users');
    expect(outputs[3]).toMatch(/tenant:\s+default/);
    expect(outputs[3]).toMatch(/scopes:\s+read, write, admin/);
    expect(outputs[3]).toMatch(/defined:\s+tenants\/default\.yaml:\d+/);
    expect(outputs[4]).toMatch(/enabled\s+true\s+systemprompt\.yaml:4/);
    expect(outputs[4]).toMatch(/default_tenant\s+default\s+systemprompt\.yaml:6/);

    const v = await sp(dir, 'validate', '--dir', dir); // validate resolves --dir against the process, not io.cwd
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('valid: 2 tenants, 1 user, 1 agent, 5 scopes');
    const customerA = parse(readFileSync(path.join(dir, 'tenants/customer-a.yaml'), 'utf8'));
    expect(customerA.users).toEqual([{ email: 'user@example.com', scopes: ['read', 'write', 'admin'] }]);
    expect(parse(readFileSync(path.join(dir, 'tenants/default.yaml'), 'utf8')).users).toEqual([]);

    const show = await sp(dir, 'admin', 'users', 'show', 'user@example.com', '-o', 'json');
    expect(JSON.parse(show.stdout)).toMatchObject({ email: 'user@example.com', tenant: 'customer-a', scopes: ['read', 'write', 'admin'], enabled: true, file: 'tenants/customer-a.yaml' });
  });

  it('an unknown scope, an invalid email, or a missing tenant exits non-zero with a clear message and changes nothing', async () => {
    const dir = tempDir();
    await sp(dir, 'init');
    await sp(dir, 'admin', 'users', 'create', '--email', 'user@example.com', '--scopes', 'read,write');
    const before = snapshot(dir);
    const cases: [string[], RegExp][] = [
      [['admin', 'users', 'edit', 'user@example.com', '--add-scope', 'superadmin'], /unknown scope `superadmin`/],
      [['admin', 'users', 'create', '--email', 'x@example.com', '--scopes', 'read,bogus'], /unknown scope `bogus`/],
      [['admin', 'users', 'create', '--email', 'not-an-email', '--scopes', 'read'], /invalid email address: "not-an-email"/],
      [['admin', 'users', 'create', '--email', 'x@example.com', '--scopes', 'read', '--tenant', 'customer-z'], /tenant `customer-z` does not exist/],
      [['admin', 'users', 'edit', 'user@example.com', '--tenant', 'customer-z'], /tenant `customer-z` does not exist/],
      [['admin', 'users', 'edit', 'user@example.com', '--move-to', 'customer-z'], /tenant `customer-z` does not exist/],
      [['admin', 'users', 'create', '--email', 'USER@Example.com', '--scopes', 'read'], /already exists in tenant `default`/],
    ];
    for (const [args, message] of cases) {
      const r = await sp(dir, ...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/internal error|at .*\.ts:\d+/);
      expect(snapshot(dir)).toEqual(before);
    }
  });
});
