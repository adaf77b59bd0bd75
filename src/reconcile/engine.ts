import { appendTo } from '../collections.js';
import type { DesiredState } from '../compile/desired.js';
import { AbortedError, ConflictError, TargetError } from '../errors.js';
import { resourceKey, type JsonObject, type TargetName } from '../model/resource.js';
import { desiredByKey, type Change, type Plan } from '../plan/plan.js';
import { inRunScope, requestsOf } from '../targets/runscope.js';
import type { RunGuard, SecretResolver, Target } from '../targets/target.js';

export interface ApplyEvent {
  kind: 'start' | 'done' | 'failed' | 'skipped';
  change: Change;
  index: number;
  total: number;
  ms?: number;
  error?: string;
}

export interface ApplyOptions {
  allowDestroy: boolean;
  concurrency?: number;
  onEvent?: (e: ApplyEvent) => void;
  /**
   * Fencing and cancellation: `fence()` is called before each change and before each write
   * request, and throws once the run may no longer write (its lock was lost); once `signal` aborts,
   * no further change starts.
   */
  guard?: RunGuard;
}

export interface ApplyResult {
  applied: number;
  failed: Array<{ change: Change; error: string }>;
  skipped: number;
  writes: number;
  /** Why the run stopped before the end (lock lost, cancelled), if it did. */
  stopped?: string;
}

/** Refuse a plan that may not run: conflicts, or destruction without --allow-destroy. */
export function checkApplicable(plan: Plan, allowDestroy: boolean): void {
  if (plan.conflicts.length > 0) {
    throw new ConflictError(`${plan.conflicts.length} object${plan.conflicts.length === 1 ? '' : 's'} in the way: ${plan.conflicts.map((c) => `${c.target} ${c.kind} ${c.name}`).join(', ')}`, {
      hint: 'these exist without the systemprompt marker and are never changed; see `systemprompt plan`',
    });
  }
  const destructive = plan.changes.filter((c) => c.destructive);
  if (destructive.length > 0 && !allowDestroy) {
    throw new AbortedError(`the plan deletes ${destructive.map((c) => `${c.target} ${c.kind} ${c.name}`).join(', ')}; refusing without --allow-destroy`, {
      hint: 'check the plan, then run apply again with --allow-destroy',
    });
  }
}

/**
 * Run a plan: creates and updates first, each after the changes it depends on; then deletes,
 * objects inside a realm or namespace (and databases) before realms, namespaces and roles. Up to
 * `concurrency` changes run at once; each target retries its own transient failures. A failed
 * change skips the changes that need it; the others go on. The run's guard fences every write it
 * makes, and `writes` counts its own, even while other runs use the same targets.
 */
export function applyPlan(
  plan: Plan,
  targets: Partial<Record<TargetName, Target>>,
  ctx: { secrets: SecretResolver; desired: DesiredState },
  opts: ApplyOptions,
): Promise<ApplyResult> {
  return inRunScope(opts.guard, async (scope) => {
    const result = await runPlan(plan, targets, ctx, opts);
    result.writes = requestsOf(scope).writes;
    return result;
  });
}

async function runPlan(
  plan: Plan,
  targets: Partial<Record<TargetName, Target>>,
  ctx: { secrets: SecretResolver; desired: DesiredState },
  opts: ApplyOptions,
): Promise<ApplyResult> {
  checkApplicable(plan, opts.allowDestroy);
  const changes = plan.changes;
  const specs = desiredByKey(ctx.desired);
  const applyCtx = {
    ...ctx,
    specOf: (c: Change): JsonObject => {
      const d = specs.get(resourceKey(c));
      if (!d) throw new TargetError(c.target, `${c.kind} ${c.name} is not in the desired state`);
      return d.spec;
    },
  };
  const guard = opts.guard;
  const stopReason = (): string | undefined => {
    if (!guard) return undefined;
    if (guard.signal?.aborted) return String((guard.signal.reason as Error | undefined)?.message ?? guard.signal.reason ?? 'cancelled');
    try {
      guard.fence();
      return undefined;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  };
  const total = changes.length;
  const result: ApplyResult = { applied: 0, failed: [], skipped: 0, writes: 0 };
  const limit = Math.max(1, opts.concurrency ?? 4);

  const runOne = async (i: number): Promise<boolean> => {
    const c = changes[i]!;
    const stop = stopReason();
    if (stop) {
      result.stopped ??= stop;
      skip(i);
      return false;
    }
    const started = Date.now();
    opts.onEvent?.({ kind: 'start', change: c, index: i, total });
    try {
      const target = targets[c.target];
      if (!target) throw new TargetError(c.target, 'target not connected');
      await target.apply(c, applyCtx);
      result.applied++;
      opts.onEvent?.({ kind: 'done', change: c, index: i, total, ms: Date.now() - started });
      return true;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      result.failed.push({ change: c, error: msg });
      opts.onEvent?.({ kind: 'failed', change: c, index: i, total, ms: Date.now() - started, error: msg });
      return false;
    }
  };
  const skip = (i: number): void => {
    result.skipped++;
    opts.onEvent?.({ kind: 'skipped', change: changes[i]!, index: i, total });
  };

  // Phase 1: creates and updates, as a dependency graph.
  const upserts = changes.map((c, i) => (c.action === 'delete' ? -1 : i)).filter((i) => i >= 0);
  const index = new Map(upserts.map((i) => [resourceKey(changes[i]!), i]));
  const waiting = new Map<number, number>();
  const dependents = new Map<number, number[]>();
  for (const i of upserts) {
    const deps = changes[i]!.dependsOn.map((d) => index.get(d)).filter((j): j is number => j !== undefined);
    waiting.set(i, deps.length);
    for (const j of deps) appendTo(dependents, j, i);
  }
  const skipDependents = (i: number): void => {
    for (const j of dependents.get(i) ?? []) {
      if (waiting.get(j) === -1) continue;
      waiting.set(j, -1);
      skip(j);
      skipDependents(j);
    }
  };
  await pool(limit, upserts.filter((i) => waiting.get(i) === 0), async (i, enqueue) => {
    if (await runOne(i)) {
      for (const j of dependents.get(i) ?? []) {
        const n = waiting.get(j)!;
        if (n < 0) continue;
        waiting.set(j, n - 1);
        if (n - 1 === 0) enqueue(j);
      }
    } else skipDependents(i);
  });

  // Phases 2 and 3: deletes, children first, then their parents.
  const deletes = changes.map((c, i) => (c.action === 'delete' ? i : -1)).filter((i) => i >= 0);
  const isParent = (c: Change): boolean => c.kind === 'Namespace' || c.kind === 'Realm' || (c.target === 'postgres' && c.kind === 'Role');
  await pool(limit, deletes.filter((i) => !isParent(changes[i]!)), async (i) => void (await runOne(i)));
  await pool(limit, deletes.filter((i) => isParent(changes[i]!)), async (i) => void (await runOne(i)));

  return result;
}

/** Run `work` over a queue that may grow, at most `limit` at once. */
async function pool(limit: number, queue: number[], work: (i: number, enqueue: (j: number) => void) => Promise<void>): Promise<void> {
  const q = [...queue];
  let head = 0;
  let running = 0;
  await new Promise<void>((resolve) => {
    const next = (): void => {
      while (running < limit && head < q.length) {
        const i = q[head++]!;
        running++;
        void work(i, (j) => q.push(j)).finally(() => {
          running--;
          next();
        });
      }
      if (running === 0 && head === q.length) resolve();
    };
    next();
  });
}
