import { describe, expect, it } from 'vitest';
import { WorkQueue, type QueueClock } from '../../src/operator/queue.js';

/** A clock whose time moves only when the test says so. */
function manualClock(): QueueClock & { advance(ms: number): void } {
  let now = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let next = 1;
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      timers.set(next, { at: now + ms, fn });
      return next++;
    },
    clearTimeout: (h) => void timers.delete(h as number),
    advance(ms) {
      now += ms;
      for (const [id, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) {
          timers.delete(id);
          t.fn();
        }
      }
    },
  };
}

describe('operator work queue', () => {
  it('queues a key once however often it is added, in arrival order', async () => {
    const q = new WorkQueue();
    for (const k of ['a', 'b', 'a', 'c', 'b']) q.add(k);
    expect(q.depth).toBe(3);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['a', 'b', 'c']);
  });

  it('never hands one key to two workers: added while processing, it comes back after done', async () => {
    const q = new WorkQueue();
    q.add('t');
    const k = await q.get();
    q.add('t');
    q.add('t');
    expect(q.depth).toBe(0);
    let second: string | undefined;
    void q.get().then((x) => (second = x));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(k!);
    await Promise.resolve();
    expect(second).toBe('t');
  });

  it('backs off per key exponentially, capped, and forget starts over', () => {
    const clock = manualClock();
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000, clock });
    expect([1, 2, 3, 4, 5, 6].map(() => q.addRateLimited('x'))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(q.retries('x')).toBe(6);
    expect(q.addRateLimited('y')).toBe(100); // another key has its own backoff
    q.forget('x');
    expect(q.addRateLimited('x')).toBe(100);
  });

  it('delays a key, keeps the earliest of two delays, and queues it when the time comes', () => {
    const clock = manualClock();
    const q = new WorkQueue({ clock });
    q.addAfter('r', 5000);
    q.addAfter('r', 9000);
    clock.advance(4999);
    expect(q.depth).toBe(0);
    clock.advance(1);
    expect(q.depth).toBe(1);
    clock.advance(10_000);
    expect(q.depth).toBe(1); // the later delay was dropped, not queued twice
  });

  it('shuts down: waiting workers get undefined, pending delays are dropped', async () => {
    const clock = manualClock();
    const q = new WorkQueue({ clock });
    const waiting = q.get();
    q.addAfter('z', 100);
    q.shutDown();
    expect(await waiting).toBeUndefined();
    clock.advance(1000);
    expect(q.depth).toBe(0);
    q.add('late');
    expect(await q.get()).toBeUndefined();
  });
});
