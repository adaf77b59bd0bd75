import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { interruptSignal } from '../interrupt.js';
import type { Io } from '../io.js';
import { liveSession } from './live.js';

/**
 * The Redis URL from `--redis`, else from SYSTEMPROMPT_REDIS_URL (an empty variable is unset), with
 * where it came from for error messages; undefined: counters in memory.
 */
export function redisOption(flag: string | undefined, env: string | undefined): { url: string; source: string } | undefined {
  if (flag !== undefined) return { url: flag, source: '--redis' };
  if (env) return { url: env, source: 'SYSTEMPROMPT_REDIS_URL' };
  return undefined;
}

/** `systemprompt gateway`: the runtime half, enforcing at each request what apply provisioned. */
export function registerGatewayCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('gateway')
    .description("serve the repository's tenants: agent cards, the OAuth endpoints, and each agent's API behind token, scope and rate-limit checks (reloads on change)")
    .addOption(new Option('--dir <dir>', 'config repository').default('.').conflicts('fromCluster'))
    .option('--from-cluster', 'serve the Tenant and Agent resources of the cluster (those the operator reconciles) instead of a repository, following their changes', false)
    .option('--config <file>', 'with --from-cluster: the systemprompt.yaml the operator is given (scope catalog, naming)')
    .option('--listen <host:port>', 'address to serve on (port 0: any free one)', '127.0.0.1:8080')
    .option('--base-domain <domain>', 'take the tenant from the host name <tenant>.<domain> (else from a tenant parameter)')
    .option('--public-url <url>', 'where clients reach the gateway, for the URLs in cards (default: the request\'s own host)')
    .option('--max-body <bytes>', 'largest request body passed to an agent (413 beyond)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--max-body ${v}: expected a whole number of bytes`);
      return n;
    })
    .option(
      '--redis <url>',
      'keep the rate-limit counters in this Redis (redis://[user:password@]host[:port][/db] or rediss://), shared by every gateway replica using it; default $SYSTEMPROMPT_REDIS_URL, else in memory. Fails open: while Redis is unreachable or slower than --redis-timeout, requests pass unchecked and a warning is written at most every 30 s',
    )
    .option('--redis-prefix <prefix>', 'prefix of the counter keys in Redis', 'systemprompt:rl:')
    .option('--redis-timeout <ms>', "how long a request waits for Redis' answer before it passes unchecked", (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 60_000) throw new UsageError(`--redis-timeout ${v}: expected milliseconds, 1 to 60000`);
      return n;
    }, 250)
    .option('--no-usage', "do not record usage and audit (by default they are written in batches into each tenant's own database, with the credentials of its systemprompt-database Secret read from Kubernetes)")
    .action(async (o: { dir: string; fromCluster: boolean; config?: string; listen: string; baseDomain?: string; publicUrl?: string; maxBody?: number; usage: boolean; redis?: string; redisPrefix: string; redisTimeout: number }) => {
      if (o.config !== undefined && !o.fromCluster) throw new UsageError('--config is for --from-cluster (a repository has its own systemprompt.yaml)');
      const project = o.config === undefined ? undefined : await readFile(o.config, 'utf8').catch((e: NodeJS.ErrnoException) => Promise.reject(new UsageError(`cannot read --config ${o.config}: ${e.code ?? e.message}`)));
      const { runGateway } = await import('../../commands/gateway.js');
      const redis = redisOption(o.redis, io.env.SYSTEMPROMPT_REDIS_URL);
      // Checked before anything is contacted (runGateway checks it again).
      if (redis) (await import('../../gateway/ratelimit-redis.js')).parseRedisUrl(redis.url, redis.source);
      const session = liveSession(io, { target: 'kubernetes' });
      const interrupt = interruptSignal();
      try {
        const env = await session.environment(!!io.env.SYSTEMPROMPT_KEYCLOAK_URL);
        const kube = o.fromCluster || o.usage ? (await session.connect()).kubernetes : undefined;
        const secrets = o.usage ? kube : undefined;
        const source = o.fromCluster ? (await import('../../commands/gateway-cluster.js')).clusterSource(io, kube!, env, { debounceMs: 300, ...(project !== undefined ? { project } : {}) }) : undefined;
        setExit(await runGateway(io, {
          dir: o.dir,
          listen: o.listen,
          debounceMs: 300,
          ...(secrets ? { secrets } : {}),
          ...(o.baseDomain ? { baseDomain: o.baseDomain } : {}),
          ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
          ...(o.maxBody !== undefined ? { maxBodyBytes: o.maxBody } : {}),
          ...(redis ? { redis: { ...redis, prefix: o.redisPrefix, commandTimeoutMs: o.redisTimeout } } : {}),
        }, env, interrupt.signal, source));
      } finally {
        interrupt.dispose();
        await session.close();
      }
    });
}
