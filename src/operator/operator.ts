import http from 'node:http';
import { makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Io } from '../cli/io.js';
import type { LiveSession } from '../commands/session.js';
import { compile } from '../compile/compile.js';
import type { CompileEnvironment, TenantDesired } from '../compile/desired.js';
import { isolationOf } from '../config/model.js';
import { loadRepository } from '../config/repository.js';
import { SystemPromptError } from '../errors.js';
import { kubeLeaseStore, LeaseLock } from '../reconcile/lease.js';
import { reconcile, type ReconcileResult } from '../reconcile/reconcile.js';
import type { ReadScope } from '../targets/target.js';
import type { TargetName } from '../model/resource.js';
import { selectTargets } from '../plan/select.js';
import { CONFIG_SOURCE_LABEL, runConfigSources } from './configsource.js';
import { addedFinalizer, finalizersPatch, removedFinalizer } from './finalizers.js';
import { runLeaderElection } from './leader.js';
import { operatorMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { crPath, GROUP, resourcesAsFiles, tenantNameOf, VERSION, type CrApi, type CustomResource } from './resources.js';
import { SharedLock } from './sharedlock.js';
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
  /** Tenants reconciled at once. */
  workers: number;
}

const LEADER_LEASE = 'systemprompt-operator';
const APPLY_LEASE = 'systemprompt-apply';
const STATUS_MANAGER = 'systemprompt-operator';

export type Log = ReturnType<typeof logger>;

