import { chmod, mkdir, rm } from 'node:fs/promises';
import { ConflictError, UsageError } from '../errors.js';
import { seconds, type DevContext } from './context.js';
import { keycloakRunning, startKeycloak, stopKeycloak } from './keycloak.js';
import { ensureKubeBinary, kubeRunning, startKube, stopKube } from './kube.js';
import { acquireLock } from './lock.js';
import { stackPaths, type StackPaths } from './paths.js';
import { PORT_LABELS, isPortFree, listeningPids, parsePortOverrides, type PortName, type StackPorts } from './ports.js';
import { postgresInstance, postgresRunning, startPostgres, stopPostgres } from './postgres.js';
import { cmdlineOf } from './process.js';
import { redisRunning, startRedis, stopRedis } from './redis.js';
import { readState, writeState, type StackState } from './state.js';

/** `postgres2`: a second PostgreSQL server, set up like the first, for postgres.servers. `redis`: the gateway's shared rate-limit counters. */
export type ComponentName = 'postgres' | 'postgres2' | 'redis' | 'keycloak' | 'kube';
export const COMPONENTS: readonly ComponentName[] = ['postgres', 'postgres2', 'redis', 'keycloak', 'kube'];

const COMPONENT_PORTS: Record<ComponentName, PortName[]> = {
  postgres: ['postgres'],
  postgres2: ['postgres2'],
  redis: ['redis'],
  keycloak: ['keycloakHttp', 'keycloakManagement'],
  kube: ['etcdClient', 'etcdPeer', 'apiserver'],
};

export interface StackOptions {
  env: NodeJS.ProcessEnv;
  /** `name=port,...` overrides (from --ports); SYSTEMPROMPT_DEV_PORTS is read too. */
  ports?: string | undefined;
  progress: (component: string, message: string) => void;
}

export interface ComponentStatus {
  name: ComponentName;
  running: boolean;
}

export interface StackStatus {
  stackDir: string;
  state: StackState | undefined;
  components: ComponentStatus[];
}

export interface UpResult extends StackStatus {
  started: ComponentName[];
  alreadyRunning: ComponentName[];
  seconds: number;
}

/** Ports: defaults, then a running stack's recorded ports, then SYSTEMPROMPT_DEV_PORTS, then --ports. */
function resolvePorts(opts: StackOptions, state: StackState | undefined): StackPorts {
  const fromEnv = parsePortOverrides(opts.env.SYSTEMPROMPT_DEV_PORTS, state?.ports, 'SYSTEMPROMPT_DEV_PORTS');
  return parsePortOverrides(opts.ports, fromEnv, '--ports');
}

function context(paths: StackPaths, ports: StackPorts, opts: StackOptions): DevContext {
  return { paths, ports, env: opts.env, progress: opts.progress };
}

async function running(ctx: DevContext, state: StackState | undefined, name: ComponentName): Promise<boolean> {
  if (!state) return false;
  switch (name) {
    case 'postgres':
    case 'postgres2':
      return postgresRunning(postgresInstance(ctx, name), state[name]);
    case 'redis':
      return redisRunning(ctx, state.redis);
    case 'keycloak':
      return keycloakRunning(ctx, state.keycloak);
    case 'kube':
      return kubeRunning(ctx, state.kube);
  }
}

async function describeOwner(port: number): Promise<string> {
  const pids = await listeningPids(port);
  if (pids.length === 0) return 'another process';
  const who = await Promise.all(pids.map(async (p) => `pid ${p} (${((await cmdlineOf(p)) ?? ['?']).join(' ').replace(/\s+/g, ' ').slice(0, 100)})`));
  return who.join(', ');
}

/** Fails clearly when a port the component needs is taken by something that is not ours. */
async function checkPortsFree(ctx: DevContext, name: ComponentName, ours: ReadonlySet<number>): Promise<void> {
  for (const key of COMPONENT_PORTS[name]) {
    const port = ctx.ports[key];
    if (!ours.has(port) && !(await isPortFree(port))) {
      throw new ConflictError(`port ${port} (${PORT_LABELS[key]}) on 127.0.0.1 is in use by ${await describeOwner(port)}`, {
        hint: `stop that process, or pick another port: systemprompt dev up --ports ${PORT_LABELS[key]}=<port> (or SYSTEMPROMPT_DEV_PORTS)`,
      });
    }
  }
}

async function stopComponent(ctx: DevContext, state: StackState, name: ComponentName): Promise<void> {
  switch (name) {
    case 'postgres':
    case 'postgres2': {
      const rec = state[name];
      if (rec) await stopPostgres(ctx, postgresInstance(ctx, name), rec);
      delete state[name];
      return;
    }
    case 'redis':
      if (state.redis) await stopRedis(ctx, state.redis);
      delete state.redis;
      return;
    case 'keycloak':
      if (state.keycloak) await stopKeycloak(ctx, state.keycloak);
      delete state.keycloak;
      return;
    case 'kube':
      if (state.kube) await stopKube(ctx, state.kube);
      delete state.kube;
      return;
  }
}

/**
 * Brings the stack up. Idempotent: components whose recorded processes are ours and healthy are
 * left alone; the others are (re)started. Slow preparations (Keycloak download, the Go build) run
 * in parallel, then each component starts; progress goes to `opts.progress`.
 */
