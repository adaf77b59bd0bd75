import type { Command } from 'commander';
import type { Io } from '../io.js';

/** `systemprompt dev up|down|status|env` — the local stack (placeholder until src/dev lands). */
export function registerDevCommands(program: Command, io: Io): void {
  void io;
  program.command('dev').description('run the local stack: Keycloak, a Kubernetes control plane, PostgreSQL');
}
