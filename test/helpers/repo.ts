import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Repository } from '../../src/config/model.js';
import { loadRepository, type RepoFiles } from '../../src/config/repository.js';

export const PROJECT_ROOT = path.resolve(__dirname, '../..');

/** The config files of a folder, as the loader sees them. */
export function filesOf(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${e}` : e;
      if (r === 'node_modules' || r.startsWith('.') || r === 'test' || r === 'dist' || r === 'src') continue;
      const st = statSync(path.join(dir, r));
      if (st.isDirectory()) walk(r);
      else if (/\.ya?ml$/.test(e)) out.set(r, readFileSync(path.join(dir, r)));
    }
  };
  walk('');
  return out;
}

export function textFiles(files: Record<string, string>): RepoFiles {
  return new Map(Object.entries(files));
}

export function mustLoad(files: RepoFiles): Repository {
  const r = loadRepository(files);
  if (!r.repo) throw new Error(`invalid repository:\n${r.diagnostics.map((d) => `${d.file}:${d.line}:${d.col} ${d.code} ${d.message}`).join('\n')}`);
  return r.repo;
}

export function exampleRepo(): Repository {
  return mustLoad(filesOf(PROJECT_ROOT));
}
