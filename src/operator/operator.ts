import http from 'node:http';
import { Watch } from '@kubernetes/client-node';
import type { Io } from '../cli/io.js';
import type { LiveSession } from '../commands/session.js';
import { compile } from '../compile/compile.js';
import { loadRepository } from '../config/repository.js';
import { SystemPromptError } from '../errors.js';
import { kubeLeaseStore, LeaseLock } from '../reconcile/lease.js';
import { reconcile, type ReconcileResult } from '../reconcile/reconcile.js';
import { CONFIG_SOURCE_LABEL, runConfigSources } from './configsource.js';
import { addedFinalizer, finalizersPatch, removedFinalizer } from './finalizers.js';
import { runLeaderElection } from './leader.js';
import { operatorMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { crPath, GROUP, listResources, resourcesAsFiles, tenantNameOf, VERSION, type CrApi, type CustomResource } from './resources.js';
import { tenantStatus, type TenantStatus } from './status.js';

export interface OperatorOptions {
  /** Content of a systemprompt.yaml (scope catalog, naming); the defaults when absent. */
  project?: string;
  /** Full reconcile at least this often: Keycloak and PostgreSQL cannot be watched. */
  resyncMs: number;
  /** Without it, deleting a realm, namespace or database waits (reported); the rest is applied. */
  allowDestroy: boolean;
  /** host:port for /metrics, /healthz, /readyz; port 0 picks one (printed). */
  listen: string;
  leaseNamespace: string;
}

const LEADER_LEASE = 'systemprompt-operator';
const APPLY_LEASE = 'systemprompt-apply';
const STATUS_MANAGER = 'systemprompt-operator';

/** One JSON log line on stderr. */
function logger(io: Io) {
  return (level: 'info' | 'error', msg: string, fields: Record<string, unknown> = {}): void => io.err(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

/**
 * `systemprompt operator`: Tenant and Agent resources in the cluster are the configuration. The
 * leader (a Lease, two replicas may run) watches them, and on every change, and at least every
 * resync period, reconciles them into Keycloak, Kubernetes and PostgreSQL through the same
 * reconcile() as `apply` (under the apply Lease, so an `apply` from a laptop and the operator never
 * write at once), then writes each Tenant's status. First slice of the operator: one full reconcile
 * per change (not yet one per tenant); a finalizer on each Tenant; ConfigSources (git) are synced by runConfigSources().
 */
export async function runOperator(io: Io, session: LiveSession, opts: OperatorOptions, signal: AbortSignal): Promise<number> {
  const log = logger(io);
  const connected = await session.connect();
  const kube = connected.kubernetes;
  const api = kube.api;
  const metrics = operatorMetrics();
  let ready = false;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.registry.render());
    } else if (path === '/healthz') res.writeHead(200).end('ok\n');
    else if (path === '/readyz') res.writeHead(ready ? 200 : 503).end(ready ? 'ok\n' : 'not ready\n');
    else res.writeHead(404).end();
  });
  const [host, port] = splitListen(opts.listen);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
  const addr = server.address();
  log('info', 'serving /metrics, /healthz, /readyz', { listen: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : opts.listen });

  const round = async (queue: WorkQueue, leading: AbortSignal): Promise<void> => {
    const started = Date.now();
    const [tenants, agents] = await Promise.all([listResources(api, 'tenants'), listResources(api, 'agents')]);
    ready = true;
    // Every Tenant carries our finalizer, so that deleting it waits for its realm and namespace to go.
    for (const cr of tenants) {
      const finalizers = addedFinalizer(cr);
      if (finalizers) await patchFinalizers(api, cr, finalizers).catch((e: unknown) => log('error', 'adding the finalizer failed', { tenant: tenantNameOf(cr), error: e instanceof Error ? e.message : String(e) }));
    }
    const deleting = new Map(tenants.filter((cr) => cr.metadata.deletionTimestamp && removedFinalizer(cr)).map((cr) => [tenantNameOf(cr), cr]));
    // A Tenant a ConfigSource made (and pruned from git) is destroyed only if that ConfigSource's
    // allowDestroy says so; until then it waits, Terminating. If the ConfigSource itself is gone,
    // what it made is left in place and the resource let go.
    const destroyable = new Set<string>();
    const leave = new Set<string>();
    for (const [tenant, cr] of deleting) {
      const source = cr.metadata.labels?.[CONFIG_SOURCE_LABEL];
      if (!source) {
        destroyable.add(tenant);
        continue;
      }
      const cs = await api.request<CustomResource>('GET', crPath('configsources', cr.metadata.namespace, source)).catch(() => undefined);
      if (!cs) leave.add(tenant);
      else if (cs.spec?.allowDestroy === true) destroyable.add(tenant);
      else log('info', 'tenant deletion waits for allowDestroy', { tenant, configSource: `${cr.metadata.namespace}/${source}` });
    }
    const { files, origins } = resourcesAsFiles(tenants, agents, opts.project);
    const loaded = loadRepository(files);
    const describe = (file: string): string => {
      const o = origins.get(file);
      return o ? `${o.kind} ${o.namespace}/${o.name}` : file;
    };
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => `${describe(d.file)}:${d.line}:${d.col}: ${d.code}: ${d.message}`);
    let outcome: ReconcileResult | undefined;
    let failure: string | undefined;
    const names = new Map<string, { realm: string; namespace: string; database: string }>();
    const writes = (): Map<string, number> => new Map(Object.values(connected.targets).map((t) => [t!.name, t!.requests.writes]));
    const writesBefore = writes();
    if (!loaded.repo) failure = `the configuration does not validate: ${errors.join('; ')}`;
    else {
      const desired = compile(loaded.repo, await session.environment(false));
      for (const t of desired.tenants) names.set(t.name, { realm: t.realm, namespace: t.namespace, database: t.database });
      try {
        outcome = await reconcile({
          desired,
          targets: connected.targets,
          secrets: connected.secretSources(),
          lock: new LeaseLock(kubeLeaseStore(api, opts.leaseNamespace, APPLY_LEASE)),
          lockTimeoutMs: 30_000,
          signal: leading,
          allowDestroy: opts.allowDestroy,
          deferDestructive: true,
          // A Tenant resource being deleted is the word to delete that tenant's realm and namespace.
          allowDestroyOf: (c) => !!c.tenant && destroyable.has(c.tenant),
        });
      } catch (e) {
        failure = e instanceof Error ? e.message : String(e);
      }
    }
    for (const [target, n] of writes()) metrics.writes.inc({ target }, n - (writesBefore.get(target) ?? 0));
    // Status of every Tenant resource, written only when it changed (an idle operator writes nothing).
    for (const cr of tenants) {
      if (cr.metadata.deletionTimestamp) continue;
      const name = tenantNameOf(cr);
      const status = tenantStatus(cr, { tenant: name, outcome, failure, names: names.get(name), now: new Date() });
      if (status) await writeStatus(api, cr, status).catch((e: unknown) => log('error', 'status write failed', { tenant: name, error: e instanceof Error ? e.message : String(e) }));
    }
    // A deleted Tenant is let go once nothing of it is left to delete (its database per deletion_policy).
    if (outcome && !outcome.result.stopped) {
      for (const [tenant, cr] of deleting) {
        const pending = [...outcome.result.failed.map((f) => f.change), ...outcome.deferred].some((c) => c.tenant === tenant);
        if (!leave.has(tenant) && (pending || !destroyable.has(tenant))) continue;
        await patchFinalizers(api, cr, removedFinalizer(cr)!).then(
          () => log('info', 'tenant deleted', { tenant }),
          (e: unknown) => log('error', 'releasing the finalizer failed', { tenant, error: e instanceof Error ? e.message : String(e) }),
        );
      }
    }
    const seconds = (Date.now() - started) / 1000;
    metrics.duration.observe(seconds, { kind: 'Tenant' });
    metrics.queueDepth.set(queue.depth);
    if (failure || (outcome && outcome.result.failed.length)) {
      metrics.reconciles.inc({ kind: 'Tenant', result: 'error' });
      metrics.errors.inc({ kind: 'Tenant' });
      log('error', 'reconcile failed', { error: failure ?? outcome!.result.failed.map((f) => `${f.change.kind} ${f.change.name}: ${f.error}`).join('; '), seconds });
      throw new SystemPromptError(failure ?? 'some changes failed');
    }
    metrics.reconciles.inc({ kind: 'Tenant', result: 'ok' });
    log('info', 'reconciled', { tenants: tenants.length, agents: agents.length, changes: outcome?.plan.changes.length ?? 0, writes: outcome?.result.writes ?? 0, deferred: outcome?.deferred.length ?? 0, seconds });
  };

  const lead = async (leading: AbortSignal): Promise<void> => {
    metrics.leader.set(1);
    log('info', 'leading');
    const queue = new WorkQueue();
    const watches = ['tenants', 'agents'].map((plural) => watchAll(kube.kubeconfig, plural, () => queue.add('all'), leading, log));
    // ConfigSources render their git repositories into Tenant and Agent objects, which the loop below reconciles.
    watches.push(runConfigSources({ api, signal: leading, log, onApplied: () => queue.add('all') }));
    leading.addEventListener('abort', () => queue.shutDown(), { once: true });
    queue.add('all');
    for (;;) {
      const key = await queue.get();
      if (key === undefined) break;
      try {
        await round(queue, leading);
        queue.forget(key);
        queue.addAfter(key, opts.resyncMs);
      } catch {
        queue.addRateLimited(key);
      } finally {
        queue.done(key);
      }
    }
    await Promise.all(watches);
    metrics.leader.set(0);
  };

  try {
    await runLeaderElection({
      newLock: () => new LeaseLock(kubeLeaseStore(api, opts.leaseNamespace, LEADER_LEASE)),
      signal,
      onStartedLeading: (leading) => lead(leading),
      onStoppedLeading: (why) => log('info', 'stopped leading', { why }),
      onWaiting: (holder, expiresInMs) => {
        ready = true; // a standby replica is ready: it reached the API server and waits to lead
        log('info', 'waiting to lead', { holder, expiresInMs });
      },
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  log('info', 'stopped');
  return 0;
}

function splitListen(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new SystemPromptError(`--listen ${listen}: expected HOST:PORT`);
  return [listen.slice(0, i) || '127.0.0.1', port];
}

/** A watch on every namespace's `plural`, restarted with backoff whenever it ends, until `stop`. */
async function watchAll(kc: ConstructorParameters<typeof Watch>[0], plural: string, onChange: () => void, stop: AbortSignal, log: ReturnType<typeof logger>): Promise<void> {
  let backoff = 500;
  // A change of spec moves metadata.generation; our own status writes do not, and start no round.
  const generations = new Map<string, number | undefined>();
  while (!stop.aborted) {
    const ended = new Promise<unknown>((resolve) => {
      void new Watch(kc)
        .watch(crPath(plural), { allowWatchBookmarks: true }, (phase, obj: CustomResource | undefined) => {
          backoff = 500;
          if (phase === 'BOOKMARK') return;
          const uid = obj?.metadata?.uid ?? '';
          const generation = obj?.metadata?.generation;
          if (phase === 'MODIFIED' && generations.has(uid) && generations.get(uid) === generation && !obj?.metadata?.deletionTimestamp) return;
          if (phase === 'DELETED') generations.delete(uid);
          else generations.set(uid, generation);
          onChange();
        }, resolve)
        .then((ctl) => stop.addEventListener('abort', () => ctl.abort(), { once: true }), resolve);
    });
    const err = await ended;
    if (stop.aborted) break;
    if (err) log('error', 'watch ended; restarting', { resource: plural, error: err instanceof Error ? err.message : String(err), backoffMs: backoff });
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 30_000);
    onChange(); // what happened while not watching
  }
}

async function patchFinalizers(api: CrApi, cr: CustomResource, finalizers: string[]): Promise<void> {
  await api.request('PATCH', crPath('tenants', cr.metadata.namespace, cr.metadata.name), { contentType: 'application/merge-patch+json', body: finalizersPatch(cr, finalizers) });
}

async function writeStatus(api: CrApi, cr: CustomResource, status: TenantStatus): Promise<void> {
  await api.request('PATCH', crPath('tenants', cr.metadata.namespace, cr.metadata.name, 'status'), {
    query: { fieldManager: STATUS_MANAGER, force: 'true' },
    contentType: 'application/apply-patch+yaml',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Tenant', metadata: { name: cr.metadata.name, namespace: cr.metadata.namespace }, status },
  });
}

