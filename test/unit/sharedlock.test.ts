import { describe, expect, it, vi } from 'vitest';
import { SharedLock } from '../../src/operator/sharedlock.js';
import type { RunLock } from '../../src/reconcile/reconcile.js';

/** A lock that counts its acquires and releases; `lose()` makes it lost. */
function fakeLock(log: string[], id: number, fail = false): RunLock & { lose(): void } {
  const c = new AbortController();
  return {
    acquire: async () => {
      log.push(`acquire ${id}`);
      if (fail) throw new Error(`lock ${id} is held elsewhere`);
    },
    check: () => {
      if (c.signal.aborted) throw new Error(`lock ${id} lost`);
    },
    get signal() {
      return c.signal;
    },
    release: async () => {
      log.push(`release ${id}`);
      c.abort(new Error('released'));
    },
    lose: () => c.abort(new Error('lost')),
  };
}

describe('SharedLock', () => {
  it('takes the Lease once for runs that overlap, and releases it after the idle time', async () => {
    vi.useFakeTimers();
    try {
      const log: string[] = [];
      let n = 0;
      const shared = new SharedLock(() => fakeLock(log, ++n), 2_000);
      const a = shared.forRun();
      const b = shared.forRun();
      await Promise.all([a.acquire(), b.acquire()]);
      expect(log).toEqual(['acquire 1']);
      a.check();
      await a.release();
      await b.release();
      vi.advanceTimersByTime(1_999);
      expect(log).toEqual(['acquire 1']);
      // A run within the idle time shares it still.
      const c = shared.forRun();
      await c.acquire();
      await c.release();
      vi.advanceTimersByTime(2_000);
      expect(log).toEqual(['acquire 1', 'release 1']);
      const d = shared.forRun();
      await d.acquire();
      expect(log).toEqual(['acquire 1', 'release 1', 'acquire 2']);
      await shared.close();
      expect(log).toEqual(['acquire 1', 'release 1', 'acquire 2', 'release 2']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails the runs sharing a lost Lease; the next run takes a new one', async () => {
    const log: string[] = [];
    const locks: Array<ReturnType<typeof fakeLock>> = [];
    const shared = new SharedLock(() => {
      const l = fakeLock(log, locks.length + 1);
      locks.push(l);
      return l;
    });
    const a = shared.forRun();
    await a.acquire();
    locks[0]!.lose();
    expect(() => a.check()).toThrow('lock 1 lost');
    expect(a.signal.aborted).toBe(true);
    const b = shared.forRun();
    await b.acquire();
    b.check();
    expect(log).toEqual(['acquire 1', 'acquire 2']);
    await a.release();
    expect(log).toContain('release 1');
    await b.release();
    await shared.close();
    expect(log).toContain('release 2');
  });

  it('passes a refused acquire to every waiting run, and tries afresh on the next', async () => {
    const log: string[] = [];
    let n = 0;
    const shared = new SharedLock(() => fakeLock(log, ++n, n === 1));
    const a = shared.forRun();
    const b = shared.forRun();
    const results = await Promise.allSettled([a.acquire(), b.acquire()]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(() => a.check()).toThrow('not acquired');
    const c = shared.forRun();
    await c.acquire();
    expect(log).toEqual(['acquire 1', 'acquire 2']);
    await c.release();
    await shared.close();
  });
});
