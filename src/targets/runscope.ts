import { AsyncLocalStorage } from 'node:async_hooks';
import type { RunGuard } from './target.js';

export type RequestCounts = { reads: number; writes: number };

/**
 * One run's view of the targets it shares with other runs (the operator reconciles several
 * tenants at once through the same target objects): the guard that fences its writes, and the
 * requests it made, by target. It follows the run's async calls, so a request is fenced by the
 * guard of the run that made it and counted for that run (and for the runs around it) only.
 */
export interface RunScope {
  readonly guard: RunGuard | undefined;
  readonly counts: Record<string, RequestCounts>;
  readonly parent: RunScope | undefined;
}

const scopes = new AsyncLocalStorage<RunScope>();

/** Run `fn` as a run of its own; without a guard of its own it keeps the enclosing run's. */
export function inRunScope<T>(guard: RunGuard | undefined, fn: (scope: RunScope) => Promise<T>): Promise<T> {
  const parent = scopes.getStore();
  const scope: RunScope = { guard: guard ?? parent?.guard, counts: {}, parent };
  return scopes.run(scope, () => fn(scope));
}

/** The guard of the run making the current call, if any. */
export function currentGuard(): RunGuard | undefined {
  return scopes.getStore()?.guard;
}

/** Count one request of `target` for the current run and every run around it. */
export function countRequest(target: string, kind: 'read' | 'write'): void {
  for (let s = scopes.getStore(); s; s = s.parent) {
    const c = (s.counts[target] ??= { reads: 0, writes: 0 });
    if (kind === 'read') c.reads++;
    else c.writes++;
  }
}

/** Requests of a run: of one target, or of all of them. */
export function requestsOf(scope: RunScope, target?: string): RequestCounts {
  const all = target ? [scope.counts[target]].filter((c): c is RequestCounts => !!c) : Object.values(scope.counts);
  return all.reduce((n, c) => ({ reads: n.reads + c.reads, writes: n.writes + c.writes }), { reads: 0, writes: 0 });
}
