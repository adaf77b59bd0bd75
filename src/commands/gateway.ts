import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Io } from '../cli/io.js';
import { compile } from '../compile/compile.js';
import type { CompileEnvironment } from '../compile/desired.js';
import { LoadCache } from '../config/load-cache.js';
import { ConfigInvalidError, SystemPromptError, UsageError } from '../errors.js';
import { gatewaySetup } from '../gateway/config.js';
import { httpJwksFetcher, JwksCache } from '../gateway/jwks.js';
import { MemoryRateLimiter, type RateLimiter } from '../gateway/ratelimit.js';
import { parseRedisUrl, RedisRateLimiter } from '../gateway/ratelimit-redis.js';
import { createGateway, type GatewayConfig } from '../gateway/server.js';
import { TokenVerifier } from '../gateway/tokens.js';
import { loadValidRepository } from './load.js';
import { untilAborted, watchRepository } from './watch.js';

export interface GatewayCommandOptions {
  dir: string;
  /** `host:port`; port 0 takes any free one. */
  listen: string;
  baseDomain?: string;
  publicUrl?: string;
  maxBodyBytes?: number;
  /** Quiet time after the last saved change before the configuration is loaded again. */
  debounceMs: number;
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
export async function runGateway(io: Io, opts: GatewayCommandOptions, env: CompileEnvironment, signal: AbortSignal): Promise<number> {
  const { host, port } = parseListen(opts.listen);
  const redis = opts.redis ? parseRedisUrl(opts.redis.url, opts.redis.source) : undefined;
  const root = path.resolve(io.cwd, opts.dir);
  const cache = new LoadCache();
  // The verifier keeps this map; a reload refills it in place.
  const issuers = new Map<string, Set<string>>();
  const load = async (): Promise<GatewayConfig> => {
    const { repo } = await loadValidRepository(opts.dir, io, { quietWarnings: true, cache });
    const setup = gatewaySetup(compile(repo, env), opts.baseDomain ? { baseDomain: opts.baseDomain } : {});
    issuers.clear();
    for (const [issuer, tenants] of setup.issuers) issuers.set(issuer, tenants);
    return setup.config;
  };
  let current = await load();
  const describe = (c: GatewayConfig): string => `${c.tenants.size} tenant${c.tenants.size === 1 ? '' : 's'}, ${c.agents.size} agent${c.agents.size === 1 ? '' : 's'} with an upstream`;

  const verifier = new TokenVerifier({ issuers, keys: new JwksCache(httpJwksFetcher()) });
  const limiter: RateLimiter = redis
    ? new RedisRateLimiter({
        redis,
        ...(opts.redis?.prefix !== undefined ? { prefix: opts.redis.prefix } : {}),
        ...(opts.redis?.commandTimeoutMs !== undefined ? { commandTimeoutMs: opts.redis.commandTimeoutMs } : {}),
        warn: (m) => io.err(`${m}\n`),
      })
    : new MemoryRateLimiter();
  const limits = redis ? `rate limits in Redis at ${redis.display}` : 'rate limits in memory';
  const server = createGateway({
    config: () => current,
    verifier,
    limiter,
    log: (entry) => io.out(`${JSON.stringify(entry)}\n`),
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
        const why = e instanceof ConfigInvalidError ? 'the repository is invalid (see above)' : e instanceof SystemPromptError ? e.message : String(e);
        io.err(`gateway: ${why}; still serving the last valid configuration\n`);
      }
    });
  };
  const stopWatching = await watchRepository(root, opts.debounceMs, reload, (m) => io.err(`gateway: watch: ${m}\n`));
  // Said once changes are watched too: from here on a saved change is seen.
  io.err(`gateway: listening on ${url}: ${describe(current)}; ${limits}; watching ${root} (Ctrl-C stops)\n`);
  opts.onListening?.(url);

  await untilAborted(signal);
  await stopWatching();
  await loading;
  // Stop taking connections; requests in flight finish.
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await limiter.close?.();
  io.err('gateway: stopped\n');
  return 0;
}
