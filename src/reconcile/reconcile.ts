import type { DesiredState } from '../compile/desired.js';
import type { LiveResource, TargetName } from '../model/resource.js';
import type { LiveState, Plan } from '../plan/plan.js';
import { placeAndPlan } from '../plan/placement.js';
import { inRunScope, requestsOf } from '../targets/runscope.js';
import type { ReadScope, Target } from '../targets/target.js';
import { applyPlan, type ApplyEvent, type ApplyResult } from './engine.js';
import { ApplySecrets, type SecretSources } from './secrets.js';

/**
 * A lock a run holds while it writes (a Kubernetes Lease with fencing, see lease.ts). `check()`
 * throws once the lock is lost; `signal` aborts then.
 */
export interface RunLock {
  acquire(opts?: { timeoutMs?: number; signal?: AbortSignal; onWait?: (holder: string, expiresInMs: number) => void }): Promise<void>;
  check(): void;
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

export type ReconcileEvent =
  | { kind: 'waiting'; holder: string; expiresInMs: number }
  | { kind: 'locked' }
  | { kind: 'planned'; plan: Plan }
  | ({ kind: 'apply' } & { event: ApplyEvent });

export interface ReconcileOptions {
  desired: DesiredState;
  /** The targets to read and write (those selected with --target). */
  targets: Partial<Record<TargetName, Target>>;
  /** Where secret values come from at write time (the tenant's Secrets, Keycloak's client secrets). */
  secrets: SecretSources;
  /** Taken before the live state is read, released at the end; writes stop the moment it is lost. */
  lock?: RunLock;
  /** How long to wait for a lock held by another run. */
  lockTimeoutMs?: number;
  /** Cancels the run: no change starts after it aborts. */
  signal?: AbortSignal;
  allowDestroy: boolean;
  /**
   * Without allowDestroy, leave destructive changes out (reported in `deferred`) and apply the rest,
   * instead of refusing the whole plan: what a long-running caller wants (the operator).
   */
  deferDestructive?: boolean;
  /** With deferDestructive: destructive changes that may run anyway (a tenant whose resource is being deleted). */
  allowDestroyOf?: (change: Plan['changes'][number]) => boolean;
  concurrency?: number;
  /**
   * Read and plan only these tenants (the operator's per-tenant reconcile); `desired` should hold
   * only their resources. Without it, everything systemprompt manages is read and planned.
   */
  scope?: ReadScope;
  onEvent?: (e: ReconcileEvent) => void;
  /**
   * Sees the plan made under the lock before anything is written; throwing stops the run with
   * nothing written (e.g. a saved or approved plan that no longer matches the live state).
   */
  review?: (plan: Plan) => void | Promise<void>;
}

export interface ReconcileResult {
  plan: Plan;
  result: ApplyResult;
  /** Destructive changes left out (deferDestructive without allowDestroy). */
  deferred: Plan['changes'];
}

/**
 * One reconcile: lock, read the live state under the lock, plan, apply, release. The CLI's `apply`
 * and the operator both call this; neither holds steps of its own.
 */
export async function reconcile(opts: ReconcileOptions): Promise<ReconcileResult> {
  const { lock } = opts;
  if (lock) {
    await lock.acquire({
      timeoutMs: opts.lockTimeoutMs ?? 0,
      ...(opts.signal ? { signal: opts.signal } : {}),
      onWait: (holder, expiresInMs) => opts.onEvent?.({ kind: 'waiting', holder, expiresInMs }),
    });
    opts.onEvent?.({ kind: 'locked' });
  }
  try {
    // The databases are placed on their servers against this live state (several PostgreSQL servers).
    const planned = placeAndPlan(opts.desired, await readLive(opts.desired, opts.targets, opts.scope));
    const desired = planned.desired;
    let plan: Plan = { ...planned.plan, targets: Object.keys(opts.targets) as TargetName[] };
    const permitted = (c: Plan['changes'][number]): boolean => !c.destructive || opts.allowDestroy || (opts.allowDestroyOf?.(c) ?? false);
    const deferred = opts.deferDestructive ? plan.changes.filter((c) => !permitted(c)) : [];
    if (deferred.length) plan = { ...plan, changes: plan.changes.filter(permitted) };
    opts.onEvent?.({ kind: 'planned', plan });
    await opts.review?.(plan);
    if (plan.changes.length === 0) return { plan, result: { applied: 0, failed: [], skipped: 0, writes: 0 }, deferred };
    const signals = [lock?.signal, opts.signal].filter((s): s is AbortSignal => !!s);
    const guard = {
      fence: () => {
        lock?.check();
        opts.signal?.throwIfAborted();
      },
      ...(signals.length ? { signal: signals.length === 1 ? signals[0]! : AbortSignal.any(signals) } : {}),
    };
    const secrets = new ApplySecrets(desired, opts.secrets);
    const result = await applyPlan(plan, opts.targets, { secrets, desired }, {
      // What deferDestructive kept is permitted; without it, the caller's word decides.
      allowDestroy: opts.allowDestroy || (!!opts.deferDestructive && plan.changes.every(permitted)),
      ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
      guard,
      onEvent: (event) => opts.onEvent?.({ kind: 'apply', event }),
    });
    return { plan, result, deferred };
  } finally {
    await lock?.release();
  }
}

/**
 * Read every target (in parallel); the counts are the requests of this read alone. With a scope,
 * what a target returns of another tenant (a realm of that name marked as someone else's) is left
 * out: a scoped plan never deletes what is not its tenants'.
 */
export async function readLive(desired: DesiredState, targets: Partial<Record<TargetName, Target>>, scope?: ReadScope): Promise<LiveState> {
  const parts = await Promise.all(
    Object.values(targets).map((t) =>
      inRunScope(undefined, async (run) => {
        const resources = await t!.read(desired, scope);
        const n = requestsOf(run, t!.name);
        return { name: t!.name, resources, requests: n.reads + n.writes };
      }),
    ),
  );
  const resources: LiveResource[] = [];
  const requests: LiveState['requests'] = {};
  const inScope = (r: LiveResource): boolean => !scope || !r.managed || (r.tenant !== undefined && scope.tenants.includes(r.tenant));
  for (const p of parts) {
    for (const r of p.resources) if (inScope(r)) resources.push(r);
    requests[p.name] = p.requests;
  }
  return { resources, requests };
}