/** One JSON log line on stderr. */
export function logger(io: Io) {
  return (level: 'info' | 'error', msg: string, fields: Record<string, unknown> = {}): void => io.err(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

/**
 * `systemprompt operator`: Tenant and Agent resources in the cluster are the configuration. The
 * leader (a Lease; two replicas may run) keeps them in informer caches (list + watch, relisted on
 * 410 Gone) and reconciles one tenant per work-queue key, reading only that tenant's realm,
 * namespace and database, through the same reconcile() as `apply` (under the apply Lease, shared by
 * the concurrent reconciles, so an `apply` from a laptop and the operator never write at once).
 * Every key comes back after the resync period, because Keycloak and PostgreSQL cannot be watched.
 * Each Tenant carries a finalizer, and gets its status written when it changes. ConfigSources (git)
 * are synced by runConfigSources() into Tenant and Agent objects.
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
      countRequests();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.registry.render());
    } else if (path === '/healthz') res.writeHead(200).end('ok\n');
    else if (path === '/readyz') res.writeHead(ready ? 200 : 503).end(ready ? 'ok\n' : 'not ready\n');
    else res.writeHead(404).end();
  });
  const [host, port] = splitListen(opts.listen);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
  const addr = server.address();
  log('info', 'serving /metrics, /healthz, /readyz', { listen: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : opts.listen });

  // Requests to the targets, counted into the metrics from the targets' own counters; the process's memory and CPU.
  const counted = new Map<string, { reads: number; writes: number }>();
  let cpuCounted = 0;
  function countRequests(): void {
    const cpu = process.cpuUsage();
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    metrics.cpu.inc({}, cpuSeconds - cpuCounted);
    cpuCounted = cpuSeconds;
    metrics.rss.set(process.memoryUsage.rss());
    metrics.heap.set(process.memoryUsage().heapUsed);
    for (const t of Object.values(connected.targets)) {
      const seen = counted.get(t!.name) ?? { reads: 0, writes: 0 };
      metrics.reads.inc({ target: t!.name }, t!.requests.reads - seen.reads);
      metrics.writes.inc({ target: t!.name }, t!.requests.writes - seen.writes);
      counted.set(t!.name, { ...t!.requests });
    }
  }

  // The project file's postgres.servers: every server's URL must be known from the start.
  const env = await session.environment(false, loadRepository(resourcesAsFiles([], [], opts.project).files).repo?.project.postgresServers?.map((s) => s.name));
  const tenantsOf = new Map<string, ScopeNames>(); // the names each tenant was last compiled to

  /** One tenant: its Tenant resources, the Agents, the project file. */
  const reconcileTenant = async (tenant: string, cache: Caches, lock: SharedLock, leading: AbortSignal): Promise<{ recheckMs?: number; gone?: boolean } | void> => {
    const started = Date.now();
    const crs = cache.tenants.list().filter((cr) => tenantNameOf(cr) === tenant);
    const agents = cache.agents.list();
    // Every Tenant carries our finalizer, so that deleting it waits for its realm and namespace to go.
    for (const cr of crs) {
      const finalizers = addedFinalizer(cr);
      if (finalizers) await patchFinalizers(api, cr, finalizers).catch((e: unknown) => log('error', 'adding the finalizer failed', { tenant, error: errorText(e) }));
    }
    const present = crs.filter((cr) => !cr.metadata.deletionTimestamp);
    const releaseFinalizer = (cr: CustomResource): Promise<void> =>
      patchFinalizers(api, cr, removedFinalizer(cr)!).then(
        () => log('info', 'tenant deleted', { tenant }),
        // Gone already: an earlier pass released it and the cache had not seen that yet.
        (e: unknown) => ((e as { code?: number }).code === 404 ? undefined : log('error', 'releasing the finalizer failed', { tenant, error: errorText(e) })),
      );
    const deleting = crs.filter((cr) => cr.metadata.deletionTimestamp && removedFinalizer(cr));
    if (!present.length && !deleting.length && !tenantsOf.has(tenant)) return { gone: true }; // nothing left to resync
    if (!present.length) {
      // The tenant is going. A Tenant a ConfigSource made (and pruned from git) is destroyed only if
      // that ConfigSource's allowDestroy says so; until then it waits, Terminating, and nothing of it
      // is touched. If the ConfigSource itself is gone, what it made is left in place and the
      // resource let go. A Tenant deleted by hand is destroyed. A tenant whose resource vanished
      // without our finalizer is left in place unless --allow-destroy.
      let destroy: 'yes' | 'wait' | 'leave' = deleting.length || opts.allowDestroy ? 'yes' : 'leave';
      for (const cr of deleting) {
        const source = cr.metadata.labels?.[CONFIG_SOURCE_LABEL];
        if (!source) continue;
        const cs = await api.request<CustomResource>('GET', crPath('configsources', cr.metadata.namespace, source)).catch(() => undefined);
        if (!cs) destroy = 'leave';
        else if (cs.spec?.allowDestroy !== true) {
          log('info', 'tenant deletion waits for allowDestroy', { tenant, configSource: `${cr.metadata.namespace}/${source}` });
          return { recheckMs: Math.min(opts.resyncMs, 10_000) };
        }
      }
      if (destroy === 'leave') {
        for (const cr of deleting) await releaseFinalizer(cr);
        if (!deleting.length) log('info', 'tenant has no Tenant resource any more: its realm, namespace and database are left in place', { tenant });
        tenantsOf.delete(tenant);
        return;
      }
    }

    const { files, origins } = resourcesAsFiles(present, agents, opts.project);
    const loaded = loadRepository(files);
    const describe = (file: string): string => {
      const o = origins.get(file);
      return o ? `${o.kind} ${o.namespace}/${o.name}` : file;
    };
    let outcome: ReconcileResult | undefined;
    let failure: string | undefined;
    let names: ScopeNames | undefined;
    if (!loaded.repo) {
      const errors = loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => `${describe(d.file)}:${d.line}:${d.col}: ${d.code}: ${d.message}`);
      failure = `the configuration does not validate: ${errors.join('; ')}`;
    } else if (loaded.repo.tenants.some((t) => isolationOf(loaded.repo!.project, t) === 'organization')) {
      // A tenant's reconcile reads and writes its own realm; the shared realm is every tenant's at once.
      failure = 'isolation: organization is applied with `systemprompt apply` only; the operator reconciles tenants with a realm of their own (isolation: per_tenant)';
    } else {
      // With --target, the other targets' resources (and what depends on them) are left out.
      const desired = selectTargets(compile(loaded.repo, env), Object.keys(connected.targets) as TargetName[]);
      const mine = desired.tenants.find((t) => t.name === tenant);
      if (mine) tenantsOf.set(tenant, (names = scopeNames(mine)));
      // What a deleted Tenant used: the names it compiles to (else those it was last seen with).
      const gone = deleting.length && !present.length ? deletedNames(deleting[0]!, agents, opts.project, env) : undefined;
      const scope = scopeOf(tenant, [names, gone, tenantsOf.get(tenant)]);
      try {
        outcome = await reconcile({
          desired,
          scope,
          targets: connected.targets,
          secrets: connected.secretSources(),
          lock: lock.forRun(),
          lockTimeoutMs: 30_000,
          signal: leading,
          allowDestroy: opts.allowDestroy,
          deferDestructive: true,
          // A Tenant resource being deleted is the word to delete that tenant's realm and namespace.
          allowDestroyOf: () => !present.length,
        });
      } catch (e) {
        failure = errorText(e);
      }
    }
    countRequests();
    // Status of each Tenant resource, written only when it changed (an idle operator writes nothing).
    for (const cr of present) {
      const shown = names && { realm: names.realm, namespace: names.namespace, database: names.database };
      const status = tenantStatus(cr, { tenant, outcome, failure, names: shown, now: new Date() });
      if (status) await writeStatus(api, cr, status).catch((e: unknown) => log('error', 'status write failed', { tenant, error: errorText(e) }));
    }
    // A deleted Tenant is let go once nothing of it is left to delete (its database per deletion_policy).
    const finished = outcome && !outcome.result.stopped && !outcome.result.failed.length && !outcome.deferred.length;
    if (!present.length && finished) {
      for (const cr of deleting) await releaseFinalizer(cr);
      tenantsOf.delete(tenant);
    }
    const seconds = (Date.now() - started) / 1000;
    metrics.duration.observe(seconds, { kind: 'Tenant' });
    if (failure || (outcome && outcome.result.failed.length)) {
      metrics.reconciles.inc({ kind: 'Tenant', result: 'error' });
      metrics.errors.inc({ kind: 'Tenant' });
      log('error', 'reconcile failed', { tenant, error: failure ?? outcome!.result.failed.map((f) => `${f.change.kind} ${f.change.name}: ${f.error}`).join('; '), seconds });
      throw new SystemPromptError(failure ?? 'some changes failed');
    }
    metrics.reconciles.inc({ kind: 'Tenant', result: 'ok' });
    log('info', 'reconciled', { tenant, generation: present[0]?.metadata.generation, changes: outcome?.plan.changes.length ?? 0, writes: outcome?.result.writes ?? 0, deferred: outcome?.deferred.length ?? 0, seconds });
  };

  const lead = async (leading: AbortSignal): Promise<void> => {
    metrics.leader.set(1);
    log('info', 'leading');
    const queue = new WorkQueue();
    const lock = new SharedLock(() => new LeaseLock(kubeLeaseStore(api, opts.leaseNamespace, APPLY_LEASE)));
    const allTenants = (): string[] => [...new Set([...cache.tenants.list().map(tenantNameOf), ...tenantsOf.keys()])];
    const enqueueAll = (): void => {
      for (const t of allTenants()) queue.add(t);
    };
    const cache: Caches = {
      tenants: informer(kube.kubeconfig, api, 'tenants', log, leading, (keys) => keys.forEach((k) => queue.add(k)), enqueueAll),
      // An Agent is bound into every tenant that lists it: a change reconciles them all.
      agents: informer(kube.kubeconfig, api, 'agents', log, leading, enqueueAll, enqueueAll),
    };
    leading.addEventListener('abort', () => queue.shutDown(), { once: true });
    const started = await Promise.all([cache.tenants.synced, cache.agents.synced]).then(
      () => true,
      () => false,
    );
    // ConfigSources render their git repositories into Tenant and Agent objects; the informers see those.
    const configSources = runConfigSources({ api, signal: leading, log });
    if (started) {
      ready = true;
      enqueueAll();
    }
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await queue.get();
        metrics.queueDepth.set(queue.depth);
        if (key === undefined) break;
        try {
          const r = await reconcileTenant(key, cache, lock, leading);
          queue.forget(key);
          if (!r?.gone) queue.addAfter(key, r?.recheckMs ?? opts.resyncMs);
        } catch {
          if (!leading.aborted) queue.addRateLimited(key);
        } finally {
          queue.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: opts.workers }, worker));
    await Promise.all([cache.tenants.stop(), cache.agents.stop(), configSources, lock.close()]);
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

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The names one tenant uses in the targets. */
interface ScopeNames {
  realm: string;
  namespace: string;
  database: string;
  dbRole: string;
}

