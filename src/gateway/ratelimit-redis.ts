import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { createClient } from 'redis';
import { UsageError } from '../errors.js';
import { secondsLeft, windowOf, WINDOW_MS, type RateCheck, type RateDecision, type RateLimiter } from './ratelimit.js';

/**
 * Rate-limit counters in Redis, shared by every gateway replica that uses the same Redis: the same
 * fixed one-minute windows as MemoryRateLimiter, with the same decisions and `Retry-After`.
 *
 * Keys: `<prefix><check key>:<window>`, e.g. `systemprompt:rl:user:acme:<sub>:29433127` and
 * `systemprompt:rl:tenant:acme:29433127`, where the window is floor(now / 60 s). One Lua script,
 * sent with EVALSHA (EVAL when Redis does not have it cached), reads every counter of the request
 * and, only when all are under their limits, increments them all; a counter is created with a
 * PEXPIRE of its window's end plus a margin, so nothing outlives its window by more than that.
 *
 * The window comes from the gateway's clock (`now`), not Redis' TIME, so that both limiters agree
 * and `Retry-After` is computed from the same instant as the window; replicas need clocks kept in
 * step (NTP): a replica whose clock is off by s seconds counts the first or last s seconds of a
 * minute in the neighbouring window.
 *
 * Failure policy: fail open. When Redis cannot be reached, refuses (a wrong password, an error
 * reply) or does not answer within `commandTimeoutMs` (250 ms by default; the very first request
 * also waits up to `connectTimeoutMs`, 1 s, for the first connection), the request is allowed
 * unchecked (`unchecked: true`; the gateway's access log says `"rateLimit":"unchecked"`),
 * `uncheckedCount` goes up, and a warning is written at most once every `warnEveryMs` (30 s) with
 * the number let through since the last one; a recovery is said once. An outage of the limiter
 * store thus costs the limits, never the service. (A script that ran but answered too late has
 * counted its request all the same.) The connection is made at the first request and made again
 * after it breaks (backing off up to 2 s); while it is down, requests are not queued for it: they
 * pass at once. A single Redis (or a managed primary) is expected, not Redis Cluster: the keys of
 * one request may hash to different slots.
 */

export const DEFAULT_REDIS_PREFIX = 'systemprompt:rl:';
export const DEFAULT_COMMAND_TIMEOUT_MS = 250;
export const DEFAULT_CONNECT_TIMEOUT_MS = 1_000;
export const DEFAULT_WARN_EVERY_MS = 30_000;
/** How long a counter outlives its window (clock skew between replicas, a late request). */
export const KEY_TTL_MARGIN_MS = 30_000;

/**
 * KEYS: the request's counters; ARGV[1]: their time to live in ms; ARGV[2..]: each key's limit.
 * Returns {1, 0, remaining} when allowed (remaining: the least left among the keys after this
 * request), {0, i, 0} when the i-th key (1-based) is at its limit and nothing was incremented.
 */
export const HIT_ALL_SCRIPT = `local n = #KEYS
for i = 1, n do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[i + 1]) then return {0, i, 0} end
end
local remaining = nil
for i = 1, n do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
  local left = tonumber(ARGV[i + 1]) - count
  if remaining == nil or left < remaining then remaining = left end
end
return {1, 0, remaining}
`;
export const HIT_ALL_SHA1 = createHash('sha1').update(HIT_ALL_SCRIPT).digest('hex');

/** A Redis URL checked and taken apart; `display` has no credentials and may be printed. */
export interface RedisTarget {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  database?: number;
  display: string;
}

const URL_FORM = 'redis://[user:password@]host[:port][/db] or rediss://... (TLS)';

/**
 * Checks a `--redis` URL (or SYSTEMPROMPT_REDIS_URL: `source`) and takes it apart. Errors show the
 * URL without its credentials, or not at all when it cannot be parsed, so a password never reaches
 * a terminal or a log.
 */
export function parseRedisUrl(text: string, source = '--redis'): RedisTarget {
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw new UsageError(`${source}: not a URL`, { hint: `expected ${URL_FORM}` });
  }
  const tls = u.protocol === 'rediss:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : 6379;
  const db = u.pathname.replace(/^\/+/, '');
  const display = `${u.protocol}//${u.host || '?'}${db ? `/${db}` : ''}`;
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new UsageError(`${source} ${u.protocol}//${u.host}...: not a Redis URL`, { hint: `expected ${URL_FORM}` });
  if (!host) throw new UsageError(`${source} ${display}: no host`, { hint: `expected ${URL_FORM}` });
  if (db !== '' && !/^\d{1,5}$/.test(db)) throw new UsageError(`${source} ${u.protocol}//${u.host}/...: the path must be a database number`, { hint: `expected ${URL_FORM}` });
  if (u.search || u.hash) throw new UsageError(`${source} ${display}: query parameters and fragments are not supported`, { hint: `expected ${URL_FORM}` });
  const target: RedisTarget = { host, port, tls, display };
  if (u.username) target.username = decodeURIComponent(u.username);
  if (u.password) target.password = decodeURIComponent(u.password);
  if (db !== '') target.database = Number(db);
  return target;
}

