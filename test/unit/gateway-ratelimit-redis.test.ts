import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { redisOption } from '../../src/cli/register/gateway.js';
import { UsageError } from '../../src/errors.js';
import { WINDOW_MS } from '../../src/gateway/ratelimit.js';
import { counterKey, decisionOf, DEFAULT_REDIS_PREFIX, HIT_ALL_SCRIPT, HIT_ALL_SHA1, KEY_TTL_MARGIN_MS, parseRedisUrl, RedisRateLimiter, scriptCall } from '../../src/gateway/ratelimit-redis.js';

/** 20 s into window 28,333,333. */
const W = 28_333_333;
const T0 = W * WINDOW_MS + 20_000;

function usageMessage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return `${(e as UsageError).message}\n${(e as UsageError).hint ?? ''}`;
  }
  throw new Error('no error');
}

describe('parseRedisUrl', () => {
  it('takes a redis:// or rediss:// URL apart', () => {
    expect(parseRedisUrl('redis://127.0.0.1:36379')).toEqual({ host: '127.0.0.1', port: 36379, tls: false, display: 'redis://127.0.0.1:36379' });
    expect(parseRedisUrl('redis://default:p%40ss@cache.internal/2')).toEqual({
      host: 'cache.internal',
      port: 6379,
      tls: false,
      username: 'default',
      password: 'p@ss',
      database: 2,
      display: 'redis://cache.internal/2',
    });
    expect(parseRedisUrl('rediss://:tok@[::1]:6380')).toMatchObject({ host: '::1', port: 6380, tls: true, password: 'tok', display: 'rediss://[::1]:6380' });
    expect(parseRedisUrl('redis://h:1').username).toBeUndefined();
  });

  it('refuses other schemes, a missing host, a path that is not a database, query parameters and what is not a URL, never showing the password', () => {
    const cases: Array<[string, RegExp]> = [
      ['http://u:hunter2@h:1', /--redis http:\/\/h:1\.\.\.: not a Redis URL/],
      ['redis://u:hunter2@h:1/x', /the path must be a database number/],
      ['redis://u:hunter2@h:1/0?tls=1', /query parameters/],
      ['redis://:hunter2@', /no host|not a URL/],
      ['hunter2', /--redis: not a URL/],
      ['', /not a URL/],
    ];
    for (const [url, re] of cases) {
      const m = usageMessage(() => parseRedisUrl(url));
      expect(m, url).toMatch(re);
      expect(m, url).not.toContain('hunter2');
      expect(m).toContain('redis://[user:password@]host[:port][/db]');
    }
    expect(usageMessage(() => parseRedisUrl('postgres://h', 'SYSTEMPROMPT_REDIS_URL'))).toMatch(/^SYSTEMPROMPT_REDIS_URL postgres:/);
  });

  it('takes --redis over SYSTEMPROMPT_REDIS_URL, an empty variable as unset', () => {
    expect(redisOption('redis://a', 'redis://b')).toEqual({ url: 'redis://a', source: '--redis' });
    expect(redisOption(undefined, 'redis://b')).toEqual({ url: 'redis://b', source: 'SYSTEMPROMPT_REDIS_URL' });
    expect(redisOption(undefined, '')).toBeUndefined();
    expect(redisOption(undefined, undefined)).toBeUndefined();
  });
});

describe('the rate-limit script call', () => {
  it("names one counter per key and window under the prefix, lives until the window's end plus a margin, and clamps limits", () => {
    const call = scriptCall(
      [
        { key: 'user:acme:u1', limitPerMinute: 5 },
        { key: 'tenant:acme', limitPerMinute: -3 },
      ],
      T0,
    );
    expect(call.keys).toEqual([`systemprompt:rl:user:acme:u1:${W}`, `systemprompt:rl:tenant:acme:${W}`]);
    expect(call.args).toEqual([String(40_000 + KEY_TTL_MARGIN_MS), '5', '0']);
    expect(counterKey('p:', 'tenant:x', 7)).toBe('p:tenant:x:7');
    expect(DEFAULT_REDIS_PREFIX).toBe('systemprompt:rl:');
    // The last millisecond of a window still gets the margin; the next millisecond is the next window.
    expect(scriptCall([{ key: 'k', limitPerMinute: 1 }], (W + 1) * WINDOW_MS - 1, 'x:')).toEqual({ keys: [`x:k:${W}`], args: [String(1 + KEY_TTL_MARGIN_MS), '1'] });
    expect(scriptCall([{ key: 'k', limitPerMinute: 1 }], (W + 1) * WINDOW_MS, 'x:').keys).toEqual([`x:k:${W + 1}`]);
  });

  it('is sent by its SHA1 (EVALSHA)', () => {
    expect(HIT_ALL_SHA1).toBe(createHash('sha1').update(HIT_ALL_SCRIPT).digest('hex'));
    expect(HIT_ALL_SHA1).toMatch(/^[0-9a-f]{40}$/);
  });

  it("reads the script's answer: allowed with what is left, or which key denied, with Retry-After until the window ends", () => {
    const checks = [
      { key: 'user:acme:u1', limitPerMinute: 5 },
      { key: 'tenant:acme', limitPerMinute: 10 },
    ];
    expect(decisionOf([1, 0, 3], checks, T0)).toEqual({ allowed: true, retryAfterSeconds: 0, remaining: 3 });
    expect(decisionOf([0, 2, 0], checks, T0)).toEqual({ allowed: false, retryAfterSeconds: 40, remaining: 0, deniedBy: 'tenant:acme' });
    expect(decisionOf([0, 1, 0], checks, (W + 1) * WINDOW_MS - 1)).toMatchObject({ retryAfterSeconds: 1, deniedBy: 'user:acme:u1' });
    for (const bad of [null, 'OK', [1, 0], [0, 3, 0], [1, '0', 2]]) expect(() => decisionOf(bad, checks, T0)).toThrow(/unexpected reply/);
  });
});

