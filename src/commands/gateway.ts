import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Io } from '../cli/io.js';
import { compile } from '../compile/compile.js';
import type { CompileEnvironment, DesiredState } from '../compile/desired.js';
import { LoadCache } from '../config/load-cache.js';
import { ConfigInvalidError, SystemPromptError, UsageError } from '../errors.js';
import { gatewaySetup } from '../gateway/config.js';
import { tuneHeapForRequests } from '../gateway/heap.js';
import { httpJwksFetcher, JwksCache } from '../gateway/jwks.js';
import { MemoryRateLimiter, type RateLimiter } from '../gateway/ratelimit.js';
import { parseRedisUrl, RedisRateLimiter } from '../gateway/ratelimit-redis.js';
import { accessLogLine, createGateway, type GatewayConfig } from '../gateway/server.js';
import { batchedLines } from '../gateway/lines.js';
import { TokenVerifier } from '../gateway/tokens.js';
import { TenantDatabases, type SecretSource } from '../runtime/tenant-db.js';
import { TenantUsageStore, UsageRecorder } from '../runtime/usage.js';
import { loadValidRepository } from './load.js';
import { untilAborted, watchRepository } from './watch.js';

/**
 * Where the gateway's configuration comes from: a repository on disk (watched), or the Tenant and
 * Agent resources of a cluster (the ones the operator reconciles; kept by informers).
 */
export interface ConfigSource {
  /** For messages: `watching /path` or `Tenants and Agents of the cluster`. */
  describe: string;
  /** The desired state as it is now; throws ConfigInvalidError (reported already) when invalid. */
  load(): Promise<DesiredState>;
  /** Calls `onChange` after each change (debounced); resolves once changes are seen, with a stop function. */
  watch(onChange: () => void): Promise<() => Promise<void>>;
}

/** The repository at `dir`, loaded with a LoadCache and watched with chokidar. */
export function repositorySource(io: Io, dir: string, env: CompileEnvironment, debounceMs: number): ConfigSource {
  const root = path.resolve(io.cwd, dir);
  const cache = new LoadCache();
  return {
    describe: `watching ${root}`,
    load: async () => compile((await loadValidRepository(dir, io, { quietWarnings: true, cache })).repo, env),
    watch: (onChange) => watchRepository(root, debounceMs, onChange, (m) => io.err(`gateway: watch: ${m}\n`)),
  };
}

