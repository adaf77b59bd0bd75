import { open, rename } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import type { Io } from '../cli/io.js';
import { compile } from '../compile/compile.js';
import type { CompileEnvironment, DesiredState } from '../compile/desired.js';
import type { LoadCache } from '../config/load-cache.js';
import type { TargetName } from '../model/resource.js';
import { EMPTY_LIVE, type LiveState, type Plan } from '../plan/plan.js';
import { placeAndPlan } from '../plan/placement.js';
import { selectTargets } from '../plan/select.js';
import { renderPlanText } from '../plan/render.js';
import { writeJson, writeJsonFile } from '../plan/json-stream.js';
import { loadValidRepository } from './load.js';

export interface PlanOptions {
  dir: string;
  offline: boolean;
  output: 'text' | 'json';
  out?: string;
  detailedExitcode: boolean;
  verbose: boolean;
}

export interface PlanDeps {
  /**
   * Where the targets are (for issuer and connection URLs); with `postgres.servers`, where each
   * named server is (live: every server's URL must be known, else an error saying what to set).
   */
  environment(offline: boolean, postgresServers?: readonly string[]): Promise<CompileEnvironment>;
  /** The targets plan and apply work on (`--target`). */
  readonly selected: readonly TargetName[];
  /** Read the live state of the targets; only called when not offline. */
  readLive(desired: DesiredState): Promise<LiveState>;
}

/**
 * Compile and plan; shared by `plan` and `apply`. `desired` is the compiled state before its
 * databases are placed (placement is part of every plan: apply places again under its lock).
 */
export async function makePlan(io: Io, opts: { dir: string; offline: boolean; loadCache?: LoadCache }, deps: PlanDeps): Promise<{ plan: Plan; desired: DesiredState }> {
  const { repo } = await loadValidRepository(opts.dir, io, { cache: opts.loadCache });
  // With several PostgreSQL servers, each one's URL must be known before anything is read.
  const env = await deps.environment(opts.offline, repo.project.postgresServers?.map((s) => s.name));
  const desired = selectTargets(compile(repo, env), deps.selected);
  const live = opts.offline ? EMPTY_LIVE : await deps.readLive(desired);
  return { plan: { ...placeAndPlan(desired, live, { offline: opts.offline }).plan, targets: [...deps.selected] }, desired };
}

/** `systemprompt plan`: exit 0 (no changes), 2 (changes, with --detailed-exitcode), 1 (error). */
export async function runPlan(io: Io, opts: PlanOptions, deps: PlanDeps): Promise<number> {
  const { plan } = await makePlan(io, opts, deps);
  if (opts.out) await savePlan(opts.out, plan);
  // Streamed: a large plan is past V8's string limit as one string. With --out, the saved bytes
  // are the same: copied, not made again.
  if (opts.output === 'json') {
    if (opts.out) await copyFile(opts.out, io);
    else writeJson(plan, (t) => io.out(t));
  } else {
    io.out(renderPlanText(plan, { verbose: opts.verbose }));
    if (opts.out) io.out(`Saved the plan to ${opts.out}; apply it with \`systemprompt apply ${opts.out}\`.\n`);
  }
  if (opts.detailedExitcode && plan.changes.length > 0) return 2;
  return 0;
}

export async function savePlan(file: string, plan: Plan): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeJsonFile(tmp, plan, 0o600);
  await rename(tmp, file);
}

/** A UTF-8 file to standard output a block at a time: as bytes where the Io takes them, else as text. */
async function copyFile(file: string, io: Io): Promise<void> {
  const fh = await open(file, 'r');
  try {
    const decoder = new StringDecoder('utf8');
    for (;;) {
      const buf = Buffer.allocUnsafe(1 << 20); // a new one each time: a write may still hold the last
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      if (io.outBytes) io.outBytes(buf.subarray(0, bytesRead));
      else io.out(decoder.write(buf.subarray(0, bytesRead)));
    }
    const rest = decoder.end();
    if (rest) io.out(rest);
  } finally {
    await fh.close();
  }
}
