import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SystemPromptError, TargetError } from '../errors.js';
import { seconds, type DevContext } from './context.js';
import { logHint } from './logs.js';
import { isAlive, isOurProcess, run, spawnDetached, stopGroup, waitFor } from './process.js';
import { ensureSecret, readSecret } from './secrets.js';
import type { StackState } from './state.js';
import { findJdk, findMaven } from './tools.js';

export const KEYCLOAK_VERSION = '26.7.3';
export const KEYCLOAK_ADMIN_USER = 'admin';
const MIN_JAVA = 21;

export type KeycloakRecord = NonNullable<StackState['keycloak']>;

function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Where the unpacked distribution of `version` lives in the cache. */
export function keycloakHome(cacheDir: string, version = KEYCLOAK_VERSION): string {
  return join(cacheDir, 'keycloak', `keycloak-${version}`);
}

/**
 * The official distribution, downloaded once with Maven (`keycloak-quarkus-dist` tar.gz) and
 * unpacked once into the cache. Returns its home folder.
 */
export async function ensureKeycloakDistribution(ctx: DevContext, version = KEYCLOAK_VERSION): Promise<string> {
  const home = keycloakHome(ctx.paths.cacheDir, version);
  if (await exists(join(home, 'bin', 'kc.sh'))) return home;
  const dir = join(ctx.paths.cacheDir, 'keycloak');
  await mkdir(dir, { recursive: true });
  const tarball = join(dir, `keycloak-quarkus-dist-${version}.tar.gz`);
  const logFile = join(ctx.paths.logsDir, 'keycloak-download.log');
  if (!(await exists(tarball))) {
    const mvn = await findMaven(ctx.env);
    const t0 = Date.now();
    ctx.progress('keycloak', `downloading keycloak-quarkus-dist ${version} with Maven (once; about 165 MB)`);
    const r = await run(mvn, ['-B', '-q', 'dependency:copy', `-Dartifact=org.keycloak:keycloak-quarkus-dist:${version}:tar.gz`, `-DoutputDirectory=${dir}`], { cwd: dir, logFile });
    if (r.code !== 0 || !(await exists(tarball))) {
      throw new TargetError('keycloak', `downloading the distribution with Maven failed (exit ${r.code})`, { hint: await logHint(logFile) });
    }
    ctx.progress('keycloak', `downloaded in ${seconds(Date.now() - t0)}`);
  }
  const tmp = join(dir, `.unpack-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const r = await run('tar', ['--no-same-owner', '-xzf', tarball, '-C', tmp], { logFile });
  if (r.code !== 0) {
    await rm(tmp, { recursive: true, force: true });
    throw new TargetError('keycloak', `unpacking ${tarball} failed (exit ${r.code})`, { hint: `delete it to download again; ${await logHint(logFile)}` });
  }
  await rename(join(tmp, `keycloak-${version}`), home).catch(async (e: NodeJS.ErrnoException) => {
    if (!(await exists(join(home, 'bin', 'kc.sh')))) throw e; // a concurrent unpack won the race: fine
  });
  await rm(tmp, { recursive: true, force: true });
  return home;
}

/** The H2 JDBC URL of the stack's own dev-file database (outside the shared distribution). */
export function keycloakDbUrl(dbDir: string): string {
  return `jdbc:h2:file:${join(dbDir, 'keycloakdb')};NON_KEYWORDS=VALUE`;
}

/** Entries of Keycloak's realms cache and of its users cache in the local stack. */
export const KEYCLOAK_CACHE_ENTRIES = 200_000;

/** `kc.sh start-dev` arguments for the stack. */
export function keycloakArgs(ctx: Pick<DevContext, 'paths' | 'ports'>): string[] {
  const { keycloakHttp: http, keycloakManagement: mgmt } = ctx.ports;
  return [
    'start-dev',
    `--http-port=${http}`,
    '--http-host=127.0.0.1',
    `--http-management-port=${mgmt}`,
    '--health-enabled=true',
    `--hostname=http://localhost:${http}`,
    '--db=dev-file',
    `--db-url=${keycloakDbUrl(ctx.paths.keycloak.dbDir)}`,
    `-Dquarkus.transaction-manager.object-store.directory=${ctx.paths.keycloak.txLogDir}`,
    // Room for a shared realm of organization isolation (10,000 entries each by default): a warm
    // no-op plan of 1,000 organizations x 5 users took 57-72 s with the defaults, 19-21 s with these.
    `--cache-embedded-realms-max-count=${KEYCLOAK_CACHE_ENTRIES}`,
    `--cache-embedded-users-max-count=${KEYCLOAK_CACHE_ENTRIES}`,
  ];
}

