import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, cleanUpOperatorNamespace, kubeHttp, namespaceExists, operatorAccount, prepareOperatorNamespace, startOperator, waitFor, type OperatorProcess } from './helpers.js';

/**
 * `systemprompt operator` (first slice) as its own process against the real stack: Tenant
 * resources become realms, namespaces and databases; their status says so; a spec change
 * converges; the process serves metrics and stops cleanly.
 */
const NS = 'sp-operator-it';
const tenantPath = (name = '') => `/apis/systemprompt.io/v1alpha1/namespaces/${NS}/tenants${name ? `/${name}` : ''}`;

const condition = (t: any, type: string) => (t.status?.conditions ?? []).find((c: any) => c.type === type);

describe('systemprompt operator', () => {
  let op: OperatorProcess | undefined;

  beforeAll(async () => {
    await prepareOperatorNamespace(NS);
  });

  afterAll(async () => {
    await cleanUpOperatorNamespace(NS, [op]);
  });

  it('turns a Tenant resource into a realm, namespace and database, reports Ready, converges a spec change, and stops on SIGTERM', async () => {
    await kubeHttp().request('POST', tenantPath(), {
      body: { apiVersion: 'systemprompt.io/v1alpha1', kind: 'Tenant', metadata: { name: 'op-it', namespace: NS }, spec: { name: 'op-it', users: [{ email: 'ann@example.com', scopes: ['user', 'read'] }] } },
    });
    const run = startOperator(['--resync', '10s'], await operatorAccount());
    op = run;

    const ready = (generation: number) =>
      waitFor(
        async () => {
          const t = await kubeHttp().request<any>('GET', tenantPath('op-it'));
          const c = condition(t, 'Ready');
          return c?.status === 'True' && t.status.observedGeneration === generation && c.observedGeneration === generation ? t : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200, what: `Tenant op-it Ready at generation ${generation}`, onTimeout: (w) => new Error(`timed out waiting for ${w}:\n${run.stderr}`) },
      );
    const t1 = await ready(1);
    expect(t1.status).toMatchObject({ realm: 'op-it', namespace: 'tenant-op-it', database: 'tenant_op-it' });
    expect(condition(t1, 'Stalled').status).toBe('False');
    expect(condition(t1, 'Reconciling').status).toBe('False');
    expect(await namespaceExists('tenant-op-it')).toBe(true);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', ['tenant_op-it'])).toHaveLength(1);

    // A spec change (generation 2) converges: a quota appears.
    await kubeHttp().request('PATCH', tenantPath('op-it'), { contentType: 'application/merge-patch+json', body: { spec: { quotas: { pods: 7 } } } });
    await ready(2);
    const quota = await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-op-it/resourcequotas/systemprompt-quota');
    expect(quota.spec.hard.pods).toBe('7');

    // Metrics from the process itself.
    const listen = /"msg":"serving \/metrics, \/healthz, \/readyz","listen":"([^"]+)"/.exec(run.stderr)![1]!;
    const metrics = await (await fetch(`http://${listen}/metrics`)).text();
    expect(metrics).toMatch(/systemprompt_reconciles_total\{kind="Tenant",result="ok"\} [1-9]/);
    expect(metrics).toMatch(/systemprompt_leader 1/);
    expect((await fetch(`http://${listen}/readyz`)).status).toBe(200);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.stderr).toMatch(/"msg":"stopped"/);
    // Every log line is one JSON object.
    for (const line of run.stderr.split('\n').filter((l) => l.startsWith('{'))) expect(() => JSON.parse(line)).not.toThrow();
  });
});