const scopeNames = (t: TenantDesired): ScopeNames => ({ realm: t.realm, namespace: t.namespace, database: t.database, dbRole: t.dbRole });

function scopeOf(tenant: string, sets: Array<ScopeNames | undefined>): ReadScope {
  const present = sets.filter((s): s is ScopeNames => !!s);
  const uniq = (xs: string[]): string[] => [...new Set(xs)];
  return {
    tenants: [tenant],
    realms: uniq(present.map((s) => s.realm)),
    namespaces: uniq(present.map((s) => s.namespace)),
    pgNames: uniq(present.flatMap((s) => [s.database, s.dbRole])),
  };
}

/** The names a Tenant being deleted compiles to (its spec as it was), if it still compiles. */
function deletedNames(cr: CustomResource, agents: CustomResource[], project: string | undefined, env: CompileEnvironment): ScopeNames | undefined {
  const { deletionTimestamp: _, ...metadata } = cr.metadata;
  const loaded = loadRepository(resourcesAsFiles([{ ...cr, metadata }], agents, project).files);
  const t = loaded.repo ? compile(loaded.repo, env).tenants[0] : undefined;
  return t ? scopeNames(t) : undefined;
}

interface Caches {
  tenants: Cache;
  agents: Cache;
}

export interface Cache {
  list(): CustomResource[];
  /** Settles once the first list is in (rejects if leading ends first). */
  synced: Promise<void>;
  stop(): Promise<void>;
}

