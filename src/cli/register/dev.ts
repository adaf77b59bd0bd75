import { Option, type Command } from 'commander';
import { SystemPromptError } from '../../errors.js';
import { renderEnv } from '../../dev/env.js';
import { stackPaths } from '../../dev/paths.js';
import { stackDown, stackStatus, stackUp, type StackStatus } from '../../dev/stack.js';
import { readState } from '../../dev/state.js';
import type { Io } from '../io.js';

function progress(io: Io) {
  return (component: string, message: string) => io.err(`${component.padEnd(8)} ${message}\n`);
}

/** The status as one JSON-able object (no secrets: the state file holds none). */
export function statusDocument(s: StackStatus) {
  const st = s.state;
  const running = s.components.every((c) => c.running);
  const endpoint = {
    postgres: st?.postgres ? { url: st.postgres.url, pid: st.postgres.pid, passwordFile: st.postgres.passwordFile } : undefined,
    postgres2: st?.postgres2 ? { url: st.postgres2.url, pid: st.postgres2.pid, passwordFile: st.postgres2.passwordFile } : undefined,
    redis: st?.redis ? { url: st.redis.url, pid: st.redis.pid, user: st.redis.user, passwordFile: st.redis.passwordFile } : undefined,
    keycloak: st?.keycloak ? { url: st.keycloak.url, adminConsole: st.keycloak.adminConsoleUrl, pid: st.keycloak.pid, user: st.keycloak.user, passwordFile: st.keycloak.passwordFile } : undefined,
    kube: st?.kube ? { server: st.kube.server, kubeconfig: st.kube.kubeconfig, context: st.kube.context, pids: st.kube.pids, kubectl: st.kube.kubectl } : undefined,
  };
  return {
    stackDir: s.stackDir,
    running,
    ports: st?.ports,
    components: s.components.map((c) => ({ name: c.name, running: c.running, ...endpoint[c.name] })),
  };
}

function renderStatusText(doc: ReturnType<typeof statusDocument>): string {
  const lines = [`stack ${doc.stackDir}: ${doc.running ? 'running' : 'not running'}`];
  for (const c of doc.components) {
    const where = 'url' in c && c.url ? c.url : 'server' in c && c.server ? c.server : '';
    lines.push(`  ${c.name.padEnd(9)} ${(c.running ? 'running' : 'stopped').padEnd(8)} ${where}`.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

/** `systemprompt dev up|down|status|env` — the local stack (DESIGN §5). */
export function registerDevCommands(program: Command, io: Io): void {
  const dev = program.command('dev').description('run the local stack: Keycloak, a Kubernetes control plane, PostgreSQL, Redis');

  dev
    .command('up')
    .description('start the local stack (idempotent: what already runs is left alone)')
    .option('--ports <list>', 'port overrides, e.g. postgres=25432,postgres-2=25433,keycloak=28080,keycloak-management=29000,apiserver=26443,etcd-client=22379,etcd-peer=22380,redis=26379')
    .action(async (opts: { ports?: string }) => {
      const r = await stackUp({ env: io.env, ports: opts.ports, progress: progress(io) });
      io.out(r.started.length ? `stack is up (${r.stackDir}); for its variables: eval "$(systemprompt dev env)"\n` : `stack already running (${r.stackDir})\n`);
    });

  dev
    .command('down')
    .description('stop the processes the stack started')
    .option('--purge', 'also delete the stack folder (databases, certificates, secrets)')
    .action(async (opts: { purge?: boolean }) => {
      const r = await stackDown({ env: io.env, purge: opts.purge, progress: progress(io) });
      io.out(r.stopped.length ? `stopped: ${r.stopped.join(', ')}\n` : 'no stack was running\n');
    });

  dev
    .command('status')
    .description('show what runs and where (exit code 3 when the stack is not fully running)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (opts: { output: 'text' | 'json' }) => {
      const doc = statusDocument(await stackStatus({ env: io.env }));
      io.out(opts.output === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : renderStatusText(doc));
      if (!doc.running) process.exitCode = 3;
    });

  dev
    .command('env')
    .description('print shell export lines for the stack: eval "$(systemprompt dev env)"')
    .action(async () => {
      const paths = stackPaths(io.env);
      const state = await readState(paths.stateFile);
      if (!state?.keycloak && !state?.kube && !state?.postgres) {
        throw new SystemPromptError(`no local stack in ${paths.stackDir}`, { hint: 'run `systemprompt dev up` first' });
      }
      io.out(renderEnv(state));
    });
}
