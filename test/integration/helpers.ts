import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import pg from 'pg';
import { inject } from 'vitest';
import { run } from '../../src/cli/main.js';
import { LOCK_NAME, LOCK_NAMESPACE } from '../../src/commands/apply.js';
import { stopGroup, waitFor } from '../../src/dev/process.js';
import { kubeLeaseStore } from '../../src/reconcile/lease.js';
import { KubeHttp } from '../../src/targets/kube-http.js';
import { bufferIo } from '../helpers/io.js';
import { countCustomResources, CUSTOM_RESOURCE_PLURALS, deleteCustomResources, kubeHttpFor } from './custom-resources.js';
import { PROJECT_ROOT } from '../helpers/repo.js';

export const endpoints = inject('endpoints');

/** The Redis the tests use (SYSTEMPROMPT_REDIS_URL, else the stack's); it holds a password: never print it. */
export function redisUrl(): string {
  const url = inject('redisUrl');
  if (!url) throw new Error('no Redis for the tests: set SYSTEMPROMPT_REDIS_URL or run the local stack (`systemprompt dev up` starts its Redis)');
  return url;
}

/** The environment of DESIGN §2, pointing at the stack the tests run against. */
export function targetEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    SYSTEMPROMPT_KEYCLOAK_URL: endpoints.keycloak.url,
    SYSTEMPROMPT_KEYCLOAK_USER: endpoints.keycloak.username,
    SYSTEMPROMPT_KEYCLOAK_PASSWORD: endpoints.keycloak.password,
    KUBECONFIG: endpoints.kubeconfigPath,
    SYSTEMPROMPT_POSTGRES_URL: endpoints.postgresUrl,
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI in-process against the test stack. */
export async function sp(dir: string, ...args: string[]): Promise<CliResult> {
  const io = bufferIo(dir, targetEnv());
  const code = await run(['node', 'systemprompt', ...args, '--dir', dir], io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

export async function spJson<T = any>(dir: string, ...args: string[]): Promise<{ code: number; json: T; stderr: string }> {
  const r = await sp(dir, ...args, '-o', 'json');
  let json: T;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, json, stderr: r.stderr };
}

/** The example config of the repository root, as files. */
export function exampleFiles(): Record<string, string> {
  const out: Record<string, string> = { 'systemprompt.yaml': readFileSync(path.join(PROJECT_ROOT, 'systemprompt.yaml'), 'utf8') };
  for (const dir of ['tenants', 'services/agents']) {
    for (const f of readdirSync(path.join(PROJECT_ROOT, dir))) if (f.endsWith('.yaml')) out[`${dir}/${f}`] = readFileSync(path.join(PROJECT_ROOT, dir, f), 'utf8');
  }
  return out;
}

/** A config repository in a fresh temporary folder. */
export function makeRepo(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-it-'));
  writeRepo(dir, files);
  return dir;
}

export function writeRepo(dir: string, files: Record<string, string>): void {
  for (const sub of ['tenants', 'services/agents']) rmSync(path.join(dir, sub), { recursive: true, force: true });
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
}

export function kubeHttp(): KubeHttp {
  return kubeHttpFor(endpoints);
}

export async function namespaceExists(name: string): Promise<boolean> {
  try {
    await kubeHttp().request('GET', `/api/v1/namespaces/${name}`);
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === 404) return false;
    throw e;
  }
}

/**
 * After a test's operator has stopped: delete the Tenants, Agents and ConfigSources in `namespace`,
 * dropping finalizers nobody is left to release, wait until they are gone, then delete the
 * namespace. A Tenant left terminating with its finalizer would hold up whatever runs next
 * (a CRD deletion waits for every one of its objects).
 */
export async function removeCustomResources(namespace: string): Promise<void> {
  await deleteCustomResources(kubeHttp(), namespace);
  for (const plural of CUSTOM_RESOURCE_PLURALS) {
    await waitFor(async () => ((await countCustomResources(kubeHttp(), namespace, plural)) === 0 ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: `${plural} in ${namespace} to be deleted`,
      onTimeout: (w) => new Error(`timed out waiting for ${w}`),
    });
  }
  await kubeHttp()
    .request('DELETE', `/api/v1/namespaces/${namespace}`)
    .catch((e: { code?: number }) => {
      if (e.code !== 404) throw e;
    });
}

