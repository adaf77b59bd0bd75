import { describe, expect, it } from 'vitest';
import { ConflictError, TargetError, UsageError } from '../../src/errors.js';
import { LeaseConflictError, LeaseLock, LockLostError, kubeLeaseStore, microTime, type LeaseEvent, type LeaseLockOptions, type LeaseRecord, type LeaseStore } from '../../src/reconcile/lease.js';
import { KubeHttpError } from '../../src/targets/kube-http.js';

/** Let promise chains and awaited fake requests run to completion. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A clock the test moves: `sleep` resolves only when `advance` passes its deadline; `pause` moves time without running anything. */
class FakeClock {
  t = Date.parse('2026-11-29T10:00:00.000Z');
  private waiters: { at: number; resolve: () => void }[] = [];
  readonly now = (): number => this.t;
  readonly sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const onAbort = () => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve();
      };
      const w = {
        at: this.t + ms,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.waiters.push(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  /** Time passes with timers firing in order, as in a running process. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      const due = this.waiters.filter((w) => w.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      this.waiters = this.waiters.filter((w) => w !== due);
      due.resolve();
      await settle();
    }
    this.t = end;
    await settle();
  }
  /** Time passes while the process is stopped (SIGSTOP): no timer has run yet. */
  pause(ms: number): void {
    this.t += ms;
  }
  get pending(): number {
    return this.waiters.length;
  }
}

type Op = 'get' | 'create' | 'update' | 'delete';

/** The API server's Lease semantics in memory: resourceVersion moves on every write; 409 on a stale one or a second create. */
class FakeLeaseStore {
  record: LeaseRecord | undefined;
  private rv = 100;
  readonly log: { op: Op; by: string; rv?: string; record?: LeaseRecord }[] = [];
  /** Per-view failure switch: views whose name is listed get a connection reset. */
  readonly down = new Set<string>();

  view(by: string): LeaseStore {
    const fail = (op: Op) => {
      this.log.push({ op, by });
      if (this.down.has(by)) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    };
    return {
      name: 'kube-system/test',
      get: async () => {
        fail('get');
        return this.record && { ...this.record };
      },
      create: async (r) => {
        fail('create');
        if (this.record) throw new LeaseConflictError('exists', { reason: 'AlreadyExists' });
        this.record = { ...r, resourceVersion: String(++this.rv) };
        this.log.at(-1)!.record = { ...this.record };
        return { ...this.record };
      },
      update: async (r) => {
        fail('update');
        this.log.at(-1)!.rv = r.resourceVersion;
        if (!this.record || this.record.resourceVersion !== r.resourceVersion) throw new LeaseConflictError('modified', { reason: 'Conflict' });
        this.record = { ...r, resourceVersion: String(++this.rv) };
        this.log.at(-1)!.record = { ...this.record };
        return { ...this.record };
      },
      delete: async (rv) => {
        fail('delete');
        this.log.at(-1)!.rv = rv;
        if (!this.record) return;
        if (this.record.resourceVersion !== rv) throw new LeaseConflictError('precondition failed', { reason: 'Conflict' });
        this.record = undefined;
      },
    };
  }

  /** Another process writes the Lease behind our back. */
  overwrite(r: LeaseRecord): void {
    this.record = { ...r, resourceVersion: String(++this.rv) };
  }

  count(op: Op, by?: string): number {
    return this.log.filter((l) => l.op === op && (by === undefined || l.by === by)).length;
  }
}

function setup() {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const events: Record<string, LeaseEvent[]> = {};
  const lock = (name: string, opts: LeaseLockOptions = {}) => {
    events[name] = [];
    return new LeaseLock(store.view(name), { identity: name, now: clock.now, sleep: clock.sleep, onEvent: (e) => events[name]!.push(e), ...opts });
  };
  return { clock, store, events, lock };
}

describe('LeaseLock', () => {
  it('acquires a free lease: creates it with its identity, MicroTimes and epoch 0', async () => {
    const { store, lock } = setup();
    const a = lock('a');
    await a.acquire();
    expect(a.held).toBe(true);
    expect(a.epoch).toBe(0);
    expect(() => a.check()).not.toThrow();
    expect(store.record).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0, renewTime: '2026-11-29T10:00:00.000000Z', acquireTime: '2026-11-29T10:00:00.000000Z' });
    expect(a.signal.aborted).toBe(false);
    await a.release();
  });

  it('refuses a second locker at once (timeout 0), naming the holder and when the lease expires', async () => {
    const { store, lock } = setup();
    const a = lock('a');
    await a.acquire();
    const b = lock('b');
    const err = await b.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toContain('held by a');
    expect((err as Error).message).toContain('expires in 15 s (at 2026-11-29T10:00:15.000Z)');
    expect(b.held).toBe(false);
    expect(() => b.check()).toThrow(LockLostError);
    expect(store.record?.holderIdentity).toBe('a');
    expect(store.count('update', 'b')).toBe(0);
    await a.release();
  });

  it('a waiting locker takes over once the holder stops renewing, after the holder has stopped writing', async () => {
    const { clock, store, events, lock } = setup();
    const a = lock('a');
    await a.acquire();
    store.down.add('a'); // a can no longer reach the API server
    const b = lock('b');
    const waits: [string, number][] = [];
    let acquired = false;
    const pending = b.acquire({ timeoutMs: 60_000, onWait: (h, ms) => waits.push([h, ms]) }).then(() => (acquired = true));
    await clock.advance(10_000);
    expect(a.held).toBe(false); // renew deadline: a stops first
    expect(acquired).toBe(false);
    await clock.advance(4_000);
    expect(acquired).toBe(false); // 14 s: the lease has not expired yet
    await clock.advance(2_000);
    await pending;
    expect(acquired).toBe(true);
    expect(b.epoch).toBe(1);
    expect(store.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(waits[0]).toEqual(['a', 15_000]);
    expect(waits.every(([h]) => h === 'a')).toBe(true);
    expect(events.b).toContainEqual({ type: 'acquired', epoch: 1, previousHolder: 'a' });
    expect(events.a!.filter((e) => e.type === 'renew-failed').length).toBeGreaterThan(0);
    await b.release();
    await a.release();
  });

  it('takes over at once a lease whose renewTime + duration has passed', async () => {
    const { clock, store, lock } = setup();
    const old = microTime(clock.t - 20_000);
    store.overwrite({ holderIdentity: 'crashed', leaseDurationSeconds: 15, acquireTime: old, renewTime: old, leaseTransitions: 4 });
    const b = lock('b');
    await b.acquire();
    expect(b.epoch).toBe(5);
    expect(store.record?.holderIdentity).toBe('b');
    await b.release();
  });

  it('times expiry from its own first sight of the record, so a holder clock running ahead cannot block it', async () => {
    const { clock, store, lock } = setup();
    const ahead = microTime(clock.t + 3_600_000);
    store.overwrite({ holderIdentity: 'skewed', leaseDurationSeconds: 15, renewTime: ahead, leaseTransitions: 0 });
    const b = lock('b');
    let acquired = false;
    const pending = b.acquire({ timeoutMs: 60_000 }).then(() => (acquired = true));
    await clock.advance(14_000);
    expect(acquired).toBe(false);
    await clock.advance(2_000);
    await pending;
    expect(store.record?.holderIdentity).toBe('b');
    await b.release();
  });

  it('an empty holderIdentity (released) is free', async () => {
    const { clock, store, lock } = setup();
    store.overwrite({ holderIdentity: '', leaseDurationSeconds: 15, renewTime: microTime(clock.t), leaseTransitions: 2 });
    const b = lock('b');
    await b.acquire();
    expect(b.held).toBe(true);
    expect(b.epoch).toBe(3);
    await b.release();
  });

  it('a takeover that loses the race (409) goes on waiting, then fails naming the winner', async () => {
    const { clock, store, lock } = setup();
    const old = microTime(clock.t - 20_000);
    store.overwrite({ holderIdentity: 'crashed', leaseDurationSeconds: 15, renewTime: old, leaseTransitions: 0 });
    const inner = store.view('b');
    // c's takeover lands between b's read and b's PUT.
    const racing: LeaseStore = {
      ...inner,
      update: async (r) => {
        store.overwrite({ holderIdentity: 'c', leaseDurationSeconds: 15, renewTime: microTime(clock.t), leaseTransitions: 1 });
        return inner.update(r);
      },
    };
    const b = new LeaseLock(racing, { identity: 'b', now: clock.now, sleep: clock.sleep });
    const err = await b.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toContain('held by c');
    expect(store.record?.holderIdentity).toBe('c');
  });

  it('renewing keeps the lock: a PUT on the last resourceVersion every retry period', async () => {
    const { clock, store, lock } = setup();
    const a = lock('a');
    await a.acquire();
    await clock.advance(60_000);
    expect(a.held).toBe(true);
    expect(() => a.check()).not.toThrow();
    const renewals = store.log.filter((l) => l.op === 'update' && l.by === 'a');
    expect(renewals.length).toBe(30);
    for (let i = 1; i < renewals.length; i++) expect(renewals[i]!.rv).toBe(renewals[i - 1]!.record!.resourceVersion);
    expect(store.record?.renewTime).toBe(microTime(clock.t));
    await expect(lock('b').acquire()).rejects.toThrow(/held by a/);
    await a.release();
  });

  it('renew failures are reported and retried; past the renew deadline the lock is lost', async () => {
    const { clock, store, events, lock } = setup();
    const a = lock('a');
    await a.acquire();
    await clock.advance(4_000); // two good renewals, the last at t+4 s
    store.down.add('a');
    await clock.advance(4_000);
    expect(a.held).toBe(true);
    const failures = events.a!.filter((e) => e.type === 'renew-failed');
    expect(failures).toHaveLength(2);
    expect((failures[0] as { error: Error }).error.message).toBe('socket hang up');
    await clock.advance(6_000); // t+14 s: 10 s since the last good renewal
    expect(a.held).toBe(false);
    expect(a.signal.aborted).toBe(true);
    expect(a.signal.reason).toBeInstanceOf(LockLostError);
    expect((a.signal.reason as LockLostError).reason).toBe('renew-deadline');
    expect(() => a.check()).toThrow(/not renewed for 10 s/);
    expect(events.a!.filter((e) => e.type === 'lost')).toHaveLength(1);
    const tries = store.count('update', 'a');
    await clock.advance(20_000);
    expect(store.count('update', 'a')).toBe(tries); // renewing stopped
    expect(clock.pending).toBe(0);
  });

  it('a renewal that finds another holder loses the lock at once', async () => {
    const { clock, store, lock } = setup();
    const a = lock('a');
    await a.acquire();
    store.overwrite({ holderIdentity: 'intruder', leaseDurationSeconds: 15, renewTime: microTime(clock.t), leaseTransitions: 1 });
    await clock.advance(2_000);
    expect(a.held).toBe(false);
    const reason = a.signal.reason as LockLostError;
    expect(reason).toBeInstanceOf(LockLostError);
    expect(reason.reason).toBe('taken-over');
    expect(reason.holder).toBe('intruder');
    expect(() => a.check()).toThrow(/now held by intruder/);
    await a.release();
    expect(store.count('delete', 'a')).toBe(0);
    expect(store.record?.holderIdentity).toBe('intruder');
  });

  it('a renewal whose answer was lost carries on from the version it wrote', async () => {
    const { clock, store, lock } = setup();
    const inner = store.view('a');
    let drop = false;
    const lossy: LeaseStore = {
      ...inner,
      update: async (r) => {
        const rec = await inner.update(r);
        if (drop) {
          drop = false;
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        }
        return rec;
      },
    };
    const a = new LeaseLock(lossy, { identity: 'a', now: clock.now, sleep: clock.sleep });
    await a.acquire();
    drop = true;
    await clock.advance(2_000); // written, but the answer never came
    await clock.advance(2_000); // 409 on the old version, a read shows it is ours
    await clock.advance(2_000); // renewed on the version the read showed
    expect(a.held).toBe(true);
    expect(store.record?.renewTime).toBe(microTime(clock.t));
    await a.release();
    expect(store.record).toBeUndefined();
  });

  it('a paused holder fails check() at once: the clock passed the renew deadline, no timer has run', async () => {
    const { clock, lock } = setup();
    const a = lock('a');
    await a.acquire();
    clock.pause(9_999);
    expect(() => a.check()).not.toThrow();
    clock.pause(2);
    expect(() => a.check()).toThrow(LockLostError);
    expect(a.held).toBe(false);
    expect(a.signal.aborted).toBe(true);
    await a.release();
  });

  it('release deletes with a precondition on its resourceVersion, once', async () => {
    const { clock, store, events, lock } = setup();
    const a = lock('a');
    await a.acquire();
    await clock.advance(2_000);
    const rv = store.record!.resourceVersion;
    await Promise.all([a.release(), a.release()]);
    await a.release();
    expect(store.record).toBeUndefined();
    expect(store.log.filter((l) => l.op === 'delete')).toEqual([{ op: 'delete', by: 'a', rv }]);
    expect(events.a).toContainEqual({ type: 'released', deleted: true });
    expect(a.held).toBe(false);
    expect(a.signal.aborted).toBe(true);
    expect((a.signal.reason as LockLostError).reason).toBe('released');
    expect(() => a.check()).toThrow(LockLostError);
    expect(clock.pending).toBe(0);
    await expect(a.acquire()).rejects.toThrow(UsageError);
  });

  it('release does not delete a lease another holder took after it was lost', async () => {
    const { clock, store, events, lock } = setup();
    const a = lock('a');
    await a.acquire();
    store.down.add('a');
    const b = lock('b');
    const pending = b.acquire({ timeoutMs: 30_000 });
    await clock.advance(16_000);
    await pending;
    expect(a.held).toBe(false);
    store.down.delete('a');
    await a.release();
    const del = store.log.filter((l) => l.op === 'delete');
    expect(del).toHaveLength(1); // tried with its own, now stale, resourceVersion: refused
    expect(del[0]!.rv).not.toBe(store.record!.resourceVersion);
    expect(store.record?.holderIdentity).toBe('b');
    expect(events.a).toContainEqual({ type: 'released', deleted: false });
    expect(b.held).toBe(true);
    await b.release();
  });

  it('acquire stops waiting when its signal aborts', async () => {
    const { clock, lock } = setup();
    const a = lock('a');
    await a.acquire();
    const ac = new AbortController();
    const pending = lock('b').acquire({ timeoutMs: 60_000, signal: ac.signal }).catch((e: unknown) => e);
    await clock.advance(2_000);
    ac.abort(new Error('user pressed ^C'));
    expect(await pending).toEqual(new Error('user pressed ^C'));
    await a.release();
  });

  it('gives two locks in one process different identities by default', () => {
    const store = new FakeLeaseStore();
    const one = new LeaseLock(store.view('x'));
    const two = new LeaseLock(store.view('x'));
    expect(one.identity).not.toBe(two.identity);
    expect(one.identity).toContain(`pid ${process.pid}`);
  });

  it('rejects timings client-go rejects: lease > renew deadline > 1.2 × retry period', () => {
    const store = new FakeLeaseStore().view('x');
    expect(() => new LeaseLock(store, { leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(UsageError);
    expect(() => new LeaseLock(store, { renewDeadlineMs: 2_400, retryPeriodMs: 2_000 })).toThrow(UsageError);
    expect(() => new LeaseLock(store, { retryPeriodMs: 0 })).toThrow(UsageError);
    expect(() => new LeaseLock(store, { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 })).not.toThrow();
  });
});

describe('kubeLeaseStore', () => {
  type Call = { method: string; path: string; body?: unknown };
  function fakeHttp(answer: (c: Call) => unknown) {
    const calls: Call[] = [];
    return {
      calls,
      http: {
        request: async <T>(method: string, path: string, opts: { body?: unknown } = {}): Promise<T> => {
          const c: Call = { method, path, ...(opts.body === undefined ? {} : { body: opts.body }) };
          calls.push(c);
          return answer(c) as T;
        },
      },
    };
  }
  const lease = (rv: string, spec: Record<string, unknown>) => ({ metadata: { name: 'l', namespace: 'ns', resourceVersion: rv }, spec });

  it('creates, replaces and deletes with plain JSON: MicroTimes, the resourceVersion, a delete precondition', async () => {
    const { calls, http } = fakeHttp((c) => (c.method === 'DELETE' ? { kind: 'Status' } : lease('7', { holderIdentity: 'me', renewTime: '2026-11-29T10:00:00.123000Z', leaseTransitions: 1 })));
    const store = kubeLeaseStore(http, 'ns', 'l', { 'app.kubernetes.io/managed-by': 'systemprompt' });
    const rec = await store.create({ holderIdentity: 'me', leaseDurationSeconds: 15, renewTime: '2026-11-29T10:00:00.123Z', acquireTime: '2026-11-29T10:00:00.123Z', leaseTransitions: 0 });
    expect(rec).toEqual({ holderIdentity: 'me', renewTime: '2026-11-29T10:00:00.123000Z', leaseTransitions: 1, resourceVersion: '7' });
    await store.update({ ...rec, resourceVersion: '7' });
    await store.delete('8');
    expect(calls[0]).toEqual({
      method: 'POST',
      path: '/apis/coordination.k8s.io/v1/namespaces/ns/leases',
      body: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: 'l', namespace: 'ns', labels: { 'app.kubernetes.io/managed-by': 'systemprompt' } },
        spec: { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: '2026-11-29T10:00:00.123000Z', renewTime: '2026-11-29T10:00:00.123000Z', leaseTransitions: 0 },
      },
    });
    expect(calls[1]).toMatchObject({ method: 'PUT', path: '/apis/coordination.k8s.io/v1/namespaces/ns/leases/l', body: { metadata: { resourceVersion: '7' } } });
    expect(calls[2]).toEqual({ method: 'DELETE', path: '/apis/coordination.k8s.io/v1/namespaces/ns/leases/l', body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: '8' } } });
  });

  it('turns 409 into LeaseConflictError, 404 into absent or done, and other failures into TargetError', async () => {
    const status = (code: number, reason: string) => new KubeHttpError(code, { kind: 'Status', reason, message: `a ${reason}` });
    const conflict = kubeLeaseStore(fakeHttp(() => Promise.reject(status(409, 'AlreadyExists'))).http, 'ns', 'l');
    await expect(conflict.create({ holderIdentity: 'me' })).rejects.toMatchObject({ name: 'LeaseConflictError', reason: 'AlreadyExists' });
    await expect(conflict.update({ holderIdentity: 'me', resourceVersion: '1' })).rejects.toBeInstanceOf(LeaseConflictError);
    await expect(conflict.delete('1')).rejects.toBeInstanceOf(LeaseConflictError);
    const gone = kubeLeaseStore(fakeHttp(() => Promise.reject(status(404, 'NotFound'))).http, 'ns', 'l');
    expect(await gone.get()).toBeUndefined();
    await expect(gone.delete('1')).resolves.toBeUndefined();
    const forbidden = kubeLeaseStore(fakeHttp(() => Promise.reject(status(403, 'Forbidden'))).http, 'ns', 'l');
    await expect(forbidden.get()).rejects.toBeInstanceOf(TargetError);
  });

  it('formats MicroTime with six fractional digits', () => {
    expect(microTime(Date.parse('2026-11-29T10:00:00.123Z'))).toBe('2026-11-29T10:00:00.123000Z');
    expect(microTime('2026-11-29T10:00:00.123456Z')).toBe('2026-11-29T10:00:00.123000Z');
  });
});
