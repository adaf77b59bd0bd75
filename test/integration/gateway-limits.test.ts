import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { runGateway } from '../../src/commands/gateway.js';
import { windowOf, WINDOW_MS } from '../../src/gateway/ratelimit.js';
import { parseRedisUrl } from '../../src/gateway/ratelimit-redis.js';
import { compileEnvironment } from '../../src/targets/environment.js';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { until } from '../helpers/wait.js';
import { makeRepo, redisUrl, resetTargets, sp, targetEnv } from './helpers.js';
import { KC, assistantAgent, login, setPassword } from './oidc.js';

/** Requests a minute each user of the tenant gets. */
const N = 3;
const TENANT = 'gl-a';
const ALICE = 'alice@gl-a.example.com';
const BOB = 'bob@gl-a.example.com';

const files = (upstream: string): Record<string, string> => ({
  'systemprompt.yaml': `tenancy:\n  default_tenant: ${TENANT}\n`,
  // The card requires `read`, which the users hold and ask for.
  'services/agents/assistant.yaml': assistantAgent.replace('tenant_aware: true\n', `tenant_aware: true\nupstream: "${upstream}"\n`).replace('    - oauth2: ["user"]', '    - oauth2: ["read"]'),
  [`tenants/${TENANT}.yaml`]: `name: ${TENANT}\nquotas:\n  requests_per_minute_per_user: ${N}\nusers:\n  - email: ${ALICE}\n    scopes: [user, read]\n  - email: ${BOB}\n    scopes: [user, read]\n`,
});

/** Milliseconds left in the current one-minute window (the gateway's windows are the clock's minutes). */
const msLeftInWindow = (): number => (windowOf(Date.now()) + 1) * WINDOW_MS - Date.now();

/**
 * Each check below takes a second or two and must not straddle a window's edge (counters start
 * again at zero there): it starts only with at least 12 s of the minute left, waiting for the next
 * minute otherwise; and it checks afterwards that the window did not change under it.
 */
async function inOneWindow<T>(check: () => Promise<T>): Promise<T> {
  await until('a window with at least 12 s left', async () => msLeftInWindow() >= 12_000, 61_000);
  const window = windowOf(Date.now());
  const result = await check();
  expect(windowOf(Date.now()), 'the check took longer than the 12 s it was given before the window ended').toBe(window);
  return result;
}

/** `systemprompt gateway` as its own OS process; its output kept as it arrives. */
interface GatewayProcess {
  child: ChildProcess;
  out: string;
  err: string;
  url: string;
  exited: Promise<number | null>;
}