export async function stackUp(opts: StackOptions): Promise<UpResult> {
  const t0 = Date.now();
  const paths = stackPaths(opts.env);
  await mkdir(paths.stackDir, { recursive: true, mode: 0o755 });
  const release = await acquireLock(paths.lockFile);
  try {
    const previous = await readState(paths.stateFile);
    const ports = resolvePorts(opts, previous);
    const ctx = context(paths, ports, opts);
    // Log files are 0600; the folder is searchable so the postgres OS user (when root) can write its own.
    await mkdir(paths.logsDir, { recursive: true });
    await chmod(paths.logsDir, 0o755);
    const state: StackState = { ...(previous ?? {}), version: 1, stackDir: paths.stackDir, ports };
    const prevPorts = previous ? parsePortOverrides(undefined, previous.ports) : ports;
    const prevCtx = previous ? context(paths, prevPorts, opts) : ctx;
    const portsOf = (p: StackPorts, name: ComponentName) => COMPONENT_PORTS[name].map((k) => p[k]);

    const alreadyRunning: ComponentName[] = [];
    const toStart: ComponentName[] = [];
    const ownPorts = new Set<number>();
    for (const name of COMPONENTS) {
      const isRunning = await running(prevCtx, previous, name);
      if (isRunning && previous && portsOf(prevPorts, name).join() === portsOf(ports, name).join()) {
        alreadyRunning.push(name);
        opts.progress(name, 'already running');
        continue;
      }
      if (isRunning) opts.progress(name, 'running on other ports; it will be restarted');
      // Ports held by what is left of this component (ours, about to be stopped) do not count as taken.
      if (previous?.[name]) for (const p of portsOf(prevPorts, name)) ownPorts.add(p);
      toStart.push(name);
    }
    // Nothing is stopped before every port we need is known to be ours or free.
    for (const name of toStart) await checkPortsFree(ctx, name, ownPorts);
    for (const name of toStart) await stopComponent(prevCtx, state, name);
    for (const name of toStart) await checkPortsFree(ctx, name, new Set());

    // One write at a time: components finishing together would race on the state file's temporary file.
    let writing: Promise<void> = Promise.resolve();
    const write = (): Promise<void> => (writing = writing.then(() => writeState(paths.stateFile, state)));
    await write();
    const startOne = async (name: ComponentName): Promise<void> => {
      switch (name) {
        case 'postgres':
        case 'postgres2':
          state[name] = await startPostgres(ctx, postgresInstance(ctx, name));
          break;
        case 'redis':
          state.redis = await startRedis(ctx);
          break;
        case 'keycloak':
          state.keycloak = await startKeycloak(ctx);
          break;
        case 'kube':
          state.kube = await startKube(ctx, await ensureKubeBinary(ctx));
          break;
      }
      await write();
    };
    // In parallel: the slow once-only steps (Keycloak download, the Go build) overlap.
    const results = await Promise.allSettled(toStart.map(startOne));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    opts.progress('stack', `up in ${seconds(Date.now() - t0)}${toStart.length ? '' : ' (nothing to start)'}`);
    return {
      stackDir: paths.stackDir,
      state,
      components: COMPONENTS.map((name) => ({ name, running: true })),
      started: toStart,
      alreadyRunning,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    await release();
  }
}

/** Stops exactly the processes the stack recorded (after checking each is still ours). */
export async function stackDown(opts: StackOptions & { purge?: boolean }): Promise<{ stopped: ComponentName[]; purged: boolean }> {
  const paths = stackPaths(opts.env);
  const state = await readState(paths.stateFile);
  const stopped: ComponentName[] = [];
  if (state) {
    const release = await acquireLock(paths.lockFile);
    try {
      const ctx = context(paths, parsePortOverrides(undefined, state.ports), opts);
      for (const name of ['kube', 'keycloak', 'redis', 'postgres2', 'postgres'] as const) {
        if (!state[name]) continue;
        const t0 = Date.now();
        await stopComponent(ctx, state, name);
        stopped.push(name);
        opts.progress(name, `stopped in ${seconds(Date.now() - t0)}`);
        await writeState(paths.stateFile, state);
      }
      await rm(paths.stateFile, { force: true });
    } finally {
      await release();
    }
  }
  if (opts.purge) {
    if (!paths.stackDir.includes('systemprompt') && !opts.env.SYSTEMPROMPT_STACK_DIR) throw new UsageError(`refusing to delete ${paths.stackDir}`);
    await rm(paths.stackDir, { recursive: true, force: true });
    opts.progress('stack', `deleted ${paths.stackDir}`);
  }
  return { stopped, purged: Boolean(opts.purge) };
}

/** What the state file says, checked against the live processes and health endpoints. */
export async function stackStatus(opts: Pick<StackOptions, 'env'>): Promise<StackStatus> {
  const paths = stackPaths(opts.env);
  const state = await readState(paths.stateFile);
  const ctx = context(paths, parsePortOverrides(undefined, state?.ports), { ...opts, progress: () => undefined });
  const components = await Promise.all(COMPONENTS.map(async (name) => ({ name, running: await running(ctx, state, name) })));
  return { stackDir: paths.stackDir, state, components };
}
