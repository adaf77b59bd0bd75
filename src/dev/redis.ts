import { mkdir } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { TargetError } from '../errors.js';
import { seconds, type DevContext } from './context.js';
import { logHint } from './logs.js';
import { isAlive, isOurProcess, spawnDetached, stopGroup, waitFor } from './process.js';
import { ensureSecret, readSecret, writeSecret } from './secrets.js';
import type { RedisState } from './state.js';
import { findRedisServer } from './tools.js';

/** The user the stack's URL names: Redis' `default` user, whose password `requirepass` sets. */
export const REDIS_USER = 'default';

export type RedisRecord = RedisState;

/**
 * `redis-server` arguments for the stack: the config file first (it holds only `requirepass`, so
 * the password never appears on a command line), then everything else in the open. Loopback only,
 * protected mode, no persistence (`--save ''`, `--appendonly no`: nothing is written, and the
 * working folder is the stack's own, never /var/lib/redis), in the foreground, and the process title
 * left as its command line so that the stack recognises it by its config file.
 */
export function redisArgs(ctx: Pick<DevContext, 'paths' | 'ports'>): string[] {
  const { dir, configFile } = ctx.paths.redis;
  return [
    configFile,
    '--port',
    String(ctx.ports.redis),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--set-proc-title',
    'no',
  ];
}

/** The 0600 config file's text: the password, quoted as redis.conf reads strings. */
export function redisConfig(password: string): string {
  return `# written by systemprompt dev up; holds the password, keep it 0600\nrequirepass "${password.replace(/[\\"]/g, (c) => `\\${c}`)}"\n`;
}

export function redisMarkers(ctx: Pick<DevContext, 'paths'>): string[] {
  return [ctx.paths.redis.configFile];
}

/** One command in RESP, as clients send it. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** `AUTH default <password>` then `PING`, pipelined. */
export function pingRequest(password: string): string {
  return resp('AUTH', REDIS_USER, password) + resp('PING');
}

/**
 * What the answers to pingRequest say so far: `pong` (logged in, PONG), `refused` (an error
 * reply, e.g. a wrong password), or undefined while they are incomplete.
 */
export function pingOutcome(received: string): 'pong' | 'refused' | undefined {
  const lines = received.split('\r\n');
  if (lines[0]?.startsWith('-') && lines.length > 1) return 'refused';
  if (lines.length < 3) return undefined;
  return lines[0] === '+OK' && lines[1] === '+PONG' ? 'pong' : 'refused';
}

/** True when Redis on 127.0.0.1:port answers PING after AUTH with `password`. */
export function redisPing(port: number, password: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    let received = '';
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
    socket.once('connect', () => socket.write(pingRequest(password)));
    socket.on('data', (b: Buffer) => {
      received += b.toString('utf8');
      const outcome = pingOutcome(received);
      if (outcome) done(outcome === 'pong');
    });
  });
}

/** Whether the recorded redis-server is ours and answers PING with the stack's password. */
export async function redisRunning(ctx: DevContext, rec: RedisRecord | undefined): Promise<boolean> {
  if (!rec || !(await isOurProcess(rec.pid, redisMarkers(ctx)))) return false;
  const password = await readSecret(rec.passwordFile);
  return password !== undefined && (await redisPing(ctx.ports.redis, password));
}

/**
 * Starts the stack's own redis-server on its loopback port (never the system's on 6379, which
 * Debian's package may run) and waits until it answers PING with the stack's password.
 */
export async function startRedis(ctx: DevContext): Promise<RedisRecord> {
  const bin = await findRedisServer(ctx.env);
  const t0 = Date.now();
  const { dir, configFile, passwordFile } = ctx.paths.redis;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const password = await ensureSecret(passwordFile);
  // Written at every start, so that it always holds the recorded password.
  await writeSecret(configFile, redisConfig(password));
  const port = ctx.ports.redis;
  const logFile = join(ctx.paths.logsDir, 'redis.log');
  ctx.progress('redis', `starting ${bin}`);
  const pid = await spawnDetached({ command: bin, args: redisArgs(ctx), cwd: dir, logFile, env: ctx.env });
  await waitFor(
    async () => {
      if (await redisPing(port, password)) return true;
      if (!(await isAlive(pid))) throw new TargetError('redis', 'exited during start-up', { hint: await logHint(logFile) });
      return undefined;
    },
    { timeoutMs: 30_000, what: 'redis', onTimeout: () => new TargetError('redis', `not answering PING on 127.0.0.1:${port} after 30s`, { hint: `see ${logFile}` }) },
  ).catch(async (e: unknown) => {
    await stopGroup(pid, 10_000);
    throw e;
  });
  ctx.progress('redis', `ready in ${seconds(Date.now() - t0)} on 127.0.0.1:${port}`);
  return { pid, url: `redis://127.0.0.1:${port}`, user: REDIS_USER, passwordFile, configFile };
}

export async function stopRedis(ctx: DevContext, rec: RedisRecord): Promise<void> {
  if (!(await isOurProcess(rec.pid, redisMarkers(ctx)))) return;
  await stopGroup(rec.pid, 10_000);
}