/** Before an operator test: no targets left from earlier files, the CRDs installed, the test's namespace there. */
export async function prepareOperatorNamespace(namespace: string): Promise<void> {
  await resetTargets();
  await applyCrds();
  await kubeHttp().request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } } }).catch(() => {});
}

/** After an operator test: its operators stopped (waited for), its custom resources and namespace removed, the targets reset. */
export async function cleanUpOperatorNamespace(namespace: string, operators: Array<OperatorProcess | undefined>): Promise<void> {
  for (const o of operators) await killOperator(o);
  await removeCustomResources(namespace);
  await resetTargets();
}

/** Remove everything systemprompt manages (an empty config, applied with --allow-destroy), and wait until namespaces are gone. */
export async function resetTargets(): Promise<void> {
  const dir = makeRepo({ 'systemprompt.yaml': 'tenancy:\n  enabled: true\n' });
  const r = await sp(dir, 'apply', '--auto-approve', '--allow-destroy', '--lock-timeout', '60s');
  if (r.code !== 0) throw new Error(`reset failed:\n${r.stdout}\n${r.stderr}`);
  await waitFor(
    async () => {
      const list = await kubeHttp().request<{ items: unknown[] }>('GET', '/api/v1/namespaces', { query: { labelSelector: 'app.kubernetes.io/managed-by=systemprompt' } });
      return list.items.length === 0 ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 250, what: 'managed namespaces to be deleted', onTimeout: (w) => new Error(`timed out waiting for ${w}`) },
  );
  // An apply with nothing to change takes no lock, so the reset above may not have waited for it:
  // wait here until no holder has it, so the next test's apply (without --lock-timeout) is not
  // refused for a Lease a killed process left behind.
  await waitFor(async () => ((await applyLockHolder()) === undefined ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 250,
    what: 'the apply lock to be free',
    onTimeout: (w) => new Error(`timed out waiting for ${w}`),
  });
}

/** Who holds the apply Lease now: undefined when it is absent, released, or not renewed within its duration. */
export async function applyLockHolder(): Promise<string | undefined> {
  const lease = await kubeLeaseStore(kubeHttp(), LOCK_NAMESPACE, LOCK_NAME).get();
  if (!lease?.holderIdentity || !lease.renewTime) return undefined;
  return Date.parse(lease.renewTime) + (lease.leaseDurationSeconds ?? 15) * 1000 > Date.now() ? lease.holderIdentity : undefined;
}

export { waitFor };

/** A query as the stack's PostgreSQL admin (not a superuser). */
export async function adminQuery<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: endpoints.postgresUrl });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** A decoded value of a Secret, read the way a workload of the tenant would. */
export async function secretValue(namespace: string, name: string, key: string): Promise<string> {
  const s = await kubeHttp().request<{ data: Record<string, string> }>('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`);
  return Buffer.from(s.data[key]!, 'base64').toString('utf8');
}

/** The CRDs of crds/, applied server-side and Established. */
export async function applyCrds(): Promise<void> {
  for (const f of readdirSync(path.join(PROJECT_ROOT, 'crds')).filter((x) => x.endsWith('.yaml'))) {
    const crd = parse(readFileSync(path.join(PROJECT_ROOT, 'crds', f), 'utf8')) as { metadata: { name: string } };
    await kubeHttp().request('PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, {
      query: { fieldManager: 'systemprompt', force: 'true' },
      contentType: 'application/apply-patch+yaml',
      body: crd,
    });
    await waitFor(
      async () => {
        const got = await kubeHttp().request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `${crd.metadata.name} established`, onTimeout: (w) => new Error(`timed out waiting for ${w}`) },
    );
  }
}

/** A manifest of deploy/. */
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

/** Every object in deploy/*.yaml, in file order. */
export const deployManifests = (): Manifest[] =>
  readdirSync(path.join(PROJECT_ROOT, 'deploy'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(path.join(PROJECT_ROOT, 'deploy', f), 'utf8')).map((d) => d.toJSON() as Manifest));

