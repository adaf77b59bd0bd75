import type { Command } from 'commander';
import { runBuild } from '../../commands/build.js';
import { runPlan } from '../../commands/plan.js';
import { runValidate } from '../../commands/validate.js';
import { compileEnvironment } from '../../targets/environment.js';
import type { Io } from '../io.js';
import { dirOption, outputOption } from '../options.js';
import { liveDeps } from './live.js';

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
    .addOption(outputOption())
    .action(async (o: { dir: string; out: string; output: 'text' | 'json' }) =>
      setExit(await runBuild(io, { ...o, env: compileEnvironment({ keycloakUrl: io.env.SYSTEMPROMPT_KEYCLOAK_URL, postgresUrl: io.env.SYSTEMPROMPT_POSTGRES_URL }) })),
    );

  program
    .command('plan')
    .description('show what apply would change in Keycloak, Kubernetes and PostgreSQL')
    .addOption(dirOption())
    .option('--offline', 'plan against empty targets, without any server', false)
    .addOption(outputOption())
    .option('--out <planfile>', 'save the plan for `systemprompt apply PLANFILE`')
    .option('--detailed-exitcode', 'exit 0 when there are no changes, 2 when there are, 1 on error', false)
    .option('--context <name>', 'kubeconfig context')
    .option('-v, --verbose', 'show every field of created and deleted objects', false)
    .option('--debug', 'print each request made to the targets on stderr', false)
    .action(async (o: { dir: string; offline: boolean; output: 'text' | 'json'; out?: string; detailedExitcode: boolean; context?: string; verbose: boolean; debug: boolean }) =>
      setExit(await runPlan(io, o, liveDeps(io, { offline: o.offline, context: o.context, debug: o.debug }))),
    );
}
