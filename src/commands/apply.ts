import { createInterface } from 'node:readline/promises';
import { interruptSignal } from '../cli/interrupt.js';
import type { Io } from '../cli/io.js';
import type { LoadCache } from '../config/load-cache.js';
import { AbortedError, ConflictError, SystemPromptError, UsageError } from '../errors.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../model/ownership.js';
import type { Plan } from '../plan/plan.js';
import { checkApplicable, type ApplyEvent } from '../reconcile/engine.js';
import { kubeLeaseStore, LeaseLock, LockHeldError } from '../reconcile/lease.js';
import { reconcile } from '../reconcile/reconcile.js';
import { renderPlanText } from '../plan/render.js';
import { readJsonFile, JsonReadError } from '../plan/json-read.js';
import { writeJson } from '../plan/json-stream.js';
import { kubeError } from '../targets/kube-errors.js';
import { makePlan } from './plan.js';
import type { LiveSession } from './session.js';

export interface ApplyOptions {
  dir: string;
  planFile?: string;
  autoApprove: boolean;
  allowDestroy: boolean;
  output: 'text' | 'json';
  concurrency: number;
  /** How long to wait for the lock another apply holds (0: fail at once, naming the holder). */
  lockTimeoutMs: number;
  /** Files parsed by an earlier round (apply --watch), reused when unchanged. */
  loadCache?: LoadCache;
}

/** The apply lock: one Lease for the whole cluster's systemprompt state. */
export const LOCK_NAMESPACE = 'kube-system';
export const LOCK_NAME = 'systemprompt-apply';

const SIGN = { create: '+', update: '~', delete: '-' } as const;

/**
 * `systemprompt apply [PLANFILE]`: plan (or load a saved plan), confirm, lock, run, report.
 * An empty plan takes no lock and writes nothing. Under the lock the live state is read again:
 * with --auto-approve the plan made there is the one applied; an approved or saved plan is applied
 * only if the live state still matches it.
 */
