import { describe, expect, it } from 'vitest';
import { generateRepository } from '../../bench/compile/generate.js';
import { LoadCache } from '../../src/config/load-cache.js';
import { loadRepository } from '../../src/config/repository.js';

const repoFiles = (): Map<string, string> => generateRepository({ tenants: 20, users: 3, agents: 4 });
const configFiles = (files: Map<string, string>): number => [...files.keys()].length;

describe('LoadCache: files parsed once while unchanged', () => {
  it('a first load parses everything and equals a load without cache', () => {
    const files = repoFiles();
    const cache = new LoadCache();
    const cached = loadRepository(files, { cache });
    expect(cache.stats).toEqual({ parsed: configFiles(files), reused: 0 });
    expect(cached).toEqual(loadRepository(files));
  });

  it('after one file changed, parses that file only and sees the change', () => {
    const files = repoFiles();
    const cache = new LoadCache();
    const first = loadRepository(files, { cache });
    files.set('tenants/tenant-0003.yaml', `${files.get('tenants/tenant-0003.yaml')!}  - email: new@tenant-0003.example.com\n    scopes: [user]\n`);
    const second = loadRepository(files, { cache });
    expect(cache.stats).toEqual({ parsed: configFiles(files) + 1, reused: configFiles(files) - 1 });
    const t3 = second.repo!.tenants.find((t) => t.name === 'tenant-0003')!;
    expect(t3.users.map((u) => u.email)).toContain('new@tenant-0003.example.com');
    // unchanged files are the very same parsed objects
    const t4 = (r: typeof first) => r.repo!.tenants.find((t) => t.name === 'tenant-0004')!;
    expect(t4(second).source).toBe(t4(first).source);
    expect(t3.source).not.toBe(first.repo!.tenants.find((t) => t.name === 'tenant-0003')!.source);
    expect(second).toEqual(loadRepository(files));
  });

  it('drops deleted files, and the cross-file rules still see every file', () => {
    const files = repoFiles();
    const cache = new LoadCache();
    loadRepository(files, { cache });
    const before = cache.size;
    files.delete('tenants/tenant-0005.yaml');
    files.delete('services/agents/agent-003.yaml'); // named by tenants 2, 3, 6, 7...: now an error
    const r = loadRepository(files, { cache });
    expect(cache.size).toBe(before - 2);
    expect(cache.stats.reused).toBe(before - 2);
    expect(r.repo).toBeUndefined();
    expect(r.diagnostics.filter((d) => d.code === 'SP033').map((d) => d.file)).toContain('tenants/tenant-0002.yaml');
    expect(r).toEqual(loadRepository(files));
  });

  it('keeps the diagnostics of an invalid file, and parses it again once fixed', () => {
    const files = repoFiles();
    const cache = new LoadCache();
    const good = files.get('tenants/tenant-0001.yaml')!;
    files.set('tenants/tenant-0001.yaml', good.replace('quotas:', 'quotas:\n  cpuu: 1').replace('display_name', 'display_name: x\ndisplay_name'));
    const bad1 = loadRepository(files, { cache });
    const bad2 = loadRepository(files, { cache });
    expect(bad1.diagnostics.length).toBeGreaterThan(0);
    expect(bad2.diagnostics).toEqual(bad1.diagnostics);
    expect(bad2).toEqual(loadRepository(files));
    files.set('tenants/tenant-0001.yaml', good.replace('quotas:', 'quotas:\n  cpuu: 1'));
    const schemaOnly = loadRepository(files, { cache });
    expect(schemaOnly.diagnostics.map((d) => `${d.file}:${d.line}:${d.col} ${d.code}`)).toEqual(['tenants/tenant-0001.yaml:4:3 SP012']);
    expect(loadRepository(files, { cache }).diagnostics).toEqual(schemaOnly.diagnostics);
    files.set('tenants/tenant-0001.yaml', good);
    expect(loadRepository(files, { cache }).repo).toBeDefined();
    expect(cache.stats.parsed).toBe(configFiles(files) + 2);
  });
});
