import { execFile } from 'node:child_process';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RepoFiles } from '../config/repository.js';
import { UsageError } from '../errors.js';
import { unifiedDiff } from './diff.js';

/** One file an admin command changes: `null` before = a new file, `null` after = a deleted one. */
export interface FileChange {
  /** Repository-relative, forward slashes. */
  path: string;
  before: string | null;
  after: string | null;
}

const BOM = '\uFEFF';
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text of a repository file for editing; a byte-order mark is kept aside and restored on write. */
export function editableText(files: RepoFiles, rel: string): { text: string; bom: boolean } {
  const content = files.get(rel);
  if (content === undefined) throw new UsageError(`${rel} does not exist`);
  let text: string;
  try {
    text = typeof content === 'string' ? content : utf8.decode(content);
  } catch {
    throw new UsageError(`${rel} is not UTF-8 text`);
  }
  return text.startsWith(BOM) ? { text: text.slice(1), bom: true } : { text, bom: false };
}

/** The repository as it would be after the changes (for validating before anything is written). */
export function withChanges(files: RepoFiles, changes: readonly FileChange[]): Map<string, Uint8Array | string> {
  const out = new Map<string, Uint8Array | string>(files);
  for (const c of changes) {
    if (c.after === null) out.delete(c.path);
    else out.set(c.path, c.after);
  }
  return out;
}

export function changesDiff(changes: readonly FileChange[]): string {
  return changes.map((c) => unifiedDiff(c.path, c.before, c.after)).join('');
}

/** Only real changes. */
export function effective(changes: readonly FileChange[]): FileChange[] {
  return changes.filter((c) => c.before !== c.after);
}

/**
 * Write each file atomically (a temporary file in the same folder, then rename), keeping the mode of
 * files that exist. All temporary files are written before the first rename, so a failure while
 * writing leaves every file as it was.
 */
export async function writeChanges(root: string, changes: readonly FileChange[]): Promise<void> {
  const staged: { tmp: string; target: string }[] = [];
  try {
    for (const c of changes) {
      if (c.after === null) continue;
      const target = path.join(root, c.path);
      await mkdir(path.dirname(target), { recursive: true });
      let mode = 0o644;
      try {
        mode = (await stat(target)).mode & 0o777;
      } catch {
        // a new file
      }
      const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${Date.now()}`);
      await writeFile(tmp, c.after, { mode, flag: 'wx' });
      staged.push({ tmp, target });
    }
  } catch (e) {
    await Promise.all(staged.map((s) => rm(s.tmp, { force: true })));
    throw new UsageError(`cannot write the config files: ${(e as Error).message}`, { hint: 'nothing was changed' });
  }
  for (const s of staged) await rename(s.tmp, s.target);
  for (const c of changes) if (c.after === null) await rm(path.join(root, c.path), { force: true });
}

const run = promisify(execFile);

async function git(root: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-C', root, ...args], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Refuse `--commit` up front, before anything is written, when DIR is not in a git work tree. */
export async function assertGitRepository(root: string): Promise<void> {
  try {
    if ((await git(root, ['rev-parse', '--is-inside-work-tree'])) === 'true') return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError('--commit needs git, and git is not installed', { hint: 'install git, or drop --commit' });
  }
  throw new UsageError(`--commit: ${root} is not inside a git repository; nothing was changed`, { hint: 'run `git init` there first, or drop --commit' });
}

/** Commit exactly the changed files (other staged work is left alone). Returns the short commit id. */
export async function commitChanges(root: string, changes: readonly FileChange[], message: string): Promise<string> {
  const paths = changes.map((c) => c.path);
  try {
    await git(root, ['add', '-A', '--', ...paths]);
    await git(root, ['commit', '-q', '-m', message, '--', ...paths]);
    return await git(root, ['rev-parse', '--short', 'HEAD']);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new UsageError(`the files were written, but git commit failed: ${(err.stderr || err.message).trim().split('\n')[0]}`, {
      hint: `commit them yourself: git add ${paths.join(' ')} && git commit`,
    });
  }
}

export { BOM };

/** A change to one existing file, made by a text edit; the byte-order mark, if any, is kept. */
export function editFile(files: RepoFiles, rel: string, edit: (text: string) => string): FileChange {
  const { text, bom } = editableText(files, rel);
  const before = `${bom ? BOM : ''}${text}`;
  return { path: rel, before, after: `${bom ? BOM : ''}${edit(text)}` };
}
