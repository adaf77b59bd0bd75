import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, symlink, unlink } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { TargetError } from '../errors.js';
import { seconds, type DevContext } from './context.js';
import { logHint } from './logs.js';
import { kubeSourceDir } from './paths.js';
import { isAlive, isOurProcess, run, spawnDetached, stopGroup, waitFor } from './process.js';
import type { StackState } from './state.js';
import { findGo } from './tools.js';

export type KubeRecord = NonNullable<StackState['kube']>;
export const KUBE_CONTEXT = 'systemprompt-dev';
export const KUBE_VERSION = 'v1.34.4';

/** The controllers that make namespaces, quotas, service accounts and RBAC aggregation work (no pods). */
export const CONTROLLERS = [
  'namespace-controller',
  'garbage-collector-controller',
  'resourcequota-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'clusterrole-aggregation-controller',
];

/** Linker flags: strip symbols, and stamp the Kubernetes version that `kubectl version` and /version report. */
export function kubeLdflags(version = KUBE_VERSION): string {
  const [major, minor] = version.replace(/^v/, '').split('.');
  const stamp = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) => [
    `-X ${pkg}.gitVersion=${version}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ]);
  return ['-s', '-w', ...stamp].join(' ');
}

/** Hash of what determines the binary: the Go sources, go.mod/go.sum, the Go toolchain and the build flags. */
export async function kubeSourceHash(srcDir: string, goVersion: string, buildFlags = kubeLdflags()): Promise<string> {
  const h = createHash('sha256');
  h.update(`${goVersion}\n${buildFlags}\n`);
  const files = (await readdir(srcDir)).filter((f) => f === 'go.mod' || f === 'go.sum' || f.endsWith('.go')).sort();
  for (const f of files) {
    h.update(`${f}\n`);
    h.update(await readFile(join(srcDir, f)));
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * The control-plane binary, built once from stack/kube with the Go module and build caches under
 * the cache folder; rebuilt only when sources, go.sum or the Go version change.
 */
export async function ensureKubeBinary(ctx: DevContext): Promise<string> {
  const go = await findGo(ctx.env);
  const src = kubeSourceDir();
  const dir = join(ctx.paths.cacheDir, 'kube');
  const binary = join(dir, `kube-${await kubeSourceHash(src, go.version)}`);
  if (await stat(binary).then(() => true, () => false)) return binary;
  await mkdir(dir, { recursive: true });
  const logFile = join(ctx.paths.logsDir, 'kube-build.log');
  const env: NodeJS.ProcessEnv = {
    ...ctx.env,
    GOMODCACHE: ctx.env.GOMODCACHE ?? join(ctx.paths.cacheDir, 'go', 'mod'),
    GOCACHE: ctx.env.GOCACHE ?? join(ctx.paths.cacheDir, 'go', 'build'),
    GOTOOLCHAIN: 'local',
    GOFLAGS: '-mod=readonly',
    CGO_ENABLED: '0',
  };
  const t0 = Date.now();
  ctx.progress('kube', `building the control plane (Kubernetes ${KUBE_VERSION}) with ${go.version.replace(/^go version /, '')}; a cold build takes 10 to 15 min on 2 cores, later ones seconds`);
  const tmp = `${binary}.${process.pid}.tmp`;
  const build = (extra: string[]) => run(go.path, ['build', ...extra, '-trimpath', `-ldflags=${kubeLdflags()}`, '-o', tmp, '.'], { cwd: src, env, logFile });
  let r = await build([]);
  if (r.code !== 0 && /signal: killed|out of memory/i.test(await readFile(logFile, 'utf8').catch(() => ''))) {
    ctx.progress('kube', 'the build was killed (memory?); retrying with one job at a time');
    r = await build(['-p', '1']);
  }
  if (r.code !== 0) {
    await rm(tmp, { force: true });
    throw new TargetError('kube', `go build failed (exit ${r.code})`, { hint: await logHint(logFile) });
  }
  await rename(tmp, binary);
  for (const f of await readdir(dir)) {
    if (f.startsWith('kube-') && join(dir, f) !== binary && !f.endsWith('.tmp')) await rm(join(dir, f), { force: true });
  }
  ctx.progress('kube', `built in ${seconds(Date.now() - t0)}`);
  return binary;
}

interface TlsFiles {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

async function adminTls(pkiDir: string): Promise<TlsFiles> {
  const [ca, cert, key] = await Promise.all(['ca.crt', 'admin.crt', 'admin.key'].map((f) => readFile(join(pkiDir, f))));
  return { ca: ca!, cert: cert!, key: key! };
}

/** GET over TLS with the admin client certificate: status code, or undefined when unreachable. */
function httpsStatus(url: string, tls: TlsFiles): Promise<number | undefined> {
  return new Promise((resolveStatus) => {
    const req = request(url, { method: 'GET', ca: tls.ca, cert: tls.cert, key: tls.key, timeout: 3000 }, (res) => {
      res.resume();
      res.on('end', () => resolveStatus(res.statusCode));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveStatus(undefined));
    req.end();
  });
}

async function etcdHealthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

export function kubeMarkers(ctx: Pick<DevContext, 'paths'>) {
  const { etcdDir, pkiDir, controllerManagerKubeconfig } = ctx.paths.kube;
  return { etcd: [etcdDir], apiserver: [join(pkiDir, 'ca.crt')], controllerManager: [controllerManagerKubeconfig] };
}

export function apiserverArgs(ctx: Pick<DevContext, 'paths' | 'ports'>): string[] {
  const { pkiDir, certDir } = ctx.paths.kube;
  const p = (f: string) => join(pkiDir, f);
  return [
    `--etcd-servers=http://127.0.0.1:${ctx.ports.etcdClient}`,
    `--cert-dir=${certDir}`,
    `--tls-cert-file=${p('apiserver.crt')}`,
    `--tls-private-key-file=${p('apiserver.key')}`,
    `--secure-port=${ctx.ports.apiserver}`,
    '--bind-address=127.0.0.1',
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    '--authorization-mode=RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${p('sa.pub')}`,
    `--service-account-signing-key-file=${p('sa.key')}`,
    `--client-ca-file=${p('ca.crt')}`,
    '--profiling=false',
  ];
}

