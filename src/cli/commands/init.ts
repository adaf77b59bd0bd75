import type { Command } from 'commander';
import type { Io } from '../io.js';

/** Placeholder: `systemprompt init` lands with the admin-commands work. */
export function registerInitCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  void program;
  void io;
  void setExit;
}
