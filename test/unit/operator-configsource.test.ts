import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CONFIG_SOURCE_LABEL,
  configSourceStatus,
  conflicts,
  fetchRevision,
  parseInterval,
  pathPrefix,
  readFilesAt,
  redactUrl,
  toPrune,
  wantedRef,
  type ConfigSource,
  type ConfigSourceStatus,
} from '../../src/operator/configsource.js';
import type { CustomResource } from '../../src/operator/resources.js';

const cs = (status?: Partial<ConfigSourceStatus>, generation = 1): ConfigSource => ({
  metadata: { name: 'main', namespace: 'platform', uid: 'u1', generation },
  spec: { git: { url: 'file:///repo.git', ref: { branch: 'main' } } },
  ...(status ? { status: status as Record<string, unknown> } : {}),
});
const now = new Date('2026-01-02T03:04:05.678Z');
const cond = (s: ConfigSourceStatus | undefined, type: string) => s?.conditions.find((c) => c.type === type);

describe('ConfigSource: interval', () => {
  it('parses 30s, 1m, 5m, 1h30m and 500ms; defaults to 1m; never below 1s', () => {
    expect(parseInterval('30s')).toBe(30_000);
    expect(parseInterval('1m')).toBe(60_000);
    expect(parseInterval('5m')).toBe(300_000);
    expect(parseInterval('1h30m')).toBe(5_400_000);
    expect(parseInterval('2.5s')).toBe(2500);
    expect(parseInterval('500ms')).toBe(1000);
    expect(parseInterval(undefined)).toBe(60_000);
    expect(parseInterval('')).toBe(60_000);
    expect(parseInterval('soon')).toBe(60_000);
    expect(parseInterval('5m later')).toBe(60_000);
  });
});

describe('ConfigSource: ref, path and URL', () => {
  it('resolves commit, tag, branch, else the remote HEAD', () => {
    expect(wantedRef({ git: { url: 'x', ref: { commit: 'a'.repeat(40) } } })).toEqual({ kind: 'commit', value: 'a'.repeat(40) });
    expect(wantedRef({ git: { url: 'x', ref: { tag: 'v1' } } })).toEqual({ kind: 'tag', value: 'v1' });
    expect(wantedRef({ git: { url: 'x', ref: { branch: 'main' } } })).toEqual({ kind: 'branch', value: 'main' });
    expect(wantedRef({ git: { url: 'x' } })).toEqual({ kind: 'head', value: 'HEAD' });
  });

  it('turns spec.git.path into a tree prefix and refuses one that leaves the repository', () => {
    expect(pathPrefix(undefined)).toBe('');
    expect(pathPrefix('.')).toBe('');
    expect(pathPrefix('./config/')).toBe('config/');
    expect(pathPrefix('a/b')).toBe('a/b/');
    expect(pathPrefix('a/../..')).toBeUndefined();
  });

  it('never shows the user or password of a URL', () => {
    expect(redactUrl('fatal: https://bot:s3cret@git.example/x.git not found')).toBe('fatal: https://***@git.example/x.git not found');
    expect(redactUrl('ssh://git@host/x')).toBe('ssh://***@host/x');
  });
});