export async function runApply(io: Io, opts: ApplyOptions, session: LiveSession, confirm: (question: string) => Promise<boolean> = ttyConfirm): Promise<number> {
  const json = opts.output === 'json';
  const saved = opts.planFile ? await readSavedPlan(opts.planFile) : undefined;
  if (saved?.offline) throw new UsageError(`${opts.planFile} is an offline plan; it cannot be applied`, { hint: 'save a plan with `systemprompt plan --out FILE` (without --offline)' });
  if (saved?.targets && [...saved.targets].sort().join(',') !== [...session.selected].sort().join(',')) {
    throw new UsageError(`${opts.planFile} was planned for ${saved.targets.join(',')}; apply it with the same targets`, { hint: `systemprompt apply ${opts.planFile} --target ${saved.targets.join(',')}` });
  }
  const first = await makePlan(io, { dir: opts.dir, offline: false, loadCache: opts.loadCache }, session);
  const desired = first.desired;
  const checkSaved = (fresh: Plan): void => {
    if (!saved) return;
    if (saved.desiredFingerprint !== fresh.desiredFingerprint) throw new ConflictError(`the configuration changed since ${opts.planFile} was saved; nothing was applied`, { hint: 'run `systemprompt plan --out` again' });
    if (saved.liveFingerprint !== fresh.liveFingerprint) throw new ConflictError(`the live state changed since ${opts.planFile} was saved; nothing was applied`, { hint: 'run `systemprompt plan --out` again and review the new plan' });
  };
  checkSaved(first.plan);
  const shown: Plan = saved ?? first.plan;

  if (shown.changes.length === 0) {
    if (json) io.out(`${JSON.stringify({ plan: shown, result: { applied: 0, failed: [], skipped: 0, writes: 0 } }, null, 2)}\n`);
    else io.out(renderPlanText(shown));
    return shown.conflicts.length > 0 ? 1 : 0;
  }
  if (!json) io.out(renderPlanText(shown));
  checkApplicable(shown, opts.allowDestroy);
  if (!opts.autoApprove && !saved) {
    if (!io.interactive) throw new AbortedError('refusing to ask for confirmation: standard input is not a terminal', { hint: 'review the plan, then pass --auto-approve' });
    if (!(await confirm('Apply these changes? Only "yes" is accepted: '))) throw new AbortedError('apply cancelled; nothing was changed');
  }

  const connected = await session.connect();
  const kube = connected.kubernetes;
  // The lock's own requests are bookkeeping: they are not counted as target reads or writes.
  const lock = new LeaseLock(kubeLeaseStore(kube.api, LOCK_NAMESPACE, LOCK_NAME, { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE }), {
    onEvent: (e) => {
      if (e.type === 'renew-failed' && !json) io.err(`warning: renewing the apply lock failed (${e.sinceLastRenewMs} ms since the last renewal): ${e.error instanceof Error ? e.error.message : String(e.error)}\n`);
      if (e.type === 'lost' && !json) io.err(`error: ${e.error.message}; stopping before the next write\n`);
    },
  });
  const interrupt = interruptSignal(() => new AbortedError('interrupted; changes in flight finish, nothing new starts'));
  const report = progress(io);
  const started = Date.now();
  let outcome: Awaited<ReturnType<typeof reconcile>>;
  try {
    outcome = await reconcile({
      desired,
      targets: connected.targets,
      secrets: connected.secretSources(),
      lock,
      lockTimeoutMs: opts.lockTimeoutMs,
      signal: interrupt.signal,
      allowDestroy: opts.allowDestroy,
      concurrency: opts.concurrency,
      onEvent: (e) => {
        if (json) return;
        if (e.kind === 'waiting') io.err(`waiting for the apply lock held by ${e.holder} (expires in ${Math.ceil(e.expiresInMs / 1000)} s unless renewed)\n`);
        if (e.kind === 'apply') report(e.event);
      },
      // Under the lock, the live state is read again: another apply, or an interrupted one's last
      // requests, may have landed. With --auto-approve the plan made there is the one applied; an
      // approved or saved plan only if nothing moved.
      review: (underLock) => {
        if (underLock.liveFingerprint === shown.liveFingerprint) return;
        checkSaved(underLock);
        if (!opts.autoApprove) throw new ConflictError('the live state changed while the plan was shown; nothing was applied', { hint: 'run apply again' });
        if (!json) io.err('note: the live state moved since the plan was read; applying the plan made under the lock\n');
        checkApplicable(underLock, opts.allowDestroy);
      },
    });
  } catch (e) {
    if (e instanceof LockHeldError) {
      throw new ConflictError(`another apply is running: ${e.message}`, { hint: 'wait for it to finish, or pass --lock-timeout 30s to wait for it; a lock whose holder died frees itself 15 s after its last renewal' });
    }
    throw e instanceof SystemPromptError ? e : kubeError('apply', e);
  } finally {
    interrupt.dispose();
  }
  const { plan, result } = outcome;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (json) writeJson({ plan, result }, (t) => io.out(t), 3);
  else {
    if (plan.changes.length === 0) io.out('No changes under the lock: another apply made them.\n');
    io.out(`Apply ${result.failed.length || result.stopped ? 'incomplete' : 'complete'}: ${result.applied} applied, ${result.failed.length} failed, ${result.skipped} skipped; ${result.writes} writes in ${secs} s.\n`);
    for (const f of result.failed) io.err(`failed: ${f.change.target} ${f.change.kind} ${f.change.name}: ${f.error}\n`);
    if (result.stopped) io.err(`stopped: ${result.stopped}\n`);
    if (result.failed.length || result.stopped) io.err('hint: fix the cause and run apply again; what was applied stays, and the next apply continues from there\n');
  }
  return result.failed.length || result.stopped ? 1 : 0;
}

/**
 * Progress on stderr: one line per change for small plans; for large ones (over 100 changes) a
 * line every 2 s with the count, failures at once, and the rest left to the summary.
 */
export function progress(io: Io, now: () => number = Date.now): (e: ApplyEvent) => void {
  let done = 0;
  const started = now();
  let last = started;
  return (e) => {
    if (e.kind === 'start') return;
    done++;
    const c = e.change;
    const what = `${SIGN[c.action]} ${c.target} ${c.kind} ${c.name}`;
    const status = e.kind === 'done' ? `ok (${e.ms} ms)` : e.kind === 'failed' ? `FAILED: ${e.error}` : 'skipped (a change it needs failed)';
    if (e.total <= 100 || e.kind === 'failed') {
      io.err(`[${done}/${e.total}] ${what} ${status}\n`);
      return;
    }
    const t = now();
    if (t - last >= 2000 || done === e.total) {
      last = t;
      io.err(`[${done}/${e.total}] ${Math.floor((100 * done) / e.total)}% after ${((t - started) / 1000).toFixed(0)} s, last: ${what}\n`);
    }
  };
}

/** A plan saved by `plan --out`, read in blocks: one of 10,000 tenants is past V8's string limit. */
export async function readSavedPlan(file: string): Promise<Plan> {
  let p: Plan;
  try {
    p = (await readJsonFile(file)) as Plan;
  } catch (e) {
    if (e instanceof JsonReadError) throw new UsageError(`${file} is not a plan saved by \`systemprompt plan --out\` (${e.message})`);
    throw new UsageError(`cannot read plan file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!p || typeof p !== 'object' || p.format !== 'systemprompt.plan/v1' || !Array.isArray(p.changes)) throw new UsageError(`${file} is not a plan saved by \`systemprompt plan --out\``);
  return p;
}

async function ttyConfirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim() === 'yes';
  } finally {
    rl.close();
  }
}
