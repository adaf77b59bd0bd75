import type { LeaseLock } from '../reconcile/lease.js';

export interface LeaderElectionOptions {
  /** A fresh lock for each term (a LeaseLock is used for one term only). */
  newLock: () => LeaseLock;
  /** Ends the election: a leader stops leading and releases its Lease. */
  signal: AbortSignal;
  /**
   * Runs while this process leads; must return once `leading` aborts (the Lease was lost, or the
   * election is over). Everything it writes must be fenced by the term's lock (`lock.check()`).
   */
  onStartedLeading: (leading: AbortSignal, lock: LeaseLock) => Promise<void>;
  onStoppedLeading?: (why: string) => void;
  /** Called while waiting for another leader (holder, time until its Lease expires). */
  onWaiting?: (holder: string, expiresInMs: number) => void;
}

/**
 * Leader election on a Lease, as client-go's leaderelection runs it: candidates wait for the Lease;
 * the holder renews it and leads until it is lost or the election ends, then releases it (only if
 * still its own) and, unless the election is over, becomes a candidate again. Two replicas: one
 * writes, the other waits to take over within one lease duration of the leader's last renewal.
 */
export async function runLeaderElection(opts: LeaderElectionOptions): Promise<void> {
  while (!opts.signal.aborted) {
    const lock = opts.newLock();
    try {
      await lock.acquire({ timeoutMs: Number.POSITIVE_INFINITY, signal: opts.signal, ...(opts.onWaiting ? { onWait: opts.onWaiting } : {}) });
    } catch (e) {
      if (opts.signal.aborted) break;
      throw e;
    }
    const leading = AbortSignal.any([lock.signal, opts.signal]);
    let why = 'the election ended';
    try {
      await opts.onStartedLeading(leading, lock);
      if (lock.signal.aborted) why = String((lock.signal.reason as Error | undefined)?.message ?? 'the lease was lost');
    } catch (e) {
      why = e instanceof Error ? e.message : String(e);
    } finally {
      await lock.release().catch(() => {});
    }
    opts.onStoppedLeading?.(why);
  }
}
