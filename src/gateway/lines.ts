/**
 * Lines written together once per event-loop turn instead of one write each: under load many
 * requests end in the same turn, and each write to stdout is a system call (synchronous for files
 * and pipes on Linux). Nothing waits longer than the rest of the turn; flush() writes what is pending
 * at once (at shutdown).
 */
export interface BatchedLines {
  /** Queues `line` (with its newline) for the next write. */
  push(line: string): void;
  /** Writes what is queued now. */
  flush(): void;
}

export function batchedLines(write: (chunk: string) => void): BatchedLines {
  let pending = '';
  let scheduled: NodeJS.Immediate | undefined;
  const flush = (): void => {
    if (scheduled) clearImmediate(scheduled);
    scheduled = undefined;
    if (pending === '') return;
    const chunk = pending;
    pending = '';
    write(chunk);
  };
  return {
    push(line) {
      pending += line;
      // Past 64 KiB, write now rather than hold more.
      if (pending.length >= 65_536) flush();
      else scheduled ??= setImmediate(flush);
    },
    flush,
  };
}