export function controllerManagerArgs(ctx: Pick<DevContext, 'paths'>): string[] {
  const { pkiDir, controllerManagerKubeconfig } = ctx.paths.kube;
  return [
    `--kubeconfig=${controllerManagerKubeconfig}`,
    '--leader-elect=false',
    `--controllers=${CONTROLLERS.join(',')}`,
    `--service-account-private-key-file=${join(pkiDir, 'sa.key')}`,
    `--root-ca-file=${join(pkiDir, 'ca.crt')}`,
    '--use-service-account-credentials=false',
    '--secure-port=0',
  ];
}

/** All three processes are ours, etcd is healthy and the apiserver is ready. */
export async function kubeRunning(ctx: DevContext, rec: KubeRecord | undefined): Promise<boolean> {
  if (!rec) return false;
  const m = kubeMarkers(ctx);
  const ours = await Promise.all([isOurProcess(rec.pids.etcd, m.etcd), isOurProcess(rec.pids.apiserver, m.apiserver), isOurProcess(rec.pids.controllerManager, m.controllerManager)]);
  if (!ours.every(Boolean)) return false;
  if (!(await etcdHealthy(rec.etcdUrl))) return false;
  return (await httpsStatus(`${rec.server}/readyz`, await adminTls(ctx.paths.kube.pkiDir))) === 200;
}