/** The API path of a deploy/ object. */
export function manifestPath(o: Manifest): string {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const plural = { Namespace: 'namespaces', ServiceAccount: 'serviceaccounts', ClusterRole: 'clusterroles', ClusterRoleBinding: 'clusterrolebindings', Role: 'roles', RoleBinding: 'rolebindings', Deployment: 'deployments', Service: 'services' }[o.kind];
  if (!plural) throw new Error(`no path for ${o.kind}`);
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  return `${base}${o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : ''}/${plural}/${o.metadata.name}`;
}

/** Server-side apply of a deploy/ object (the Deployment only by dry-run: this control plane runs no pods). */
export const applyManifest = (o: Manifest, dryRun = false) =>
  kubeHttp().request('PATCH', manifestPath(o), { query: { fieldManager: 'systemprompt-tests', force: 'true', fieldValidation: 'Strict', ...(dryRun ? { dryRun: 'All' } : {}) }, contentType: 'application/apply-patch+yaml', body: o });

/**
 * The operator's own identity, as deploy/ defines it: its namespace, service account and RBAC
 * applied (not the Deployment), and a kubeconfig holding only a token of that service account.
 * Pass the returned environment to startOperator() so the operator runs with exactly those rights.
 */
export async function operatorAccount(): Promise<{ KUBECONFIG: string }> {
  return deployedAccount('systemprompt-operator');
}

/** The gateway's identity as deploy/ defines it (see operatorAccount). */
export async function gatewayAccount(): Promise<{ KUBECONFIG: string }> {
  return deployedAccount('systemprompt-gateway');
}

async function deployedAccount(serviceAccount: string): Promise<{ KUBECONFIG: string }> {
  // deploy.test deletes its namespace when it ends; nothing can be created in it until it is gone.
  await waitFor(
    async () => {
      const ns = await kubeHttp()
        .request<{ status?: { phase?: string } }>('GET', '/api/v1/namespaces/systemprompt-system')
        .catch((e: { code?: number }) => (e.code === 404 ? undefined : Promise.reject(e)));
      return ns?.status?.phase === 'Terminating' ? undefined : true;
    },
    { timeoutMs: 120_000, intervalMs: 250, what: 'namespace systemprompt-system to finish terminating', onTimeout: (w) => new Error(`timed out waiting for ${w}`) },
  );
  for (const o of deployManifests()) if (o.kind !== 'Deployment' && o.kind !== 'Service') await applyManifest(o);
  return { KUBECONFIG: await serviceAccountKubeconfig('systemprompt-system', serviceAccount) };
}

/** A kubeconfig (a 0600 file in a new temporary folder) holding only a token of the service account `namespace/name`, valid for an hour. */
export async function serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
  const { status } = await kubeHttp().request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  const admin = new KubeConfig();
  admin.loadFromFile(endpoints.kubeconfigPath!);
  const cluster = admin.getCurrentCluster()!;
  const kubeconfig = path.join(mkdtempSync(path.join(os.tmpdir(), 'sp-sa-')), 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: cluster.server, ...(cluster.caData ? { 'certificate-authority-data': cluster.caData } : {}), ...(cluster.caFile ? { 'certificate-authority': cluster.caFile } : {}) } }],
      users: [{ name, user: { token: status.token } }],
      contexts: [{ name, context: { cluster: 'c', user: name } }],
      'current-context': name,
    }),
    { mode: 0o600 },
  );
  return kubeconfig;
}

/** `systemprompt operator` as its own process against the test stack, its stderr kept as it arrives. */
export interface OperatorProcess {
  child: ChildProcess;
  stderr: string;
  /** The exit code, once every byte of output has arrived. */
  exited: Promise<number | null>;
}

export function startOperator(args: string[] = [], env: NodeJS.ProcessEnv = {}): OperatorProcess {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/systemprompt.js'), 'operator', '--listen', '127.0.0.1:0', ...args], { env: { ...targetEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: OperatorProcess = { child, stderr: '', exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
  child.stderr!.on('data', (b: Buffer) => (p.stderr += b.toString()));
  return p;
}

/**
 * Stop an operator the test left running, and wait until it has exited: SIGTERM, so that it lets
 * its Leases go (a killed one holds the apply lock for 15 s more), and SIGKILL if it has not
 * exited within 10 s.
 */
export async function killOperator(p: OperatorProcess | undefined): Promise<void> {
  if (!p) return;
  if (p.child.pid !== undefined) await stopGroup(p.child.pid, 10_000);
  await p.exited;
}
