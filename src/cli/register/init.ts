import type { Command } from 'commander';
import { runInit } from '../../commands/init.js';
import type { Io } from '../io.js';

/** `systemprompt init [DIR]`: a new config repository. */
export function registerInitCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('init')
    .description('create a config repository: systemprompt.yaml, tenants/default.yaml, an example agent, and the JSON Schemas for editors')
    .argument('[dir]', 'where (default: the current directory); existing files are never overwritten')
    .action(async (dir: string | undefined) => setExit(await runInit(io, { dir })));
}
