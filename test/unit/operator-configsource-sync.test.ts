import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { syncConfigSource, type AppliedRevision, type ConfigSource } from '../../src/operator/configsource.js';
import type { CrApi, CustomResource } from '../../src/operator/resources.js';

/**
 * A ConfigSource sync that finds nothing new (same revision, same ConfigSource generation, its
 * objects as it left them) reads no files and writes nothing; a hand edit of one of its objects,
 * or a new commit, makes it apply again. A real git repository on disk; the API server is a fake
 * that keeps the objects and bumps metadata.generation when a spec changes.
 */
function fakeApi() {
  const objects = new Map<string, CustomResource>();
  const writes: string[] = [];
  let rv = 1;
  const api: CrApi = {
    request: async <T,>(method: string, p: string, opts: { body?: unknown } = {}): Promise<T> => {
      const m = /\/namespaces\/([^/]+)\/(tenants|agents|configsources)(?:\/([^/]+))?(\/status)?$/.exec(p);
      if (!m) throw new Error(`unexpected ${method} ${p}`);
      const [, , plural, name, status] = m;
      if (status) return {} as T;
      if (method === 'GET' && !name) return { items: [...objects.values()].filter((o) => o.kind === (plural === 'tenants' ? 'Tenant' : 'Agent')), metadata: {} } as T;
      if (method === 'PATCH') {
        writes.push(`${plural}/${name}`);
        const body = opts.body as CustomResource;
        const key = `${plural}/${name}`;
        const prev = objects.get(key);
        const changed = JSON.stringify(prev?.spec) !== JSON.stringify(body.spec);
        const next: CustomResource = { ...body, metadata: { ...body.metadata, generation: (prev?.metadata.generation ?? 0) + (changed ? 1 : 0), resourceVersion: String(changed ? ++rv : prev!.metadata.resourceVersion) } };
        objects.set(key, next);
        return next as T;
      }
      throw new Error(`unexpected ${method} ${p}`);
    },
  };
  return { api, objects, writes };
}

describe('ConfigSource sync with nothing new', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sp-cs-sync-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const origin = path.join(root, 'origin.git');
  const work = path.join(root, 'work');
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a], { cwd: work, stdio: 'pipe' });
  const commit = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(work, rel)), { recursive: true });
    writeFileSync(path.join(work, rel), text);
    git('add', '.');
    git('commit', '--quiet', '-m', rel);
    git('push', '--quiet', 'origin', 'main');
  };

  it('writes nothing, until an object is edited by hand or a commit arrives', async () => {
    execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', origin]);
    execFileSync('git', ['clone', '--quiet', origin, work], { stdio: 'pipe' });
    git('symbolic-ref', 'HEAD', 'refs/heads/main');
    commit('tenants/acme.yaml', 'name: acme\n');
    const cs: ConfigSource = { metadata: { name: 'main', namespace: 'platform', uid: 'u1', generation: 1 }, spec: { git: { url: `file://${origin}`, ref: { branch: 'main' } } } };
    const f = fakeApi();
    const applied = new Map<string, AppliedRevision>();
    const sync = () => syncConfigSource(cs, { api: f.api, cacheRoot: path.join(root, 'cache'), log: () => {}, applied });

    expect(await sync()).toBe(true);
    expect(f.writes).toEqual(['tenants/acme']);
    expect(await sync()).toBe(false);
    expect(f.writes).toEqual(['tenants/acme']); // the second sync wrote nothing

    // Someone edits the Tenant by hand: its generation moves, and the next sync puts git's spec back.
    const acme = f.objects.get('tenants/acme')!;
    f.objects.set('tenants/acme', { ...acme, spec: { name: 'acme', display_name: 'by hand' }, metadata: { ...acme.metadata, generation: 2 } });
    expect(await sync()).toBe(true);
    expect(f.writes).toEqual(['tenants/acme', 'tenants/acme']);
    expect(f.objects.get('tenants/acme')!.spec).toEqual({ name: 'acme' });
    expect(await sync()).toBe(false);

    // A new commit applies.
    commit('tenants/beta.yaml', 'name: beta\n');
    expect(await sync()).toBe(true);
    expect(f.writes.slice(2).sort()).toEqual(['tenants/acme', 'tenants/beta']);
  });
});
