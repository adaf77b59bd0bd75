import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, assistantAgent, login, scopes, setPassword } from './oidc.js';
import { gitWorkTree, type GitWorkTree } from './git-servers.js';
import { adminQuery, cleanUpOperatorNamespace, kubeHttp, namespaceExists, operatorAccount, prepareOperatorNamespace, startOperator, waitFor, type OperatorProcess } from './helpers.js';

/**
 * A ConfigSource on the real stack, with the operator as its own process: a bare git repository on
 * disk; a commit adding a tenant file becomes a Tenant object (owned by the ConfigSource) that the
 * operator reconciles to Ready; a broken commit stalls the ConfigSource with its diagnostics and
 * touches nothing; the fixing commit recovers without a restart; a commit removing a user's scope
 * shows in her next real token; a client deleted by hand comes back within one resync.
 */
const NS = 'sp-configsource-it';
const api = '/apis/systemprompt.io/v1alpha1';
const csPath = `${api}/namespaces/${NS}/configsources/main`;
const tenantPath = (name: string) => `${api}/namespaces/${NS}/tenants/${name}`;
const condition = (o: any, type: string) => (o.status?.conditions ?? []).find((c: any) => c.type === type);

describe('ConfigSource', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sp-cs-it-'));
  const origin = path.join(root, 'origin.git');
  const work = path.join(root, 'work');
  let op: OperatorProcess | undefined;
  const stderr = (): string => op?.stderr ?? '';

  let repo: GitWorkTree;
  const commit = (files: Record<string, string>, message: string): string => repo.commit(files, message);
  const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000) =>
    waitFor(probe, { timeoutMs, intervalMs: 250, what, onTimeout: (w) => new Error(`timed out waiting for ${w}:\n${stderr()}`) });

  beforeAll(async () => {
    await prepareOperatorNamespace(NS);
    repo = gitWorkTree(origin, work);
  });

  afterAll(async () => {
    await cleanUpOperatorNamespace(NS, [op]);
    rmSync(root, { recursive: true, force: true });
  });

  it('applies a commit\'s new tenant (owned, Ready, its namespace and database exist), stalls on a broken commit without touching it, and recovers on the fix', async () => {
    const c1 = commit({ 'systemprompt.yaml': 'tenancy:\n  enabled: true\n', 'services/agents/assistant.yaml': assistantAgent }, 'no tenants, one agent');
    const cs = await kubeHttp().request<any>('POST', `${api}/namespaces/${NS}/configsources`, {
      body: { apiVersion: 'systemprompt.io/v1alpha1', kind: 'ConfigSource', metadata: { name: 'main', namespace: NS }, spec: { git: { url: `file://${origin}`, ref: { branch: 'main' } }, interval: '2s' } },
    });
    const run = startOperator(['--resync', '10s'], { ...(await operatorAccount()), SYSTEMPROMPT_CACHE_DIR: path.join(root, 'cache') });
    op = run;
    const child = run.child;
    const exited = run.exited;
    const applied = (rev: string) =>
      until(`ConfigSource applied at ${rev}`, async () => {
        const got = await kubeHttp().request<any>('GET', csPath);
        return got.status?.lastAppliedRevision === rev && condition(got, 'Ready')?.status === 'True' ? got : undefined;
      });
    const tenantReady = (generation: number, timeoutMs = 60_000) =>
      until(
        `Tenant cs-it Ready at generation ${generation}`,
        async () => {
          const t = await kubeHttp().request<any>('GET', tenantPath('cs-it')).catch(() => undefined);
          return t && condition(t, 'Ready')?.status === 'True' && t.status.observedGeneration === generation ? t : undefined;
        },
        timeoutMs,
      );

    // The first revision (no tenants) applies.
    const s1 = await applied(c1);
    expect(s1.status).toMatchObject({ lastAttemptedRevision: c1, observedGeneration: 1, diagnostics: [] });
    expect(condition(s1, 'Stalled').status).toBe('False');

    // A commit adds a tenant file: the Tenant object appears, owned by the ConfigSource, and becomes Ready.
    const c2 = commit({ 'tenants/cs-it.yaml': 'name: cs-it\nusers:\n  - email: ann@example.com\n    scopes: [user, read, write]\n' }, 'add cs-it');
    const committed = Date.now();
    const s2 = await applied(c2);
    expect(s2.status.plan).toEqual({ create: 1, update: 0, delete: 0 });
    const t1 = await tenantReady(1, Math.max(1, 30_000 - (Date.now() - committed)));
    console.info(`commit of a new tenant to Tenant Ready: ${Date.now() - committed} ms`);
    expect(t1.metadata.labels['systemprompt.io/config-source']).toBe('main');
    expect(t1.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'ConfigSource', name: 'main', uid: cs.metadata.uid, controller: true })]);
    expect(t1.status).toMatchObject({ realm: 'cs-it', namespace: 'tenant-cs-it', database: 'tenant_cs-it' });
    expect(await namespaceExists('tenant-cs-it')).toBe(true);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', ['tenant_cs-it'])).toHaveLength(1);
    await setPassword('cs-it', 'ann@example.com');
    expect(scopes((await login('cs-it', 'ann@example.com', 'openid read write')).claims)).toContain('write');

    // A broken commit: Stalled with file:line:col diagnostics; the applied revision and the Tenant stay.
    const c3 = commit({ 'tenants/cs-it.yaml': 'name: cs-it\nusers: [\n  - email: ann@example.com\n' }, 'break it');
    const s3 = await until(`ConfigSource stalled at ${c3}`, async () => {
      const got = await kubeHttp().request<any>('GET', csPath);
      return got.status?.lastAttemptedRevision === c3 && condition(got, 'Stalled')?.status === 'True' ? got : undefined;
    });
    expect(condition(s3, 'Stalled').reason).toBe('InvalidConfiguration');
    expect(condition(s3, 'Ready').status).toBe('False');
    expect(s3.status.lastAppliedRevision).toBe(c2);
    expect(s3.status.diagnostics.length).toBeGreaterThan(0);
    for (const d of s3.status.diagnostics) expect(d).toMatch(/^tenants\/cs-it\.yaml:\d+:\d+: SP\d{3}: /);
    const t2 = await kubeHttp().request<any>('GET', tenantPath('cs-it'));
    expect(t2.metadata.generation).toBe(1);
    expect(condition(t2, 'Ready').status).toBe('True');
    expect(await namespaceExists('tenant-cs-it')).toBe(true);

    // The fixing commit (with a quota) recovers without a restart: generation 2 converges.
    const c4 = commit({ 'tenants/cs-it.yaml': 'name: cs-it\nquotas:\n  pods: 5\nusers:\n  - email: ann@example.com\n    scopes: [user, read, write]\n' }, 'fix it');
    const s4 = await applied(c4);
    expect(s4.status).toMatchObject({ lastAttemptedRevision: c4, diagnostics: [], plan: { create: 0, update: 1, delete: 0 } });
    expect(condition(s4, 'Stalled').status).toBe('False');
    await tenantReady(2);
    const quota = await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-cs-it/resourcequotas/systemprompt-quota');
    expect(quota.spec.hard.pods).toBe('5');

    // A commit removes a scope of ann's: her next real token lacks it.
    const c5 = commit({ 'tenants/cs-it.yaml': 'name: cs-it\nquotas:\n  pods: 5\nusers:\n  - email: ann@example.com\n    scopes: [user, read]\n' }, 'ann loses write');
    await applied(c5);
    await tenantReady(3);
    const after = scopes((await login('cs-it', 'ann@example.com', 'openid read write')).claims);
    expect(after).toContain('read');
    expect(after).not.toContain('write');

    // The agent's client deleted in Keycloak by hand comes back within one resync (10 s here, plus the reconcile).
    const kc = await admin();
    const [client] = await kc.clients.find({ realm: 'cs-it', clientId: 'assistant' });
    await kc.clients.del({ realm: 'cs-it', id: client!.id! });
    const deletedAt = Date.now();
    // Back means usable: ann signs in through it again (the client secret is the one the tenant's Secret holds).
    const signedIn = await until(
      'the assistant client to be recreated, with its scopes',
      async () => login('cs-it', 'ann@example.com', 'openid read').catch(() => undefined),
      20_000,
    );
    console.info(`client deleted by hand to signed in through it again: ${Date.now() - deletedAt} ms (resync 10 s)`);
    expect(scopes(signedIn.claims)).toContain('read');
    const [recreated] = await kc.clients.find({ realm: 'cs-it', clientId: 'assistant' });
    expect(recreated!.id).not.toBe(client!.id);

    // Removing the file prunes the Tenant object.
    repo.git('rm', '--quiet', 'tenants/cs-it.yaml');
    repo.git('commit', '--quiet', '-m', 'remove cs-it');
    repo.git('push', '--quiet', 'origin', 'main');
    const c6 = repo.git('rev-parse', 'HEAD');
    const s6 = await applied(c6);
    expect(s6.status.plan).toEqual({ create: 0, update: 0, delete: 1 });
    // Without spec.allowDestroy the tenant's deletion waits: the object stays, Terminating, and its namespace stays.
    await until('Tenant cs-it terminating', async () => ((await kubeHttp().request<any>('GET', tenantPath('cs-it'))).metadata.deletionTimestamp ? true : undefined));
    await until('the wait to be logged', async () => (/"msg":"tenant deletion waits for allowDestroy"/.test(stderr()) ? true : undefined));
    expect((await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-cs-it')).status.phase).toBe('Active');
    // allowDestroy: true lets it go: the realm and namespace are deleted, then the object.
    await kubeHttp().request('PATCH', `/apis/systemprompt.io/v1alpha1/namespaces/${NS}/configsources/main`, { contentType: 'application/merge-patch+json', body: { spec: { allowDestroy: true } } });
    await until('Tenant cs-it pruned', async () => ((await kubeHttp().request('GET', tenantPath('cs-it')).then(() => false, (e: { code?: number }) => e.code === 404)) ? true : undefined));
    const nsAfter = await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-cs-it').catch(() => undefined);
    expect(nsAfter === undefined || nsAfter.status?.phase === 'Terminating').toBe(true);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const line of stderr().split('\n').filter((l) => l.startsWith('{'))) expect(() => JSON.parse(line)).not.toThrow();
    expect(stderr()).toMatch(/"msg":"config source applied"/);
  });
});
