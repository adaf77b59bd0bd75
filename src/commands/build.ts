import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Io } from '../cli/io.js';
import { buildArtifacts } from '../compile/build.js';
import { compile } from '../compile/compile.js';
import type { CompileEnvironment } from '../compile/desired.js';
import { customResourceFiles } from '../crds/objects.js';
import { UsageError } from '../errors.js';
import { loadValidRepository } from './load.js';
import { EMPTY_LIVE } from '../plan/plan.js';
import { placeDatabases } from '../plan/placement.js';

/** Marks a folder as build output, so that a later build may replace it (and nothing else). */
export const BUILD_MARKER = '.systemprompt-build';

export interface BuildOptions {
  dir: string;
  out: string;
  /** Where the targets are, from the environment's variables (offline); with postgres.servers, each server. */
  environment(postgresServers?: readonly string[]): CompileEnvironment;
  output: 'text' | 'json';
  /** `files` (default): what each tenant compiles to; `crds`: the repository as Tenant and Agent objects. */
  format?: 'files' | 'crds';
}

/**
 * `systemprompt build --out OUT`: realm JSON, Kubernetes YAML, SQL and agent cards per tenant;
 * with `--format crds`, Tenant and Agent custom resources. Offline, no secret values.
 */
export async function runBuild(io: Io, opts: BuildOptions): Promise<number> {
  const { repo } = await loadValidRepository(opts.dir, io);
  const crds = opts.format === 'crds';
  // With several PostgreSQL servers, databases are placed as an offline plan places them (against empty servers).
  const files = crds ? customResourceFiles(repo) : buildArtifacts(placeDatabases(compile(repo, opts.environment(repo.project.postgresServers?.map((s) => s.name))), EMPTY_LIVE, { postgresRead: true }));
  // Write into a fresh sibling folder, then swap it in: a failed build leaves the old output intact.
  const out = path.resolve(io.cwd, opts.out);
  await assertReplaceable(out, opts.out);
  files.set(BUILD_MARKER, 'Output of `systemprompt build`; replaced by the next build.\n');
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  for (const [rel, text] of files) {
    const p = path.join(tmp, rel);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, text, { mode: 0o644 });
  }
  await mkdir(tmp, { recursive: true });
  await rm(out, { recursive: true, force: true });
  await rename(tmp, out);
  if (opts.output === 'json') io.out(`${JSON.stringify({ out, files: [...files.keys()].sort() }, null, 2)}\n`);
  else if (crds) io.out(`wrote ${repo.tenants.length} Tenant and ${repo.agents.length} Agent objects to ${opts.out}\n`);
  else io.out(`wrote ${files.size - 1} files for ${repo.tenants.length} tenants to ${opts.out}\n`);
  return 0;
}

/** Only an empty folder, or an earlier build's output, is replaced. */
async function assertReplaceable(out: string, shown: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new UsageError(`--out ${shown} is a file, not a folder`);
    throw e;
  }
  if (entries.length > 0 && !entries.includes(BUILD_MARKER)) {
    throw new UsageError(`--out ${shown} is a non-empty folder that is not build output; refusing to replace it`, {
      hint: 'choose a new or empty folder, e.g. --out out',
    });
  }
}
