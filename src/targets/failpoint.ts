/**
 * A failpoint for fault tests (the idea of etcd's gofail): `SYSTEMPROMPT_FAILPOINT` makes the
 * process kill itself with SIGKILL just before a write request, so a test can prove what an
 * interrupted apply leaves behind and that the next one repairs it.
 *
 * - `write:N`: before the N-th write request of this process;
 * - `match:TEXT`: before the first write request whose description contains TEXT
 *   (e.g. `match:postgres set password of role tenant_a`).
 *
 * Configured once by the command line from its environment; unset, it costs one comparison.
 */
let spec: { n?: number; match?: string } | undefined;
let writes = 0;

export function configureFailpoint(value: string | undefined): void {
  writes = 0;
  spec = undefined;
  if (!value) return;
  const m = /^(write|match):(.+)$/.exec(value);
  if (!m) throw new Error(`SYSTEMPROMPT_FAILPOINT: expected write:N or match:TEXT, got ${JSON.stringify(value)}`);
  spec = m[1] === 'write' ? { n: Number(m[2]) } : { match: m[2]! };
}

export function beforeWrite(description: string): void {
  if (!spec) return;
  writes++;
  if ((spec.n !== undefined && writes >= spec.n) || (spec.match !== undefined && description.includes(spec.match))) {
    process.stderr.write(`failpoint: SIGKILL before write ${writes}: ${description}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
