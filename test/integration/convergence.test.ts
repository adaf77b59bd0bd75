import { spawn } from 'node:child_process';
import path from 'node:path';
import KcAdminClient from '@keycloak/keycloak-admin-client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { adminQuery, endpoints, kubeHttp, makeRepo, resetTargets, secretValue, sp, spJson, targetEnv, writeRepo } from './helpers.js';

/**
 * Convergence both ways, against the real Keycloak, Kubernetes and PostgreSQL (whose admin login is
 * not a superuser): what the YAML stops saying is removed, values settle, what we did not write is
 * never touched, the lock fences, and a kill at any moment is repaired by the next apply.
 */

const AGENT = `name: helper
tenant_aware: true
redirect_uris: ["https://one.example/cb", "https://two.example/cb"]
card:
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: "http://localhost:8080/api/v1/core/oauth/authorize"
          tokenUrl: "http://localhost:8080/api/v1/core/oauth/token"
          scopes: { user: "Authenticated user access", read: "Read tenant data" }
  security:
    - oauth2: ["user"]
`;
const SECOND_AGENT = AGENT.replace('name: helper', 'name: second');

function tenantFile(name: string, opts: { quotas?: string; displayName?: string; users?: string } = {}): string {
  return [`name: ${name}`, opts.displayName ? `display_name: ${opts.displayName}` : '', opts.quotas ? `quotas:\n${opts.quotas}` : '', `users:\n${opts.users ?? '  - email: ann@example.com\n    scopes: [user, read]'}`, ''].filter(Boolean).join('\n');
}

async function getJson<T = any>(p: string): Promise<T> {
  return kubeHttp().request<T>('GET', p);
}



/** Log in with a tenant's own DATABASE_URL: `user@database`, or the SQLSTATE / error code. */
async function loginWith(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
    const r = await c.query('SELECT current_user AS u, current_database() AS d');
    return `${r.rows[0].u}@${r.rows[0].d}`;
  } catch (e) {
    return `refused ${(e as { code?: string }).code ?? (e as Error).message}`;
  } finally {
    await c.end().catch(() => {});
  }
}

async function keycloak(): Promise<KcAdminClient> {
  const kc = new KcAdminClient({ baseUrl: endpoints.keycloak.url, realmName: 'master' });
  await kc.auth({ grantType: 'password', clientId: 'admin-cli', username: endpoints.keycloak.username!, password: endpoints.keycloak.password! });
  return kc;
}

/** The CLI as its own process (so it can be paused and killed), with every line of stderr kept. */
function spawnCli(dir: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/systemprompt.js'), ...args, '--dir', dir], { env: { ...targetEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (b: Buffer) => (out.stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out.stderr += b.toString()));
  // 'close', not 'exit': every byte of its output has arrived by then.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const waitForErr = (re: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (re.test(out.stderr)) {
          child.stderr.off('data', check);
          resolve();
        }
      };
      child.stderr.on('data', check);
      void exited.then(() => (re.test(out.stderr) ? resolve() : reject(new Error(`exited before ${re}:\n${out.stderr}`))));
      check();
    });
  return { child, out, exited, waitForErr };
}

const planExit = async (dir: string): Promise<number> => (await sp(dir, 'plan', '--detailed-exitcode')).code;

/**
 * Applies `dir` eight times in a row, each run killed with -9 just before its Nth write (N from 3
 * to 250: each run killed mid-run, which is checked), then once more to the end: its next plan is empty.
 */
async function killedEightTimesThenApplied(dir: string): Promise<void> {
  let killedMidRun = 0;
  for (const n of [3, 25, 60, 110, 7, 180, 40, 250]) {
    const run = spawnCli(dir, ['apply', '--auto-approve', '--allow-destroy', '--lock-timeout', '60s'], { SYSTEMPROMPT_FAILPOINT: `write:${n}` });
    const exit = await run.exited;
    if (exit.signal === 'SIGKILL') killedMidRun++;
    else expect(exit.code, run.out.stderr).toBe(0);
  }
  expect(killedMidRun).toBe(8);
  const last = await sp(dir, 'apply', '--auto-approve', '--allow-destroy', '--lock-timeout', '60s');
  expect(last.code, last.stderr).toBe(0);
  expect(await planExit(dir)).toBe(0);
}

