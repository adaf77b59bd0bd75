import { chmod, chown, mkdir, readFile, rename, rm, stat, writeFile, appendFile } from 'node:fs/promises';
import { join, dirname, sep } from 'node:path';
import pg from 'pg';
import { SystemPromptError, TargetError } from '../errors.js';
import { scramVerifier } from '../targets/passwords.js';
import { seconds, type DevContext } from './context.js';
import { logHint } from './logs.js';
import { isOurProcess, run, waitFor, type RunResult } from './process.js';
import { ensureSecret, readSecret } from './secrets.js';
import type { PostgresPaths } from './paths.js';
import type { PostgresState } from './state.js';
import { findPostgresBin } from './tools.js';

/**
 * The product's admin login. Like the master user of a managed PostgreSQL (RDS, Cloud SQL) it is
 * not a superuser: it may log in, create roles and create databases, nothing more.
 */
export const POSTGRES_ADMIN_USER = 'systemprompt';

/**
 * The cluster's bootstrap superuser (initdb's `-U`). Only `dev up` uses it, to create or repair the
 * admin login; its password lives in its own secret file and is never shown.
 */
export const POSTGRES_BOOTSTRAP_USER = 'sp_superuser';

/** The attributes the admin login must have, and nothing else. */
export const ADMIN_ROLE_ATTRIBUTES = 'LOGIN CREATEROLE CREATEDB NOSUPERUSER NOREPLICATION NOBYPASSRLS INHERIT';

/** The admin role as pg_roles shows it. */
export interface AdminRoleRow {
  rolsuper: boolean;
  rolcanlogin: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  rolinherit: boolean;
}

/** What is known about the cluster's roles, from whichever login worked. */
export interface AdminRoleFacts {
  /** The bootstrap superuser's name (the role with OID 10). */
  bootstrapUser: string;
  /** The admin role, or undefined when it does not exist. */
  admin: AdminRoleRow | undefined;
  /** Whether the admin login with the recorded password works. */
  adminLoginWorks: boolean;
}

/**
 * What to do about the admin role:
 * - `ok`: nothing;
 * - `create` / `alter`: (re)make it with the bootstrap superuser (missing, wrong attributes, or a
 *   password that no longer matches the recorded one);
 * - `bootstrap-is-admin`: the cluster was created by an older version with the admin login as its
 *   bootstrap superuser. PostgreSQL 16+ refuses to demote it; 15 allows it, but the role still owns
 *   every system catalog (so it still reads pg_authid): the cluster must be recreated.
 */
export type AdminRoleVerdict = 'ok' | 'create' | 'alter' | 'bootstrap-is-admin';

export function adminRoleVerdict(facts: AdminRoleFacts): AdminRoleVerdict {
  if (facts.bootstrapUser === POSTGRES_ADMIN_USER) return 'bootstrap-is-admin';
  const a = facts.admin;
  if (!a) return 'create';
  const right = !a.rolsuper && a.rolcanlogin && a.rolcreaterole && a.rolcreatedb && !a.rolreplication && !a.rolbypassrls && a.rolinherit;
  return right && facts.adminLoginWorks ? 'ok' : 'alter';
}

/**
 * The statement that creates or repairs the admin role. The password travels as a SCRAM verifier
 * (never in clear, not even in the server's log); the role name is a constant.
 */
export function adminRoleSql(action: 'create' | 'alter', verifier: string): string {
  if (!/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/.test(verifier)) throw new Error('not a SCRAM-SHA-256 verifier');
  return `${action === 'create' ? 'CREATE' : 'ALTER'} ROLE "${POSTGRES_ADMIN_USER}" ${ADMIN_ROLE_ATTRIBUTES} PASSWORD '${verifier}'`;
}

/** Reads the facts adminRoleVerdict needs; pg_roles is readable by any login, pg_authid is not needed. */
export const ADMIN_FACTS_SQL = `SELECT (SELECT rolname FROM pg_roles WHERE oid = 10) AS bootstrap,
       r.rolsuper, r.rolcanlogin, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, r.rolinherit
  FROM (SELECT 1) one LEFT JOIN pg_roles r ON r.rolname = $1`;

