import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromKubernetes, systemprompt, type SystemPromptMiddleware } from '../../src/sdk/index.js';
import { KubeHttp } from '../../src/targets/kube-http.js';
import { KubeConfig } from '@kubernetes/client-node';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { until } from '../helpers/wait.js';
import { kubeHttp, makeRepo, resetTargets, secretValue, serviceAccountKubeconfig, sp } from './helpers.js';
import { KC, assistantAgent, login, setPassword } from './oidc.js';

/**
 * The SDK with real tokens from the real Keycloak login, real Secrets read through the Kubernetes
 * API with an agent's own service account (the RBAC the README documents), and the tenants' real
 * databases: the example notes agent as its own process, and the SDK in-process for what the
 * example does not expose.
 */
const A = 'sdk-a';
const B = 'sdk-b';
const files: Record<string, string> = {
  'systemprompt.yaml': `tenancy:\n  default_tenant: ${A}\n`,
  'services/agents/assistant.yaml': assistantAgent,
  [`tenants/${A}.yaml`]: `name: ${A}\ndeletion_policy: delete\nusers:\n  - email: alice@a.example.com\n    scopes: [user, read, write]\n  - email: rita@a.example.com\n    scopes: [user, read]\n`,
  [`tenants/${B}.yaml`]: `name: ${B}\ndeletion_policy: delete\nusers:\n  - email: bob@b.example.com\n    scopes: [user, read, write]\n`,
};
const issuers = { [`${KC}/realms/${A}`]: [A], [`${KC}/realms/${B}`]: [B] };
const NOTES = path.join(PROJECT_ROOT, 'services/example-agent/server.mjs');

/** A connection with a tenant's own credentials, from its Secret (as the tenant's workloads get them). */
async function asTenant<T>(tenant: string, work: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(await secretValue(`tenant-${tenant}`, 'systemprompt-database', 'DATABASE_URL'));
  if (database) url.pathname = `/${encodeURIComponent(database)}`;
  const c = new pg.Client({ connectionString: url.href });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}
const dbName = (tenant: string) => secretValue(`tenant-${tenant}`, 'systemprompt-database', 'PGDATABASE');
const dbUser = (tenant: string) => secretValue(`tenant-${tenant}`, 'systemprompt-database', 'PGUSER');

/** The example imports `systemprompt/sdk`, i.e. dist/: it must be built from the current sources. */
function assertBuilt(): void {
  for (const dir of ['sdk', 'gateway', 'runtime']) {
    for (const f of readdirSync(path.join(PROJECT_ROOT, 'src', dir)).filter((x) => x.endsWith('.ts'))) {
      const js = path.join(PROJECT_ROOT, 'dist', dir, f.replace(/\.ts$/, '.js'));
      if (!existsSync(js) || statSync(js).mtimeMs < statSync(path.join(PROJECT_ROOT, 'src', dir, f)).mtimeMs) {
        throw new Error(`dist/${dir}/${path.basename(js)} is missing or older than its source: run \`npm run build\` first`);
      }
    }
  }
}

