import { Command, CommanderError } from 'commander';
import { SystemPromptError } from '../errors.js';
import { processIo, type Io } from './io.js';
import { registerAdminCommands } from './register/admin.js';
import { registerCloudCommands } from './register/cloud.js';
import { registerConfigCommands } from './register/config.js';
import { registerInitCommands } from './register/init.js';
import { registerDevCommands } from './register/dev.js';
import { registerGatewayCommands } from './register/gateway.js';
import { registerOperatorCommands } from './register/operator.js';

export function buildProgram(io: Io, setExit: (code: number) => void = () => {}): Command {
  const program = new Command('systemprompt')
    .description('Multi-tenant AI products from YAML in git: validate, plan and apply tenants, users, scopes and agents\ninto Keycloak realms, Kubernetes namespaces and PostgreSQL databases.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride();
  registerInitCommands(program, io, setExit);
  registerConfigCommands(program, io, setExit);
  registerAdminCommands(program, io, setExit);
  registerCloudCommands(program, io, setExit);
  registerDevCommands(program, io);
  registerOperatorCommands(program, io, setExit);
  registerGatewayCommands(program, io, setExit);
  return program;
}

/** Entry point: parse, run, map every failure to a message and an exit code. Never throws. */
export async function run(argv: string[], io: Io = processIo()): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e) {
    return reportFailure(e, io);
  }
}

export function reportFailure(e: unknown, io: Io): number {
  if (e instanceof CommanderError) {
    // commander already printed its message (help, version, or a usage error)
    return e.exitCode === 0 ? 0 : 1;
  }
  if (e instanceof SystemPromptError) {
    if (e.message) io.err(`error: ${e.message}\n`);
    if (e.hint) io.err(`hint: ${e.hint}\n`);
    return e.exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.err(`internal error: ${msg}\n`);
  if (io.env.SYSTEMPROMPT_DEBUG && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
  else io.err('hint: set SYSTEMPROMPT_DEBUG=1 for details, and please report this\n');
  return 1;
}
