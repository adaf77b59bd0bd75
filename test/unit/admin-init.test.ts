import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { snapshot, sp, tempDir } from '../helpers/admin.js';

describe('systemprompt init', () => {
  it('creates a valid repository whose schema modelines point at files that exist', async () => {
    const dir = tempDir();
    const r = await sp(dir, 'init', 'config');
    expect(r.code, r.stderr).toBe(0);
    const root = path.join(dir, 'config');
    for (const f of ['systemprompt.yaml', 'tenants/default.yaml', 'services/agents/assistant.yaml']) {
      const first = readFileSync(path.join(root, f), 'utf8').split('\n')[0]!;
      const m = /^# yaml-language-server: \$schema=(.+)$/.exec(first);
      expect(m, f).not.toBeNull();
      const schema = path.resolve(path.dirname(path.join(root, f)), m![1]!);
      expect(existsSync(schema), `${f} -> ${schema}`).toBe(true);
      expect(JSON.parse(readFileSync(schema, 'utf8')).$schema).toContain('2020-12');
    }
    expect(readFileSync(path.join(root, 'tenants/default.yaml'), 'utf8')).toContain('users: []');
    const v = await sp(root, 'validate', '--dir', root);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('valid: 1 tenant, 0 users, 1 agent, 5 scopes');
    const plan = await sp(root, 'plan', '--offline', '--dir', root);
    expect(plan.code, plan.stderr).toBe(0);
  });

  it('refuses to overwrite any existing file, and then writes nothing', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'tenants'));
    writeFileSync(path.join(dir, 'tenants/default.yaml'), 'name: default\n# mine\n');
    const before = snapshot(dir);
    const r = await sp(dir, 'init');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refusing to overwrite existing files in .: tenants/default.yaml');
    expect(snapshot(dir)).toEqual(before);

    const fresh = tempDir();
    expect((await sp(fresh, 'init')).code).toBe(0);
    const once = snapshot(fresh);
    const again = await sp(fresh, 'init');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('systemprompt.yaml, tenants/default.yaml, services/agents/assistant.yaml');
    expect(snapshot(fresh)).toEqual(once);
  });
});
