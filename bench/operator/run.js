// The operator against the real stack: from a git commit to every new Tenant Ready, for 1 and for
// 100 tenants (ratio against `systemprompt apply` of the same repository in this process); then idle
// at 1,000 tenants: RSS and requests per minute, read from the operator's own /metrics (ratio
// against one full `systemprompt plan` of the same tenants).
// Usage: npm run build && systemprompt dev up &&
//   node bench/operator/run.js [--sizes 1,100] [--idle-tenants 1000] [--idle-target kubernetes,postgres]
//                              [--target kubernetes,postgres,keycloak] [--workers 4] [--idle-minutes 3] [--resync 1m] [--log FILE]
// The ConfigSource is fetched every second while tenants are committed, every minute while idle.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { KubeHttp } from '../../dist/targets/kube-http.js';
import { generateRepository, writeRepository } from '../compile/generate.js';
import { arg, cli, targetEnv, tempRepo } from '../lib.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const sizes = String(arg('sizes', '1,100')).split(',').map(Number).filter((n) => n > 0);
const idleTenants = Number(arg('idle-tenants', 1000));
const target = arg('target', 'kubernetes,postgres,keycloak');
const idleTarget = arg('idle-target', 'kubernetes,postgres');
const workers = String(arg('workers', 4));
const idleMinutes = Number(arg('idle-minutes', 3));
const resync = arg('resync', '1m');
const logFile = arg('log', undefined); // the operator's log lines, appended
const minutesOf = (d) => [...d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)].reduce((a, [, v, u]) => a + Number(v) * { ms: 1 / 60000, s: 1 / 60, m: 1, h: 60 }[u], 0);
const USERS = 3;
const AGENTS = 3;
const NS = 'sp-bench-operator';
const API = '/apis/systemprompt.io/v1alpha1';
const env = await targetEnv();
const kc = new KubeConfig();
kc.loadFromFile(env.KUBECONFIG);
const kube = new KubeHttp(kc);
const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let op;

async function waitFor(what, probe, timeoutMs, intervalMs = 500) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the operator's last words:\n${op?.stderr.split('\n').slice(-15).join('\n')}`);
    await sleep(intervalMs);
  }
}

// CRDs and the bench's namespace.
for (const f of readdirSync(path.join(ROOT, 'crds')).filter((x) => x.endsWith('.yaml'))) {
  const crd = parse(readFileSync(path.join(ROOT, 'crds', f), 'utf8'));
  await kube.request('PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, { query: { fieldManager: 'systemprompt', force: 'true' }, contentType: 'application/apply-patch+yaml', body: crd });
}
await waitFor('the CRDs to be served', async () => ((await kube.request('GET', API).catch(() => ({ resources: [] }))).resources.some((r) => r.name === 'configsources') ? true : undefined), 60_000);
await kube.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } } }).catch(() => {});

// A bare repository on disk, and a ConfigSource following it.
const root = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-op-'));
const origin = path.join(root, 'origin.git');
const work = path.join(root, 'work');
const git = (...a) => execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...a], { cwd: work, encoding: 'utf8', stdio: 'pipe' }).trim();
execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', origin]);
execFileSync('git', ['clone', '--quiet', origin, work], { stdio: 'pipe' });
git('symbolic-ref', 'HEAD', 'refs/heads/main');
function commit(files, message) {
  for (const e of readdirSync(work)) if (e !== '.git') rmSync(path.join(work, e), { recursive: true, force: true });
  for (const [rel, text] of files) {
    mkdirSync(path.dirname(path.join(work, rel)), { recursive: true });
    writeFileSync(path.join(work, rel), text);
  }
  git('add', '-A');
  git('commit', '--quiet', '--allow-empty', '-m', message);
  git('push', '--quiet', 'origin', 'main');
  return git('rev-parse', 'HEAD');
}
const project = generateRepository({ tenants: 0, users: USERS, agents: AGENTS }).get('systemprompt.yaml');
const projectFile = path.join(root, 'systemprompt.yaml');
writeFileSync(projectFile, project);
const empty = new Map([['systemprompt.yaml', project]]);
commit(empty, 'empty');
const csPath = `${API}/namespaces/${NS}/configsources/bench`;
await kube.request('DELETE', csPath).catch(() => {});
await waitFor('an old ConfigSource to go', async () => ((await kube.request('GET', csPath).then(() => false, () => true)) ? true : undefined), 60_000);
await kube.request('POST', `${API}/namespaces/${NS}/configsources`, {
  body: { apiVersion: 'systemprompt.io/v1alpha1', kind: 'ConfigSource', metadata: { name: 'bench', namespace: NS }, spec: { git: { url: `file://${origin}`, ref: { branch: 'main' } }, interval: '1s', allowDestroy: true } },
});

function startOperator(targets) {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/systemprompt.js'), 'operator', '--listen', '127.0.0.1:0', '--resync', resync, '--workers', workers, '--config', projectFile, '--target', targets], {
    env: { ...env, SYSTEMPROMPT_CACHE_DIR: path.join(root, 'cache') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const p = { child, stderr: '', listen: undefined };
  child.stderr.on('data', (b) => {
    if (logFile) appendFileSync(logFile, b);
    p.stderr += b.toString();
    p.listen ??= /"listen":"([^"]+)"/.exec(p.stderr)?.[1];
    if (p.stderr.length > 1e6) p.stderr = p.stderr.slice(-2e5);
  });
  p.exited = new Promise((resolve) => child.on('close', resolve));
  return p;
}

async function metrics(op) {
  const text = await (await fetch(`http://${op.listen}/metrics`)).text();
  const sum = (name) => text.split('\n').filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
  return { reads: sum('systemprompt_target_reads_total'), writes: sum('systemprompt_target_writes_total'), rss: sum('process_resident_memory_bytes'), cpu: sum('process_cpu_seconds_total') };
}

