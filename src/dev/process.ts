import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs?: number; what: string; onTimeout: (what: string) => Error },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let interval = opts.intervalMs ?? 100;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw opts.onTimeout(opts.what);
    await delay(Math.min(interval, Math.max(0, deadline - Date.now())));
    interval = Math.min(interval * 1.5, 1000);
  }
}

/** The NUL-separated command line of a process, or undefined when it is gone or not visible. */
export async function cmdlineOf(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return undefined; // zombie or kernel thread
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** Parses /proc/PID/stat: the single-letter state (R, S, Z, ...). */
export function statState(stat: string): string | undefined {
  const close = stat.lastIndexOf(')');
  return close < 0 ? undefined : stat.slice(close + 2, close + 3);
}

/** True when the pid exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const s = statState(stat);
    return s !== undefined && s !== 'Z' && s !== 'X';
  } catch {
    return false;
  }
}

/**
 * True when `pid` is alive and its command line contains every marker: this is how the stack
 * recognises its own processes (a recorded pid may have been reused by something else).
 */
export async function isOurProcess(pid: number | undefined, markers: readonly string[]): Promise<boolean> {
  if (pid === undefined || !(await isAlive(pid))) return false;
  const argv = await cmdlineOf(pid);
  if (!argv) return false;
  const joined = argv.join(' ');
  return markers.every((m) => joined.includes(m));
}

export interface SpawnSpec {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr are appended here. */
  logFile: string;
}

/**
 * Starts a long-running process in its own process group (so it survives the CLI and can be
 * stopped as a group), with its output appended to a log file. Returns its pid.
 */
export async function spawnDetached(spec: SpawnSpec): Promise<number> {
  const fd = openSync(spec.logFile, 'a', 0o600);
  try {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    const pid = await new Promise<number>((resolvePid, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolvePid(child.pid!));
    });
    child.unref();
    return pid;
  } finally {
    closeSync(fd);
  }
}

function signal(target: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(target, sig);
    return true;
  } catch {
    return false;
  }
}

/** True while any process of the group led by `pgid` is alive (zombies count as gone). */
async function groupAlive(pgid: number): Promise<boolean> {
  if (!signal(-pgid, 0)) return isAlive(pgid);
  return (await isAlive(pgid)) || (await groupMembersAlive(pgid));
}

async function groupMembersAlive(pgid: number): Promise<boolean> {
  for (const p of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(p)) continue;
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    const close = stat.lastIndexOf(')');
    if (close < 0) continue;
    const fields = stat.slice(close + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
  }
  return false;
}

/**
 * Stops a process group started by spawnDetached: SIGTERM, wait up to `graceMs`, then SIGKILL
 * and wait again. Returns how it ended.
 */
export async function stopGroup(pgid: number, graceMs: number): Promise<'stopped' | 'killed' | 'not-running'> {
  if (!(await groupAlive(pgid))) return 'not-running';
  if (!signal(-pgid, 'SIGTERM')) signal(pgid, 'SIGTERM');
  if (await waitGone(pgid, graceMs)) return 'stopped';
  if (!signal(-pgid, 'SIGKILL')) signal(pgid, 'SIGKILL');
  await waitGone(pgid, 10_000);
  return 'killed';
}

async function waitGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let interval = 50;
  while (Date.now() < deadline) {
    if (!(await groupAlive(pgid))) return true;
    await delay(interval);
    interval = Math.min(interval * 1.5, 500);
  }
  return !(await groupAlive(pgid));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a short command to completion and captures its output (never throws on a non-zero exit). */
export function run(command: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; logFile?: string } = {}): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const logFd = opts.logFile ? openSync(opts.logFile, 'a', 0o600) : undefined;
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', logFd ?? 'pipe', logFd ?? 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    child.once('error', (e) => {
      if (logFd !== undefined) closeSync(logFd);
      reject(e);
    });
    child.once('close', (code, sig) => {
      if (logFd !== undefined) closeSync(logFd);
      resolveRun({ code: code ?? (sig ? 128 : 1), stdout, stderr });
    });
  });
}
