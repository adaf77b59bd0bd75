import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveSession } from '../../src/commands/session.js';
import { runApplyWatch } from '../../src/commands/watch.js';
import { bufferIo } from '../helpers/io.js';
import { makeRepo, namespaceExists, resetTargets, targetEnv, waitFor } from './helpers.js';

/** `apply --watch`: the second caller of reconcile(), on a real stack. */
describe('apply --watch', () => {
  beforeAll(async () => {
    await resetTargets();
  });
  afterAll(async () => {
    await resetTargets();
  });

  it('applies each saved change, keeps going past an invalid file, and stops on its signal', async () => {
    const dir = makeRepo({ 'tenants/watch-a.yaml': 'name: watch-a\nusers: []\n' });
    const io = bufferIo(dir, targetEnv());
    const session = new LiveSession(io.env, ['kubernetes', 'postgres']);
    const stop = new AbortController();
    const rounds = (state: 'done' | 'failed'): number => (io.stderr.match(new RegExp(`^watch: round \\d+ ${state}`, 'gm')) ?? []).length;
    const until = (what: string, ok: () => boolean): Promise<true> =>
      waitFor(async () => (ok() ? true : undefined), { timeoutMs: 90_000, intervalMs: 100, what, onTimeout: () => new Error(`timed out waiting for ${what}:\n${io.stderr}`) });

    const running = runApplyWatch(io, { dir, allowDestroy: true, output: 'text', concurrency: 4, lockTimeoutMs: 30_000, debounceMs: 300 }, session, stop.signal);
    try {
      await until('the first round', () => rounds('done') >= 1);
      expect(await namespaceExists('tenant-watch-a')).toBe(true);

      writeFileSync(path.join(dir, 'tenants/watch-b.yaml'), 'name: watch-b\nusers: []\n');
      await until('a round for watch-b', () => rounds('done') >= 2);
      expect(await namespaceExists('tenant-watch-b')).toBe(true);

      // A broken file: diagnostics with file:line:col, nothing applied, the watch goes on.
      writeFileSync(path.join(dir, 'tenants/watch-b.yaml'), 'name: watch-b\nusers: [\n');
      await until('the invalid round', () => /the repository is invalid/.test(io.stderr));
      expect(io.stderr).toMatch(/tenants\/watch-b\.yaml:\d+:\d+: error SP/);
      expect(await namespaceExists('tenant-watch-b')).toBe(true);

      writeFileSync(path.join(dir, 'tenants/watch-b.yaml'), 'name: watch-b\nquotas:\n  pods: 7\nusers: []\n');
      await until('the fixing round', () => rounds('done') >= 3);
      expect(io.stdout).toMatch(/\+ kubernetes ResourceQuota\s+tenant-watch-b\/systemprompt-quota/);
    } finally {
      stop.abort();
      expect(await running).toBe(0);
      await session.close();
    }
    expect(io.stderr).toMatch(/watch: stopped after \d+ rounds/);
  });
});
