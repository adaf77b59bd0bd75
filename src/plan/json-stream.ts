import { open } from 'node:fs/promises';

/**
 * `JSON.stringify(value, null, 2)` in pieces: the same bytes, without ever holding them in one
 * string (a plan of 10,000 tenants is past V8's string limit). Objects and arrays are walked down
 * to `depth` levels; below that each value is stringified whole (a change, a card: small).
 * Values are plain JSON (no toJSON, no cycles); undefined, functions and symbols are left out of
 * objects and written as null in arrays, as JSON.stringify does.
 */
export function* jsonChunks(value: unknown, depth = 2, indent = ''): Generator<string> {
  if (depth <= 0 || value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    const s = JSON.stringify(value, null, 2) ?? 'null';
    yield indent && s.includes('\n') ? s.replace(/\n/g, `\n${indent}`) : s;
    return;
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) {
      yield '[]';
      return;
    }
    yield '[\n';
    if (depth <= 1) {
      // The items are written whole: JSON.stringify a batch of them at once, at their indentation.
      for (let i = 0; i < value.length; i += BATCH) {
        if (i > 0) yield ',\n';
        yield itemsAt(value, i, Math.min(value.length, i + BATCH), inner.length / 2);
      }
      yield `\n${indent}]`;
      return;
    }
    for (let i = 0; i < value.length; i++) {
      yield inner;
      const v: unknown = value[i];
      if (omitted(v)) yield 'null';
      else yield* jsonChunks(v, depth - 1, inner);
      yield i < value.length - 1 ? ',\n' : '\n';
    }
    yield `${indent}]`;
    return;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => !omitted(obj[k]));
  if (keys.length === 0) {
    yield '{}';
    return;
  }
  yield '{\n';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    yield `${inner}${JSON.stringify(k)}: `;
    yield* jsonChunks(obj[k], depth - 1, inner);
    yield i < keys.length - 1 ? ',\n' : '\n';
  }
  yield `${indent}}`;
}

/**
 * Items of an array stringified per batch: enough to amortise the call, and small enough that the
 * strings (and the blocks of BLOCK characters written) stay out of V8's large-object space, which only
 * a full garbage collection frees: with a plan of 10,000 tenants in the heap, that is costly.
 */
const BATCH = 32;
const BLOCK = 1 << 16;

/**
 * `value[from..to)` as JSON.stringify(…, null, 2) writes them as the items of an array nested
 * `level` deep: each on its own line(s), indented by 2 × level spaces, separated by `,\n`. Wrapping
 * the batch in `level` arrays makes JSON.stringify indent it so; the wrappers' lines are cut off.
 */
function itemsAt(value: readonly unknown[], from: number, to: number, level: number): string {
  let wrapped: unknown = value.slice(from, to);
  for (let k = 1; k < level; k++) wrapped = [wrapped];
  const s = JSON.stringify(wrapped, null, 2);
  // Each wrapper opens with `[\n` plus its indentation and closes likewise: level × (level + 1) characters.
  const cut = level * (level + 1);
  return s.slice(cut, s.length - cut);
}

const omitted = (v: unknown): boolean => v === undefined || typeof v === 'function' || typeof v === 'symbol';

/** The pieces of jsonChunks (and a final newline) gathered into blocks of about `size` characters. */
export function* jsonBlocks(value: unknown, size = BLOCK, depth = 2): Generator<string> {
  let buf = '';
  for (const c of jsonChunks(value, depth)) {
    buf += c;
    if (buf.length >= size) {
      yield buf;
      buf = '';
    }
  }
  yield `${buf}\n`;
}

/**
 * Write `JSON.stringify(value, null, 2)` and a newline to `out`, a block at a time. `depth`: how
 * far down the large arrays are (a plan's changes: 2; a plan inside another object: 3).
 */
export function writeJson(value: unknown, out: (text: string) => void, depth = 2): void {
  for (const b of jsonBlocks(value, BLOCK, depth)) out(b);
}

/** The same into a file (created with `mode`), a block at a time. */
export async function writeJsonFile(file: string, value: unknown, mode = 0o600): Promise<void> {
  const fh = await open(file, 'w', mode);
  try {
    for (const b of jsonBlocks(value, BLOCK, 2)) {
      const buf = Buffer.from(b, 'utf8');
      for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
}