async function tenants() {
  const out = [];
  let cont;
  do {
    const page = await kube.request('GET', `${API}/namespaces/${NS}/tenants`, { query: { limit: '500', continue: cont } });
    out.push(...page.items);
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return out;
}
const isReady = (t) => t.status?.observedGeneration === t.metadata.generation && (t.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** `n` generated tenants, each deleted with its database (nothing retained between runs). */
const generate = (n) => new Map([...generateRepository({ tenants: n, users: USERS, agents: AGENTS })].map(([f, t]) => [f, t.replace('deletion_policy: retain', 'deletion_policy: delete')]));

/** Commit `n` tenants; ms until the ConfigSource made them and every one is Ready. */
async function commitToReady(n, timeoutMs) {
  const files = generate(n);
  const t0 = Date.now();
  commit(files, `${n} tenants`);
  await waitFor(`${n} Tenants Ready`, async () => {
    const ts = await tenants();
    return ts.length === n && ts.every(isReady) ? true : undefined;
  }, timeoutMs, 250);
  return Date.now() - t0;
}

/** Commit no tenants; wait until the operator has deleted them all (the ConfigSource allows it). */
async function removeAll(timeoutMs) {
  await kube.request('PATCH', csPath, { contentType: 'application/merge-patch+json', body: { spec: { interval: '1s' } } });
  commit(empty, 'no tenants');
  await waitFor('every Tenant to be deleted', async () => ((await tenants()).length === 0 ? true : undefined), timeoutMs, 1000);
  await namespacesGone();
}

/** Until the tenant namespaces have finished terminating (a new tenant of the same name would find one in its way). */
const namespacesGone = () =>
  waitFor('the tenant namespaces to be gone', async () => ((await kube.request('GET', '/api/v1/namespaces', { query: { labelSelector: 'app.kubernetes.io/managed-by=systemprompt' } })).items.length === 0 ? true : undefined), 10 * 60_000, 1000);

const result = { target, workers: Number(workers), users_per_tenant: USERS, agents: AGENTS, commit_to_ready: [], idle: undefined };
op = startOperator(target);
try {
  await waitFor('the operator to lead', async () => (/"msg":"leading"/.test(op.stderr) && op.listen ? true : undefined), 60_000);
  for (const n of sizes) {
    // Baseline, same process: `systemprompt apply` of the same repository, then removed again.
    const dir = tempRepo(generate(n));
    log(`apply ${n} tenants (baseline)`);
    const apply = await cli(env, dir, 'apply', '--auto-approve', '--target', target, '--lock-timeout', '120s');
    writeRepository(dir, empty);
    await cli(env, dir, 'apply', '--auto-approve', '--allow-destroy', '--target', target, '--lock-timeout', '120s');
    await namespacesGone();
    log(`commit ${n} tenants (operator)`);
    const ms = await commitToReady(n, 60 * 60_000);
    result.commit_to_ready.push({ tenants: n, ms, apply_ms: apply.ms, ratio_to_apply: Number((ms / apply.ms).toFixed(3)) });
    log(`commit to ready: ${JSON.stringify(result.commit_to_ready.at(-1))}`);
    log(`${n} tenants Ready in ${ms} ms (apply: ${apply.ms} ms); removing them`);
    await removeAll(60 * 60_000);
  }
  if (idleTenants > 0) {
    // Idle at scale, with the targets of --idle-target.
    op.child.kill('SIGTERM');
    await op.exited;
    op = startOperator(idleTarget);
    await waitFor('the operator to lead', async () => (/"msg":"leading"/.test(op.stderr) && op.listen ? true : undefined), 60_000);
    const before = await metrics(op);
    log(`commit ${idleTenants} tenants (${idleTarget})`);
    const ms = await commitToReady(idleTenants, 3 * 60 * 60_000);
    // Idle as in production: the ConfigSource fetched at its default interval, not every second.
    await kube.request('PATCH', csPath, { contentType: 'application/merge-patch+json', body: { spec: { interval: '1m' } } });
    await sleep(5_000);
    const m0 = await metrics(op);
    log(`${idleTenants} Ready in ${ms} ms; idle for ${idleMinutes} min`);
    const t0 = Date.now();
    await sleep(idleMinutes * 60_000);
    const m1 = await metrics(op);
    const minutes = (Date.now() - t0) / 60_000;
    const dir = tempRepo(generate(idleTenants));
    const plan = await cli(env, dir, 'plan', '--target', idleTarget);
    result.idle = {
      tenants: idleTenants,
      target: idleTarget,
      resync,
      commit_to_ready_ms: ms,
      rss_mb_before: Math.round(before.rss / 1e6),
      rss_mb_idle: Math.round(m1.rss / 1e6),
      reads_per_minute: Math.round((m1.reads - m0.reads) / minutes),
      writes_during_idle: m1.writes - m0.writes,
      cpu_seconds_per_minute: Number(((m1.cpu - m0.cpu) / minutes).toFixed(2)),
      full_plan_requests: plan.json.requests.total,
      plan_changes_after: plan.json.changes.length,
      ratio_requests_per_resync_to_full_plan: Number((((m1.reads - m0.reads) / minutes) * minutesOf(resync) / plan.json.requests.total).toFixed(3)),
    };
    log(`idle: ${JSON.stringify(result.idle)}`); // before the removal, which is slow at this size
    log('removing them');
    await removeAll(3 * 60 * 60_000);
  }
} finally {
  op.child.kill('SIGTERM');
  await op.exited;
  await kube.request('DELETE', csPath).catch(() => {});
  rmSync(root, { recursive: true, force: true });
}
console.log(JSON.stringify(result, null, 2));
