import { open } from 'node:fs/promises';

/** The last `lines` lines of a log file (at most 64 KiB read), for error messages. */
export async function tailFile(file: string, lines = 15): Promise<string> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, 65536);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      return buf.toString('utf8').split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/** A hint pointing at a log file, with its last lines. */
export async function logHint(file: string): Promise<string> {
  const tail = await tailFile(file);
  return tail ? `see ${file}; its last lines:\n${tail}` : `see ${file}`;
}
