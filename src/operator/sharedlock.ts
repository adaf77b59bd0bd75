import type { RunLock } from '../reconcile/reconcile.js';

interface Held {
  lock: RunLock;
  users: number;
  taken: Promise<void>;
  idle: NodeJS.Timeout | undefined;
}

/**
 * The apply lock shared by the operator's concurrent per-tenant reconciles: the first run takes the
 * Lease, the runs that start while it is held share it, and it is released once no run has used
 * it for `idleMs` (so a busy operator does not take and release the Lease for each tenant, and an
 * idle one leaves it free for an `apply` from a laptop). A lost Lease fails every run that shares
 * it; the next run takes a fresh one.
 */
export class SharedLock {
  private held: Held | undefined;

  constructor(
    private readonly newLock: () => RunLock,
    private readonly idleMs = 2_000,
  ) {}

  /** A RunLock for one reconcile. */
  forRun(): RunLock {
    let mine: Held | undefined;
    const current = (): RunLock => {
      if (!mine) throw new Error('the shared lock was not acquired');
      return mine.lock;
    };
    return {
      acquire: async (opts) => {
        mine = await this.take(opts);
      },
      check: () => current().check(),
      get signal() {
        return current().signal;
      },
      release: async () => {
        if (mine) this.put(mine);
        mine = undefined;
      },
    };
  }

  /** Release the Lease now (the operator stops leading). */
  async close(): Promise<void> {
    const h = this.held;
    this.held = undefined;
    if (h?.idle) clearTimeout(h.idle);
    await h?.lock.release().catch(() => {});
  }

  private async take(opts: Parameters<RunLock['acquire']>[0]): Promise<Held> {
    let h = this.held;
    if (!h || h.lock.signal.aborted) {
      const lock = this.newLock();
      const created: Held = { lock, users: 0, taken: lock.acquire(opts), idle: undefined };
      this.held = h = created;
      created.taken.catch(() => {
        if (this.held === created) this.held = undefined;
      });
    }
    h.users++;
    if (h.idle) clearTimeout(h.idle);
    h.idle = undefined;
    try {
      await h.taken;
    } catch (e) {
      h.users--;
      throw e;
    }
    return h;
  }

  private put(h: Held): void {
    h.users--;
    if (h.users > 0) return;
    if (this.held !== h) {
      void h.lock.release().catch(() => {});
      return;
    }
    h.idle = setTimeout(() => {
      if (this.held !== h || h.users > 0) return;
      this.held = undefined;
      void h.lock.release().catch(() => {});
    }, this.idleMs);
    h.idle.unref();
  }
}
