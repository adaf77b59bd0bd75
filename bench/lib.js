// Shared by the live benchmarks: run the CLI in-process against the targets of the environment
// (or the running `systemprompt dev up` stack), and time it.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../dist/cli/main.js';
import { devStackEndpoints } from '../dist/dev/endpoints.js';
import { stackPaths } from '../dist/dev/paths.js';
import { readState } from '../dist/dev/state.js';
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

/**
 * A clock of the CPU seconds the local stack's Keycloak has used (its process group, from /proc),
 * or undefined when Keycloak is not the dev stack's or this is not Linux. On a shared machine this
 * is steadier than wall time: it counts Keycloak's work, not its wait for a core.
 */
export async function keycloakCpu() {
  if (process.env.SYSTEMPROMPT_KEYCLOAK_URL) return undefined;
  const state = await readState(stackPaths(process.env).stateFile).catch(() => undefined);
  const group = state?.keycloak?.pid;
  if (!group || process.platform !== 'linux') return undefined;
  const ticks = 100; // USER_HZ
  return () => {
    let sum = 0;
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let stat;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' '); // from field 3, state

      if (Number(f[2]) === group) sum += Number(f[11]) + Number(f[12]);
    }
    return sum / ticks;
  };
}
