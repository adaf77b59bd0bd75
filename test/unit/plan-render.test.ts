import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateRepository, writeRepository } from '../../bench/compile/generate.js';
import { run } from '../../src/cli/main.js';
import type { Change, Plan } from '../../src/plan/plan.js';
import { plural, renderPlanText, SUMMARY_THRESHOLD } from '../../src/plan/render.js';
import { bufferIo } from '../helpers/io.js';

const change = (action: Change['action'], kind: string, name: string, tenant: string, extra: Partial<Change> = {}): Change => ({
  action,
  target: kind === 'Namespace' ? 'kubernetes' : 'keycloak',
  kind,
  name,
  tenant,
  destructive: false,
  diff: action === 'update' ? [{ path: 'enabled', before: true, after: false }] : [{ path: 'email', after: name }],
  dependsOn: [],
  ...extra,
});

function planOf(changes: Change[]): Plan {
  const count = (a: Change['action']): number => changes.filter((c) => c.action === a).length;
  return {
    format: 'systemprompt.plan/v1',
    offline: true,
    changes,
    retained: [],
    conflicts: [],
    summary: { create: count('create'), update: count('update'), delete: count('delete'), destructive: changes.filter((c) => c.destructive).length, unchanged: 0, retained: 0, conflicts: 0 },
    requests: { kubernetes: 0, postgres: 0, keycloak: 0, total: 0 },
    liveFingerprint: '',
    desiredFingerprint: '',
    cards: [],
  };
}

describe('text plan of large tenants', () => {
  const users = (action: Change['action'], n: number, tenant: string, from = 0): Change[] =>
    Array.from({ length: n }, (_, i) => change(action, 'User', `${tenant}/user${from + i}@example.com`, tenant));
  const plan = planOf([
    change('create', 'Namespace', 'tenant-big', 'big'),
    ...users('create', 500, 'big'),
    ...users('update', 3, 'big', 1000),
    ...users('delete', 11, 'big', 2000),
    // destructive changes are never folded, however many
    ...Array.from({ length: 12 }, (_, i) => change('delete', 'Realm', `old-${i}`, 'big', { destructive: true })),
    ...users('create', SUMMARY_THRESHOLD, 'small'),
  ]);

  it('counts more than SUMMARY_THRESHOLD changes of one action and kind in a tenant, on one line', () => {
    const text = renderPlanText(plan);
    const lines = text.split('\n');
    expect(lines).toContain('  + keycloak   User      500 users');
    expect(lines).toContain('  - keycloak   User      11 users');
    expect(text).not.toContain('big/user17@example.com');
    // the line stands where the group's first change was
    expect(lines.indexOf('  + keycloak   User      500 users')).toBe(lines.indexOf('tenant big') + 2);
  });

  it('lists small groups, their field changes, and every destructive change', () => {
    const text = renderPlanText(plan);
    expect(text).toContain('  ~ keycloak   User      big/user1001@example.com\n      enabled: true -> false\n');
    for (let i = 0; i < 12; i++) expect(text).toContain(`  - keycloak   Realm     old-${i}  (destructive)`);
    for (let i = 0; i < SUMMARY_THRESHOLD; i++) expect(text).toContain(`small/user${i}@example.com`);
    expect(text).toContain('  + kubernetes Namespace tenant-big\n');
  });

  it('keeps the totals and says how to see everything', () => {
    const text = renderPlanText(plan);
    expect(text).toContain('Plan: 511 to create, 3 to update, 23 to delete (12 destructive: needs --allow-destroy).');
    expect(text).toContain(`More than ${SUMMARY_THRESHOLD} changes of a kind in a tenant are counted, not listed; -v lists each, -o json holds them all.`);
    expect(renderPlanText(planOf(users('create', 3, 'a')))).not.toContain('counted, not listed');
  });

  it('lists everything with verbose', () => {
    const text = renderPlanText(plan, { verbose: true });
    for (let i = 0; i < 500; i++) expect(text).toContain(`big/user${i}@example.com\n      email: "big/user${i}@example.com"`);
    expect(text).not.toContain('500 users');
    expect(text).not.toContain('counted, not listed');
  });

  it('names kinds in the plural', () => {
    expect(['User', 'ClientScope', 'RealmRole', 'Namespace', 'Database', 'NetworkPolicy', 'Secret', 'RoleBinding'].map(plural)).toEqual(['users', 'client scopes', 'realm roles', 'namespaces', 'databases', 'network policies', 'secrets', 'role bindings']);
  });

  it('plan on a tenant of 40 users: counted in text, listed with -v, complete in -o json', async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'sp-render-')), 'repo');
    writeRepository(dir, generateRepository({ tenants: 2, users: 40, agents: 2 }));
    const sp = async (...args: string[]) => {
      const io = bufferIo(dir);
      const code = await run(['node', 'systemprompt', ...args, '--offline', '--dir', dir], io);
      return { code, ...io };
    };
    const text = await sp('plan');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ {2}\+ keycloak {3}User +40 users$/m);
    expect(text.stdout).not.toContain('user7@tenant-0001.example.com');
    const verbose = await sp('plan', '-v');
    expect(verbose.stdout).toContain('user7@tenant-0001.example.com');
    const json = JSON.parse((await sp('plan', '-o', 'json')).stdout) as Plan;
    expect(json.changes.filter((c) => c.kind === 'User')).toHaveLength(80);
  });
});
