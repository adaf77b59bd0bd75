import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

/**
 * Reading a JSON file too large to be one string (V8 strings end at 2^29 - 24 characters, about
 * 512 MB; a saved plan of 10,000 tenants is past that). The file is read a block at a time; the
 * outer objects and arrays (down to `depth`: a plan's members and the items of its lists) are
 * put together here, and every value below them is cut out of the text and given to JSON.parse,
 * which does nearly all the work. Any JSON layout is read, not only the one json-stream.ts writes;
 * the result equals JSON.parse of the whole file.
 */
export interface ReadJsonOptions {
  /** Containers put together here, from the top: 2 for a plan (its members, their items). */
  depth?: number;
  /** Bytes read at a time. */
  chunkBytes?: number;
  /** The largest single value (below `depth`) accepted, in characters. */
  maxValueChars?: number;
}

export class JsonReadError extends Error {}

export async function readJsonFile(file: string, opts: ReadJsonOptions = {}): Promise<unknown> {
  const reader = new JsonReader(opts.depth ?? 2, opts.maxValueChars ?? 2 ** 28);
  const fh = await open(file, 'r');
  try {
    const decoder = new StringDecoder('utf8');
    const buf = Buffer.alloc(opts.chunkBytes ?? 4 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      reader.feed(decoder.write(buf.subarray(0, bytesRead)));
    }
    reader.feed(decoder.end());
  } finally {
    await fh.close();
  }
  return reader.end();
}

/** One open container: what it holds so far, and what comes next in it. */
interface Frame {
  value: Record<string, unknown> | unknown[];
  /** The key whose value comes next (objects). */
  key?: string;
  /** firstKey: a key or the end; key; colon; value; comma: a comma or the end; first: a value or the end (lists). */
  expect: 'firstKey' | 'key' | 'colon' | 'value' | 'comma' | 'first';
}

/** A value being cut out of the text, which may go on in the next block. */
interface Pending {
  /** Where it starts in `text`. */
  start: number;
  /** Scanned up to here. */
  at: number;
  nesting: number;
  inString: boolean;
  escaped: boolean;
  kind: 'container' | 'string' | 'scalar';
  /** An object's key, not a value. */
  isKey: boolean;
}

export class JsonReader {
  private text = '';
  private pos = 0;
  private offset = 0; // characters consumed before `text`
  private readonly stack: Frame[] = [];
  private root: { done: boolean; value?: unknown } = { done: false };
  private pending: Pending | undefined;

  constructor(
    private readonly depth: number,
    private readonly maxValueChars: number,
  ) {}

  feed(chunk: string): void {
    if (chunk === '') return;
    // Keep only what is not consumed yet (from a pending value's start, where `pos` stays).
    const keep = this.pos;
    this.offset += keep;
    if (this.pending) {
      this.pending.at -= keep;
      this.pending.start = 0;
    }
    this.text = this.text.slice(keep) + chunk;
    this.pos -= keep;
    this.run(false);
  }

  end(): unknown {
    this.run(true);
    this.skipSpace();
    if (!this.root.done || this.pos < this.text.length) throw this.fail(this.root.done ? 'unexpected text after the end' : 'unexpected end of file');
    return this.root.value;
  }

  private fail(what: string): JsonReadError {
    return new JsonReadError(`JSON: ${what} at character ${this.offset + this.pos}`);
  }

  private skipSpace(): void {
    const t = this.text;
    let p = this.pos;
    for (let c = t.charCodeAt(p); c === 32 || c === 10 || c === 13 || c === 9; c = t.charCodeAt(++p));
    this.pos = p;
  }