export function keycloakMarkers(ctx: Pick<DevContext, 'paths'>): string[] {
  return [keycloakDbUrl(ctx.paths.keycloak.dbDir)];
}

/** GET /health/ready on the management port says UP. */
export async function keycloakReady(healthUrl: string): Promise<boolean> {
  try {
    const res = await fetch(healthUrl, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return false;
    const body = (await res.json()) as { status?: string };
    return body.status === 'UP';
  } catch {
    return false;
  }
}

export async function keycloakRunning(ctx: DevContext, rec: KeycloakRecord | undefined): Promise<boolean> {
  return rec !== undefined && (await isOurProcess(rec.pid, keycloakMarkers(ctx))) && (await keycloakReady(rec.healthUrl));
}

/** Environment for kc.sh: ours, without any KC_* or JAVA_OPTS the user's shell may carry. */
function keycloakEnv(base: NodeJS.ProcessEnv, javaHome: string, password: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!k.startsWith('KC_') && !k.startsWith('JAVA_OPTS') && !k.startsWith('QUARKUS_')) env[k] = v;
  env.JAVA_HOME = javaHome;
  env.KC_BOOTSTRAP_ADMIN_USERNAME = KEYCLOAK_ADMIN_USER;
  env.KC_BOOTSTRAP_ADMIN_PASSWORD = password;
  return env;
}

/** Starts Keycloak in dev mode on the stack's ports and waits until /health/ready says UP. */
export async function startKeycloak(ctx: DevContext): Promise<KeycloakRecord> {
  const jdk = await findJdk(MIN_JAVA, ctx.env);
  const home = await ensureKeycloakDistribution(ctx);
  const t0 = Date.now();
  const { dir, dbDir, txLogDir, passwordFile } = ctx.paths.keycloak;
  await mkdir(dbDir, { recursive: true, mode: 0o700 });
  await mkdir(txLogDir, { recursive: true, mode: 0o700 });
  const dbExists = await exists(join(dbDir, 'keycloakdb.mv.db'));
  if (dbExists && (await readSecret(passwordFile)) === undefined) {
    throw new SystemPromptError(`the Keycloak database in ${dbDir} exists but its admin password file ${passwordFile} is gone`, {
      hint: 'the bootstrap admin is set only when the database is first created: start from scratch with `systemprompt dev down --purge`, then `systemprompt dev up`',
    });
  }
  const password = await ensureSecret(passwordFile);
  const { keycloakHttp: http, keycloakManagement: mgmt } = ctx.ports;
  const logFile = join(ctx.paths.logsDir, 'keycloak.log');
  ctx.progress('keycloak', `starting ${KEYCLOAK_VERSION} on JDK ${jdk.major}${dbExists ? '' : ' (first start creates its database)'}`);
  const pid = await spawnDetached({ command: join(home, 'bin', 'kc.sh'), args: keycloakArgs(ctx), env: keycloakEnv(ctx.env, jdk.home, password), cwd: dir, logFile });
  const healthUrl = `http://127.0.0.1:${mgmt}/health/ready`;
  await waitFor(
    async () => {
      if (await keycloakReady(healthUrl)) return true;
      if (!(await isAlive(pid))) throw new TargetError('keycloak', 'exited during start-up', { hint: await logHint(logFile) });
      return undefined;
    },
    { timeoutMs: 300_000, intervalMs: 500, what: 'keycloak', onTimeout: () => new TargetError('keycloak', `not ready after 300s (${healthUrl})`, { hint: `see ${logFile}` }) },
  ).catch(async (e: unknown) => {
    await stopGroup(pid, 10_000);
    throw e;
  });
  ctx.progress('keycloak', `ready in ${seconds(Date.now() - t0)} on http://localhost:${http} (admin console http://localhost:${http}/admin/)`);
  return {
    pid,
    url: `http://localhost:${http}`,
    adminConsoleUrl: `http://localhost:${http}/admin/`,
    healthUrl,
    user: KEYCLOAK_ADMIN_USER,
    passwordFile,
    version: KEYCLOAK_VERSION,
  };
}

export async function stopKeycloak(ctx: DevContext, rec: KeycloakRecord): Promise<void> {
  if (!(await isOurProcess(rec.pid, keycloakMarkers(ctx)))) return;
  await stopGroup(rec.pid, 30_000);
}
