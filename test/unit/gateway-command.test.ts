import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { parseListen, runGateway } from '../../src/commands/gateway.js';
import { DEFAULT_ENVIRONMENT } from '../../src/compile/desired.js';
import { UsageError } from '../../src/errors.js';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { until } from '../helpers/wait.js';


describe('systemprompt gateway (the command)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-gateway-'));
  for (const f of ['systemprompt.yaml', 'tenants', 'services']) cpSync(path.join(PROJECT_ROOT, f), path.join(dir, f), { recursive: true });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses --listen and refuses what is not HOST:PORT', () => {
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(() => parseListen('8080')).toThrow(/expected HOST:PORT/);
    expect(() => parseListen('h:99999')).toThrow(/expected HOST:PORT/);
  });

  it('refuses a Redis URL that is not redis:// or rediss:// before serving, without showing its password', async () => {
    const io: Io = { out: () => undefined, err: () => undefined, interactive: false, env: {}, cwd: dir };
    const run = (url: string, source: string) => runGateway(io, { dir: '.', listen: '127.0.0.1:0', debounceMs: 50, redis: { url, source } }, DEFAULT_ENVIRONMENT, new AbortController().signal);
    for (const [url, source] of [
      ['http://u:hunter2@cache:6379', '--redis'],
      ['redis://u:hunter2@cache:6379/db', 'SYSTEMPROMPT_REDIS_URL'],
    ] as const) {
      const e = await run(url, source).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UsageError);
      expect((e as Error).message.startsWith(source)).toBe(true);
      expect((e as Error).message).not.toContain('hunter2');
    }
  });

  it('says where its rate limits are kept, without the Redis password, and closes the limiter when stopped', async () => {
    const err: string[] = [];
    const io: Io = { out: () => undefined, err: (t) => err.push(t), interactive: false, env: {}, cwd: dir };
    for (const redis of [undefined, { url: 'redis://default:hunter2@127.0.0.1:1', source: '--redis' }]) {
      const stop = new AbortController();
      let base = '';
      const running = runGateway(io, { dir: '.', listen: '127.0.0.1:0', debounceMs: 50, ...(redis ? { redis } : {}), onListening: (u) => (base = u) }, DEFAULT_ENVIRONMENT, stop.signal);
      await until('the gateway listening', async () => base !== '');
      stop.abort();
      expect(await running).toBe(0);
    }
    const text = err.join('');
    expect(text).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+: .*; rate limits in memory; .*watching/);
    expect(text).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+: .*; rate limits in Redis at redis:\/\/127\.0\.0\.1:1; .*watching/);
    expect(text).not.toContain('hunter2');
    expect(text.match(/gateway: stopped/g)?.length).toBe(2);
  });

  it("serves the repository's cards, loads a saved change again, and keeps serving through an invalid one", async () => {
    const err: string[] = [];
    const io: Io = { out: () => undefined, err: (t) => err.push(t), interactive: false, env: {}, cwd: dir };
    const stop = new AbortController();
    let base = '';
    const running = runGateway(io, { dir: '.', listen: '127.0.0.1:0', debounceMs: 50, onListening: (u) => (base = u) }, DEFAULT_ENVIRONMENT, stop.signal);
    try {
      await until('the gateway listening', async () => base !== '');
      const card = (tenant: string, agent: string) => fetch(`${base}/api/v1/agents/${agent}/.well-known/agent-card.json?tenant=${tenant}`);
      const served = (await (await card('customer-a', 'welcome')).json()) as { url: string };
      expect(served.url).toBe(`${base}/api/v1/agents/welcome?tenant=customer-a`);

      // customer-a stops having the welcome agent: its card goes once the change is loaded.
      const file = path.join(dir, 'tenants/customer-a.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('agents: [assistant, welcome]', 'agents: [assistant]'));
      await until('the change loaded', async () => (await card('customer-a', 'welcome')).status === 404);
      expect((await card('customer-a', 'assistant')).status).toBe(200);

      // An invalid file is reported; the last valid configuration keeps serving.
      writeFileSync(file, readFileSync(file, 'utf8').replace('pods: 20', 'pods: twenty'));
      await until('the invalid change reported', async () => err.join('').includes('still serving the last valid configuration'));
      expect((await card('customer-a', 'assistant')).status).toBe(200);
    } finally {
      stop.abort();
    }
    expect(await running).toBe(0);
    expect(err.join('')).toContain('gateway: stopped');
  });
});