/** The counter of `key` in `window`. */
export function counterKey(prefix: string, key: string, window: number): string {
  return `${prefix}${key}:${window}`;
}

/** EVALSHA/EVAL's keys and arguments for a request at `now`. */
export function scriptCall(checks: readonly RateCheck[], now: number, prefix = DEFAULT_REDIS_PREFIX): { keys: string[]; args: string[] } {
  const window = windowOf(now);
  const ttl = (window + 1) * WINDOW_MS - now + KEY_TTL_MARGIN_MS;
  return {
    keys: checks.map((c) => counterKey(prefix, c.key, window)),
    args: [String(Math.ceil(ttl)), ...checks.map((c) => String(Math.max(0, Math.floor(c.limitPerMinute))))],
  };
}

/** The script's answer as a decision; anything else is an error (and the request fails open). */
export function decisionOf(reply: unknown, checks: readonly RateCheck[], now: number): RateDecision {
  if (!Array.isArray(reply) || reply.length !== 3 || !reply.every((v) => typeof v === 'number')) throw new Error(`unexpected reply from the rate-limit script: ${JSON.stringify(reply)}`);
  const [allowed, index, remaining] = reply as [number, number, number];
  if (allowed === 1) return { allowed: true, retryAfterSeconds: 0, remaining };
  const denied = checks[index - 1];
  if (!denied) throw new Error(`unexpected reply from the rate-limit script: ${JSON.stringify(reply)}`);
  return { allowed: false, retryAfterSeconds: secondsLeft(now), remaining: 0, deniedBy: denied.key };
}

export interface RedisRateLimiterOptions {
  /** A URL parseRedisUrl accepts, or what it returned. */
  redis: string | RedisTarget;
  /** Prepended to every key; default `systemprompt:rl:`. */
  prefix?: string;
  /** A request waits at most this long for Redis' answer, then passes unchecked. */
  commandTimeoutMs?: number;
  /** The first request waits at most this long for the first connection (default 1 s); later ones never wait for one. */
  connectTimeoutMs?: number;
  /** Where warnings go (never with a password); default stderr. */
  warn?: (message: string) => void;
  warnEveryMs?: number;
}

type Client = ReturnType<typeof createClient>;

class Unavailable extends Error {}

/** `p`, or the error `timeoutError()` makes after `ms`; a later rejection of `p` is not left unhandled. */
function within<T>(p: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  p.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeoutError()), ms)));
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

const ALLOWED_UNCHECKED: RateDecision = Object.freeze({ allowed: true, retryAfterSeconds: 0, remaining: Infinity, unchecked: true });

export class RedisRateLimiter implements RateLimiter {
  readonly target: RedisTarget;
  readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly warnEveryMs: number;
  private readonly warnTo: (message: string) => void;
  private client: Client | undefined;
  private connecting: Promise<unknown> | undefined;
  /** Until the first connection attempt has ended either way, a request waits for it (within its deadline). */
  private firstAttempt = true;
  private firstAttemptEnded: Promise<void> | undefined;
  private lastError = '';
  private closed = false;
  /** Since the last ready connection: something went wrong (said again on recovery). */
  private troubled = false;
  private lastWarn = -Infinity;
  private uncheckedSinceWarn = 0;
  private uncheckedSinceReady = 0;
  private unchecked = 0;

  constructor(opts: RedisRateLimiterOptions) {
    this.target = typeof opts.redis === 'string' ? parseRedisUrl(opts.redis) : opts.redis;
    this.prefix = opts.prefix ?? DEFAULT_REDIS_PREFIX;
    this.timeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.warnEveryMs = opts.warnEveryMs ?? DEFAULT_WARN_EVERY_MS;
    this.warnTo = opts.warn ?? ((m) => void process.stderr.write(`${m}\n`));
  }

  /** Requests let through without being counted because Redis could not be asked (a metric). */
  get uncheckedCount(): number {
    return this.unchecked;
  }

  /** Whether the connection is up now. */
  get connected(): boolean {
    return this.client?.isReady ?? false;
  }

  hit(key: string, limitPerMinute: number, now: number): Promise<RateDecision> {
    return this.hitAll([{ key, limitPerMinute }], now);
  }

  async hitAll(checks: readonly RateCheck[], now: number): Promise<RateDecision> {
    if (checks.length === 0) return { allowed: true, retryAfterSeconds: 0, remaining: Infinity };
    const { keys, args } = scriptCall(checks, now, this.prefix);
    try {
      return decisionOf(await this.evaluate(keys, args), checks, now);
    } catch (e) {
      this.unchecked++;
      this.uncheckedSinceWarn++;
      this.uncheckedSinceReady++;
      this.problem(e instanceof Unavailable ? e.message : `the rate-limit script failed: ${this.redact(e)}`);
      return ALLOWED_UNCHECKED;
    }
  }

