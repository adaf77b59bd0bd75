// Shared by the live benchmarks: run the CLI in-process against the targets of the environment
// (or the running `systemprompt dev up` stack), and time it.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../dist/cli/main.js';
import { devStackEndpoints } from '../dist/dev/endpoints.js';
import { resolveEndpoints } from '../dist/targets/endpoints.js';
import { writeRepository } from './compile/generate.js';

export async function targetEnv() {
  const e = await resolveEndpoints(process.env, devStackEndpoints);
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    SYSTEMPROMPT_KEYCLOAK_URL: e.keycloak.url,
    SYSTEMPROMPT_KEYCLOAK_USER: e.keycloak.username,
    SYSTEMPROMPT_KEYCLOAK_PASSWORD: e.keycloak.password,
    KUBECONFIG: e.kubeconfigPath,
    SYSTEMPROMPT_POSTGRES_URL: e.postgresUrl,
  };
}

/** Run `systemprompt ARGS -o json --dir DIR`; returns the parsed JSON, exit code and wall time. */
export async function cli(env, dir, ...args) {
  let out = '';
  let err = '';
  const io = { out: (t) => (out += t), err: (t) => (err += t), interactive: false, env, cwd: dir };
  const t0 = process.hrtime.bigint();
  const code = await run(['node', 'systemprompt', ...args, '-o', 'json', '--dir', dir], io);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  let json;
  try {
    json = JSON.parse(out);
  } catch {
    throw new Error(`systemprompt ${args.join(' ')} exited ${code}:\n${out}\n${err}`);
  }
  if (code !== 0 && code !== 2) throw new Error(`systemprompt ${args.join(' ')} exited ${code}:\n${err}`);
  return { code, json, ms: Math.round(ms) };
}

export function tempRepo(files) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-'));
  writeRepository(dir, files);
  return dir;
}

export const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
