import { chmod, chown, mkdir, readFile, rename, rm, stat, writeFile, appendFile } from 'node:fs/promises';
import { join, dirname, sep } from 'node:path';
import pg from 'pg';
import { SystemPromptError, TargetError } from '../errors.js';
import { seconds, type DevContext } from './context.js';
import { logHint } from './logs.js';
import { isOurProcess, run, waitFor, type RunResult } from './process.js';
import { ensureSecret, readSecret } from './secrets.js';
import type { StackState } from './state.js';
import { findPostgresBin } from './tools.js';

/** The product's admin login (the cluster's bootstrap superuser). */
export const POSTGRES_ADMIN_USER = 'systemprompt';

export type PostgresRecord = NonNullable<StackState['postgres']>;

interface OsUser {
  uid: number;
  gid: number;
}

/** The `postgres` OS user when running as root (initdb refuses root), else undefined. */
async function serverUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = await readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  const f = line?.split(':');
  if (!f || f.length < 4) {
    throw new SystemPromptError('running as root, PostgreSQL must run as the `postgres` OS user, and there is none', {
      hint: 'install the Debian packages (`bash scripts/install-system-deps.sh`), which create it, or run as an ordinary user',
    });
  }
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Runs a PostgreSQL tool, as the postgres OS user when we are root. */
function runPg(user: OsUser | undefined, bin: string, args: string[], cwd: string, logFile?: string): Promise<RunResult> {
  const env = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };
  return user ? run('runuser', ['-u', 'postgres', '--', bin, ...args], { cwd, env, logFile }) : run(bin, args, { cwd, env, logFile });
}

/**
 * When root, the postgres OS user must be able to reach its data folder: every ancestor needs the
 * search (x) bit for it. Missing bits are added for "others" (search only, never read), and said.
 */
async function ensureTraversable(dir: string, user: OsUser, ctx: DevContext): Promise<void> {
  const parts = dir.split(sep).filter(Boolean);
  let cur: string = sep;
  for (const p of parts.slice(0, -1)) {
    cur = join(cur, p);
    const st = await stat(cur);
    const ok = (st.mode & 0o001) !== 0 || (st.uid === user.uid && (st.mode & 0o100) !== 0) || (st.gid === user.gid && (st.mode & 0o010) !== 0);
    if (!ok) {
      await chmod(cur, (st.mode & 0o7777) | 0o001);
      ctx.progress('postgres', `added search permission (o+x) on ${cur} so the postgres OS user can reach ${dir}`);
    }
  }
}

