import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { runGateway } from '../../src/commands/gateway.js';
import { compileEnvironment } from '../../src/targets/environment.js';
import { until } from '../helpers/wait.js';
import { KubernetesTarget } from '../../src/targets/kubernetes.js';
import { endpoints, makeRepo, resetTargets, secretValue, sp, spJson, writeRepo } from './helpers.js';
import pg from 'pg';
import { KC, assistantAgent, login, scopes, setPassword } from './oidc.js';

/** The assistant behind the gateway, its card requiring `required`. */
const agent = (upstream: string, required: string): string => assistantAgent.replace('tenant_aware: true\n', `tenant_aware: true\nupstream: "${upstream}"\n`).replace('    - oauth2: ["user"]', `    - oauth2: ["${required}"]`);
const files = (upstream: string, required: string, aliceScopes = 'user, read'): Record<string, string> => ({
  'systemprompt.yaml': 'tenancy:\n  default_tenant: gw-a\n',
  'services/agents/assistant.yaml': agent(upstream, required),
  'tenants/gw-a.yaml': `name: gw-a\nusers:\n  - email: alice@a.example.com\n    scopes: [${aliceScopes}]\n`,
  'tenants/gw-b.yaml': 'name: gw-b\nusers:\n  - email: carol@b.example.com\n    scopes: [user, read, write]\n',
});