describe('the SDK and the example notes agent, with real logins, Secrets and databases', () => {
  const agentsNs = `sdk-agents-${randomBytes(3).toString('hex')}`;
  let kubeconfig = '';
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  let notes = '';
  let output = '';
  let inProcess: SystemPromptMiddleware | undefined;
  let inProcessUrl = '';
  let handlerRuns = 0;
  const server = http.createServer();

  beforeAll(async () => {
    assertBuilt();
    const repo = makeRepo(files);
    const r = await sp(repo, 'apply', '--auto-approve', '--allow-destroy');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    for (const t of [A, B]) await asTenant(t, (c) => c.query('DROP TABLE IF EXISTS notes'));
    await setPassword(A, 'alice@a.example.com');
    await setPassword(A, 'rita@a.example.com');
    await setPassword(B, 'bob@b.example.com');

    // The agent's identity: a service account in its own namespace, allowed to get the Secret
    // systemprompt-database (and nothing else) in each tenant namespace it serves.
    await kubeHttp().request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: agentsNs } } });
    await kubeHttp().request('POST', `/api/v1/namespaces/${agentsNs}/serviceaccounts`, { body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'notes' } } });
    for (const t of [A, B]) {
      const ns = `tenant-${t}`;
      await kubeHttp().request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
        body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'notes-database' }, rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['systemprompt-database'], verbs: ['get'] }] },
      });
      await kubeHttp().request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
        body: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'notes-database' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'notes-database' },
          subjects: [{ kind: 'ServiceAccount', name: 'notes', namespace: agentsNs }],
        },
      });
    }
    kubeconfig = await serviceAccountKubeconfig(agentsNs, 'notes');

    // The example agent, as its own process, importing `systemprompt/sdk` (the package's exports).
    child = spawn(process.execPath, [NOTES], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH, KUBECONFIG: kubeconfig, SYSTEMPROMPT_ISSUERS: JSON.stringify(issuers), SYSTEMPROMPT_AGENT: 'assistant', PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exited = new Promise((resolve) => child!.once('exit', resolve));
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    await until(
      'the notes agent listening',
      async () => {
        if (child!.exitCode !== null) throw new Error(`the notes agent exited (${child!.exitCode}):\n${output}`);
        notes = /listening on (http:\/\/\S+)/.exec(output)?.[1] ?? '';
        return notes !== '';
      },
      20_000,
    );

    // The SDK in-process (from src), same identity, a handler that shows where its db connects.
    inProcess = systemprompt({ agent: 'assistant', issuers, databases: { secrets: fromKubernetes({ kubeconfig }) }, env: {} });
    server.on(
      'request',
      inProcess.wrap(async (req, res) => {
        handlerRuns++;
        const { db } = req.systemprompt;
        const viaQuery = (await db.query<{ db: string; role: string }>('SELECT current_database() AS db, current_user AS role')).rows[0]!;
        const viaPool = (await (await db.pool()).query<{ db: string }>('SELECT current_database() AS db')).rows[0]!;
        const viaTx = await db.transaction(async (tx) => (await tx.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ tenant: req.systemprompt.tenant, db: viaQuery.db, role: viaQuery.role, pool: viaPool.db, tx: viaTx }));
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    inProcessUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    child?.kill('SIGTERM');
    await exited;
    await new Promise((resolve) => server.close(resolve));
    await inProcess?.close();
    await kubeHttp()
      .request('DELETE', `/api/v1/namespaces/${agentsNs}`)
      .catch(() => undefined);
    await resetTargets();
  });

  const notesCall = (tok: string | undefined, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
    fetch(`${notes}/notes`, {
      method: init.method ?? 'GET',
      headers: { ...init.headers, ...(tok ? { authorization: `Bearer ${tok}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) },
      ...(init.body ? { body: JSON.stringify(init.body) } : {}),
    });
  const rowsOf = (tenant: string) => asTenant(tenant, async (c) => (await c.query<{ text: string; user_email: string }>('SELECT text, user_email FROM notes ORDER BY id')).rows);
  const hasNotesTable = (tenant: string) => asTenant(tenant, async (c) => (await c.query<{ t: string | null }>("SELECT to_regclass('notes')::text AS t")).rows[0]!.t !== null);

  it("a user of A: POST /notes then GET /notes; the row is in A's database (read with A's own credentials), B's has no table", async () => {
    const alice = await login(A, 'alice@a.example.com', 'openid read write');
    const post = await notesCall(alice.access, { method: 'POST', body: { text: 'hello from alice' }, headers: { 'X-SystemPrompt-Tenant': B } });
    expect(post.status, await post.clone().text()).toBe(201);
    const get = await notesCall(alice.access);
    expect(get.status).toBe(200);
    const listed = (await get.json()) as { tenant: string; notes: Array<{ text: string; user_email: string; user_id: string }> };
    expect(listed.tenant).toBe(A);
    expect(listed.notes.map((n) => [n.text, n.user_email, n.user_id])).toEqual([['hello from alice', 'alice@a.example.com', alice.claims.sub]]);
    expect(await rowsOf(A)).toEqual([{ text: 'hello from alice', user_email: 'alice@a.example.com' }]);
    expect(await hasNotesTable(B)).toBe(false);
  });

  it("a user of B gets B's notes only; each database holds only its tenant's rows", async () => {
    const bob = await login(B, 'bob@b.example.com', 'openid read write');
    expect((await notesCall(bob.access, { method: 'POST', body: { text: 'hello from bob' } })).status).toBe(201);
    const listed = (await (await notesCall(bob.access)).json()) as { tenant: string; notes: Array<{ text: string }> };
    expect([listed.tenant, listed.notes.map((n) => n.text)]).toEqual([B, ['hello from bob']]);
    expect((await rowsOf(B)).map((r) => r.text)).toEqual(['hello from bob']);
    expect((await rowsOf(A)).map((r) => r.text)).toEqual(['hello from alice']);
  });

  it('scopes and refusals: read-only may GET, not POST (403); no token, a forged one 401; nothing is written', async () => {
    const rita = await login(A, 'rita@a.example.com', 'openid read write');
    expect(String(rita.claims.scope).split(' ')).not.toContain('write');
    expect((await notesCall(rita.access)).status).toBe(200);
    const post = await notesCall(rita.access, { method: 'POST', body: { text: 'not allowed' } });
    expect([post.status, await post.json(), post.headers.get('www-authenticate')]).toEqual([403, { error: 'missing_scope' }, 'Bearer realm="systemprompt", error="insufficient_scope", scope="write"']);
    const none = await notesCall(undefined, { method: 'POST', body: { text: 'anonymous' }, headers: { 'X-SystemPrompt-Tenant': A, 'X-SystemPrompt-User': 'x', 'X-SystemPrompt-Scopes': 'read write' } });
    expect(none.status).toBe(401);
    const alice = await login(A, 'alice@a.example.com', 'openid read write');
    const [h, p, s] = alice.access.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), tenant_id: B })).toString('base64url')}.${s}`;
    const f = await notesCall(forged, { method: 'POST', body: { text: 'forged into B' } });
    expect([f.status, ((await f.json()) as { error: string }).error]).toEqual([401, 'bad_signature']);
    expect((await rowsOf(A)).map((r) => r.text)).toEqual(['hello from alice']);
    expect((await rowsOf(B)).map((r) => r.text)).toEqual(['hello from bob']);
  });

  it("the pool a request of A gets is A's: current_database and current_user are A's, whatever headers say", async () => {
    const alice = await login(A, 'alice@a.example.com', 'openid read');
    const res = await fetch(inProcessUrl, { headers: { authorization: `Bearer ${alice.access}`, 'X-SystemPrompt-Tenant': B } });
    expect(res.status).toBe(200);
    const [aDb, aRole] = [await dbName(A), await dbUser(A)];
    expect(await res.json()).toEqual({ tenant: A, db: aDb, role: aRole, pool: aDb, tx: aDb });
    const bob = await login(B, 'bob@b.example.com', 'openid read');
    expect(await (await fetch(inProcessUrl, { headers: { authorization: `Bearer ${bob.access}` } })).json()).toMatchObject({ tenant: B, db: await dbName(B), role: await dbUser(B) });
  });

  it("A's credentials cannot open B's database: PostgreSQL refuses with 42501", async () => {
    const bDb = await dbName(B);
    const err = await asTenant(A, async () => undefined, bDb).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(err?.code, err?.message).toBe('42501');
    expect(err?.message).toMatch(/permission denied for database/);
  });

  it("a token of A never makes the middleware hand out B's pool: tenant_id edited to B is 401 and the handler never runs", async () => {
    const alice = await login(A, 'alice@a.example.com', 'openid read');
    const [h, p, s] = alice.access.split('.');
    const before = handlerRuns;
    for (const claims of [{ tenant_id: B }, { tenant_id: B, iss: `${KC}/realms/${B}` }]) {
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), ...claims })).toString('base64url')}.${s}`;
      const res = await fetch(inProcessUrl, { headers: { authorization: `Bearer ${forged}` } });
      expect(res.status).toBe(401);
    }
    expect(handlerRuns).toBe(before);
  });

  it("the agent's service account reads only the systemprompt-database Secrets it was granted", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const asAgent = new KubeHttp(kc);
    await expect(asAgent.request('GET', `/api/v1/namespaces/tenant-${A}/secrets/systemprompt-database`)).resolves.toBeTruthy();
    await expect(asAgent.request('GET', `/api/v1/namespaces/tenant-${A}/secrets/systemprompt-oidc`)).rejects.toMatchObject({ code: 403 });
    await expect(asAgent.request('GET', `/api/v1/namespaces/tenant-${A}/secrets`)).rejects.toMatchObject({ code: 403 });
  });
});