export interface GatewayCommandOptions {
  /** The repository (used when no other ConfigSource is given). */
  dir: string;
  /** `host:port`; port 0 takes any free one. */
  listen: string;
  baseDomain?: string;
  publicUrl?: string;
  maxBodyBytes?: number;
  /** Quiet time after the last saved change before the configuration is loaded again. */
  debounceMs: number;
  /**
   * Where the tenants' database Secrets are read (the Kubernetes API): usage and audit are then
   * written into each tenant's own database. Absent: nothing is recorded.
   */
  secrets?: SecretSource;
  /** How often usage and audit are written; default 1 s. */
  usageFlushMs?: number;
  /**
   * Rate-limit counters in this Redis, shared with every replica using it (else in memory);
   * `source` names where the URL came from in errors (`--redis`, `SYSTEMPROMPT_REDIS_URL`).
   */
  redis?: { url: string; source: string; prefix?: string; commandTimeoutMs?: number };
  /** Told the address once the server listens (tests use port 0). */
  onListening?: (url: string) => void;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen ${listen}: expected HOST:PORT, e.g. 127.0.0.1:8080`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * `systemprompt gateway`: serves the repository's tenants and agents (cards, OAuth endpoints, the
 * agents' APIs behind token, scope and rate checks) until interrupted. A saved change to the
 * repository is loaded again (debounced) and swapped in whole: requests in flight keep the
 * configuration they started with. An invalid repository at start-up is an error; later, it is
 * reported and the last valid configuration keeps serving.
 */
export async function runGateway(io: Io, opts: GatewayCommandOptions, env: CompileEnvironment, signal: AbortSignal, source: ConfigSource = repositorySource(io, opts.dir, env, opts.debounceMs)): Promise<number> {
  const { host, port } = parseListen(opts.listen);
  const redis = opts.redis ? parseRedisUrl(opts.redis.url, opts.redis.source) : undefined;
  tuneHeapForRequests();
  // The verifier keeps this map; a reload refills it in place.
  const issuers = new Map<string, Set<string>>();
  const namespaces = new Map<string, string>();
  const load = async (): Promise<GatewayConfig> => {
    const setup = gatewaySetup(await source.load(), opts.baseDomain ? { baseDomain: opts.baseDomain } : {});
    issuers.clear();
    for (const [issuer, tenants] of setup.issuers) issuers.set(issuer, tenants);
    namespaces.clear();
    for (const [tenant, ns] of setup.namespaces) namespaces.set(tenant, ns);
    return setup.config;
  };
  let current = await load();
  const describe = (c: GatewayConfig): string => `${c.tenants.size} tenant${c.tenants.size === 1 ? '' : 's'}, ${c.agents.size} agent${c.agents.size === 1 ? '' : 's'} with an upstream`;

  const verifier = new TokenVerifier({ issuers, keys: new JwksCache(httpJwksFetcher()) });
  const databases = opts.secrets ? new TenantDatabases({ secrets: opts.secrets, namespaceOf: (t) => namespaces.get(t), max: 2 }) : undefined;
  const recorder = databases
    ? new UsageRecorder({ store: new TenantUsageStore(databases), flushMs: opts.usageFlushMs ?? 1000, warn: (m) => io.err(`gateway: ${m}\n`) })
    : undefined;
  const limiter: RateLimiter = redis
    ? new RedisRateLimiter({
        redis,
        ...(opts.redis?.prefix !== undefined ? { prefix: opts.redis.prefix } : {}),
        ...(opts.redis?.commandTimeoutMs !== undefined ? { commandTimeoutMs: opts.redis.commandTimeoutMs } : {}),
        warn: (m) => io.err(`${m}\n`),
      })
    : new MemoryRateLimiter();
  const limits = redis ? `rate limits in Redis at ${redis.display}` : 'rate limits in memory';
  const accessLog = batchedLines((chunk) => io.out(chunk));
  const server = createGateway({
    config: () => current,
    verifier,
    limiter,
    ...(recorder ? { record: (r: Parameters<UsageRecorder['record']>[0]) => recorder.record(r) } : {}),
    log: (entry) => accessLog.push(accessLogLine(entry)),
    ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}),
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new UsageError(`--listen ${opts.listen}: ${e.code ?? e.message}`)));
    server.listen(port, host, () => resolve());
  }).catch(async (e: unknown) => {
    await limiter.close?.();
    throw e;
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;

  let loading: Promise<void> | undefined;
  const reload = (): void => {
    loading = (loading ?? Promise.resolve()).then(async () => {
      try {
        current = await load();
        io.err(`gateway: configuration loaded again: ${describe(current)}\n`);
      } catch (e) {
        const why = e instanceof ConfigInvalidError ? 'the configuration is invalid (see above)' : e instanceof SystemPromptError ? e.message : String(e);
        io.err(`gateway: ${why}; still serving the last valid configuration\n`);
      }
    });
  };
  const stopWatching = await source.watch(reload);
  // Said once changes are watched too: from here on a saved change is seen.
  io.err(`gateway: listening on ${url}: ${describe(current)}; ${limits}; ${recorder ? "usage and audit go to each tenant's database" : 'usage and audit are not recorded'}; ${source.describe} (Ctrl-C stops)\n`);
  opts.onListening?.(url);

  await untilAborted(signal);
  await stopWatching();
  await loading;
  // Stop taking connections; requests in flight finish.
  await new Promise<void>((resolve) => server.close(() => resolve()));
  accessLog.flush();
  // The decisions of the last requests are written before the pools close.
  await recorder?.close();
  await databases?.close();
  await limiter.close?.();
  io.err('gateway: stopped\n');
  return 0;
}