/** Single-quotes a value for a postgres `-c` option inside pg_ctl's -o string. */
function pgQuote(v: string): string {
  if (/['\\]/.test(v)) throw new SystemPromptError(`path not supported by the local PostgreSQL: ${v}`, { hint: 'use a stack folder without quotes or backslashes (SYSTEMPROMPT_STACK_DIR)' });
  return `'${v}'`;
}

async function initCluster(ctx: DevContext, bin: string, user: OsUser | undefined, password: string, logFile: string): Promise<void> {
  const { dir, dataDir } = ctx.paths.postgres;
  const tmpData = `${dataDir}.init`;
  const pwFile = join(dir, '.pwfile');
  await rm(tmpData, { recursive: true, force: true });
  await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  if (user) await chown(pwFile, user.uid, user.gid);
  try {
    const r = await runPg(
      user,
      join(bin, 'initdb'),
      ['-D', tmpData, '-U', POSTGRES_ADMIN_USER, `--pwfile=${pwFile}`, '--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'],
      dir,
      logFile,
    );
    if (r.code !== 0) throw new TargetError('postgres', `initdb failed (exit ${r.code})`, { hint: await logHint(logFile) });
  } finally {
    await rm(pwFile, { force: true });
  }
  await rename(tmpData, dataDir);
}

/** True when the admin login works: the cluster is up and it is ours. */
export async function postgresHealthy(port: number, password: string): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: POSTGRES_ADMIN_USER, password, database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Markers on the postmaster's command line that make it ours. */
export function postgresMarkers(ctx: DevContext): string[] {
  return [ctx.paths.postgres.dataDir];
}

/** Whether the recorded postmaster is ours and answering. */
export async function postgresRunning(ctx: DevContext, rec: PostgresRecord | undefined): Promise<boolean> {
  if (!rec || !(await isOurProcess(rec.pid, postgresMarkers(ctx)))) return false;
  const password = await readSecret(ctx.paths.postgres.passwordFile);
  return password !== undefined && (await postgresHealthy(ctx.ports.postgres, password));
}

/** Creates the throwaway cluster the first time, then starts it with pg_ctl on its own loopback port. */
export async function startPostgres(ctx: DevContext): Promise<PostgresRecord> {
  const t0 = Date.now();
  const { dir, dataDir, socketDir, passwordFile } = ctx.paths.postgres;
  const bin = await findPostgresBin(ctx.env);
  const user = await serverUser();
  const logFile = join(ctx.paths.logsDir, 'postgres.log');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await mkdir(socketDir, { recursive: true, mode: 0o700 });
  await appendFile(logFile, '', { mode: 0o600 });
  if (user) {
    await ensureTraversable(dir, user, ctx);
    for (const p of [dir, socketDir, logFile]) await chown(p, user.uid, user.gid);
  }

  const initialised = await stat(join(dataDir, 'PG_VERSION')).then(() => true, () => false);
  const existingPassword = await readSecret(passwordFile);
  if (initialised && existingPassword === undefined) {
    throw new SystemPromptError(`the PostgreSQL cluster in ${dataDir} exists but its admin password file ${passwordFile} is gone`, {
      hint: 'start from scratch with `systemprompt dev down --purge`, then `systemprompt dev up`',
    });
  }
  const password = await ensureSecret(passwordFile);
  if (!initialised) {
    ctx.progress('postgres', `creating a cluster in ${dataDir}`);
    await initCluster(ctx, bin, user, password, logFile);
  }

  const port = ctx.ports.postgres;
  const opts = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${pgQuote(socketDir)}`;
  const r = await runPg(user, join(bin, 'pg_ctl'), ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', opts], dir);
  if (r.code !== 0) {
    throw new TargetError('postgres', `pg_ctl start failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`, { hint: await logHint(logFile) });
  }
  const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  await waitFor(async () => ((await postgresHealthy(port, password)) ? true : undefined), {
    timeoutMs: 30_000,
    what: 'postgres',
    onTimeout: () => new TargetError('postgres', `not accepting the admin login on 127.0.0.1:${port} after 30s`, { hint: `see ${logFile}` }),
  }).catch(async (e: unknown) => {
    await runPg(user, join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '30'], dir);
    throw e;
  });
  ctx.progress('postgres', `ready in ${seconds(Date.now() - t0)} on 127.0.0.1:${port}`);
  return {
    pid,
    url: `postgres://${POSTGRES_ADMIN_USER}@127.0.0.1:${port}/postgres`,
    user: POSTGRES_ADMIN_USER,
    passwordFile,
    dataDir,
  };
}

/** Stops the cluster with `pg_ctl stop -m fast`, then by signal if it is still there. */
export async function stopPostgres(ctx: DevContext, rec: PostgresRecord): Promise<void> {
  const markers = postgresMarkers(ctx);
  if (!(await isOurProcess(rec.pid, markers))) return;
  const bin = await findPostgresBin(ctx.env).catch(() => undefined);
  const user = await serverUser();
  if (bin) await runPg(user, join(bin, 'pg_ctl'), ['stop', '-D', rec.dataDir, '-m', 'fast', '-w', '-t', '30'], dirname(rec.dataDir));
  if (await isOurProcess(rec.pid, markers)) {
    process.kill(rec.pid, 'SIGQUIT');
    await waitFor(async () => ((await isOurProcess(rec.pid, markers)) ? undefined : true), {
      timeoutMs: 10_000,
      what: 'postgres',
      onTimeout: () => new TargetError('postgres', `postmaster ${rec.pid} did not exit`),
    });
  }
}
