import path from 'node:path';
import type { Io } from '../cli/io.js';
import { hasErrors, renderDiagnostics } from '../config/diagnostics.js';
import { readRepositoryFiles } from '../config/files.js';
import { loadRepository } from '../config/repository.js';

export interface ValidateOptions {
  dir: string;
  output: 'text' | 'json';
}

/** `systemprompt validate`: 0 when valid (warnings allowed), 1 with every diagnostic otherwise. */
export async function runValidate(io: Io, opts: ValidateOptions): Promise<number> {
  const files = await readRepositoryFiles(path.resolve(io.cwd, opts.dir));
  const result = loadRepository(files);
  const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = result.diagnostics.length - errors;
  if (opts.output === 'json') {
    io.out(`${JSON.stringify({ valid: !hasErrors(result.diagnostics), errors, warnings, diagnostics: result.diagnostics }, null, 2)}\n`);
  } else {
    if (result.diagnostics.length > 0) io.err(renderDiagnostics(result.diagnostics, (f) => result.sources.get(f)));
    if (result.repo) {
      const r = result.repo;
      const users = r.tenants.reduce((n, t) => n + t.users.length, 0);
      io.out(`valid: ${r.tenants.length} tenant${r.tenants.length === 1 ? '' : 's'}, ${users} user${users === 1 ? '' : 's'}, ${r.agents.length} agent${r.agents.length === 1 ? '' : 's'}, ${Object.keys(r.project.scopes).length} scopes\n`);
    }
  }
  return hasErrors(result.diagnostics) ? 1 : 0;
}