describe('RedisRateLimiter when Redis cannot be asked (fail open)', () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  });
  const listen = async (onConnection: (s: Socket) => void): Promise<number> => {
    const server = createServer((s) => {
      sockets.push(s);
      onConnection(s);
    });
    servers.push(server);
    return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
  };
  /** A port nothing listens on: one that was just free. */
  const closedPort = async (): Promise<number> => {
    const port = await listen(() => undefined);
    await new Promise<void>((r) => servers.pop()!.close(() => r()));
    return port;
  };

  it('lets requests through unchecked, at once once it knows Redis is down, counts them, and warns once per period without the password', async () => {
    const warnings: string[] = [];
    const rl = new RedisRateLimiter({ redis: `redis://default:hunter2@127.0.0.1:${await closedPort()}`, commandTimeoutMs: 300, warn: (m) => warnings.push(m) });
    try {
      const t = performance.now();
      const first = await rl.hit('user:acme:u1', 1, T0);
      expect(performance.now() - t).toBeLessThan(2_000);
      expect(first).toEqual({ allowed: true, retryAfterSeconds: 0, remaining: Infinity, unchecked: true });
      // Refused connections are known: the next requests do not wait for Redis.
      const t2 = performance.now();
      for (let i = 0; i < 5; i++) expect((await rl.hit('user:acme:u1', 1, T0)).unchecked).toBe(true);
      expect(performance.now() - t2).toBeLessThan(250);
      expect(rl.uncheckedCount).toBe(6);
      expect(rl.connected).toBe(false);
      expect(warnings.length).toBe(1);
      expect(warnings[0]).toMatch(/^gateway: rate limits not enforced while Redis is unavailable \(requests pass unchecked\): .*127\.0\.0\.1:\d+/);
      expect(warnings.join('\n')).not.toContain('hunter2');
    } finally {
      await rl.close();
    }
  });

  it('waits for a first connection that never completes only once, up to the connect timeout', async () => {
    // Accepts the connection and never answers, not even the handshake.
    const port = await listen(() => undefined);
    const warnings: string[] = [];
    const rl = new RedisRateLimiter({ redis: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300, warn: (m) => warnings.push(m) });
    try {
      const ms: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        const d = await rl.hitAll([{ key: 'tenant:acme', limitPerMinute: 0 }], T0);
        ms.push(performance.now() - t);
        expect(d).toMatchObject({ allowed: true, unchecked: true });
      }
      expect(ms[0]).toBeGreaterThanOrEqual(250);
      expect(ms[0]).toBeLessThan(1_500);
      expect(Math.max(ms[1]!, ms[2]!)).toBeLessThan(100);
      expect(rl.uncheckedCount).toBe(3);
      expect(warnings.length).toBe(1);
      expect(warnings[0]).toMatch(/no connection within 300 ms/);
    } finally {
      await rl.close();
    }
  });

  it('answers within the command timeout when Redis is connected and never answers the script', async () => {
    let scripts = 0;
    // Answers every command of the handshake with +OK; never the script.
    const port = await listen((s) =>
      s.on('data', (b: Buffer) => {
        for (const command of b.toString('latin1').split(/(?=\*\d+\r\n)/).filter(Boolean)) {
          if (/EVAL/.test(command)) scripts++;
          else s.write('+OK\r\n');
        }
      }),
    );
    const warnings: string[] = [];
    const rl = new RedisRateLimiter({ redis: `redis://127.0.0.1:${port}`, commandTimeoutMs: 200, warn: (m) => warnings.push(m) });
    try {
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        const d = await rl.hitAll([{ key: 'tenant:acme', limitPerMinute: 0 }], T0);
        const ms = performance.now() - t;
        expect(d).toMatchObject({ allowed: true, unchecked: true });
        expect(ms).toBeGreaterThanOrEqual(150);
        expect(ms).toBeLessThan(1_500);
      }
      expect(rl.connected).toBe(true);
      expect(scripts).toBe(3);
      expect(rl.uncheckedCount).toBe(3);
      expect(warnings).toEqual([expect.stringMatching(/did not answer within 200 ms/)]);
    } finally {
      await rl.close();
    }
  });

  it('asks nothing without checks, and nothing at all once closed', async () => {
    let connections = 0;
    const port = await listen(() => connections++);
    const rl = new RedisRateLimiter({ redis: `redis://127.0.0.1:${port}`, warn: () => undefined });
    expect(await rl.hitAll([], T0)).toEqual({ allowed: true, retryAfterSeconds: 0, remaining: Infinity });
    await rl.close();
    expect((await rl.hit('tenant:acme', 1, T0)).unchecked).toBe(true);
    expect(connections).toBe(0);
  });
});
