/** Where a command writes. The CLI edge passes process streams; tests pass buffers. */
export interface Io {
  out(text: string): void;
  /** UTF-8 bytes to the same place as out(), as they are (a saved plan copied); optional. */
  outBytes?(bytes: Uint8Array): void;
  err(text: string): void;
  /** True when stdin is an interactive terminal (apply may ask for confirmation). */
  readonly interactive: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export function processIo(): Io {
  return {
    out: (t) => void process.stdout.write(t),
    outBytes: (b) => void process.stdout.write(b),
    err: (t) => void process.stderr.write(t),
    interactive: Boolean(process.stdin.isTTY),
    env: process.env,
    cwd: process.cwd(),
  };
}