  /** Advance as far as the text allows; `final` when no more text comes. */
  private run(final: boolean): void {
    const t = this.text;
    for (;;) {
      if (this.pending) {
        const isKey = this.pending.isKey;
        const v = this.finishPending(final);
        if (v === NEED_MORE) return;
        if (isKey) {
          const top = this.stack[this.stack.length - 1]!;
          top.key = v as string;
          top.expect = 'colon';
        } else this.put(v);
        continue;
      }
      if (this.root.done) return;
      this.skipSpace();
      if (this.pos >= t.length) return;
      const c = t[this.pos]!;
      const top = this.stack[this.stack.length - 1];
      if (!top) {
        this.startValue(c);
        continue;
      }
      switch (top.expect) {
        case 'firstKey':
        case 'key':
          if (c === '}' && top.expect === 'firstKey') {
            this.pos++;
            this.close();
          } else if (c === '"') this.pending = { start: this.pos, at: this.pos + 1, nesting: 0, inString: true, escaped: false, kind: 'string', isKey: true };
          else throw this.fail(`expected a key, found ${JSON.stringify(c)}`);
          break;
        case 'first':
          if (c === ']') {
            this.pos++;
            this.close();
          } else this.startValue(c);
          break;
        case 'colon':
          if (c !== ':') throw this.fail(`expected ":", found ${JSON.stringify(c)}`);
          this.pos++;
          top.expect = 'value';
          break;
        case 'value':
          this.startValue(c);
          break;
        case 'comma':
          this.pos++;
          if (c === ',') top.expect = Array.isArray(top.value) ? 'value' : 'key';
          else if (c === (Array.isArray(top.value) ? ']' : '}')) this.close();
          else throw this.fail(`expected "," or the end of ${Array.isArray(top.value) ? 'a list' : 'an object'}, found ${JSON.stringify(c)}`);
          break;
      }
    }
  }

  /** A value starts at `c`: a container opened here, or one cut out whole. */
  private startValue(c: string): void {
    if ((c === '{' || c === '[') && this.stack.length < this.depth) {
      this.pos++;
      this.stack.push({ value: c === '{' ? {} : [], expect: c === '{' ? 'firstKey' : 'first' });
      return;
    }
    const kind = c === '{' || c === '[' ? 'container' : c === '"' ? 'string' : 'scalar';
    this.pending = { start: this.pos, at: this.pos + 1, nesting: kind === 'container' ? 1 : 0, inString: kind === 'string', escaped: false, kind, isKey: false };
  }

  /** Scan the pending value to its end; its parsed value, or NEED_MORE. */
  private finishPending(final: boolean): unknown {
    const p = this.pending!;
    const t = this.text;
    let i = p.at;
    let done = false;
    if (p.kind === 'scalar') {
      for (; i < t.length; i++) {
        const c = t.charCodeAt(i);
        if (c === 44 || c === 93 || c === 125 || c === 32 || c === 10 || c === 13 || c === 9) break;
      }
      done = i < t.length || final;
    } else {
      let { nesting, inString, escaped } = p;
      for (; i < t.length; i++) {
        const c = t.charCodeAt(i);
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 92 /* \ */) escaped = true;
          else if (c === 34 /* " */) {
            inString = false;
            if (p.kind === 'string') {
              i++;
              done = true;
              break;
            }
          }
        } else if (c === 34) inString = true;
        else if (c === 123 || c === 91) nesting++;
        else if (c === 125 || c === 93) {
          if (--nesting === 0) {
            i++;
            done = true;
            break;
          }
        }
      }
      Object.assign(p, { nesting, inString, escaped });
    }
    p.at = i;
    if (i - p.start > this.maxValueChars) throw this.fail(`a value longer than ${this.maxValueChars} characters`);
    if (!done) {
      if (final) throw this.fail('unexpected end of file');
      return NEED_MORE;
    }
    const raw = t.slice(p.start, i);
    this.pending = undefined;
    this.pos = i;
    try {
      return JSON.parse(raw);
    } catch (e) {
      this.pos = p.start;
      throw this.fail(e instanceof Error ? e.message : String(e));
    }
  }

  /** A value is complete: into its container, or it is the document. */
  private put(v: unknown): void {
    const top = this.stack[this.stack.length - 1];
    if (!top) {
      this.root = { done: true, value: v };
      return;
    }
    if (Array.isArray(top.value)) top.value.push(v);
    else if (top.key === '__proto__') Object.defineProperty(top.value, '__proto__', { value: v, enumerable: true, writable: true, configurable: true });
    else top.value[top.key!] = v;
    top.expect = 'comma';
  }

  private close(): void {
    const done = this.stack.pop()!;
    this.put(done.value);
  }
}

const NEED_MORE = Symbol('need more text');
