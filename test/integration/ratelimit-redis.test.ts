import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestChecks, windowOf, WINDOW_MS } from '../../src/gateway/ratelimit.js';
import { HIT_ALL_SHA1, KEY_TTL_MARGIN_MS, parseRedisUrl, RedisRateLimiter } from '../../src/gateway/ratelimit-redis.js';
import { until } from '../helpers/wait.js';
import { redisUrl } from './helpers.js';

/**
 * RedisRateLimiter against the real Redis of the stack: two limiters with a connection each, as two
 * gateway replicas would have, count together. `now` is passed explicitly (as the gateway does), so
 * nothing here depends on where the wall clock is in its minute.
 */
describe('rate limits shared through Redis', () => {
  const url = redisUrl();
  const prefix = `systemprompt:rl:it-${randomBytes(4).toString('hex')}:`;
  const warnings: string[] = [];
  const replica = () => new RedisRateLimiter({ redis: url, prefix, warn: (m) => warnings.push(m) });
  const a = replica();
  const b = replica();
  const inspect = createClient({ url });
  /** 20 s into the current window. */
  const T = windowOf(Date.now()) * WINDOW_MS + 20_000;
  const W = windowOf(T);

  beforeAll(async () => {
    inspect.on('error', () => undefined);
    await inspect.connect();
  });

  afterAll(async () => {
    await a.close();
    await b.close();
    const keys = await inspect.keys(`${prefix}*`);
    if (keys.length) await inspect.del(keys);
    inspect.destroy();
  });

  it('lets exactly the limit through across two replicas: 3 via one, 2 via the other, then the 6th is denied from either', async () => {
    const key = 'user:t1:alice';
    const via = [a, a, a, b, b];
    const remaining: number[] = [];
    for (const [i, rl] of via.entries()) {
      const d = await rl.hit(key, 5, T + i);
      expect(d.allowed, `request ${i + 1}`).toBe(true);
      expect(d.unchecked).toBeUndefined();
      remaining.push(d.remaining);
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    for (const rl of [a, b]) {
      const d = await rl.hit(key, 5, T + 10);
      expect(d).toEqual({ allowed: false, retryAfterSeconds: 40, remaining: 0, deniedBy: key });
    }
    expect(await inspect.get(`${prefix}${key}:${W}`)).toBe('5');
    // The next window starts afresh, in a key of its own.
    expect((await b.hit(key, 5, T + 40_000)).remaining).toBe(4);
    expect(await inspect.get(`${prefix}${key}:${W + 1}`)).toBe('1');
    // Two connections, as two replicas.
    const clients = (await inspect.sendCommand(['CLIENT', 'LIST'])) as string;
    expect(clients.split('\n').filter((l) => / name=systemprompt-gateway /.test(l)).length).toBeGreaterThanOrEqual(2);
  });

  it("counts concurrent requests from both replicas exactly (the script is atomic)", async () => {
    const key = 'tenant:t-concurrent';
    const decisions = await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).hit(key, 7, T + i)));
    expect(decisions.filter((d) => d.allowed).length).toBe(7);
    expect(decisions.filter((d) => !d.allowed).every((d) => d.deniedBy === key && d.retryAfterSeconds === 40)).toBe(true);
    expect(decisions.filter((d) => d.allowed).map((d) => d.remaining).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(await inspect.get(`${prefix}${key}:${W}`)).toBe('7');
  });

  it("does not use the tenant's budget for a request the per-user limit refuses, nor the user's for one the tenant's refuses", async () => {
    const quotas = { requestsPerMinute: 10, requestsPerMinutePerUser: 2 };
    expect((await a.hitAll(requestChecks('t2', 'u1', quotas), T)).allowed).toBe(true);
    expect((await b.hitAll(requestChecks('t2', 'u1', quotas), T)).allowed).toBe(true);
    for (const rl of [a, b]) expect(await rl.hitAll(requestChecks('t2', 'u1', quotas), T)).toMatchObject({ allowed: false, deniedBy: 'user:t2:u1' });
    const other = await b.hitAll(requestChecks('t2', 'u2', quotas), T);
    expect(other).toMatchObject({ allowed: true, remaining: 1 });
    expect(await inspect.get(`${prefix}tenant:t2:${W}`)).toBe('3');

    const tight = { requestsPerMinute: 2, requestsPerMinutePerUser: 5 };
    expect((await a.hitAll(requestChecks('t3', 'u1', tight), T)).allowed).toBe(true);
    expect((await b.hitAll(requestChecks('t3', 'u2', tight), T)).allowed).toBe(true);
    expect(await a.hitAll(requestChecks('t3', 'u1', tight), T)).toMatchObject({ allowed: false, deniedBy: 'tenant:t3' });
    expect(await inspect.get(`${prefix}user:t3:u1:${W}`)).toBe('1');
  });

  it("says Retry-After from the gateway's clock, 1..60 s, and lets counters expire after their window plus a margin", async () => {
    const now = Date.now();
    const key = 'user:t4:u1';
    expect((await a.hit(key, 1, now)).allowed).toBe(true);
    const denied = await b.hit(key, 1, now);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(denied.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(denied.retryAfterSeconds).toBe(Math.max(1, Math.ceil(((windowOf(now) + 1) * WINDOW_MS - now) / 1000)));
    const ttl = await inspect.pTTL(`${prefix}${key}:${windowOf(now)}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual((windowOf(now) + 1) * WINDOW_MS - now + KEY_TTL_MARGIN_MS);
    // The last millisecond of a window: the counter lives the margin and no more.
    const last = (W + 5) * WINDOW_MS - 1;
    await a.hit('user:t4:late', 3, last);
    const lateTtl = await inspect.pTTL(`${prefix}user:t4:late:${W + 4}`);
    expect(lateTtl).toBeGreaterThan(KEY_TTL_MARGIN_MS - 5_000);
    expect(lateTtl).toBeLessThanOrEqual(KEY_TTL_MARGIN_MS + 1);
  });

  it('loads the script again (EVAL) when Redis no longer has it, then runs it by its SHA1', async () => {
    await inspect.sendCommand(['SCRIPT', 'FLUSH']);
    expect(await inspect.sendCommand(['SCRIPT', 'EXISTS', HIT_ALL_SHA1])).toEqual([0]);
    const d = await a.hit('user:t5:u1', 2, T);
    expect(d).toEqual({ allowed: true, retryAfterSeconds: 0, remaining: 1 });
    expect(await inspect.sendCommand(['SCRIPT', 'EXISTS', HIT_ALL_SHA1])).toEqual([1]);
    expect((await b.hit('user:t5:u1', 2, T)).remaining).toBe(0);
    expect(warnings).toEqual([]);
  });

  it('connects again after its connection is cut, says so, and counts again', async () => {
    const said: string[] = [];
    const c = new RedisRateLimiter({ redis: url, prefix, warn: (m) => said.push(m) });
    try {
      expect((await c.hit('user:t7:u1', 10, T)).remaining).toBe(9);
      // The newest connection named by the gateway is this limiter's.
      const ids = ((await inspect.sendCommand(['CLIENT', 'LIST'])) as string)
        .split('\n')
        .filter((l) => / name=systemprompt-gateway /.test(l))
        .map((l) => Number(/^id=(\d+)/.exec(l)![1]));
      await inspect.sendCommand(['CLIENT', 'KILL', 'ID', String(Math.max(...ids))]);
      await until('the cut connection noticed', async () => said.some((m) => /not enforced/.test(m)), 10_000);
      await until('connected again', async () => c.connected, 10_000);
      expect(said.at(-1)).toMatch(/^gateway: rate limits: Redis at redis:\/\/[^ ]+ reachable again/);
      const d = await c.hit('user:t7:u1', 10, T);
      expect(d.unchecked).toBeUndefined();
      expect(d.remaining).toBe(8);
    } finally {
      await c.close();
    }
  });

  it('fails open, counted and said once without the password, when Redis refuses the login', async () => {
    const target = parseRedisUrl(url);
    const wrong = `${target.tls ? 'rediss' : 'redis'}://default:not-the-password-${randomBytes(3).toString('hex')}@${target.host}:${target.port}`;
    const said: string[] = [];
    const rl = new RedisRateLimiter({ redis: wrong, prefix, warn: (m) => said.push(m) });
    try {
      for (let i = 0; i < 3; i++) expect(await rl.hit('user:t6:u1', 0, T)).toMatchObject({ allowed: true, unchecked: true });
      expect(rl.uncheckedCount).toBe(3);
      expect(said.length).toBe(1);
      expect(said[0]).toMatch(/rate limits not enforced while Redis is unavailable/);
      expect(said[0]).toMatch(/WRONGPASS|NOAUTH|invalid/i);
      expect(said[0]).not.toContain('not-the-password');
      expect(await inspect.exists(`${prefix}user:t6:u1:${W}`)).toBe(0);
    } finally {
      await rl.close();
    }
  });
});
