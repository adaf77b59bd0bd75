import path from 'node:path';
import type { Io } from '../cli/io.js';
import { renderDiagnostics, type Diagnostic } from '../config/diagnostics.js';
import { readRepositoryFiles } from '../config/files.js';
import type { Repository } from '../config/model.js';
import { loadRepository } from '../config/repository.js';
import {
  assertGitRepository,
  changesDiff,
  commitChanges,
  editFile,
  effective,
  withChanges,
  writeChanges,
  type FileChange,
} from '../edit/changes.js';
import { YamlEditError } from '../edit/yaml-nodes.js';
import { ConfigInvalidError, UsageError } from '../errors.js';

/** The repository an admin command reads and edits. */
export interface EditSession {
  /** Absolute path of the config repository. */
  root: string;
  files: Map<string, Uint8Array>;
  repo: Repository;
  diagnostics: Diagnostic[];
}

export interface WriteOptions {
  /** Show a unified diff and write nothing. */
  dryRun?: boolean;
  /** Make a git commit of exactly the changed files. */
  commit?: boolean;
  /** `json`: print one JSON document on stdout describing what happened, instead of text. */
  output?: 'text' | 'json';
}

/** Text for people, unless the command prints JSON. */
export function say(io: Io, opts: WriteOptions, text: string): void {
  if (opts.output !== 'json') io.out(text);
}

/** `--dir` relative to the command's working directory. */
export function resolveDir(io: Io, dir: string | undefined): string {
  return path.resolve(io.cwd, dir ?? '.');
}

/**
 * Read and validate the repository. Diagnostics go to stderr; an invalid repository is an error:
 * admin commands neither report on nor edit a repository they cannot read correctly.
 */
export async function openSession(io: Io, dir: string | undefined): Promise<EditSession> {
  const root = resolveDir(io, dir);
  const files = await readRepositoryFiles(root);
  const result = loadRepository(files);
  if (result.diagnostics.length > 0) io.err(renderDiagnostics(result.diagnostics, (f) => result.sources.get(f)));
  if (!result.repo) {
    throw new ConfigInvalidError('the config repository is invalid; fix the problems above first', { hint: 'run `systemprompt validate` to see them again' });
  }
  return { root, files, repo: result.repo, diagnostics: result.diagnostics };
}

/** A text edit of one file; a file these edits cannot handle safely is a clear refusal. */
export function edit(session: EditSession, rel: string, fn: (text: string) => string): FileChange {
  try {
    return editFile(session.files, rel, fn);
  } catch (e) {
    if (e instanceof YamlEditError) {
      throw new UsageError(`cannot edit ${rel} in place: ${e.message}`, { hint: 'edit the file by hand; nothing was changed' });
    }
    throw e;
  }
}

export type SaveResult = 'unchanged' | 'dry-run' | 'written';

/**
 * Validate the whole repository as it would be after the changes; when it is invalid print the
 * diagnostics and change nothing. Otherwise show the diff (`--dry-run`) or write atomically, and
 * commit with `--commit`.
 */
export async function saveChanges(io: Io, session: EditSession, all: FileChange[], message: string, opts: WriteOptions): Promise<SaveResult> {
  const changes = effective(all);
  const json = opts.output === 'json';
  const report = (result: SaveResult, extra: Record<string, unknown> = {}): SaveResult => {
    if (json) io.out(`${JSON.stringify({ result, message, files: changes.map((c) => c.path), ...extra }, null, 2)}\n`);
    return result;
  };
  if (changes.length === 0) return report('unchanged');
  if (opts.commit && !opts.dryRun) await assertGitRepository(session.root);

  const result = loadRepository(withChanges(session.files, changes));
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    io.err(renderDiagnostics(errors, (f) => result.sources.get(f)));
    throw new ConfigInvalidError('the change would make the repository invalid; nothing was changed');
  }
  const known = new Set(session.diagnostics.map((d) => `${d.code} ${d.file} ${d.message}`));
  const fresh = result.diagnostics.filter((d) => !known.has(`${d.code} ${d.file} ${d.message}`));
  if (fresh.length > 0) io.err(renderDiagnostics(fresh, (f) => result.sources.get(f)));

  if (opts.dryRun) {
    if (!json) io.out(changesDiff(changes));
    io.err('dry run: nothing was written\n');
    return report('dry-run', { diff: changesDiff(changes) });
  }
  await writeChanges(session.root, changes);
  let commit: string | undefined;
  if (opts.commit) {
    commit = await commitChanges(session.root, changes, message);
    io.err(`committed ${commit}: ${message}\n`);
  }
  return report('written', commit ? { commit } : {});
}