  /** Closes the connection (commands still waiting fail, and their requests pass unchecked). */
  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    // A connection attempt in flight when the client is destroyed may still complete: unreferenced,
    // its socket cannot keep the process alive.
    client.unref();
    if (client.isOpen) client.destroy();
    await this.connecting;
  }

  private connect(): Client {
    if (this.client) return this.client;
    const t = this.target;
    const client = createClient({
      socket: {
        host: t.host,
        port: t.port,
        ...(t.tls ? { tls: true as const, ...(isIP(t.host) ? {} : { servername: t.host }) } : {}),
        connectTimeout: this.connectTimeoutMs,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
      },
      ...(t.username !== undefined ? { username: t.username } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
      ...(t.database !== undefined ? { database: t.database } : {}),
      name: 'systemprompt-gateway',
      // While the connection is down, a command fails at once instead of waiting in a queue.
      disableOfflineQueue: true,
      // Commands whose answers are late (a hung server) are bounded too; beyond, they fail at once.
      commandsQueueMaxLength: 10_000,
      maintNotifications: 'disabled',
    });
    let endFirstAttempt: () => void = () => undefined;
    this.firstAttemptEnded = new Promise<void>((resolve) => (endFirstAttempt = resolve));
    client.on('error', (e: unknown) => {
      this.firstAttempt = false;
      endFirstAttempt();
      this.lastError = this.redact(e);
      this.problem(`Redis at ${t.display}: ${this.lastError}`);
    });
    client.on('ready', () => {
      this.firstAttempt = false;
      endFirstAttempt();
      if (this.troubled) {
        this.warnTo(`gateway: rate limits: Redis at ${t.display} reachable again${this.uncheckedSinceReady ? ` (${this.uncheckedSinceReady} request(s) passed unchecked meanwhile)` : ''}`);
        this.lastWarn = -Infinity;
      }
      this.troubled = false;
      this.uncheckedSinceReady = 0;
      this.uncheckedSinceWarn = 0;
    });
    this.client = client;
    this.connecting = client.connect().catch((e: unknown) => this.problem(`Redis at ${t.display}: ${this.redact(e)}`));
    return client;
  }

  /** EVALSHA (EVAL when the script is not cached), within the deadline. */
  private async evaluate(keys: string[], args: string[]): Promise<unknown> {
    if (this.closed) throw new Unavailable('the limiter is closed');
    const client = this.connect();
    if (!client.isReady) {
      // The first connection may be made for this very request, which waits for it (at most the
      // connect timeout); once an attempt has failed, or a connection has broken, it is not waited
      // for: requests pass at once while it is made again.
      if (this.firstAttempt) {
        await within(this.firstAttemptEnded!, this.connectTimeoutMs, () => {
          this.firstAttempt = false;
          return new Unavailable(`Redis at ${this.target.display}: no connection within ${this.connectTimeoutMs} ms`);
        });
      }
      if (!client.isReady) throw new Unavailable(`Redis at ${this.target.display} is not connected${this.lastError ? ` (${this.lastError})` : ''}`);
    }
    const send = (cmd: 'EVALSHA' | 'EVAL', body: string) => client.sendCommand([cmd, body, String(keys.length), ...keys, ...args], { timeout: this.timeoutMs });
    const call = send('EVALSHA', HIT_ALL_SHA1).catch((e: unknown) => {
      if (e instanceof Error && e.message.startsWith('NOSCRIPT')) return send('EVAL', HIT_ALL_SCRIPT);
      throw e;
    });
    // The command's own timeout covers it only until it is written: a server that never answers is
    // bounded here. (Its script may still run later: the request then counted, though let through unchecked.)
    return within(call, this.timeoutMs, () => new Unavailable(`Redis at ${this.target.display} did not answer within ${this.timeoutMs} ms`));
  }

  /** A warning at most once every warnEveryMs, with the count of requests let through since the last. */
  private problem(message: string): void {
    if (this.closed) return;
    this.troubled = true;
    const now = Date.now();
    if (now - this.lastWarn < this.warnEveryMs) return;
    this.lastWarn = now;
    const n = this.uncheckedSinceWarn;
    this.uncheckedSinceWarn = 0;
    this.warnTo(`gateway: rate limits not enforced while Redis is unavailable (requests pass unchecked): ${message}${n ? `; ${n} request(s) passed unchecked since the last warning` : ''}`);
  }

  /** An error's message with the password (if it ever appeared) masked. */
  private redact(e: unknown): string {
    let m = e instanceof Error ? e.message || e.name : String(e);
    const pw = this.target.password;
    if (pw) for (const form of new Set([pw, encodeURIComponent(pw)])) m = m.split(form).join('***');
    return m;
  }
}
