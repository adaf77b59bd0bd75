import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanUpOperatorNamespace, kubeHttp, operatorAccount, prepareOperatorNamespace, startOperator, waitFor, type OperatorProcess } from './helpers.js';

/** Two operator replicas on the real stack: idle costs no writes; a killed leader is replaced in time. */
const NS = 'sp-operator-ha';
const tenantPath = `/apis/systemprompt.io/v1alpha1/namespaces/${NS}/tenants/ha-a`;

type Operator = OperatorProcess;

const listenOf = (o: Operator): string => /"listen":"([^"]+)"/.exec(o.stderr)![1]!;
/** Writes to each target so far, from the process's own /metrics. */
async function writes(o: Operator): Promise<Record<string, number>> {
  const text = await (await fetch(`http://${listenOf(o)}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^systemprompt_target_writes_total\{target="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}
const total = (w: Record<string, number>): number => Object.values(w).reduce((a, b) => a + b, 0);

async function readyAt(generation: number, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const t = await kubeHttp().request<any>('GET', tenantPath);
      return t.status?.observedGeneration === generation && (t.status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `ha-a Ready at generation ${generation}`, onTimeout: (w) => new Error(`timed out waiting for ${w}`) },
  );
}

describe('operator replicas', () => {
  const ops: Operator[] = [];
  beforeAll(async () => {
    await prepareOperatorNamespace(NS);
    await kubeHttp().request('POST', `/apis/systemprompt.io/v1alpha1/namespaces/${NS}/tenants`, {
      body: { apiVersion: 'systemprompt.io/v1alpha1', kind: 'Tenant', metadata: { name: 'ha-a', namespace: NS }, spec: { name: 'ha-a', users: [{ email: 'ann@example.com', scopes: ['user'] }] } },
    });
  });
  afterAll(async () => {
    await cleanUpOperatorNamespace(NS, ops);
  });

  it('idle for 60 s: no write to any target; kill -9 the leader: the other reconciles a change within 20 s, applying it once', async () => {
    const account = await operatorAccount();
    ops.push(startOperator(['--resync', '10s'], account), startOperator(['--resync', '10s'], account));
    await readyAt(1, 60_000);
    const leader = () => ops.find((o) => /"msg":"leading"/.test(o.stderr) && o.child.exitCode === null && o.child.signalCode === null)!;
    const first = leader();
    const standby = ops.find((o) => o !== first)!;
    expect(/"msg":"waiting to lead"/.test(standby.stderr)).toBe(true);

    // Idle: six resync passes (every 10 s) over a minute, and not one write. The wait is the measurement.
    const before = await writes(first);
    await new Promise((r) => setTimeout(r, 60_000));
    const after = await writes(first);
    expect(total(after) - total(before)).toBe(0);
    expect((first.stderr.match(/"msg":"reconciled"/g) ?? []).length).toBeGreaterThanOrEqual(6);

    // The leader dies without releasing its Lease; a change arrives meanwhile.
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    await kubeHttp().request('PATCH', tenantPath, { contentType: 'application/merge-patch+json', body: { spec: { quotas: { pods: 9 } } } });
    await readyAt(2, 30_000);
    const tookMs = Date.now() - killedAt;
    console.info(`operator takeover after kill -9, to the change reconciled: ${tookMs} ms`);
    expect(tookMs).toBeLessThan(20_000);
    expect(/"msg":"leading"/.test(standby.stderr)).toBe(true);
    // Applied once: the new leader wrote exactly the quota (one Kubernetes write), nothing else.
    const w = await writes(standby);
    expect(w).toEqual({ kubernetes: 1, postgres: 0, keycloak: 0 });
    const quota = await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-ha-a/resourcequotas/systemprompt-quota');
    expect(quota.spec.hard.pods).toBe('9');

    standby.child.kill('SIGTERM');
    expect(await standby.exited).toBe(0);
  }, 180_000);
});
