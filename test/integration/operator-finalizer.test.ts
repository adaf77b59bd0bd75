import KcAdminClient from '@keycloak/keycloak-admin-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, cleanUpOperatorNamespace, endpoints, kubeHttp, namespaceExists, operatorAccount, prepareOperatorNamespace, startOperator, waitFor, type OperatorProcess } from './helpers.js';

/** Deleting a Tenant resource removes its realm and namespace, keeps its database (retain), then lets the resource go. */
const NS = 'sp-operator-fin';
const tenantPath = `/apis/systemprompt.io/v1alpha1/namespaces/${NS}/tenants/fin-a`;

describe('operator: deleting a Tenant', () => {
  let op: OperatorProcess | undefined;
  beforeAll(async () => {
    await prepareOperatorNamespace(NS);
  });
  afterAll(async () => {
    await cleanUpOperatorNamespace(NS, [op]);
  });

  it('removes its realm and namespace, retains its database, and releases the finalizer', async () => {
    await kubeHttp().request('POST', `/apis/systemprompt.io/v1alpha1/namespaces/${NS}/tenants`, {
      body: { apiVersion: 'systemprompt.io/v1alpha1', kind: 'Tenant', metadata: { name: 'fin-a', namespace: NS }, spec: { name: 'fin-a', users: [] } },
    });
    const run = startOperator(['--resync', '10s'], await operatorAccount());
    op = run;
    await waitFor(
      async () => {
        const t = await kubeHttp().request<any>('GET', tenantPath);
        return (t.metadata.finalizers ?? []).includes('systemprompt.io/cleanup') && (t.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'fin-a Ready with its finalizer', onTimeout: (w) => new Error(`timed out waiting for ${w}:\n${run.stderr}`) },
    );
    expect(await namespaceExists('tenant-fin-a')).toBe(true);

    await kubeHttp().request('DELETE', tenantPath);
    await waitFor(
      async () => kubeHttp().request('GET', tenantPath).then(() => undefined, (e: { code?: number }) => (e.code === 404 ? true : undefined)),
      { timeoutMs: 60_000, intervalMs: 200, what: 'the Tenant resource to go', onTimeout: (w) => new Error(`timed out waiting for ${w}:\n${run.stderr}`) },
    );
    // The namespace is being deleted (or gone), the realm is gone, the database stays (deletion_policy: retain).
    const ns = await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-fin-a').catch(() => undefined);
    expect(ns === undefined || ns.status?.phase === 'Terminating').toBe(true);
    const kc = new KcAdminClient({ baseUrl: endpoints.keycloak.url, realmName: 'master' });
    await kc.auth({ grantType: 'password', clientId: 'admin-cli', username: endpoints.keycloak.username!, password: endpoints.keycloak.password! });
    expect(await kc.realms.findOne({ realm: 'fin-a' })).toBeFalsy();
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', ['tenant_fin-a'])).toHaveLength(1);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });
});
