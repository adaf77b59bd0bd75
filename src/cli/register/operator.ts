import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { interruptSignal } from '../interrupt.js';
import type { Io } from '../io.js';
import { parseDuration } from '../options.js';
import { liveSession } from './live.js';

/** `systemprompt operator`: the in-cluster loop over Tenant, Agent and ConfigSource resources. */
export function registerOperatorCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('operator')
    .description('reconcile the Tenant and Agent resources of the cluster into Keycloak, Kubernetes and PostgreSQL, continuously (leader-elected; /metrics, /healthz, /readyz)')
    .option('--config <file>', 'a systemprompt.yaml for the scope catalog and naming (default: the built-in defaults)')
    .option('--resync <duration>', 'reconcile at least this often (Keycloak and PostgreSQL cannot be watched)', parseDuration, 300_000)
    .option('--allow-destroy', 'delete the realm, namespace and database of a tenant whose resource is gone (otherwise they wait)', false)
    .option('--listen <host:port>', 'address of /metrics, /healthz and /readyz (port 0: any free one)', '127.0.0.1:8081')
    .option('--workers <n>', 'tenants reconciled at once', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--workers ${v}: expected a whole number from 1 to 64`);
      return n;
    }, 4)
    .option('--lease-namespace <ns>', 'namespace of the leader and apply Leases', 'kube-system')
    .option('--target <list>', 'limit to some targets: kubernetes,postgres,keycloak')
    .option('--context <name>', 'kubeconfig context')
    .option('--debug', 'print each request made to the targets on stderr', false)
    .action(async (o: { config?: string; resync: number; allowDestroy: boolean; listen: string; leaseNamespace: string; workers: number; target?: string; context?: string; debug: boolean }) => {
      let project: string | undefined;
      if (o.config) project = await readFile(o.config, 'utf8').catch((e: NodeJS.ErrnoException) => Promise.reject(new UsageError(`cannot read --config ${o.config}: ${e.code ?? e.message}`)));
      if (o.resync < 1000) throw new UsageError('--resync must be at least 1s');
      // Loaded here, not at start-up: the client libraries are only needed once the operator runs.
      const { runOperator } = await import('../../operator/operator.js');
      const session = liveSession(io, o);
      const interrupt = interruptSignal();
      try {
        setExit(await runOperator(io, session, { ...(project !== undefined ? { project } : {}), resyncMs: o.resync, allowDestroy: o.allowDestroy, listen: o.listen, leaseNamespace: o.leaseNamespace, workers: o.workers }, interrupt.signal));
      } finally {
        interrupt.dispose();
        await session.close();
      }
    });
}