/** The message for a cluster whose bootstrap superuser is the admin login (made by an older version). */
export function oldClusterError(dataDir: string): SystemPromptError {
  return new SystemPromptError(
    `the PostgreSQL cluster in ${dataDir} was created by an older systemprompt: its admin login \`${POSTGRES_ADMIN_USER}\` is the cluster's bootstrap superuser, which owns the system catalogs and cannot become an ordinary non-superuser login`,
    { hint: 'start from scratch with `systemprompt dev down --purge`, then `systemprompt dev up` (this deletes the local databases)' },
  );
}

export type PostgresRecord = PostgresState;

/**
 * One PostgreSQL server of the stack: the first (`postgres`) or the second (`postgres-2`, for
 * postgres.servers). Each is its own cluster with its own port, files, logins and passwords.
 */
export interface PostgresInstance {
  /** The component's name in progress lines and the log file's name. */
  readonly label: 'postgres' | 'postgres-2';
  readonly paths: PostgresPaths;
  readonly port: number;
}

export function postgresInstance(ctx: DevContext, which: 'postgres' | 'postgres2'): PostgresInstance {
  return which === 'postgres' ? { label: 'postgres', paths: ctx.paths.postgres, port: ctx.ports.postgres } : { label: 'postgres-2', paths: ctx.paths.postgres2, port: ctx.ports.postgres2 };
}

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

/** initdb with the bootstrap superuser and its password; the admin login is made afterwards. */
async function initCluster(inst: PostgresInstance, bin: string, user: OsUser | undefined, superuserPassword: string, logFile: string): Promise<void> {
  const { dir, dataDir } = inst.paths;
  const tmpData = `${dataDir}.init`;
  const pwFile = join(dir, '.pwfile');
  await rm(tmpData, { recursive: true, force: true });
  await writeFile(pwFile, `${superuserPassword}\n`, { mode: 0o600 });
  if (user) await chown(pwFile, user.uid, user.gid);
  try {
    const r = await runPg(
      user,
      join(bin, 'initdb'),
      ['-D', tmpData, '-U', POSTGRES_BOOTSTRAP_USER, `--pwfile=${pwFile}`, '--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'],
      dir,
      logFile,
    );
    if (r.code !== 0) throw new TargetError('postgres', `initdb failed (exit ${r.code})`, { hint: await logHint(logFile) });
  } finally {
    await rm(pwFile, { force: true });
  }
  await rename(tmpData, dataDir);
}

function pgClient(port: number, user: string, password: string): pg.Client {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  return client;
}

