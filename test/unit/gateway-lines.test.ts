import { describe, expect, it } from 'vitest';
import { batchedLines } from '../../src/gateway/lines.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('gateway access-log lines', () => {
  it('writes the lines of one event-loop turn together, after it', async () => {
    const writes: string[] = [];
    const lines = batchedLines((c) => writes.push(c));
    lines.push('a\n');
    lines.push('b\n');
    expect(writes).toEqual([]);
    await turn();
    expect(writes).toEqual(['a\nb\n']);
    lines.push('c\n');
    await turn();
    expect(writes).toEqual(['a\nb\n', 'c\n']);
  });

  it('writes what is pending at once on flush, and without waiting past 64 KiB', async () => {
    const writes: string[] = [];
    const lines = batchedLines((c) => writes.push(c));
    lines.push('a\n');
    lines.flush();
    expect(writes).toEqual(['a\n']);
    await turn();
    expect(writes).toEqual(['a\n']);
    const big = `${'x'.repeat(70_000)}\n`;
    lines.push(big);
    expect(writes).toEqual(['a\n', big]);
    lines.flush();
    expect(writes).toHaveLength(2);
  });
});