describe('convergence on the real stack', () => {
  beforeAll(async () => {
    await resetTargets();
  });
  afterAll(async () => {
    await resetTargets();
    await kubeHttp().request('DELETE', '/api/v1/namespaces/tenant-conv/secrets/hand-made').catch(() => {});
  });

  it('removes what the YAML stopped saying: quota keys, the request rate, an agent, a scope, a redirect URI, a display name', async () => {
    const quotas = '  cpu: "2"\n  memory: 4Gi\n  storage: 10Gi\n  requests_per_minute: 300\n';
    const dir = makeRepo({
      'services/agents/helper.yaml': AGENT,
      'services/agents/second.yaml': SECOND_AGENT,
      'tenants/conv.yaml': tenantFile('conv', { quotas, displayName: 'Conv Inc', users: '  - email: ann@example.com\n    scopes: [user, read]' }),
    });
    const first = await sp(dir, 'apply', '--auto-approve');
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(await planExit(dir)).toBe(0);

    writeRepo(dir, {
      'services/agents/helper.yaml': AGENT.replace(', "https://two.example/cb"', ''),
      'tenants/conv.yaml': tenantFile('conv', { quotas: '  cpu: "2"\n  memory: 4Gi\n', users: '  - email: ann@example.com\n    scopes: [user]' }),
    });
    const { json: plan } = await spJson(dir, 'plan');
    const diffs: string[] = plan.changes.flatMap((c: any) => (c.action === 'delete' ? [`- ${c.kind} ${c.name}`] : c.diff.map((d: any) => `${c.kind} ${d.path} ${JSON.stringify(d.before)} -> ${JSON.stringify(d.after)}`)));
    expect(diffs).toContain('ResourceQuota spec.hard["requests.storage"] "10Gi" -> undefined');
    expect(diffs).toContain('Namespace metadata.annotations["systemprompt.io/requests-per-minute"] "300" -> undefined');
    expect(diffs).toContain('- Client conv/second');
    expect(diffs.some((d) => d.startsWith('Secret data.SECOND_CLIENT_ID') && d.endsWith('-> undefined'))).toBe(true);
    expect(diffs).toContain('User realmRoles ["member:read+user"] -> ["member:user"]');
    expect(diffs).toContain('- RealmRole conv/member:read+user');
    expect(diffs).toContain('Client redirectUris ["http://127.0.0.1:8080/*","http://localhost:8080/*","https://one.example/cb","https://two.example/cb"] -> ["http://127.0.0.1:8080/*","http://localhost:8080/*","https://one.example/cb"]');
    expect(diffs).toContain('Realm displayName "Conv Inc" -> "conv"');

    const applied = await sp(dir, 'apply', '--auto-approve');
    expect(applied.code, applied.stderr).toBe(0);
    const quota = await getJson('/api/v1/namespaces/tenant-conv/resourcequotas/systemprompt-quota');
    expect(Object.keys(quota.spec.hard).sort()).toEqual(['limits.cpu', 'limits.memory', 'requests.cpu', 'requests.memory']);
    const ns = await getJson('/api/v1/namespaces/tenant-conv');
    expect(ns.metadata.annotations?.['systemprompt.io/requests-per-minute']).toBeUndefined();
    const oidc = await getJson('/api/v1/namespaces/tenant-conv/secrets/systemprompt-oidc');
    expect(Object.keys(oidc.data).sort()).toEqual(['HELPER_CLIENT_ID', 'HELPER_CLIENT_SECRET', 'OIDC_ISSUER', 'TENANT_ID']);
    const kc = await keycloak();
    const clients = await kc.clients.find({ realm: 'conv' });
    expect(clients.find((c) => c.clientId === 'second')).toBeUndefined();
    expect(clients.find((c) => c.clientId === 'helper')!.redirectUris!.sort()).toEqual(['http://127.0.0.1:8080/*', 'http://localhost:8080/*', 'https://one.example/cb']);
    expect((await kc.realms.findOne({ realm: 'conv' }))!.displayName).toBe('conv');
    const [ann] = await kc.users.find({ realm: 'conv', username: 'ann@example.com', exact: true });
    // Held through the one role granted: the scopes' roles are composites of it.
    expect((await kc.users.listRealmRoleMappings({ realm: 'conv', id: ann!.id! })).map((r) => r.name).filter((n) => n!.startsWith('member'))).toEqual(['member:user']);
    expect((await kc.users.listCompositeRealmRoleMappings({ realm: 'conv', id: ann!.id! })).map((r) => r.name).filter((n) => n!.startsWith('scope:'))).toEqual(['scope:user']);
    expect((await kc.roles.find({ realm: 'conv' })).map((r) => r.name)).not.toContain('member:read+user');
    expect(await planExit(dir)).toBe(0);
  });

  it('compares quantities exactly: 0.7 CPUs, 1.5Gi and 2.3 CPUs settle after one apply', async () => {
    for (const quotas of ['  cpu: "0.7"\n  memory: 1.5Gi\n', '  cpu: 2.3\n  memory: 1536Mi\n', '  cpu: "0.35"\n  memory: 1.4Gi\n']) {
      const dir = makeRepo({ 'tenants/conv.yaml': tenantFile('conv', { quotas }) });
      const r = await sp(dir, 'apply', '--auto-approve', '--allow-destroy', '--target', 'kubernetes');
      expect(r.code, r.stderr + r.stdout).toBe(0);
      const again = await sp(dir, 'plan', '--detailed-exitcode', '--target', 'kubernetes');
      expect(again.code, quotas + again.stdout).toBe(0);
    }
    const quota = await getJson('/api/v1/namespaces/tenant-conv/resourcequotas/systemprompt-quota');
    expect(quota.spec.hard['limits.cpu']).toBe('350m'); // the server's own spelling, which we accept as equal
  });

  it('leaves a labelled Secret it did not write alone, and prints none of its value', async () => {
    const dir = makeRepo({ 'tenants/conv.yaml': tenantFile('conv') });
    expect((await sp(dir, 'apply', '--auto-approve', '--allow-destroy')).code).toBe(0);
    const value = `hand-made-${Date.now()}`;
    await kubeHttp().request('POST', '/api/v1/namespaces/tenant-conv/secrets', {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hand-made', labels: { 'app.kubernetes.io/managed-by': 'systemprompt', 'systemprompt.io/tenant': 'conv' } }, stringData: { token: value } },
    });
    const plainPlan = await sp(dir, 'plan', '-v', '--detailed-exitcode');
    const { json } = await spJson(dir, 'plan', '--out', path.join(dir, 'saved.plan'));
    expect(plainPlan.code, plainPlan.stdout).toBe(0);
    expect(json.changes).toEqual([]);
    const { readFileSync } = await import('node:fs');
    for (const text of [plainPlan.stdout, plainPlan.stderr, JSON.stringify(json), readFileSync(path.join(dir, 'saved.plan'), 'utf8')]) {
      expect(text).not.toContain(value);
      expect(text).not.toContain(Buffer.from(value).toString('base64'));
    }
    // and no Secret value of ours either, even in a plan that writes Secrets
    writeRepo(dir, { 'tenants/conv.yaml': tenantFile('conv').replace('name: conv', 'name: conv\ndisplay_name: Again') });
    await kubeHttp().request('DELETE', '/api/v1/namespaces/tenant-conv/secrets/systemprompt-oidc');
    const password = await secretValue('tenant-conv', 'systemprompt-database', 'PGPASSWORD');
    const withSecrets = await sp(dir, 'plan', '-v', '-o', 'json');
    expect(withSecrets.stdout).toContain('systemprompt-oidc');
    expect(withSecrets.stdout).not.toContain(password);
    expect(withSecrets.stdout).not.toContain('127.0.0.1:');
    expect((await sp(dir, 'apply', '--auto-approve')).code).toBe(0);
    expect(await secretValue('tenant-conv', 'hand-made', 'token')).toBe(value);
  });

  it('two applies at once: exactly one writes', async () => {
    const dir = makeRepo({ 'tenants/race-a.yaml': tenantFile('race-a'), 'tenants/race-b.yaml': tenantFile('race-b') });
    const runs = [spawnCli(dir, ['apply', '--auto-approve', '--allow-destroy', '-o', 'json']), spawnCli(dir, ['apply', '--auto-approve', '--allow-destroy', '-o', 'json'])];
    const exits = await Promise.all(runs.map((r) => r.exited));
    const writes = runs.map((r, i) => (exits[i]!.code === 0 ? (JSON.parse(r.out.stdout) as { result: { writes: number } }).result.writes : 0));
    expect(writes.filter((w) => w > 0), runs.map((r) => r.out.stderr).join('\n')).toHaveLength(1);
    // the other was refused the lock, naming its holder, or found nothing left to do under it
    const loser = runs[writes.findIndex((w) => w === 0)]!;
    expect(loser.out.stderr + loser.out.stdout).toMatch(/is held by|"writes": 0/);
    expect(await planExit(dir)).toBe(0);
  });

  it('a holder paused past its lease writes nothing after it resumes; another apply takes over', async () => {
    const tenants = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`tenants/pause-${i}.yaml`, tenantFile(`pause-${i}`)]));
    const dir = makeRepo(tenants);
    const a = spawnCli(dir, ['apply', '--auto-approve', '--allow-destroy', '--concurrency', '1', '--debug']);
    await a.waitForErr(/^\[\d+\/\d+\]/m);
    a.child.kill('SIGSTOP');
    // B waits for A's lease to expire (15 s without renewal), takes it over and finishes the job.
    const b = spawnCli(dir, ['apply', '--auto-approve', '--allow-destroy', '--lock-timeout', '60s']);
    const bExit = await b.exited;
    expect(bExit.code, b.out.stderr + b.out.stdout).toBe(0);
    expect(b.out.stderr).toMatch(/waiting for the apply lock held by/);
    expect(b.out.stdout).toMatch(/Apply complete: [1-9]\d* applied/);
    const resumedAt = new Date().toISOString();
    a.child.kill('SIGCONT');
    const aExit = await a.exited;
    expect(aExit.code).toBe(1);
    expect(a.out.stderr).toMatch(/lock/i);
    const writesAfterResume = a.out.stderr.split('\n').filter((l) => /^debug: (\S+) \S+ write /.test(l) && l.slice(7, 31) > resumedAt);
    expect(writesAfterResume).toEqual([]);
    // A did write before its pause: the fault landed mid-run
    expect(a.out.stderr.split('\n').filter((l) => /^debug: \S+ \S+ write /.test(l)).length).toBeGreaterThan(0);
    expect(await planExit(dir)).toBe(0);
  });

  it('kill -9 between the Secret write and ALTER ROLE: the next plan shows the repair, and DATABASE_URL logs in after it', async () => {
    const dir = makeRepo({ 'tenants/pw.yaml': tenantFile('pw') });
    const made = await sp(dir, 'apply', '--auto-approve', '--allow-destroy');
    expect(made.code, made.stderr + made.stdout).toBe(0);
    // Lose the Secret (as when its namespace is recreated): the next apply stores a new password.
    await kubeHttp().request('DELETE', '/api/v1/namespaces/tenant-pw/secrets/systemprompt-database');
    const killed = spawnCli(dir, ['apply', '--auto-approve'], { SYSTEMPROMPT_FAILPOINT: 'match:postgres set password of role tenant_pw' });
    expect((await killed.exited).signal).toBe('SIGKILL');
    expect(killed.out.stderr).toMatch(/failpoint: SIGKILL before write/);
    // The fault is real: the Secret holds the new password, the role still has the old one.
    const url = await secretValue('tenant-pw', 'systemprompt-database', 'DATABASE_URL');
    expect(await loginWith(url)).toBe('refused 28P01');
    const { json: plan } = await spJson(dir, 'plan');
    expect(plan.changes.map((c: any) => `${c.action} ${c.target} ${c.kind} ${c.name}`)).toEqual(['update postgres Role tenant_pw']);
    const repaired = await sp(dir, 'apply', '--auto-approve', '--lock-timeout', '30s');
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(await loginWith(url)).toBe('tenant_pw@tenant_pw');
    expect(await planExit(dir)).toBe(0);
  });

  it('20 tenants x 20 users, killed with -9 at eight moments in a row, then one last apply: empty plan, every DATABASE_URL logs in', async () => {
    const users = Array.from({ length: 20 }, (_, i) => `  - email: u${i}@example.com\n    scopes: [user, read]`).join('\n');
    const files = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`tenants/sweep-${String(i).padStart(2, '0')}.yaml`, tenantFile(`sweep-${String(i).padStart(2, '0')}`, { users })]));
    const dir = makeRepo(files);
    await killedEightTimesThenApplied(dir);
    for (const f of Object.keys(files)) {
      const t = path.basename(f, '.yaml');
      const url = await secretValue(`tenant-${t}`, 'systemprompt-database', 'DATABASE_URL');
      expect(await loginWith(url)).toBe(`tenant_${t}@tenant_${t}`);
    }
    const rows = await adminQuery<{ super: boolean }>('SELECT rolsuper AS super FROM pg_roles WHERE rolname = current_user');
    expect(rows[0]!.super).toBe(false); // all of this as an admin that is not a superuser
  }, 900_000);

  it('organization isolation, 10 tenants x 20 users in one shared realm, killed with -9 at eight moments in a row, then one last apply: empty plan, each organization holds exactly its members, every DATABASE_URL logs in', async () => {
    const realm = 'sp-org-sweep';
    const names = Array.from({ length: 10 }, (_, i) => `osweep-${i}`);
    const emailsOf = (t: string): string[] => Array.from({ length: 20 }, (_, u) => `u${u}@${t}.example.com`);
    const files: Record<string, string> = { 'systemprompt.yaml': `tenancy:\n  isolation: organization\n  realm: ${realm}\n  default_tenant: osweep-0\n` };
    for (const t of names) files[`tenants/${t}.yaml`] = tenantFile(t, { users: emailsOf(t).map((e) => `  - email: ${e}\n    scopes: [user, read]`).join('\n') });
    const dir = makeRepo(files);
    // One apply from empty writes about 790 times (650 of them to Keycloak); the eight killed runs stop after 667.
    await killedEightTimesThenApplied(dir);

    const kc = await keycloak();
    const orgs = await kc.organizations.find({ realm, max: 100 });
    expect(orgs.map((o) => o.alias).sort()).toEqual([...names].sort());
    for (const org of orgs) {
      const members = await kc.organizations.listMembers({ realm, orgId: org.id!, max: 100 });
      expect(members.map((m) => m.username).sort(), org.alias).toEqual(emailsOf(org.alias!).sort());
    }
    expect(await kc.users.count({ realm })).toBe(200); // no user made twice by a run cut off after it
    for (const t of names) {
      const url = await secretValue(`tenant-${t}`, 'systemprompt-database', 'DATABASE_URL');
      expect(await loginWith(url)).toBe(`tenant_${t}@tenant_${t}`);
    }
  }, 900_000);
});
