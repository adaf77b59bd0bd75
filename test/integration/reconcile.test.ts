import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stackPaths } from '../../src/dev/paths.js';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { adminQuery, endpoints, exampleFiles, kubeHttp, makeRepo, namespaceExists, resetTargets, secretValue, sp, spJson, targetEnv, waitFor, writeRepo } from './helpers.js';

/** Connect with a tenant's own DATABASE_URL (from its Secret), optionally to another database. */
async function connectAs(url: string, database?: string): Promise<string> {
  const u = new URL(url);
  if (database) u.pathname = `/${database}`;
  const c = new pg.Client({ connectionString: u.toString() });
  try {
    await c.connect();
    const r = await c.query('SELECT current_user AS u, current_database() AS d');
    return `${r.rows[0].u}@${r.rows[0].d}`;
  } finally {
    await c.end().catch(() => {});
  }
}

describe('plan and apply against the real Kubernetes and PostgreSQL (and Keycloak)', () => {
  // Leave the stack as a user would find it: nothing of ours but retained databases.
  afterAll(async () => {
    await resetTargets();
    await kubeHttp().request('DELETE', '/api/v1/namespaces/tenant-lookalike');
    await adminQuery('DROP DATABASE IF EXISTS "tenant_lookalike"');
  });

  let repo: string;
  const files = exampleFiles();

  beforeAll(async () => {
    await resetTargets();
    // Look-alikes made by hand: never to be touched.
    await kubeHttp().request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenant-lookalike' } } }).catch(() => {});
    await adminQuery('DROP DATABASE IF EXISTS "tenant_lookalike"');
    await adminQuery('CREATE DATABASE "tenant_lookalike"');
    repo = makeRepo(files);
  });

  it('applies the example, and every object exists', async () => {
    const r = await sp(repo, 'apply', '--auto-approve');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Apply complete: \d+ applied, 0 failed/);
    for (const t of ['default', 'customer-a', 'customer-b']) {
      const ns = `tenant-${t}`;
      for (const [path_, name] of [
        [`/api/v1/namespaces/${ns}/resourcequotas`, 'systemprompt-quota'],
        [`/api/v1/namespaces/${ns}/limitranges`, 'systemprompt-limits'],
        [`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`, 'systemprompt-isolation'],
        [`/api/v1/namespaces/${ns}/serviceaccounts`, 'systemprompt-tenant'],
        [`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, 'systemprompt-tenant'],
        [`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, 'systemprompt-tenant'],
        [`/api/v1/namespaces/${ns}/secrets`, 'systemprompt-database'],
        [`/api/v1/namespaces/${ns}/secrets`, 'systemprompt-oidc'],
      ] as const) {
        const list = await kubeHttp().request<{ items: Array<{ metadata: { name: string } }> }>('GET', path_);
        expect(list.items.map((i) => i.metadata.name), `${path_}`).toContain(name);
      }
      const netpol = await kubeHttp().request<any>('GET', `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/systemprompt-isolation`);
      expect(netpol.spec.ingress).toEqual([{ from: [{ podSelector: {} }] }]);
    }
    const dbs = await adminQuery<{ datname: string; owner: string }>(`SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname LIKE 'tenant_%' ORDER BY 1`);
    expect(dbs).toEqual(expect.arrayContaining([
      { datname: 'tenant_customer-a', owner: 'tenant_customer-a' },
      { datname: 'tenant_customer-b', owner: 'tenant_customer-b' },
      { datname: 'tenant_default', owner: 'tenant_default' },
    ]));
  });

  it('plans nothing right after, and the apply after it makes zero writes', async () => {
    expect((await sp(repo, 'plan', '--detailed-exitcode')).code).toBe(0);
    const { code, json } = await spJson(repo, 'apply', '--auto-approve');
    expect(code).toBe(0);
    expect(json.plan.changes).toEqual([]);
    expect(json.result.writes).toBe(0);
    // reads scale with tenants and kinds: a handful per tenant, whatever the users
    expect(json.plan.requests.kubernetes).toBe(8);
    expect(json.plan.requests.postgres).toBe(2);
  });

  it('changes exactly the one object whose value moved', async () => {
    writeRepo(repo, { ...files, 'tenants/customer-a.yaml': files['tenants/customer-a.yaml']!.replace('cpu: "4"', 'cpu: "6"') });
    const { code, json } = await spJson(repo, 'plan', '--detailed-exitcode');
    expect(code).toBe(2);
    expect(json.changes.map((c: any) => `${c.action} ${c.kind} ${c.name}`)).toEqual(['update ResourceQuota tenant-customer-a/systemprompt-quota']);
    expect(json.changes[0].diff.map((d: any) => d.path).sort()).toEqual(['spec.hard["limits.cpu"]', 'spec.hard["requests.cpu"]']);
    const applied = await spJson(repo, 'apply', '--auto-approve');
    expect(applied.json.result).toMatchObject({ applied: 1, writes: 1 });
    const q = await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-customer-a/resourcequotas/systemprompt-quota');
    expect(q.spec.hard['limits.cpu']).toBe('6');
  });

  it('keeps tenants apart: database credentials and service accounts', async () => {
    const urlA = await secretValue('tenant-customer-a', 'systemprompt-database', 'DATABASE_URL');
    const urlB = await secretValue('tenant-customer-b', 'systemprompt-database', 'DATABASE_URL');
    expect(await connectAs(urlA)).toBe('tenant_customer-a@tenant_customer-a');
    expect(await connectAs(urlB)).toBe('tenant_customer-b@tenant_customer-b');
    await expect(connectAs(urlA, 'tenant_customer-b')).rejects.toThrow(/permission denied for database/);
    await expect(connectAs(urlB, 'tenant_customer-a')).rejects.toThrow(/permission denied for database/);
    await expect(connectAs(urlA, 'tenant_default')).rejects.toThrow(/permission denied for database/);
    // a wrong password is refused (scram-sha-256, not trust)
    const wrong = new URL(urlA);
    wrong.password = 'not-the-password';
    await expect(connectAs(wrong.toString())).rejects.toThrow(/password authentication failed/);

    const can = async (ns: string, verb: string, resource: string): Promise<boolean> => {
      const r = await kubeHttp().request<any>('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user: 'system:serviceaccount:tenant-customer-a:systemprompt-tenant', groups: ['system:serviceaccounts', 'system:serviceaccounts:tenant-customer-a'], resourceAttributes: { namespace: ns, verb, resource } },
        },
      });
      return r.status.allowed === true;
    };
    expect(await can('tenant-customer-a', 'get', 'secrets')).toBe(true);
    expect(await can('tenant-customer-b', 'get', 'secrets')).toBe(false);
    expect(await can('tenant-customer-b', 'list', 'pods')).toBe(false);
  });

  it('never shows a password: not in plans, output, debug logs, build output or the servers\' logs', async () => {
    const pgPassword = await secretValue('tenant-customer-a', 'systemprompt-database', 'PGPASSWORD');
    const clientSecret = await secretValue('tenant-customer-a', 'systemprompt-oidc', 'ASSISTANT_CLIENT_SECRET');
    expect(pgPassword.length).toBeGreaterThanOrEqual(40);
    expect(clientSecret.length).toBeGreaterThanOrEqual(20);
    const seen: string[] = [];
    // a change that rewrites both Secrets' tenants: quota and display name move, Secrets are re-read
    writeRepo(repo, { ...files, 'tenants/customer-a.yaml': files['tenants/customer-a.yaml']!.replace('pods: 20', 'pods: 21') });
    for (const args of [['plan', '-o', 'json', '--debug'], ['plan', '-v', '--debug'], ['apply', '--auto-approve', '--debug'], ['apply', '--auto-approve', '-o', 'json']]) {
      const r = await sp(repo, ...args);
      seen.push(r.stdout, r.stderr);
    }
    writeRepo(repo, files);
    const out = makeRepo({});
    const build = await sp(repo, 'build', '--out', `${out}/build`);
    expect(build.code).toBe(0);
    for (const f of readdirSync(`${out}/build`, { recursive: true }) as string[]) {
      const full = path.join(out, 'build', f);
      if (statSync(full).isFile()) seen.push(readFileSync(full, 'utf8'));
    }
    const logs = stackPaths(process.env).logsDir;
    if (existsSync(logs)) for (const f of readdirSync(logs)) seen.push(readFileSync(path.join(logs, f), 'utf8'));
    const all = seen.join('\n');
    expect(all.length).toBeGreaterThan(1000);
    expect(all.includes(pgPassword)).toBe(false);
    expect(all.includes(encodeURIComponent(pgPassword))).toBe(false);
    expect(all.includes(clientSecret)).toBe(false);
    expect((await sp(repo, 'apply', '--auto-approve')).code).toBe(0);
  });

  it('plans a removed tenant as destructive, refuses it without --allow-destroy, and retains its database', async () => {
    const { ['tenants/customer-a.yaml']: _gone, ...rest } = files;
    writeRepo(repo, rest);
    const { json: plan } = await spJson(repo, 'plan');
    expect(plan.changes.filter((c: any) => c.destructive).map((c: any) => `${c.kind} ${c.name}`).sort()).toEqual(['Namespace tenant-customer-a', 'Realm customer-a']);
    expect(plan.retained.map((r: any) => `${r.kind} ${r.name}`)).toEqual(expect.arrayContaining(['Database tenant_customer-a', 'Role tenant_customer-a']));

    const refused = await sp(repo, 'apply', '--auto-approve');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('refusing without --allow-destroy');
    expect(await namespaceExists('tenant-customer-a')).toBe(true);

    const ok = await sp(repo, 'apply', '--auto-approve', '--allow-destroy');
    expect(ok.code, ok.stderr).toBe(0);
    await waitFor(async () => ((await namespaceExists('tenant-customer-a')) ? undefined : true), { timeoutMs: 120_000, what: 'namespace deletion', onTimeout: (w) => new Error(w) });
    const db = await adminQuery(`SELECT 1 FROM pg_database WHERE datname = 'tenant_customer-a'`);
    expect(db).toHaveLength(1);
    expect((await sp(repo, 'plan', '--detailed-exitcode')).code).toBe(0);
  });

  it('never touches an unmanaged namespace or database with a look-alike name', async () => {
    expect(await namespaceExists('tenant-lookalike')).toBe(true);
    expect(await adminQuery(`SELECT 1 FROM pg_database WHERE datname = 'tenant_lookalike'`)).toHaveLength(1);
    // even when a tenant with that name arrives, the existing objects are conflicts, not updates
    writeRepo(repo, { ...files, 'tenants/lookalike.yaml': 'name: lookalike\n' });
    const { json } = await spJson(repo, 'plan');
    expect(json.conflicts.map((c: any) => `${c.target} ${c.kind} ${c.name}`).sort()).toEqual(['kubernetes Namespace tenant-lookalike', 'postgres Database tenant_lookalike']);
    const r = await sp(repo, 'apply', '--auto-approve');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('in the way');
    const ns = await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-lookalike');
    expect(ns.metadata.labels?.['app.kubernetes.io/managed-by']).toBeUndefined();
    writeRepo(repo, files);
  });

  it('applies a saved plan only while the live state still matches it', async () => {
    writeRepo(repo, { ...files, 'tenants/customer-b.yaml': files['tenants/customer-b.yaml']!.replace('pods: 10', 'pods: 12') });
    const planFile = `${repo}/saved.plan.json`;
    const saved = await sp(repo, 'plan', '--out', planFile, '--detailed-exitcode');
    expect(saved.code).toBe(2);
    // someone changes the quota by hand in between
    await kubeHttp().request('PATCH', '/api/v1/namespaces/tenant-customer-b/resourcequotas/systemprompt-quota', {
      body: { spec: { hard: { pods: '11' } } },
      contentType: 'application/merge-patch+json',
    });
    const stale = await sp(repo, 'apply', planFile);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('the live state changed since');
    const again = await sp(repo, 'plan', '--out', planFile);
    expect(again.code).toBe(0);
    const ok = await sp(repo, 'apply', planFile);
    expect(ok.code, ok.stderr).toBe(0);
    const q = await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-customer-b/resourcequotas/systemprompt-quota');
    expect(q.spec.hard.pods).toBe('12');
    writeRepo(repo, files);
    expect((await sp(repo, 'apply', '--auto-approve')).code).toBe(0);
  });

  it('lets only one apply run: the second says who holds the lock', async () => {
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    await kubeHttp().request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases', {
      body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'systemprompt-apply' }, spec: { holderIdentity: 'ops@elsewhere pid 4242', leaseDurationSeconds: 60, acquireTime: now, renewTime: now } },
    });
    try {
      writeRepo(repo, { ...files, 'tenants/customer-b.yaml': files['tenants/customer-b.yaml']!.replace('pods: 10', 'pods: 13') });
      const r = await sp(repo, 'apply', '--auto-approve');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('is held by ops@elsewhere pid 4242');
      expect(r.stderr).toContain('--lock-timeout');
      const q = await kubeHttp().request<any>('GET', '/api/v1/namespaces/tenant-customer-b/resourcequotas/systemprompt-quota');
      expect(q.spec.hard.pods).toBe('10');
    } finally {
      await kubeHttp().request('DELETE', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/systemprompt-apply');
      writeRepo(repo, files);
    }
  });

  it.each([3, 12, 30])('converges after the apply process is killed after %i steps, losing nothing', async (steps) => {
    const kdir = makeRepo({
      'systemprompt.yaml': files['systemprompt.yaml']!,
      ...Object.fromEntries(Object.entries(files).filter(([k]) => k.startsWith('services/'))),
      'tenants/default.yaml': files['tenants/default.yaml']!,
      [`tenants/kill-${steps}.yaml`]: `name: kill-${steps}\nusers:\n  - email: k@example.com\n    scopes: [read]\n`,
    });
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/systemprompt.js'), 'apply', '--auto-approve', '--allow-destroy', '--dir', kdir], { env: targetEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = 0;
    let stderr = '';
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        seen = (stderr.match(/^\[\d+\/\d+\]/gm) ?? []).length;
        if (seen >= steps && child.exitCode === null) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    expect(seen).toBeGreaterThanOrEqual(Math.min(steps, 1));
    const again = await sp(kdir, 'apply', '--auto-approve', '--allow-destroy', '--lock-timeout', '30s');
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect((await sp(kdir, 'plan', '--detailed-exitcode')).code).toBe(0);
    // nothing lost: the password in the Secret is the one the role accepts
    const url = await secretValue(`tenant-kill-${steps}`, 'systemprompt-database', 'DATABASE_URL');
    expect(await connectAs(url)).toBe(`tenant_kill-${steps}@tenant_kill-${steps}`);
  });
});
