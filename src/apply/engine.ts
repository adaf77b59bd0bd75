import type { DesiredState } from '../compile/desired.js';
import { AbortedError, ConflictError, TargetError } from '../errors.js';
import { resourceKey, type TargetName } from '../model/resource.js';
import type { Change, Plan } from '../plan/plan.js';
import type { SecretResolver, Target } from '../targets/target.js';

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
}

export interface ApplyResult {
  applied: number;
  failed: Array<{ change: Change; error: string }>;
  skipped: number;
  writes: number;
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
 * Run a plan: each change after the changes it depends on, up to `concurrency` at once, each
 * target's own retries for transient failures. A failed change skips its dependents; the others go on.
 */
export async function applyPlan(
  plan: Plan,
  targets: Partial<Record<TargetName, Target>>,
  ctx: { secrets: SecretResolver; desired: DesiredState },
  opts: ApplyOptions,
): Promise<ApplyResult> {
  checkApplicable(plan, opts.allowDestroy);
  const changes = plan.changes;
  const total = changes.length;
  const keyOf = changes.map((c) => resourceKey(c));
  const index = new Map(keyOf.map((k, i) => [k, i]));
  // Deletes depend on nothing in the plan but run after every create/update (they come last).
  const deps = changes.map((c, i) =>
    c.action === 'delete'
      ? changes.slice(0, i).map((_, j) => j).filter((j) => changes[j]!.action !== 'delete' || deleteBefore(changes[j]!, c))
      : c.dependsOn.map((d) => index.get(d)).filter((j): j is number => j !== undefined),
  );
  const state = changes.map(() => 'pending' as 'pending' | 'running' | 'done' | 'failed' | 'skipped');
  const result: ApplyResult = { applied: 0, failed: [], skipped: 0, writes: 0 };
  const writesBefore = Object.values(targets).reduce((n, t) => n + (t?.requests.writes ?? 0), 0);
  const limit = Math.max(1, opts.concurrency ?? 4);
  let running = 0;

  await new Promise<void>((resolve) => {
    const pump = (): void => {
      let progressed = true;
      while (progressed) {
        progressed = false;
        for (let i = 0; i < total; i++) {
          if (state[i] !== 'pending') continue;
          const ds = deps[i]!;
          if (ds.some((j) => state[j] === 'failed' || state[j] === 'skipped')) {
            state[i] = 'skipped';
            result.skipped++;
            opts.onEvent?.({ kind: 'skipped', change: changes[i]!, index: i, total });
            progressed = true;
            continue;
          }
          if (running >= limit || !ds.every((j) => state[j] === 'done')) continue;
          state[i] = 'running';
          running++;
          const c = changes[i]!;
          const started = Date.now();
          opts.onEvent?.({ kind: 'start', change: c, index: i, total });
          const target = targets[c.target];
          const run = target ? target.apply(c, ctx) : Promise.reject(new TargetError(c.target, 'target not connected'));
          run.then(
            () => {
              state[i] = 'done';
              result.applied++;
              opts.onEvent?.({ kind: 'done', change: c, index: i, total, ms: Date.now() - started });
            },
            (e: unknown) => {
              state[i] = 'failed';
              const msg = e instanceof Error ? e.message : String(e);
              result.failed.push({ change: c, error: msg });
              opts.onEvent?.({ kind: 'failed', change: c, index: i, total, ms: Date.now() - started, error: msg });
            },
          ).finally(() => {
            running--;
            pump();
          });
        }
      }
      if (running === 0 && state.every((s) => s !== 'pending' && s !== 'running')) resolve();
    };
    pump();
  });
  result.writes = Object.values(targets).reduce((n, t) => n + (t?.requests.writes ?? 0), 0) - writesBefore;
  return result;
}

/** Among deletes: objects inside a realm/namespace and databases go before realms, namespaces and roles. */
function deleteBefore(a: Change, b: Change): boolean {
  const parent = (c: Change): boolean => c.kind === 'Namespace' || c.kind === 'Realm' || (c.target === 'postgres' && c.kind === 'Role');
  return !parent(a) && parent(b);
}
