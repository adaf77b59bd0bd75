import type { Command } from 'commander';
import type { Io } from '../io.js';

/** Placeholder: `systemprompt admin` lands with the admin-commands work. */
export function registerAdminCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  void program;
  void io;
  void setExit;
}
