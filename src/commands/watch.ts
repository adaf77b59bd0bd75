import path from 'node:path';
import type { Io } from '../cli/io.js';
import { LoadCache } from '../config/load-cache.js';
import { ConfigInvalidError, SystemPromptError } from '../errors.js';
import { runApply, type ApplyOptions } from './apply.js';
import type { LiveSession } from './session.js';

export interface WatchOptions extends Omit<ApplyOptions, 'autoApprove' | 'planFile'> {
  /** Quiet time after the last saved change before a round starts. */
  debounceMs: number;
}

/** Files whose changes start a round: the config files, never git's or an editor's own. */
export function relevant(file: string): boolean {
  const parts = file.split(path.sep);
  if (parts.some((p) => p === '.git' || p === 'node_modules')) return false;
  const base = parts[parts.length - 1] ?? '';
  if (base.startsWith('.') || base.endsWith('~') || base.endsWith('.swp')) return false;
  return true;
}

/**
 * Calls `onChange` after each saved change under `root` to a file `relevant` admits, once the
 * changes have been quiet for `debounceMs`. Resolves when the first scan is done (a change from
 * then on is seen) with a function that stops watching.
 */
export async function watchRepository(root: string, debounceMs: number, onChange: () => void, onError: (message: string) => void): Promise<() => Promise<void>> {
  const { watch } = await import('chokidar');
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(root, { ignoreInitial: true, ignored: (f: string) => !relevant(path.relative(root, f) || '.') && f !== root });
  watcher.on('all', (_event: string, file: string) => {
    if (!relevant(path.relative(root, file))) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.on('error', (e: unknown) => onError(e instanceof Error ? e.message : String(e)));
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return async () => {
    if (timer) clearTimeout(timer);
    await watcher.close();
  };
}

/** Resolves when `signal` is aborted (at once when it already is). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * `systemprompt apply --watch`: for local editing. Applies once, then again after each saved change
 * to the repository (debounced), each round through the same path as `apply --auto-approve`
 * (lock, read under the lock, plan, apply). A round that fails (an invalid file, a target error,
 * destruction without --allow-destroy) says why and waits for the next change; nothing is
 * applied from an invalid repository. Ctrl-C stops after the round in progress.
 */
export async function runApplyWatch(io: Io, opts: WatchOptions, session: LiveSession, signal: AbortSignal): Promise<number> {
  const root = path.resolve(io.cwd, opts.dir);
  let running: Promise<void> | undefined;
  let again = false;
  let rounds = 0;
  // A round after a one-file change parses and validates that file only.
  const loadCache = new LoadCache();

  const round = async (): Promise<void> => {
    rounds++;
    io.err(`watch: round ${rounds} at ${new Date().toISOString()}\n`);
    try {
      const code = await runApply(io, { ...opts, autoApprove: true, loadCache }, session);
      io.err(`watch: round ${rounds} ${code === 0 ? 'done' : 'failed'}; watching ${root} for changes (Ctrl-C stops)\n`);
    } catch (e) {
      if (e instanceof ConfigInvalidError) io.err('watch: the repository is invalid (see above); nothing was applied\n');
      else if (e instanceof SystemPromptError) io.err(`watch: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}\n`);
      else io.err(`watch: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
      io.err(`watch: waiting for the next change in ${root}\n`);
    }
  };
  const schedule = (): void => {
    if (signal.aborted) return;
    if (running) {
      again = true;
      return;
    }
    running = round().finally(() => {
      running = undefined;
      if (again && !signal.aborted) {
        again = false;
        schedule();
      }
    });
  };

  const stopWatching = await watchRepository(root, opts.debounceMs, schedule, (m) => io.err(`watch: ${m}\n`));
  schedule();
  await untilAborted(signal);
  await stopWatching();
  await running;
  io.err(`watch: stopped after ${rounds} round${rounds === 1 ? '' : 's'}\n`);
  return 0;
}
