import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyCrds, applyManifest, deployManifests, killOperator, manifestPath, namespaceExists, operatorAccount, removeCustomResources, kubeHttp, resetTargets, startOperator, waitFor, type OperatorProcess } from './helpers.js';

/**
 * deploy/: the real API server accepts every manifest (server-side dry-run for the Deployment,
 * since this control plane runs no pods), and the operator, run as a process with the service
 * account and RBAC those manifests define, has exactly enough rights to reconcile a Tenant.
 */
describe('deploy/', () => {
  const NS = 'sp-deploy-it';
  let op: OperatorProcess | undefined;

  beforeAll(async () => {
    await resetTargets();
    await applyCrds();
  });
  afterAll(async () => {
    await killOperator(op);
    await removeCustomResources(NS);
    for (const o of deployManifests().reverse()) await kubeHttp().request('DELETE', manifestPath(o)).catch(() => {});
    await resetTargets();
  });

  it('is accepted by the API server: everything applied, the Deployment by server-side dry-run', async () => {
    const objs = deployManifests();
    expect(objs.map((o) => o.kind)).toEqual(expect.arrayContaining(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment']));
    for (const o of objs) await applyManifest(o, o.kind === 'Deployment');
    const dep = objs.find((o) => o.kind === 'Deployment') as any;
    expect(dep.spec.replicas).toBe(2);
    const c = dep.spec.template.spec.containers[0];
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    // With a read-only root, the ConfigSource cache is a volume of its own.
    const cacheDir = c.env.find((e: any) => e.name === 'SYSTEMPROMPT_CACHE_DIR').value;
    const mount = c.volumeMounts.find((m: any) => m.mountPath === cacheDir);
    expect(dep.spec.template.spec.volumes.find((v: any) => v.name === mount.name).emptyDir).toBeDefined();
    expect(dep.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
  });

  it('gives the operator enough rights, as its own service account, to reconcile a Tenant', async () => {
    const { KUBECONFIG: kubeconfig } = await operatorAccount();
    // The service account cannot do what it was not given.
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const asOperator = new (await import('../../src/targets/kube-http.js')).KubeHttp(kc);
    await expect(asOperator.request('GET', '/api/v1/namespaces/kube-system/configmaps')).rejects.toMatchObject({ code: 403 });

    await kubeHttp().request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } } }).catch(() => {});
    await kubeHttp().request('POST', `/apis/systemprompt.io/v1alpha1/namespaces/${NS}/tenants`, {
      body: { apiVersion: 'systemprompt.io/v1alpha1', kind: 'Tenant', metadata: { name: 'dep-it', namespace: NS }, spec: { name: 'dep-it', users: [{ email: 'ann@example.com', scopes: ['user'] }] } },
    });
    const run = startOperator([], { KUBECONFIG: kubeconfig });
    op = run;
    await waitFor(
      async () => {
        const t = await kubeHttp().request<any>('GET', `/apis/systemprompt.io/v1alpha1/namespaces/${NS}/tenants/dep-it`);
        return (t.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'Tenant dep-it Ready', onTimeout: (w) => new Error(`timed out waiting for ${w}:\n${run.stderr}`) },
    );
    expect(await namespaceExists('tenant-dep-it')).toBe(true);
    const role = await kubeHttp().request<any>('GET', '/apis/rbac.authorization.k8s.io/v1/namespaces/tenant-dep-it/roles/systemprompt-tenant');
    expect(role.rules.length).toBeGreaterThan(0); // written through `escalate` on that one Role
    expect(run.stderr).not.toMatch(/"level":"error"/);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });
});
