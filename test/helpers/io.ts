import type { Io } from '../../src/cli/io.js';

export interface BufferIo extends Io {
  stdout: string;
  stderr: string;
}

export function bufferIo(cwd = process.cwd(), env: NodeJS.ProcessEnv = {}): BufferIo {
  const io = {
    stdout: '',
    stderr: '',
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
    interactive: false,
    env,
    cwd,
  };
  return io;
}
