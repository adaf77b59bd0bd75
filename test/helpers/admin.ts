import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/cli/main.js';
import { bufferIo } from './io.js';

/** Run the CLI in-process with `cwd` as the working directory. */
export async function sp(cwd: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = bufferIo(cwd);
  const code = await run(['node', 'systemprompt', ...args], io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

export function tempDir(prefix = 'sp-admin-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Every file under `dir` with its bytes (for "nothing changed" checks). */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${e}` : e;
      if (r === '.git') continue;
      if (statSync(path.join(dir, r)).isDirectory()) walk(r);
      else out.set(r, readFileSync(path.join(dir, r)).toString('base64'));
    }
  };
  walk('');
  return out;
}

/** A shell-like split of one command line: spaces separate words, double or single quotes group them. */
export function shellWords(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}
