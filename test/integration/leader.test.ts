import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { runLeaderElection } from '../../src/operator/leader.js';
import { LeaseLock, kubeLeaseStore, type LeaseStore } from '../../src/reconcile/lease.js';
import { kubeHttp, waitFor } from './helpers.js';

const NAMESPACE = 'kube-system';
const NAME = `systemprompt-leader-test-${randomUUID().slice(0, 8)}`;
const TIMINGS = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

afterAll(async () => {
  await kubeHttp().request('DELETE', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${NAME}`).catch(() => {});
});

/** One replica: leads while it holds the Lease, recording when. */
function replica(name: string, log: Array<{ who: string; from: number; to?: number }>, storeOf: () => LeaseStore = () => kubeLeaseStore(kubeHttp(), NAMESPACE, NAME)) {
  const stop = new AbortController();
  const done = runLeaderElection({
    newLock: () => new LeaseLock(storeOf(), { ...TIMINGS, identity: `${name}-${randomUUID().slice(0, 6)}` }),
    signal: stop.signal,
    onStartedLeading: async (leading, lock) => {
      const term = { who: name, from: Date.now() } as { who: string; from: number; to?: number };
      log.push(term);
      try {
        while (!leading.aborted) {
          lock.check(); // the work a leader does is fenced by its term's lock
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        term.to = Date.now();
      }
    },
  });
  return { stop: () => stop.abort(), done };
}

describe('leader election on a real Lease', () => {
  it('one of two replicas leads; when it stops, the other takes over; never two at once', async () => {
    const log: Array<{ who: string; from: number; to?: number }> = [];
    const a = replica('a', log);
    await waitFor(async () => (log.length === 1 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50, what: 'a first leader', onTimeout: () => new Error('no leader') });
    const b = replica('b', log);
    const first = log[0]!.who;
    (first === 'a' ? a : b).stop();
    await waitFor(async () => (log.length === 2 ? true : undefined), { timeoutMs: 15_000, intervalMs: 50, what: 'the other replica to lead', onTimeout: () => new Error(`no takeover: ${JSON.stringify(log)}`) });
    expect(log.map((t) => t.who)).toEqual([first, first === 'a' ? 'b' : 'a']);
    // the first term ended before the second began
    expect(log[0]!.to).toBeDefined();
    expect(log[0]!.to!).toBeLessThanOrEqual(log[1]!.from);
    (first === 'a' ? b : a).stop();
    await Promise.all([a.done, b.done]);
    expect(log[1]!.to).toBeDefined();
  });

  it('a leader that can no longer renew stops leading, and the other replica takes over after the lease expires', async () => {
    const log: Array<{ who: string; from: number; to?: number }> = [];
    let cut = false;
    const cuttable = (): LeaseStore => {
      const inner = kubeLeaseStore(kubeHttp(), NAMESPACE, NAME);
      const down = (): Promise<never> => Promise.reject(Object.assign(new Error('network cut by the test'), { code: 'ECONNRESET' }));
      return {
        get: () => (cut ? down() : inner.get()),
        create: (r) => (cut ? down() : inner.create(r)),
        update: (r) => (cut ? down() : inner.update(r)),
        delete: (rv) => (cut ? down() : inner.delete(rv)),
      };
    };
    const a = replica('a', log, cuttable);
    await waitFor(async () => (log.length === 1 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50, what: 'a to lead', onTimeout: () => new Error('no leader') });
    const b = replica('b', log);
    cut = true; // a reaches the API server no more: it must stop leading before b may lead
    await waitFor(async () => (log.some((t) => t.who === 'b') ? true : undefined), { timeoutMs: 20_000, intervalMs: 50, what: 'b to lead', onTimeout: () => new Error(`no takeover: ${JSON.stringify(log)}`) });
    const aTerm = log.find((t) => t.who === 'a')!;
    const bTerm = log.find((t) => t.who === 'b')!;
    expect(aTerm.to).toBeDefined();
    expect(aTerm.to!).toBeLessThanOrEqual(bTerm.from);
    a.stop();
    b.stop();
    await Promise.all([a.done, b.done]);
  });
});
