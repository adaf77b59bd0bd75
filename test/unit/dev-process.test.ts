import { describe, expect, it } from 'vitest';
import { cmdlineOf, isAlive, isOurProcess, spawnDetached, statState, stopGroup, waitFor } from '../../src/dev/process.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('statState', () => {
  it('reads the state after a command name with spaces and parentheses', () => {
    expect(statState('123 (a (b) c) S 1 123 123 0')).toBe('S');
    expect(statState('9 (kc.sh) Z 1')).toBe('Z');
    expect(statState('garbage')).toBeUndefined();
  });
});

describe('waitFor', () => {
  it('returns the first defined value', async () => {
    let n = 0;
    expect(await waitFor(async () => (++n >= 3 ? n : undefined), { timeoutMs: 5000, intervalMs: 1, what: 'x', onTimeout: () => new Error('t') })).toBe(3);
  });
  it('throws the given error after the timeout', async () => {
    await expect(waitFor(async () => undefined, { timeoutMs: 30, intervalMs: 5, what: 'thing', onTimeout: (w) => new Error(`${w} timed out`) })).rejects.toThrow('thing timed out');
  });
});

describe('detached processes', () => {
  it('are recognised by their command line and stopped as a group', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-proc-'));
    const marker = join(dir, 'marker');
    // a shell with a child: both must go
    const pid = await spawnDetached({ command: 'sh', args: ['-c', 'sleep 300 & wait', marker], logFile: join(dir, 'log') });
    expect(await isAlive(pid)).toBe(true);
    expect((await cmdlineOf(pid))?.join(' ')).toContain(marker);
    expect(await isOurProcess(pid, [marker])).toBe(true);
    expect(await isOurProcess(pid, ['/not/ours'])).toBe(false);
    expect(await stopGroup(pid, 5000)).toBe('stopped');
    expect(await isOurProcess(pid, [marker])).toBe(false);
    expect(await stopGroup(pid, 5000)).toBe('not-running');
  });
});
