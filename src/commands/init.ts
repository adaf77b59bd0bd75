import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Io } from '../cli/io.js';
import { renderDiagnostics } from '../config/diagnostics.js';
import { AGENT_DIR, PROJECT_FILE, TENANT_DIR, loadRepository } from '../config/repository.js';
import { SCHEMA_DIR } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { resolveDir } from './edit-session.js';
import { ASSISTANT_TEMPLATE, DEFAULT_TENANT_TEMPLATE, PROJECT_TEMPLATE } from './init-templates.js';

export interface InitOptions {
  dir?: string;
}

const SCHEMAS = ['systemprompt.schema.json', 'tenant.schema.json', 'agent.schema.json'];

/** `systemprompt init [DIR]`: a new config repository. Never overwrites a file. */
export async function runInit(io: Io, opts: InitOptions): Promise<number> {
  const root = resolveDir(io, opts.dir);
  const files = new Map<string, string>([
    [PROJECT_FILE, PROJECT_TEMPLATE],
    [`${TENANT_DIR}/default.yaml`, DEFAULT_TENANT_TEMPLATE],
    [`${AGENT_DIR}/assistant.yaml`, ASSISTANT_TEMPLATE],
  ]);
  for (const name of SCHEMAS) files.set(`schemas/${name}`, await readFile(path.join(SCHEMA_DIR, name), 'utf8'));

  const existing = [...files.keys()].filter((rel) => existsSync(path.join(root, rel)));
  if (existsSync(path.join(root, 'systemprompt.yml'))) existing.push('systemprompt.yml');
  if (existing.length > 0) {
    throw new UsageError(`refusing to overwrite existing files in ${opts.dir ?? '.'}: ${existing.join(', ')}`, {
      hint: 'run init in a new or empty folder; nothing was written',
    });
  }
  // The templates are checked like any repository (a broken template would be a bug, not the user's problem).
  const check = loadRepository(files);
  if (!check.repo) throw new Error(`init templates are invalid:\n${renderDiagnostics(check.diagnostics)}`);

  for (const [rel, text] of files) {
    const p = path.join(root, rel);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, text, { flag: 'wx', mode: 0o644 });
  }
  const shown = path.relative(io.cwd, root) || '.';
  io.out(
    [
      `created a config repository in ${shown}:`,
      ...[...files.keys()].map((f) => `  ${f}`),
      '',
      'next:',
      ...(shown === '.' ? [] : [`  cd ${shown}`]),
      '  systemprompt admin users create --email user@example.com --scopes read,write',
      '  systemprompt validate',
      '  systemprompt plan --offline',
      '',
    ].join('\n'),
  );
  return 0;
}
