import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { StackPorts } from './ports.js';

/**
 * stack.json: what `dev up` started and where it listens. Never holds a secret: passwords live in
 * 0600 files named here.
 */
export interface StackState {
  version: 1;
  stackDir: string;
  ports: StackPorts;
  postgres?: PostgresState;
  /** The second PostgreSQL server (for postgres.servers), set up like the first. */
  postgres2?: PostgresState;
  keycloak?: {
    pid: number;
    url: string;
    adminConsoleUrl: string;
    healthUrl: string;
    user: string;
    passwordFile: string;
    version: string;
  };
  /** The stack's Redis; its password is in `passwordFile` (and in the 0600 config file redis-server reads). */
  redis?: RedisState;
  kube?: {
    pids: { etcd: number; apiserver: number; controllerManager: number };
    server: string;
    kubeconfig: string;
    context: string;
    etcdUrl: string;
    binary: string;
    kubectl: string;
  };
}

export interface RedisState {
  pid: number;
  /** Without the password: `redis://127.0.0.1:<port>`. */
  url: string;
  user: string;
  passwordFile: string;
  configFile: string;
}

export interface PostgresState {
  pid: number;
  url: string;
  user: string;
  passwordFile: string;
  dataDir: string;
}

export async function readState(file: string): Promise<StackState | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const s = JSON.parse(text) as StackState;
    return s.version === 1 ? s : undefined;
  } catch {
    return undefined; // a damaged state file is treated as no stack; `up` rewrites it
  }
}

export async function writeState(file: string, state: StackState): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, file);
}