async function startGatewayProcess(args: string[], env: NodeJS.ProcessEnv): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/systemprompt.js'), 'gateway', '--listen', '127.0.0.1:0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: GatewayProcess = { child, out: '', err: '', url: '', exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
  child.stdout!.on('data', (b: Buffer) => (p.out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (p.err += b.toString()));
  await until(
    'the gateway process listening',
    async () => {
      if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}):\n${p.err}`);
      p.url = /gateway: listening on (http:\/\/[\d.]+:\d+)/.exec(p.err)?.[1] ?? '';
      return p.url !== '';
    },
    30_000,
  );
  return p;
}

async function stopGatewayProcess(p: GatewayProcess | undefined): Promise<number | null | undefined> {
  if (!p) return undefined;
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  return p.exited;
}

describe('per-user rate limits at the gateway with real tokens: one gateway, then two processes sharing Redis', () => {
  /** What reached the agent: the user of each request. */
  const seen: string[] = [];
  const upstream = http.createServer((req, res) => {
    seen.push(String(req.headers['x-systemprompt-user']));
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  let repo = '';
  let alice = { access: '', sub: '' };
  let bob = { access: '', sub: '' };
  const processes: GatewayProcess[] = [];

  beforeAll(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
    repo = makeRepo(files(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`));
    const r = await sp(repo, 'apply', '--auto-approve', '--allow-destroy', '--target', 'keycloak,kubernetes');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    for (const user of [ALICE, BOB]) await setPassword(TENANT, user);
    const a = await login(TENANT, ALICE, 'openid read');
    const b = await login(TENANT, BOB, 'openid read');
    alice = { access: a.access, sub: String(a.claims.sub) };
    bob = { access: b.access, sub: String(b.claims.sub) };
    expect(alice.sub).not.toBe(bob.sub);
  });

  afterAll(async () => {
    for (const p of processes) await stopGatewayProcess(p);
    upstream.close();
    await resetTargets();
  });

  const call = (gw: string, token: string) => fetch(`${gw}/api/v1/agents/assistant/items?tenant=${TENANT}`, { headers: { authorization: `Bearer ${token}` } });

  /** A 429 as the gateway sends it: Retry-After in whole seconds, until the window's end. */
  async function expectLimited(res: Response): Promise<void> {
    expect(res.status, await res.clone().text()).toBe(429);
    expect(await res.json()).toEqual({ error: 'rate_limited' });
    const retryAfter = res.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    const seconds = Number(retryAfter);
    expect(seconds).toBeGreaterThanOrEqual(1);
    expect(seconds).toBeLessThanOrEqual(60);
    // Until the end of this minute, by our own clock (the same machine's), give or take a second.
    expect(Math.abs(seconds - Math.ceil(msLeftInWindow() / 1000))).toBeLessThanOrEqual(1);
  }

  it('answers 429 with Retry-After to the user over the per-user limit, while the other user of the tenant still gets 200', async () => {
    const log: string[] = [];
    const io: Io = { out: (t) => log.push(t), err: (t) => log.push(t), interactive: false, env: {}, cwd: repo };
    const stop = new AbortController();
    let gw = '';
    const running = runGateway(io, { dir: '.', listen: '127.0.0.1:0', debounceMs: 50, onListening: (u) => (gw = u) }, compileEnvironment({ keycloakUrl: KC }), stop.signal);
    try {
      await until('the gateway listening', async () => gw !== '', 15_000);
      expect(log.join('')).toContain('rate limits in memory');
      await inOneWindow(async () => {
        const before = seen.length;
        for (let i = 0; i < N; i++) expect((await call(gw, alice.access)).status, `alice's request ${i + 1}`).toBe(200);
        await expectLimited(await call(gw, alice.access));
        await expectLimited(await call(gw, alice.access));
        expect((await call(gw, bob.access)).status).toBe(200);
        // The agent saw alice's N requests and bob's one, never a refused one.
        expect(seen.slice(before)).toEqual([...Array<string>(N).fill(alice.sub), bob.sub]);
      });
    } finally {
      stop.abort();
    }
    expect(await running).toBe(0);
    const lines = log.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { status: number; reason?: string; user?: string });
    expect(lines.filter((l) => l.status === 429).every((l) => l.reason === 'rate_limited' && l.user === alice.sub)).toBe(true);
  });

  it('holds the per-user limit across two gateway processes sharing Redis: the N+1th request is 429 whichever process gets it', async () => {
    const url = redisUrl();
    const password = parseRedisUrl(url).password;
    const prefix = `systemprompt:rl:it-${randomBytes(4).toString('hex')}:`;
    // One is told its Redis with --redis, the other through SYSTEMPROMPT_REDIS_URL. A generous
    // timeout: on a busy machine a late answer would let a request through unchecked (fail open).
    const a = await startGatewayProcess(['--dir', repo, '--redis', url, '--redis-prefix', prefix, '--redis-timeout', '5000'], targetEnv());
    processes.push(a);
    const b = await startGatewayProcess(['--dir', repo, '--redis-prefix', prefix, '--redis-timeout', '5000'], { ...targetEnv(), SYSTEMPROMPT_REDIS_URL: url });
    processes.push(b);
    expect(a.child.pid).not.toBe(b.child.pid);
    expect(a.url).not.toBe(b.url);
    for (const p of [a, b]) expect(p.err).toMatch(/rate limits in Redis at redis:\/\/127\.0\.0\.1:\d+;/);

    const window = await inOneWindow(async () => {
      const before = seen.length;
      // N requests split between the two processes all pass...
      const split = [a, b, a, b].slice(0, N);
      for (const [i, p] of split.entries()) expect((await call(p.url, alice.access)).status, `alice's request ${i + 1}, via ${p === a ? 'A' : 'B'}`).toBe(200);
      // ...and the next is refused by either, though neither alone has seen N.
      await expectLimited(await call(b.url, alice.access));
      await expectLimited(await call(a.url, alice.access));
      // The other user is counted apart, on both.
      expect((await call(a.url, bob.access)).status).toBe(200);
      expect((await call(b.url, bob.access)).status).toBe(200);
      expect(seen.slice(before)).toEqual([...Array<string>(N).fill(alice.sub), bob.sub, bob.sub]);
      return windowOf(Date.now());
    });

    // The counters are in Redis, under the prefix, in this window's keys.
    const inspect = createClient({ url });
    inspect.on('error', () => undefined);
    await inspect.connect();
    try {
      expect(await inspect.get(`${prefix}user:${TENANT}:${alice.sub}:${window}`)).toBe(String(N));
      expect(await inspect.get(`${prefix}user:${TENANT}:${bob.sub}:${window}`)).toBe('2');
      const keys = await inspect.keys(`${prefix}*`);
      expect(keys.length).toBe(2);
      await inspect.del(keys);
    } finally {
      inspect.destroy();
    }

    for (const p of [a, b]) {
      expect(await stopGatewayProcess(p)).toBe(0);
      expect(p.err).toContain('gateway: stopped');
      // Every request was checked (no request passed because Redis could not be asked)...
      const lines = p.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { status: number; rateLimit?: string });
      expect(lines.length).toBeGreaterThanOrEqual(3);
      expect(lines.filter((l) => l.rateLimit !== undefined), p.out + p.err).toEqual([]);
      expect(p.err).not.toMatch(/not enforced/);
      // ...and the Redis password appears in no output.
      if (password) expect(p.out + p.err).not.toContain(password);
    }
  });
});
