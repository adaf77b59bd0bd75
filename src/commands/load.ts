import path from 'node:path';
import type { Io } from '../cli/io.js';
import { renderDiagnostics, type Diagnostic } from '../config/diagnostics.js';
import { readRepositoryFiles } from '../config/files.js';
import type { LoadCache } from '../config/load-cache.js';
import type { Repository } from '../config/model.js';
import { loadRepository } from '../config/repository.js';
import { ConfigInvalidError } from '../errors.js';

export interface Loaded {
  repo: Repository;
  diagnostics: Diagnostic[];
}

/**
 * Read and validate the repository at `dir`. Diagnostics go to stderr (warnings too);
 * an invalid repository throws ConfigInvalidError (exit 1) after they are printed.
 */
export async function loadValidRepository(dir: string, io: Io, opts: { quietWarnings?: boolean; cache?: LoadCache } = {}): Promise<Loaded> {
  const files = await readRepositoryFiles(path.resolve(io.cwd, dir));
  const result = loadRepository(files, { cache: opts.cache });
  const shown = opts.quietWarnings ? result.diagnostics.filter((d) => d.severity === 'error') : result.diagnostics;
  if (shown.length > 0) io.err(renderDiagnostics(shown, (f) => result.sources.get(f)));
  if (!result.repo) throw new ConfigInvalidError('', { exitCode: 1 });
  return { repo: result.repo, diagnostics: result.diagnostics };
}
