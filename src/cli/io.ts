/** Where a command writes. The CLI edge passes process streams; tests pass buffers. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** True when stdin is an interactive terminal (apply may ask for confirmation). */
  readonly interactive: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export function processIo(): Io {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    interactive: Boolean(process.stdin.isTTY),
    env: process.env,
    cwd: process.cwd(),
  };
}