describe('ConfigSource: pruning and conflicts', () => {
  const obj = (kind: string, name: string, source?: string): CustomResource => ({ kind, metadata: { name, ...(source ? { labels: { [CONFIG_SOURCE_LABEL]: source } } : {}) } as CustomResource['metadata'] });
  const existing = [obj('Tenant', 'a', 'main'), obj('Tenant', 'b', 'main'), obj('Agent', 'b', 'main'), obj('Tenant', 'c', 'other'), obj('Tenant', 'd')];
  const rendered = new Set(['Tenant/a', 'Agent/b', 'Tenant/d']);

  it('prunes only objects of this ConfigSource that are no longer rendered', () => {
    expect(toPrune(existing, 'main', rendered).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Tenant/b']);
    expect(toPrune(existing, 'main', new Set()).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Tenant/a', 'Tenant/b', 'Agent/b']);
  });

  it('does not take over a same-named object it did not make', () => {
    expect(conflicts(existing, 'main', rendered).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Tenant/d']);
    expect(conflicts(existing, 'other', new Set(['Tenant/c']))).toEqual([]);
  });
});

describe('ConfigSource: status', () => {
  it('applied: Ready, not Stalled, both revisions, the plan and observedGeneration', () => {
    const s = configSourceStatus(cs(undefined, 3), { kind: 'applied', revision: 'abc', plan: { create: 1, update: 0, delete: 0 }, warnings: [] }, now)!;
    expect(s).toMatchObject({ observedGeneration: 3, lastAttemptedRevision: 'abc', lastAppliedRevision: 'abc', plan: { create: 1, update: 0, delete: 0 }, diagnostics: [] });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'Applied', observedGeneration: 3, lastTransitionTime: '2026-01-02T03:04:05Z' });
    expect(cond(s, 'Stalled')?.status).toBe('False');
    expect(cond(s, 'Reconciling')?.status).toBe('False');
  });

  it('keeps diagnostics for a revision that does not validate: an applied one\'s warnings are in the Ready message', () => {
    const s = configSourceStatus(cs(), { kind: 'applied', revision: 'abc', plan: { create: 0, update: 0, delete: 0 }, warnings: ['systemprompt.yaml:2:3: SP035: no file'] }, now)!;
    expect(s.diagnostics).toEqual([]);
    expect(cond(s, 'Ready')?.message).toBe('revision abc applied; warnings: systemprompt.yaml:2:3: SP035: no file');
  });

  it('is undefined when nothing changed (an idle operator writes nothing); a no-op sync keeps the plan of its revision', () => {
    const first = configSourceStatus(cs(), { kind: 'applied', revision: 'abc', plan: { create: 2, update: 0, delete: 0 }, warnings: [] }, now)!;
    expect(configSourceStatus(cs(first), { kind: 'applied', revision: 'abc', plan: { create: 0, update: 0, delete: 0 }, warnings: [] }, new Date())).toBeUndefined();
  });

  it('invalid: Stalled InvalidConfiguration with the diagnostics; lastAppliedRevision stays', () => {
    const applied = configSourceStatus(cs(), { kind: 'applied', revision: 'good', plan: { create: 1, update: 0, delete: 0 }, warnings: [] }, now)!;
    const s = configSourceStatus(cs(applied), { kind: 'invalid', revision: 'bad', diagnostics: ['tenants/a.yaml:3:7: SP001: unexpected end'] }, now)!;
    expect(s).toMatchObject({ lastAttemptedRevision: 'bad', lastAppliedRevision: 'good', diagnostics: ['tenants/a.yaml:3:7: SP001: unexpected end'] });
    expect(cond(s, 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidConfiguration' });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidConfiguration' });
    // The fix recovers.
    const fixed = configSourceStatus(cs(s), { kind: 'applied', revision: 'fixed', plan: { create: 0, update: 1, delete: 0 }, warnings: [] }, now)!;
    expect(fixed).toMatchObject({ lastAttemptedRevision: 'fixed', lastAppliedRevision: 'fixed', diagnostics: [] });
    expect(cond(fixed, 'Stalled')?.status).toBe('False');
  });

  it('a fetch failure is not Stalled (it retries); a stalled secretRef is', () => {
    const f = configSourceStatus(cs(), { kind: 'failed', reason: 'FetchFailed', message: 'git fetch: no route' }, now)!;
    expect(cond(f, 'Ready')).toMatchObject({ status: 'False', reason: 'FetchFailed', message: 'git fetch: no route' });
    expect(cond(f, 'Stalled')?.status).toBe('False');
    expect(f.lastAttemptedRevision).toBeUndefined();
    const s = configSourceStatus(cs(), { kind: 'stalled', reason: 'SecretNotFound', message: 'Secret platform/git-creds (spec.git.secretRef) not found' }, now)!;
    expect(cond(s, 'Stalled')).toMatchObject({ status: 'True', reason: 'SecretNotFound' });
  });
});

describe('ConfigSource: git', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sp-cs-unit-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const git = (cwd: string, ...args: string[]): string => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd, encoding: 'utf8', stdio: 'pipe' }).trim();

  it('fetches a branch, a tag and a commit of a file:// repository and reads the config files under spec.git.path', async () => {
    const origin = path.join(root, 'origin.git');
    const work = path.join(root, 'work');
    git(root, 'init', '--quiet', '--bare', '--initial-branch=main', origin);
    git(root, 'clone', '--quiet', origin, work);
    mkdirSync(path.join(work, 'cfg/tenants'), { recursive: true });
    writeFileSync(path.join(work, 'cfg/systemprompt.yaml'), 'tenancy:\n  enabled: true\n');
    writeFileSync(path.join(work, 'cfg/tenants/a.yaml'), 'name: a\n');
    writeFileSync(path.join(work, 'cfg/README.md'), 'not config\n');
    writeFileSync(path.join(work, 'other.yaml'), 'x: 1\n');
    git(work, 'add', '.');
    git(work, 'commit', '--quiet', '-m', 'one');
    git(work, 'tag', 'v1');
    git(work, 'push', '--quiet', 'origin', 'main', 'v1');
    const c1 = git(work, 'rev-parse', 'HEAD');
    writeFileSync(path.join(work, 'cfg/tenants/b.yaml'), 'name: b\n');
    git(work, 'add', '.');
    git(work, 'commit', '--quiet', '-m', 'two');
    git(work, 'push', '--quiet', 'origin', 'main');
    const c2 = git(work, 'rev-parse', 'HEAD');

    const cache = path.join(root, 'cache');
    mkdirSync(cache);
    const source = (ref?: Record<string, string>): ConfigSource => ({ metadata: { name: 'cs', namespace: 'ns' }, spec: { git: { url: `file://${origin}`, ...(ref ? { ref } : {}), path: 'cfg' } } });
    expect(await fetchRevision(cache, source({ branch: 'main' }))).toBe(c2);
    expect(await fetchRevision(cache, source({ tag: 'v1' }))).toBe(c1);
    expect(await fetchRevision(cache, source({ commit: c1 }))).toBe(c1);
    expect(await fetchRevision(cache, source())).toBe(c2);
    await expect(fetchRevision(cache, source({ branch: 'nope' }))).rejects.toThrow(/branch nope not found/);

    const files = await readFilesAt(cache, source({ branch: 'main' }), c2, 'cfg/');
    expect([...files.keys()].sort()).toEqual(['systemprompt.yaml', 'tenants/a.yaml', 'tenants/b.yaml']);
    expect(new TextDecoder().decode(files.get('tenants/b.yaml'))).toBe('name: b\n');
    expect([...(await readFilesAt(cache, source({ tag: 'v1' }), c1, 'cfg/')).keys()].sort()).toEqual(['systemprompt.yaml', 'tenants/a.yaml']);
  });
});