/**
 * An informer on every namespace's `plural` (client-node's list + watch, which relists on 410
 * Gone), restarted with backoff after an error until `stop`. `onChange` gets the tenant keys an
 * event touches; a change of metadata.generation or a deletion counts, our own status writes do
 * not. `onResync` runs after each (re)list.
 */
export function informer(kc: KubeConfig, api: CrApi, plural: string, log: Log, stop: AbortSignal, onChange: (keys: string[]) => void, onResync: () => void): Cache {
  let listed = false;
  const inf = makeInformer<CustomResource & KubernetesObject>(kc, crPath(plural), async () => {
    const list = await listWithVersion(api, plural);
    listed = true;
    return list;
  });
  const seen = new Map<string, { generation: number | undefined; tenant: string; deleting: boolean }>();
  const note = (obj: CustomResource, deleted: boolean): void => {
    const uid = obj.metadata.uid ?? `${obj.metadata.namespace}/${obj.metadata.name}`;
    const before = seen.get(uid);
    const now = { generation: obj.metadata.generation, tenant: tenantNameOf(obj), deleting: !!obj.metadata.deletionTimestamp };
    if (deleted) seen.delete(uid);
    else seen.set(uid, now);
    if (!deleted && before && before.generation === now.generation && before.deleting === now.deleting && before.tenant === now.tenant) return;
    onChange([...new Set([now.tenant, ...(before ? [before.tenant] : [])])]);
  };
  inf.on('add', (o) => note(o, false));
  inf.on('update', (o) => note(o, false));
  inf.on('delete', (o) => note(o, true));
  let backoff = 500;
  let first: ((ok: boolean) => void) | undefined;
  const synced = new Promise<void>((resolve, reject) => {
    first = (ok) => (ok ? resolve() : reject(new Error('stopped before the first list')));
  });
  inf.on('error', (err: unknown) => {
    if (stop.aborted) return;
    log('error', 'watch ended; restarting', { resource: plural, error: errorText(err), backoffMs: backoff });
    const t = setTimeout(() => void start(), backoff);
    stop.addEventListener('abort', () => clearTimeout(t), { once: true });
    backoff = Math.min(backoff * 2, 30_000);
  });
  inf.on('connect', () => {
    backoff = 500;
  });
  const start = async (): Promise<void> => {
    listed = false;
    await inf.start().catch(() => undefined);
    if (!listed) return; // the error handler has scheduled the next try
    first?.(true);
    first = undefined;
    onResync();
  };
  stop.addEventListener('abort', () => first?.(false), { once: true });
  void start();
  return { list: () => [...inf.list()], synced, stop: () => inf.stop() };
}

/** Every object of `plural` as one list with its resourceVersion (what an informer starts from). */
async function listWithVersion(api: CrApi, plural: string): Promise<KubernetesListObject<CustomResource & KubernetesObject>> {
  const items: Array<CustomResource & KubernetesObject> = [];
  let cont: string | undefined;
  let resourceVersion = '';
  do {
    const page = await api.request<{ items: Array<CustomResource & KubernetesObject>; metadata?: { continue?: string; resourceVersion?: string } }>('GET', crPath(plural), { query: { limit: '500', continue: cont } });
    for (const o of page.items) items.push(o);
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return { apiVersion: `${GROUP}/${VERSION}`, kind: 'List', metadata: { resourceVersion }, items };
}

function splitListen(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new SystemPromptError(`--listen ${listen}: expected HOST:PORT`);
  return [listen.slice(0, i) || '127.0.0.1', port];
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

