/**
 * Request rate limits per minute: fixed one-minute windows aligned to the clock (window = floor(now /
 * 60 s)), one counter per key and window. A fixed window can let up to twice the limit through
 * around a window's edge; in exchange `Retry-After` is exact (the window's end), and a shared store
 * implements it with what such stores are made for: `INCR key:window` + `EXPIRE` (or, for several
 * keys at once, a short script that reads every counter and increments them only if all are under
 * their limits), so that several gateway replicas count together: RedisRateLimiter
 * (ratelimit-redis.ts) does that.
 */

export const WINDOW_MS = 60_000;

export interface RateCheck {
  /** e.g. `tenant:acme` or `user:acme:<sub>`; opaque to the limiter. */
  key: string;
  /** Requests allowed per window; 0 allows none. */
  limitPerMinute: number;
}

export interface RateDecision {
  allowed: boolean;
  /** Whole seconds until the window that denied ends (≥ 1 when denied, 0 when allowed). */
  retryAfterSeconds: number;
  /** Requests left in this window after this one, for the tightest of the keys checked (Infinity with none). */
  remaining: number;
  /** The key that denied the request. */
  deniedBy?: string;
  /**
   * Allowed without being counted: the shared store could not be asked (see RedisRateLimiter's
   * failure policy). The memory limiter never sets it.
   */
  unchecked?: true;
}

export interface RateLimiter {
  /** Counts one request against `key` if it is under its limit. */
  hit(key: string, limitPerMinute: number, now: number): Promise<RateDecision>;
  /**
   * Counts one request against every key, atomically: either all are under their limits and all are
   * incremented, or none is (a request the per-user limit refuses does not use the tenant's budget,
   * and the reverse). `now` is milliseconds since the epoch. A limiter that decides in memory
   * answers at once; one that asks a shared store, with a promise.
   */
  hitAll(checks: readonly RateCheck[], now: number): RateDecision | Promise<RateDecision>;
  /** Releases what the limiter holds (a connection); called once the gateway has stopped serving. */
  close?(): Promise<void>;
}

export const windowOf = (now: number): number => Math.floor(now / WINDOW_MS);
/** `Retry-After` for a request denied at `now`: whole seconds until its window ends, at least 1. */
export const secondsLeft = (now: number): number => Math.max(1, Math.ceil(((windowOf(now) + 1) * WINDOW_MS - now) / 1000));

interface Counter {
  window: number;
  count: number;
}

/**
 * One replica's counters, in memory. Memory is bounded: counters of past windows are dropped when a
 * new window starts, and beyond `maxKeys` live counters the one first hit in this window is dropped
 * (that key starts from zero again: it fails open, never closed, for a key it forgot). A hit updates
 * its counter in place: no reordering per request.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly counters = new Map<string, Counter>();
  private sweptWindow = -Infinity;
  private readonly maxKeys: number;

  constructor(opts: { maxKeys?: number } = {}) {
    this.maxKeys = opts.maxKeys ?? 100_000;
  }

  hit(key: string, limitPerMinute: number, now: number): Promise<RateDecision> {
    return Promise.resolve(this.decide([{ key, limitPerMinute }], now));
  }

  hitAll(checks: readonly RateCheck[], now: number): RateDecision {
    return this.decide(checks, now);
  }

  /** Live counters (for tests and metrics). */
  get size(): number {
    return this.counters.size;
  }

  private decide(checks: readonly RateCheck[], now: number): RateDecision {
    const window = windowOf(now);
    this.sweep(window);
    // Live counters of this window (sweep() dropped older windows' unless this one just began): all under their limits?
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      const counter = this.counters.get(c.key);
      const count = counter !== undefined && counter.window === window ? counter.count : 0;
      if (count >= Math.max(0, c.limitPerMinute)) return { allowed: false, retryAfterSeconds: secondsLeft(now), remaining: 0, deniedBy: c.key };
    }
    let remaining = Infinity;
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      let counter = this.counters.get(c.key);
      if (counter !== undefined && counter.window === window) counter.count++;
      else {
        counter = { window, count: 1 };
        // A key of an earlier window is dropped and set again: Map order stays first hit in this window first.
        this.counters.delete(c.key);
        this.counters.set(c.key, counter);
      }
      remaining = Math.min(remaining, c.limitPerMinute - counter.count);
    }
    this.evict();
    return { allowed: true, retryAfterSeconds: 0, remaining };
  }

  /** Once per window: drop every counter of an earlier one. */
  private sweep(window: number): void {
    if (window <= this.sweptWindow) return;
    this.sweptWindow = window;
    for (const [key, counter] of this.counters) if (counter.window < window) this.counters.delete(key);
  }

  private evict(): void {
    while (this.counters.size > this.maxKeys) {
      const oldest = this.counters.keys().next();
      if (oldest.done) return;
      this.counters.delete(oldest.value);
    }
  }
}

/** The request's limits from the tenant's quotas: absent quota keys are no limit. */
export function requestChecks(tenant: string, userId: string, quotas: { requestsPerMinute?: number; requestsPerMinutePerUser?: number }): RateCheck[] {
  const checks: RateCheck[] = [];
  if (quotas.requestsPerMinutePerUser !== undefined) checks.push({ key: `user:${tenant}:${userId}`, limitPerMinute: quotas.requestsPerMinutePerUser });
  if (quotas.requestsPerMinute !== undefined) checks.push({ key: `tenant:${tenant}`, limitPerMinute: quotas.requestsPerMinute });
  return checks;
}
