import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter, requestChecks, WINDOW_MS } from '../../src/gateway/ratelimit.js';

/** 20 s into a window. */
const T0 = 28_333_333 * WINDOW_MS + 20_000;

describe('gateway rate limiter (in memory)', () => {
  it('allows the limit per minute, then denies with Retry-After until the window ends', async () => {
    const rl = new MemoryRateLimiter();
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = await rl.hit('user:acme:u1', 3, T0 + i);
      expect(d.allowed).toBe(true);
      remaining.push(d.remaining);
    }
    expect(remaining).toEqual([2, 1, 0]);
    const denied = await rl.hit('user:acme:u1', 3, T0 + 5);
    expect(denied).toEqual({ allowed: false, retryAfterSeconds: 40, remaining: 0, deniedBy: 'user:acme:u1' });
    // 19.5 s left rounds up to 20; 1 ms left is 1 s, never 0.
    expect((await rl.hit('user:acme:u1', 3, T0 + 20_500)).retryAfterSeconds).toBe(20);
    expect((await rl.hit('user:acme:u1', 3, T0 + 39_999)).retryAfterSeconds).toBe(1);
    // The next window starts afresh.
    expect((await rl.hit('user:acme:u1', 3, T0 + 40_000)).allowed).toBe(true);
  });

  it('denies every request under a limit of 0', async () => {
    const rl = new MemoryRateLimiter();
    expect((await rl.hit('tenant:acme', 0, T0)).allowed).toBe(false);
  });

  it("keeps another user of the same tenant passing when one user is over the per-user limit", async () => {
    const rl = new MemoryRateLimiter();
    const quotas = { requestsPerMinute: 100, requestsPerMinutePerUser: 2 };
    const results = [];
    // In memory: decided at once, no promise.
    for (let i = 0; i < 4; i++) results.push(rl.hitAll(requestChecks('acme', 'u1', quotas), T0 + i).allowed);
    expect(results).toEqual([true, true, false, false]);
    const other = await rl.hitAll(requestChecks('acme', 'u2', quotas), T0 + 10);
    expect(other.allowed).toBe(true);
    // u1's two refused requests did not use the tenant's budget: 100 - (2 + 1) left.
    expect(other.remaining).toBe(1);
    const tenant = await rl.hit('tenant:acme', 100, T0 + 11);
    expect(tenant.remaining).toBe(100 - 4);
  });

  it("does not count a request the tenant's limit refuses against the user", async () => {
    const rl = new MemoryRateLimiter();
    const quotas = { requestsPerMinute: 2, requestsPerMinutePerUser: 2 };
    expect((await rl.hitAll(requestChecks('acme', 'u1', quotas), T0)).allowed).toBe(true);
    expect((await rl.hitAll(requestChecks('acme', 'u2', quotas), T0)).allowed).toBe(true);
    const d = await rl.hitAll(requestChecks('acme', 'u1', quotas), T0);
    expect(d).toMatchObject({ allowed: false, deniedBy: 'tenant:acme' });
    // u1 has used 1 of 2 (the refused request was not counted).
    expect((await rl.hit('user:acme:u1', 2, T0)).remaining).toBe(0);
    expect((await rl.hit('user:acme:u1', 2, T0)).allowed).toBe(false);
  });

  it('keeps tenants apart and has no limit without quota keys', async () => {
    const rl = new MemoryRateLimiter();
    await rl.hit('tenant:acme', 1, T0);
    expect((await rl.hit('tenant:acme', 1, T0)).allowed).toBe(false);
    expect((await rl.hit('tenant:globex', 1, T0)).allowed).toBe(true);
    expect(requestChecks('acme', 'u1', {})).toEqual([]);
    expect(await rl.hitAll([], T0)).toEqual({ allowed: true, retryAfterSeconds: 0, remaining: Infinity });
  });

  it('bounds its memory: past windows are dropped, and beyond maxKeys the one first hit in the window', async () => {
    const rl = new MemoryRateLimiter({ maxKeys: 3 });
    for (const u of ['a', 'b', 'c']) await rl.hit(u, 1, T0);
    expect(rl.size).toBe(3);
    await rl.hit('d', 1, T0);
    expect(rl.size).toBe(3);
    // 'a' was forgotten (fails open); 'd' is still counted.
    expect((await rl.hit('a', 1, T0)).allowed).toBe(true);
    expect((await rl.hit('d', 1, T0)).allowed).toBe(false);

    await rl.hit('e', 1, T0 + WINDOW_MS);
    expect(rl.size).toBe(1);
  });
});
