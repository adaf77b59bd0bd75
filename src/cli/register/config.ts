import { Option, type Command } from 'commander';
import { runBuild } from '../../commands/build.js';
import { runPlan } from '../../commands/plan.js';
import { runValidate } from '../../commands/validate.js';
import { compileEnvironment, postgresUrlsFromVariables } from '../../targets/environment.js';
import { interruptSignal } from '../interrupt.js';
import type { Io } from '../io.js';
import { dirOption, outputOption, parseDuration } from '../options.js';
import { runApply } from '../../commands/apply.js';
import { runApplyWatch } from '../../commands/watch.js';
import { UsageError } from '../../errors.js';
import { liveSession } from './live.js';

/** validate, build, plan: the offline core, and plan against the live targets. */
export function registerConfigCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('validate')
    .description('check the config repository: YAML, schemas, names and references; every problem at once')
    .addOption(dirOption())
    .addOption(outputOption())
    .action(async (o: { dir: string; output: 'text' | 'json' }) => setExit(await runValidate(io, o)));

  program
    .command('build')
    .description('write what each tenant compiles to (realm JSON, Kubernetes YAML, SQL, agent cards), offline')
    .addOption(dirOption())
    .requiredOption('--out <dir>', 'output folder (replaced if it holds an earlier build)')
    .addOption(new Option('--format <format>', 'files: what each tenant compiles to; crds: Tenant and Agent custom resources (for Argo CD or Flux)').choices(['files', 'crds']).default('files'))
    .addOption(outputOption())
    .action(async (o: { dir: string; out: string; output: 'text' | 'json'; format: 'files' | 'crds' }) =>
      setExit(await runBuild(io, { ...o, environment: (servers) => compileEnvironment({ keycloakUrl: io.env.SYSTEMPROMPT_KEYCLOAK_URL, postgresUrl: io.env.SYSTEMPROMPT_POSTGRES_URL, postgresServers: postgresUrlsFromVariables(io.env, servers) }) })),
    );

  program
    .command('plan')
    .description('show what apply would change in Keycloak, Kubernetes and PostgreSQL')
    .addOption(dirOption())
    .option('--offline', 'plan against empty targets, without any server', false)
    .addOption(outputOption())
    .option('--out <planfile>', 'save the plan for `systemprompt apply PLANFILE`')
    .option('--detailed-exitcode', 'exit 0 when there are no changes, 2 when there are, 1 on error', false)
    .option('--target <list>', 'limit to some targets: kubernetes,postgres,keycloak')
    .option('--context <name>', 'kubeconfig context')
    .option('-v, --verbose', 'list every change (large tenants are counted per kind otherwise) and every field of created and deleted objects', false)
    .option('--debug', 'print each request made to the targets on stderr', false)
    .action(async (o: { dir: string; offline: boolean; output: 'text' | 'json'; out?: string; detailedExitcode: boolean; target?: string; context?: string; verbose: boolean; debug: boolean }) => {
      const session = liveSession(io, o);
      try {
        setExit(await runPlan(io, o, session));
      } finally {
        await session.close();
      }
    });

  program
    .command('apply')
    .description('make the live targets match the config (or a saved plan), after confirmation')
    .argument('[planfile]', 'a plan saved with `plan --out`; applied only if the live state still matches it')
    .addOption(dirOption())
    .option('--auto-approve', 'do not ask for confirmation', false)
    .option('--allow-destroy', 'allow deleting realms, namespaces and databases', false)
    .option('--target <list>', 'limit to some targets: kubernetes,postgres,keycloak')
    .option('--context <name>', 'kubeconfig context')
    .option('--concurrency <n>', 'changes applied at once', (v) => Number.parseInt(v, 10), 4)
    .option('--lock-timeout <duration>', 'wait this long for the lock another apply holds (e.g. 30s, 2m); 0 fails at once', parseDuration, 0)
    .option('--watch', 'keep running: apply again after each saved change to the repository (no confirmation; for local editing)', false)
    .option('--debounce <duration>', 'with --watch: quiet time after the last change before applying', parseDuration, 500)
    .addOption(outputOption())
    .option('--debug', 'print each request made to the targets on stderr', false)
    .action(async (planfile: string | undefined, o: { dir: string; autoApprove: boolean; allowDestroy: boolean; target?: string; context?: string; concurrency: number; lockTimeout: number; watch: boolean; debounce: number; output: 'text' | 'json'; debug: boolean }) => {
      const session = liveSession(io, o);
      try {
        if (o.watch) {
          if (planfile) throw new UsageError('apply --watch plans each change itself; it takes no PLANFILE');
          const interrupt = interruptSignal();
          try {
            setExit(await runApplyWatch(io, { ...o, lockTimeoutMs: Math.max(o.lockTimeout, 30_000), debounceMs: o.debounce }, session, interrupt.signal));
          } finally {
            interrupt.dispose();
          }
          return;
        }
        setExit(await runApply(io, { ...o, lockTimeoutMs: o.lockTimeout, ...(planfile ? { planFile: planfile } : {}) }, session));
      } finally {
        await session.close();
      }
    });
}