describe('the gateway with real tokens from the real Keycloak login', () => {
  const seen: http.IncomingHttpHeaders[] = [];
  const upstream = http.createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url }));
  });
  const stop = new AbortController();
  let running: Promise<number>;
  let gw = '';
  let repo = '';
  let upstreamUrl = '';
  const log: string[] = [];
  const started = new Date();

  beforeAll(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    repo = makeRepo(files(upstreamUrl, 'read'));
    // All three targets: usage and audit go into each tenant's own database.
    const r = await sp(repo, 'apply', '--auto-approve', '--allow-destroy');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    await setPassword('gw-a', 'alice@a.example.com');
    await setPassword('gw-b', 'carol@b.example.com');
    const io: Io = { out: (t) => log.push(t), err: (t) => log.push(t), interactive: false, env: {}, cwd: repo };
    const secrets = KubernetesTarget.connect(endpoints.kubeconfigPath, endpoints.context);
    running = runGateway(io, { dir: '.', listen: '127.0.0.1:0', debounceMs: 50, secrets, usageFlushMs: 100, onListening: (u) => (gw = u) }, compileEnvironment({ keycloakUrl: KC }), stop.signal);
    await until('the gateway listening', async () => gw !== '', 15_000);
  });

  afterAll(async () => {
    stop.abort();
    await running;
    upstream.close();
    await resetTargets();
  });

  const call = (tenant: string, token: string | undefined, headers: Record<string, string> = {}) =>
    fetch(`${gw}/api/v1/agents/assistant/items?tenant=${tenant}`, { headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });

  it("lets a user of tenant A holding read through to the agent, which sees A and the user, never the client's own X-SystemPrompt headers", async () => {
    const alice = await login('gw-a', 'alice@a.example.com', 'openid read');
    expect(scopes(alice.claims)).toContain('read');
    const before = seen.length;
    const res = await call('gw-a', alice.access, { 'X-SystemPrompt-Tenant': 'gw-b', 'x-systemprompt-user': 'someone-else' });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { path: string }).path).toMatch(/^\/items/);
    expect(seen.length).toBe(before + 1);
    const h = seen.at(-1)!;
    expect(h['x-systemprompt-tenant']).toBe('gw-a');
    expect(h['x-systemprompt-user']).toBe(alice.claims.sub);
    expect(h['x-systemprompt-user-email']).toBe('alice@a.example.com');
    expect(String(h['x-systemprompt-scopes']).split(' ')).toContain('read');
  });

  it('refuses no token and a forged one with 401, and the agent sees nothing', async () => {
    const alice = await login('gw-a', 'alice@a.example.com', 'openid read');
    const before = seen.length;
    expect((await call('gw-a', undefined)).status).toBe(401);
    const [h, p, s] = alice.access.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), tenant_id: 'gw-b' })).toString('base64url');
    expect((await call('gw-a', `${h}.${forgedPayload}.${s}`)).status).toBe(401);
    expect((await call('gw-a', `${h}.${p}.${s!.slice(0, -4)}AAAA`)).status).toBe(401);
    expect(seen.length).toBe(before);
  });

  it("refuses tenant A's token at tenant B's URL, and B's agent sees nothing", async () => {
    const alice = await login('gw-a', 'alice@a.example.com', 'openid read');
    const before = seen.length;
    const res = await call('gw-b', alice.access);
    expect([401, 403]).toContain(res.status);
    expect(seen.length).toBe(before);
  });

  it("records usage and audit of A's calls in A's own database, and none in B's", async () => {
    const alice = await login('gw-a', 'alice@a.example.com', 'openid read');
    expect((await call('gw-a', alice.access)).status).toBe(200);
    expect((await call('gw-b', alice.access)).status).toBe(403);
    type Audit = { audit: Array<{ userId: string; email: string; agent: string; path: string; decision: string; status: number; reason: string | null; scopesRequired: string[]; scopesHeld: string[] }> };
    let audit: Audit['audit'] = [];
    await until('the audit written', async () => {
      const r = await spJson<Audit>(repo, 'admin', 'audit', '--tenant', 'gw-a', '--since', '1h');
      audit = r.json.audit ?? [];
      // The calls of the tests above (one allowed, one at B's URL) and these two.
      return audit.filter((a) => a.userId === alice.claims.sub).length >= 4;
    }, 15_000);
    const mine = audit.filter((a) => a.userId === alice.claims.sub);
    expect(mine.length).toBe(4);
    expect(mine.find((a) => a.decision === 'allowed')).toMatchObject({ email: 'alice@a.example.com', agent: 'assistant', path: '/api/v1/agents/assistant/items', status: 200, reason: null, scopesRequired: ['read'] });
    expect(mine.find((a) => a.decision === 'allowed')!.scopesHeld).toContain('read');
    expect(mine.find((a) => a.reason === 'wrong_tenant')).toMatchObject({ decision: 'denied', status: 403 });
    const usage = await spJson<{ usage: Array<{ userId: string; email: string; agent: string; requests: number; denials: number; bytesOut: number }> }>(repo, 'admin', 'usage', '--tenant', 'gw-a', '--user', 'ALICE@a.example.com');
    expect(usage.code).toBe(0);
    const row = usage.json.usage.find((u) => u.agent === 'assistant' && u.userId === alice.claims.sub)!;
    expect(row.email).toBe('alice@a.example.com');
    expect(row.requests).toBe(mine.length);
    expect(row.denials).toBe(mine.filter((a) => a.decision === 'denied').length);
    expect(row.bytesOut).toBeGreaterThan(0);
    // B's database, read with B's own credentials, holds nothing of it. (A database outlives its
    // tenant by default, so an earlier run's rows of B's own users may be there: count this run's.)
    expect((await spJson<Audit>(repo, 'admin', 'audit', '--tenant', 'gw-b', '--since', started.toISOString())).json.audit).toEqual([]);
    const b = new pg.Client({ connectionString: await secretValue('tenant-gw-b', 'systemprompt-database', 'DATABASE_URL') });
    await b.connect();
    try {
      const tables = (await b.query<{ t: string | null }>("SELECT to_regclass('systemprompt.audit') AS t")).rows[0]!.t;
      if (tables !== null) {
        const since = (await b.query<{ n: number }>('SELECT count(*)::int AS n FROM systemprompt.audit WHERE at >= $1', [started])).rows[0]!.n;
        const ofAlice = (await b.query<{ n: number }>('SELECT count(*)::int AS n FROM systemprompt.usage_daily WHERE user_id = $1', [alice.claims.sub])).rows[0]!.n;
        expect([since, ofAlice]).toEqual([0, 0]);
      }
    } finally {
      await b.end();
    }
    const text = await sp(repo, 'admin', 'usage', '--tenant', 'gw-a');
    expect(text.stdout).toMatch(/^DAY\s+USER\s+AGENT\s+REQUESTS\s+DENIED/);
    expect(text.stdout).toContain('alice@a.example.com');
  });

  it('answers 403 after a scope is removed from the user in YAML and applied: the next token lacks it', async () => {
    writeRepo(repo, files(upstreamUrl, 'read', 'user'));
    const r = await sp(repo, 'apply', '--auto-approve', '--allow-destroy', '--target', 'keycloak');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const alice = await login('gw-a', 'alice@a.example.com', 'openid read');
    expect(scopes(alice.claims)).not.toContain('read');
    const before = seen.length;
    const res = await call('gw-a', alice.access);
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([403, 'missing_scope']);
    expect(seen.length).toBe(before);
    await until('the denial audited', async () => {
      const { json } = await spJson<{ audit: Array<{ reason: string | null; scopesHeld: string[] }> }>(repo, 'admin', 'audit', '--tenant', 'gw-a', '--user', 'alice@a.example.com', '--limit', '1');
      return json.audit[0]?.reason === 'missing_scope' && !json.audit[0].scopesHeld.includes('read');
    }, 15_000);
  });

  it('answers 403 once the card requires a scope the token lacks (the configuration reloaded on a saved change)', async () => {
    const alice = await login('gw-a', 'alice@a.example.com', 'openid read write');
    expect(scopes(alice.claims)).not.toContain('write');
    writeRepo(repo, files(upstreamUrl, 'write'));
    // Until the change is loaded, calls still pass (the card required read).
    await until('the change loaded', async () => (await call('gw-a', alice.access)).status === 403, 15_000);
    const before = seen.length;
    expect((await call('gw-a', alice.access)).status).toBe(403);
    expect(seen.length).toBe(before);
    // A user who holds write passes, at its own tenant.
    const carol = await login('gw-b', 'carol@b.example.com', 'openid read write');
    expect((await call('gw-b', carol.access)).status).toBe(200);
    expect(seen.at(-1)!['x-systemprompt-tenant']).toBe('gw-b');
  });

  it('writes one JSON access-log line per request, without the token', async () => {
    const lines = log.join('').split('\n').filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) expect(l).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
    expect(lines.map((l) => JSON.parse(l).status)).toEqual(expect.arrayContaining([200, 401, 403]));
  });
});