/** True when `user` logs in with `password` and can run a query. */
async function canLogIn(port: number, user: string, password: string): Promise<boolean> {
  const client = pgClient(port, user, password);
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

/** True when the admin login works: the cluster is up and it is ours. */
export function postgresHealthy(port: number, password: string): Promise<boolean> {
  return canLogIn(port, POSTGRES_ADMIN_USER, password);
}

/** Runs `fn` with a client logged in as `user`, or returns undefined when the login fails. */
async function withLogin<T>(port: number, user: string, password: string, fn: (c: pg.Client) => Promise<T>): Promise<{ value: T } | undefined> {
  const client = pgClient(port, user, password);
  try {
    await client.connect();
  } catch {
    await client.end().catch(() => undefined);
    return undefined;
  }
  try {
    return { value: await fn(client) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function readAdminFacts(client: pg.Client, adminLoginWorks: boolean): Promise<AdminRoleFacts> {
  const { rows } = await client.query<{ bootstrap: string } & { [K in keyof AdminRoleRow]: AdminRoleRow[K] | null }>(ADMIN_FACTS_SQL, [POSTGRES_ADMIN_USER]);
  const { bootstrap, ...role } = rows[0]!;
  // No row in pg_roles: every column of the outer join is null.
  return { bootstrapUser: bootstrap, admin: role.rolsuper === null ? undefined : (role as AdminRoleRow), adminLoginWorks };
}

/**
 * Makes the admin login what the product expects (LOGIN CREATEROLE CREATEDB NOSUPERUSER, with the
 * recorded password), idempotently: checked as the admin itself, repaired as the bootstrap
 * superuser only when needed. Fails for a cluster whose bootstrap superuser is the admin login.
 * Returns what was done.
 */
export async function ensureAdminRole(
  port: number,
  dataDir: string,
  adminPassword: string,
  superuserPassword: string | undefined,
  superuserPasswordFile: string,
): Promise<'ok' | 'created' | 'repaired'> {
  const asAdmin = await withLogin(port, POSTGRES_ADMIN_USER, adminPassword, (c) => readAdminFacts(c, true));
  if (asAdmin) {
    const verdict = adminRoleVerdict(asAdmin.value);
    if (verdict === 'bootstrap-is-admin') throw oldClusterError(dataDir);
    if (verdict === 'ok') return 'ok';
  }
  const why = asAdmin ? 'it has the wrong attributes' : 'it cannot log in with its recorded password';
  if (superuserPassword === undefined) {
    throw new SystemPromptError(`the PostgreSQL admin login \`${POSTGRES_ADMIN_USER}\` needs repair (${why}), but the bootstrap superuser's password file ${superuserPasswordFile} is gone`, {
      hint: 'start from scratch with `systemprompt dev down --purge`, then `systemprompt dev up`',
    });
  }
  const done = await withLogin(port, POSTGRES_BOOTSTRAP_USER, superuserPassword, async (c) => {
    const facts = await readAdminFacts(c, asAdmin !== undefined);
    const verdict = adminRoleVerdict(facts);
    if (verdict === 'bootstrap-is-admin') throw oldClusterError(dataDir);
    if (verdict === 'ok') return 'ok' as const;
    // Keep the verifier out of the server log even if the statement fails.
    await c.query(`SET log_statement = 'none'; SET log_min_error_statement = 'panic'`);
    try {
      await c.query(adminRoleSql(verdict, scramVerifier(adminPassword)));
    } catch (e) {
      const msg = ((e as Error).message ?? String(e)).replace(/SCRAM-SHA-256\$[^'\s]+/g, '(verifier)');
      throw new TargetError('postgres', `could not ${verdict} the admin login \`${POSTGRES_ADMIN_USER}\`: ${msg}`);
    }
    return verdict === 'create' ? ('created' as const) : ('repaired' as const);
  });
  if (!done) {
    throw new SystemPromptError(
      `the PostgreSQL admin login \`${POSTGRES_ADMIN_USER}\` needs repair (${why}), but the bootstrap superuser \`${POSTGRES_BOOTSTRAP_USER}\` cannot log in either`,
      { hint: 'start from scratch with `systemprompt dev down --purge`, then `systemprompt dev up`' },
    );
  }
  if (!(await withLogin(port, POSTGRES_ADMIN_USER, adminPassword, async (c) => adminRoleVerdict(await readAdminFacts(c, true)) === 'ok'))?.value) {
    throw new TargetError('postgres', `the admin login \`${POSTGRES_ADMIN_USER}\` still does not work after its repair`);
  }
  return done.value;
}

/** Markers on the postmaster's command line that make it ours. */
export function postgresMarkers(inst: PostgresInstance): string[] {
  return [inst.paths.dataDir];
}

/** Whether the recorded postmaster is ours and answering. */
export async function postgresRunning(inst: PostgresInstance, rec: PostgresRecord | undefined): Promise<boolean> {
  if (!rec || !(await isOurProcess(rec.pid, postgresMarkers(inst)))) return false;
  const password = await readSecret(inst.paths.passwordFile);
  return password !== undefined && (await postgresHealthy(inst.port, password));
}

/**
 * Creates the throwaway cluster the first time, then starts it with pg_ctl on its own loopback
 * port. Both servers of the stack are made this way (`inst`).
 */
export async function startPostgres(ctx: DevContext, inst: PostgresInstance): Promise<PostgresRecord> {
  const t0 = Date.now();
  const { dir, dataDir, socketDir, passwordFile, superuserPasswordFile } = inst.paths;
  const label = inst.label;
  const bin = await findPostgresBin(ctx.env);
  const user = await serverUser();
  const logFile = join(ctx.paths.logsDir, `${label}.log`);
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
  // A cluster made by an older version has no superuser password file: none is invented for it.
  const superuserPassword = initialised ? await readSecret(superuserPasswordFile) : await ensureSecret(superuserPasswordFile);
  if (!initialised) {
    ctx.progress(label, `creating a cluster in ${dataDir}`);
    await initCluster(inst, bin, user, superuserPassword!, logFile);
  }

  const port = inst.port;
  const opts = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${pgQuote(socketDir)}`;
  const r = await runPg(user, join(bin, 'pg_ctl'), ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', opts], dir);
  if (r.code !== 0) {
    throw new TargetError('postgres', `pg_ctl start failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`, { hint: await logHint(logFile) });
  }
  const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  const anyLogin = async () =>
    (await postgresHealthy(port, password)) || (superuserPassword !== undefined && (await canLogIn(port, POSTGRES_BOOTSTRAP_USER, superuserPassword)));
  // On failure the postmaster is stopped: it is not recorded in the state file, so `dev down` would not.
  const stopOnFailure = (mode: 'fast' | 'immediate') => async (e: unknown) => {
    await runPg(user, join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '30'], dir);
    throw e;
  };
  await waitFor(async () => ((await anyLogin()) ? true : undefined), {
    timeoutMs: 30_000,
    what: label,
    onTimeout: () => new TargetError(label, `not accepting logins on 127.0.0.1:${port} after 30s`, { hint: `see ${logFile}` }),
  }).catch(stopOnFailure('immediate'));
  const done = await ensureAdminRole(port, dataDir, password, superuserPassword, superuserPasswordFile).catch(stopOnFailure('fast'));
  if (done === 'created') ctx.progress(label, `created the admin login ${POSTGRES_ADMIN_USER} (${ADMIN_ROLE_ATTRIBUTES})`);
  if (done === 'repaired') ctx.progress(label, `repaired the admin login ${POSTGRES_ADMIN_USER} (now ${ADMIN_ROLE_ATTRIBUTES})`);
  ctx.progress(label, `ready in ${seconds(Date.now() - t0)} on 127.0.0.1:${port}`);
  return {
    pid,
    url: `postgres://${POSTGRES_ADMIN_USER}@127.0.0.1:${port}/postgres`,
    user: POSTGRES_ADMIN_USER,
    passwordFile,
    dataDir,
  };
}

/** Stops the cluster with `pg_ctl stop -m fast`, then by signal if it is still there. */
export async function stopPostgres(ctx: DevContext, inst: PostgresInstance, rec: PostgresRecord): Promise<void> {
  const markers = postgresMarkers(inst);
  if (!(await isOurProcess(rec.pid, markers))) return;
  const bin = await findPostgresBin(ctx.env).catch(() => undefined);
  const user = await serverUser();
  if (bin) await runPg(user, join(bin, 'pg_ctl'), ['stop', '-D', rec.dataDir, '-m', 'fast', '-w', '-t', '30'], dirname(rec.dataDir));
  if (await isOurProcess(rec.pid, markers)) {
    process.kill(rec.pid, 'SIGQUIT');
    await waitFor(async () => ((await isOurProcess(rec.pid, markers)) ? undefined : true), {
      timeoutMs: 10_000,
      what: inst.label,
      onTimeout: () => new TargetError(inst.label, `postmaster ${rec.pid} did not exit`),
    });
  }
}
