import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { interruptSignal } from '../interrupt.js';
import type { Io } from '../io.js';
import { liveSession } from './live.js';

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
    .option('--no-usage', "do not record usage and audit (by default they are written in batches into each tenant's own database, with the credentials of its systemprompt-database Secret read from Kubernetes)")
    .action(async (o: { dir: string; fromCluster: boolean; config?: string; listen: string; baseDomain?: string; publicUrl?: string; maxBody?: number; usage: boolean }) => {
      if (o.config !== undefined && !o.fromCluster) throw new UsageError('--config is for --from-cluster (a repository has its own systemprompt.yaml)');
      const project = o.config === undefined ? undefined : await readFile(o.config, 'utf8').catch((e: NodeJS.ErrnoException) => Promise.reject(new UsageError(`cannot read --config ${o.config}: ${e.code ?? e.message}`)));
      const { runGateway } = await import('../../commands/gateway.js');
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
        }, env, interrupt.signal, source));
      } finally {
        interrupt.dispose();
        await session.close();
      }
    });
}
