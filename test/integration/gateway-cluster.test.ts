import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { clusterSource } from '../../src/commands/gateway-cluster.js';
import { runGateway } from '../../src/commands/gateway.js';
import { compileEnvironment } from '../../src/targets/environment.js';
import { KubernetesTarget } from '../../src/targets/kubernetes.js';
import { until } from '../helpers/wait.js';
import pg from 'pg';
import { cleanUpOperatorNamespace, gatewayAccount, kubeHttp, operatorAccount, prepareOperatorNamespace, secretValue, startOperator, waitFor, type OperatorProcess } from './helpers.js';
import { KC, assistantAgent, login, scopes, setPassword } from './oidc.js';

/**
 * `systemprompt gateway --from-cluster`: the gateway serves the Tenant and Agent resources the
 * operator reconciles (no repository), and follows a change to them. It runs as the service account
 * deploy/ gives it, so these tests also prove those rights are enough, and no more than that.
 */
const NS = 'sp-gateway-cluster-it';
const crs = (plural: string, name = '') => `/apis/systemprompt.io/v1alpha1/namespaces/${NS}/${plural}${name ? `/${name}` : ''}`;
const agentSpec = (upstream: string, required: string) => {
  const spec = parse(assistantAgent) as { upstream?: string; card: { security: Array<Record<string, string[]>> } };
  spec.upstream = upstream;
  spec.card.security = [{ oauth2: [required] }];
  return spec;
};

describe('the gateway serving the Tenant and Agent resources of the cluster', () => {
  const seen: http.IncomingHttpHeaders[] = [];
  const upstream = http.createServer((req, res) => {
    seen.push(req.headers);
    res.end('{}');
  });
  const stop = new AbortController();
  let running: Promise<number> | undefined;
  let op: OperatorProcess | undefined;
  let gw = '';
  let upstreamUrl = '';
  const log: string[] = [];
  let asGateway: KubernetesTarget;
  const started = new Date();

  beforeAll(async () => {
    await prepareOperatorNamespace(NS);
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    await kubeHttp().request('POST', crs('agents'), { body: { apiVersion: 'systemprompt.io/v1alpha1', kind: 'Agent', metadata: { name: 'assistant', namespace: NS }, spec: agentSpec(upstreamUrl, 'read') } });
    await kubeHttp().request('POST', crs('tenants'), {
      body: { apiVersion: 'systemprompt.io/v1alpha1', kind: 'Tenant', metadata: { name: 'gwc-a', namespace: NS }, spec: { name: 'gwc-a', users: [{ email: 'ann@a.example.com', scopes: ['user', 'read'] }] } },
    });
    const run = startOperator(['--resync', '30s'], await operatorAccount());
    op = run;
    await waitFor(
      async () => {
        const t = await kubeHttp().request<any>('GET', crs('tenants', 'gwc-a'));
        return (t.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True') ? t : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: 'Tenant gwc-a Ready', onTimeout: (w) => new Error(`timed out waiting for ${w}:\n${run.stderr}`) },
    );
    await setPassword('gwc-a', 'ann@a.example.com');
    const io: Io = { out: (t) => log.push(t), err: (t) => log.push(t), interactive: false, env: {}, cwd: '/' };
    const env = compileEnvironment({ keycloakUrl: KC });
    asGateway = KubernetesTarget.connect((await gatewayAccount()).KUBECONFIG);
    const source = clusterSource(io, asGateway, env, { debounceMs: 50 });
    running = runGateway(io, { dir: '.', listen: '127.0.0.1:0', debounceMs: 50, secrets: asGateway, usageFlushMs: 100, onListening: (u) => (gw = u) }, env, stop.signal, source);
    await until('the gateway listening', async () => gw !== '', 30_000);
  });

  afterAll(async () => {
    stop.abort();
    await running;
    upstream.close();
    await cleanUpOperatorNamespace(NS, [op]);
  });

  const call = (token: string) => fetch(`${gw}/api/v1/agents/assistant/items?tenant=gwc-a`, { headers: { authorization: `Bearer ${token}` } });

  it("lets the operator's tenant through to the Agent resource's upstream, then follows a change of the Agent", async () => {
    expect(log.join('')).toContain('watching the Tenant and Agent resources of every namespace');
    const ann = await login('gwc-a', 'ann@a.example.com', 'openid read');
    expect(scopes(ann.claims)).toContain('read');
    const res = await call(ann.access);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(seen.at(-1)!['x-systemprompt-tenant']).toBe('gwc-a');
    expect(seen.at(-1)!['x-systemprompt-user-email']).toBe('ann@a.example.com');
    // Audited in the tenant's database, written with credentials the gateway's account may read.
    const db = new pg.Client({ connectionString: await secretValue('tenant-gwc-a', 'systemprompt-database', 'DATABASE_URL') });
    await db.connect();
    try {
      await until('the call audited', async () => {
        // This run's rows only: a database outlives its tenant by default.
        const r = await db.query("SELECT count(*)::int AS n FROM systemprompt.audit WHERE email = 'ann@a.example.com' AND decision = 'allowed' AND at >= $1", [started]).catch(() => ({ rows: [{ n: 0 }] }));
        return r.rows[0].n === 1;
      }, 15_000);
    } finally {
      await db.end();
    }
    // That account reads no other Secret.
    await expect(asGateway.readSecretValue('tenant-gwc-a', 'systemprompt-oidc', 'OIDC_CLIENT_ID')).rejects.toMatchObject({ status: 403 });

    // The card now requires write, which ann does not hold: the gateway follows the resource.
    await kubeHttp().request('PATCH', crs('agents', 'assistant'), { contentType: 'application/merge-patch+json', body: { spec: { card: { security: [{ oauth2: ['write'] }] } } } });
    await until('the Agent change loaded', async () => (await call(ann.access)).status === 403, 30_000);
    const before = seen.length;
    const denied = await call(ann.access);
    expect([denied.status, ((await denied.json()) as { error: string }).error]).toEqual([403, 'missing_scope']);
    expect(seen.length).toBe(before);
  });

  it('stops serving a tenant whose Tenant resource is deleted, and its agents with it', async () => {
    const ann = await login('gwc-a', 'ann@a.example.com', 'openid read');
    await kubeHttp().request('DELETE', crs('tenants', 'gwc-a'));
    // From the moment the resource is Terminating the gateway no longer knows the tenant, nor an agent of it.
    await until('the tenant gone from the gateway', async () => (await call(ann.access)).status === 404, 30_000);
    expect(log.join('')).toContain('configuration loaded again: 0 tenants');
    expect((await fetch(`${gw}/api/v1/agents/assistant/.well-known/agent-card.json?tenant=gwc-a`)).status).toBe(404);
  });
});