async function startOne(
  ctx: DevContext,
  name: string,
  spec: { binary: string; args: string[]; logFile: string },
  ready: () => Promise<boolean>,
  timeoutMs: number,
): Promise<number> {
  const t0 = Date.now();
  const pid = await spawnDetached({ command: spec.binary, args: spec.args, cwd: ctx.paths.kube.dir, logFile: spec.logFile, env: ctx.env });
  await waitFor(
    async () => {
      if (await ready()) return true;
      if (!(await isAlive(pid))) throw new TargetError('kube', `${name} exited during start-up`, { hint: await logHint(spec.logFile) });
      return undefined;
    },
    { timeoutMs, what: name, onTimeout: () => new TargetError('kube', `${name} not ready after ${timeoutMs / 1000}s`, { hint: `see ${spec.logFile}` }) },
  ).catch(async (e: unknown) => {
    await stopGroup(pid, 10_000);
    throw e;
  });
  ctx.progress('kube', `${name} ready in ${seconds(Date.now() - t0)}`);
  return pid;
}

/** Mints certificates (once), then starts etcd, kube-apiserver and kube-controller-manager in that order. */
export async function startKube(ctx: DevContext, binary: string): Promise<KubeRecord> {
  const t0 = Date.now();
  const { dir, pkiDir, etcdDir, certDir, kubeconfig } = ctx.paths.kube;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  const server = `https://127.0.0.1:${ctx.ports.apiserver}`;
  const pkiLog = join(ctx.paths.logsDir, 'kube-pki.log');
  const r = await run(binary, ['pki', `--dir=${pkiDir}`, `--server=${server}`, `--context=${KUBE_CONTEXT}`], { logFile: pkiLog });
  if (r.code !== 0) throw new TargetError('kube', `creating certificates failed (exit ${r.code})`, { hint: await logHint(pkiLog) });
  const tls = await adminTls(pkiDir);
  const log = (n: string) => join(ctx.paths.logsDir, `kube-${n}.log`);
  const etcdUrl = `http://127.0.0.1:${ctx.ports.etcdClient}`;
  const started: number[] = [];
  try {
    const etcd = await startOne(
      ctx,
      'etcd',
      { binary, args: ['etcd', `--data-dir=${etcdDir}`, `--listen-client-url=${etcdUrl}`, `--listen-peer-url=http://127.0.0.1:${ctx.ports.etcdPeer}`], logFile: log('etcd') },
      () => etcdHealthy(etcdUrl),
      60_000,
    );
    started.push(etcd);
    const apiserver = await startOne(
      ctx,
      'kube-apiserver',
      { binary, args: ['apiserver', ...apiserverArgs(ctx)], logFile: log('apiserver') },
      async () => (await httpsStatus(`${server}/readyz`, tls)) === 200,
      120_000,
    );
    started.push(apiserver);
    // Ready when the service-account controller has done its first job.
    const controllerManager = await startOne(
      ctx,
      'kube-controller-manager',
      { binary, args: ['controller-manager', ...controllerManagerArgs(ctx)], logFile: log('controller-manager') },
      async () => (await httpsStatus(`${server}/api/v1/namespaces/default/serviceaccounts/default`, tls)) === 200,
      120_000,
    );
    started.push(controllerManager);
    const kubectl = join(ctx.paths.binDir, 'kubectl');
    await mkdir(ctx.paths.binDir, { recursive: true });
    await unlink(kubectl).catch(() => undefined);
    await symlink(binary, kubectl);
    ctx.progress('kube', `ready in ${seconds(Date.now() - t0)} on ${server} (kubeconfig ${kubeconfig})`);
    return { pids: { etcd, apiserver, controllerManager }, server, kubeconfig, context: KUBE_CONTEXT, etcdUrl, binary, kubectl };
  } catch (e) {
    for (const pid of started.reverse()) await stopGroup(pid, 15_000);
    throw e;
  }
}

/** Stops controller-manager, then kube-apiserver, then etcd (an apiserver that loses etcd first hangs). */
export async function stopKube(ctx: DevContext, rec: KubeRecord): Promise<void> {
  const m = kubeMarkers(ctx);
  const order: [number, string[]][] = [
    [rec.pids.controllerManager, m.controllerManager],
    [rec.pids.apiserver, m.apiserver],
    [rec.pids.etcd, m.etcd],
  ];
  for (const [pid, markers] of order) {
    if (await isOurProcess(pid, markers)) await stopGroup(pid, 20_000);
  }
}
