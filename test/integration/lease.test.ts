import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/errors.js';
import { LeaseConflictError, LeaseLock, LockLostError, kubeLeaseStore, type LeaseEvent, type LeaseStore } from '../../src/reconcile/lease.js';
import { kubeHttp, waitFor } from './helpers.js';

const NAMESPACE = 'kube-system';
const NAME = `systemprompt-lease-test-${randomUUID().slice(0, 8)}`;
const LEASE_PATH = `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${NAME}`;

/** Short timings so a takeover happens within seconds (lease 3 s > renew deadline 2 s > 1.2 × 0.5 s). */
const TIMINGS = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

const store = (): LeaseStore => kubeLeaseStore(kubeHttp(), NAMESPACE, NAME, { 'app.kubernetes.io/part-of': 'systemprompt-tests' });

/** A store whose renewals can be cut off, as if its process lost the network. */
function cuttable(inner: LeaseStore): LeaseStore & { cut: boolean } {
  const s = {
    ...inner,
    cut: false,
    update: async (r: Parameters<LeaseStore['update']>[0]) => {
      if (s.cut) throw Object.assign(new Error('network cut by the test'), { code: 'ECONNRESET' });
      return inner.update(r);
    },
  };
  return s;
}

afterAll(async () => {
  try {
    await kubeHttp().request('DELETE', LEASE_PATH);
  } catch (e) {
    if ((e as { code?: number }).code !== 404) throw e;
  }
});

describe('LeaseLock on the API server', () => {
  it('one lock acquires the Lease; a second is refused, naming the holder', async () => {
    const a = new LeaseLock(store(), TIMINGS);
    const b = new LeaseLock(store(), TIMINGS);
    await a.acquire();
    try {
      const live = await store().get();
      expect(live?.holderIdentity).toBe(a.identity);
      expect(live?.renewTime).toMatch(/\.\d{6}Z$/);
      expect(live?.leaseDurationSeconds).toBe(3);
      const err = await b.acquire().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect((err as Error).message).toContain(a.identity);
      expect(b.held).toBe(false);
    } finally {
      await a.release();
    }
    expect(await store().get()).toBeUndefined();
  });

  it('renews on the current resourceVersion; the server refuses a write or delete on a stale one', async () => {
    const a = new LeaseLock(store(), TIMINGS);
    await a.acquire();
    try {
      const first = await store().get();
      const stale = first!.resourceVersion!;
      await waitFor(async () => ((await store().get())?.resourceVersion !== stale ? true : undefined), {
        timeoutMs: 10_000,
        intervalMs: 100,
        what: 'a renewal of the Lease',
        onTimeout: (w) => new Error(`timed out waiting for ${w}`),
      });
      expect(a.held).toBe(true);
      await expect(store().update({ ...first!, holderIdentity: 'intruder', resourceVersion: stale })).rejects.toBeInstanceOf(LeaseConflictError);
      await expect(store().delete(stale)).rejects.toMatchObject({ name: 'LeaseConflictError', reason: 'Conflict' });
      expect((await store().get())?.holderIdentity).toBe(a.identity);
      a.check();
    } finally {
      await a.release();
    }
    expect(await store().get()).toBeUndefined();
  });

  it('a waiting lock takes over when the holder stops renewing; the old holder stops first and does not delete the new Lease', async () => {
    const aStore = cuttable(store());
    const aEvents: LeaseEvent[] = [];
    const a = new LeaseLock(aStore, { ...TIMINGS, onEvent: (e) => aEvents.push(e) });
    await a.acquire();
    const b = new LeaseLock(store(), TIMINGS);
    const waitedFor: string[] = [];
    try {
      aStore.cut = true;
      await b.acquire({ timeoutMs: 15_000, onWait: (holder) => waitedFor.push(holder) });
      expect(waitedFor.length).toBeGreaterThan(0);
      expect(waitedFor.every((h) => h === a.identity)).toBe(true);
      expect(() => a.check()).toThrow(LockLostError);
      expect(a.signal.aborted).toBe(true);
      expect(b.epoch).toBe(a.epoch! + 1);
      const live = await store().get();
      expect(live).toMatchObject({ holderIdentity: b.identity, leaseTransitions: b.epoch });
      await a.release(); // its delete carries its own, stale, resourceVersion: refused by the server
      expect(aEvents.map((e) => e.type)).toEqual(expect.arrayContaining(['acquired', 'renew-failed', 'lost']));
      expect(aEvents.at(-1)).toEqual({ type: 'released', deleted: false });
      expect((await store().get())?.holderIdentity).toBe(b.identity);
      b.check();
    } finally {
      await a.release();
      await b.release();
    }
    expect(await store().get()).toBeUndefined();
  });
});
