/**
 * A fast reader for the plain YAML that config files are nearly always written in: block mappings
 * and sequences, one scalar per line (plain, single- or double-quoted), flow sequences of scalars
 * on one line, `{}`, comments and blank lines. It returns what the `yaml` package's
 * `parseDocument(text, { uniqueKeys: true, strict: true }).toJS()` returns for such a file, and
 * `undefined` for everything else: anything outside that subset, and anything the package would
 * report as an error (a duplicate key, odd indentation). The caller then parses with the package,
 * which reports errors with their positions; positions of later (schema, rule) diagnostics come
 * from the package's tree, parsed again on demand for the files that have them.
 *
 * The `yaml` package reads about 1 MB/s; this reads some 20 times faster. What it accepts is kept
 * equal to the package by a differential test (test/unit/plain-yaml.test.ts).
 */

interface Line {
  /** Spaces before the content. */
  indent: number;
  /** The line from its first non-space character. */
  text: string;
}

/** Thrown inside the reader when the input leaves the subset; never escapes it. */
const NOT_PLAIN = Symbol('not plain YAML');
type Value = unknown;

/** The document as plain JSON, or undefined when it is not plain YAML (parse it with the `yaml` package). */
export function parsePlainYaml(text: string): Record<string, unknown> | undefined {
  // Tabs, carriage returns, control characters and the Unicode line and byte-order marks: not plain.
  if (/[\u0000-\u0009\u000b-\u001f\u007f\u0085\u2028\u2029\ufeff]/.test(text)) return undefined;
  const lines: Line[] = [];
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let indent = start;
    while (indent < end && text.charCodeAt(indent) === 32) indent++;
    if (indent < end && text.charCodeAt(indent) !== 35 /* # */) {
      const content = text.slice(indent, end);
      // Document markers and directives.
      if (indent === start && (content.startsWith('---') || content.startsWith('...') || content.startsWith('%'))) return undefined;
      lines.push({ indent: indent - start, text: content });
    }
    start = end + 1;
  }
  if (lines.length === 0 || lines[0]!.indent !== 0) return undefined;
  try {
    const r = new Reader(lines);
    const value = r.block(0);
    if (r.at < lines.length || !isMapping(value)) return undefined;
    return value;
  } catch (e) {
    if (e === NOT_PLAIN) return undefined;
    throw e;
  }
}

const isMapping = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Deeper than this, a document is left to the package (config files nest a few levels). */
export const MAX_PLAIN_DEPTH = 64;

class Reader {
  at = 0;
  private depth = 0;
  constructor(private readonly lines: Line[]) {}

  /** The mapping or sequence whose first line is the current one, at that line's indentation. */
  block(indent: number): Value {
    const line = this.lines[this.at]!;
    if (line.indent !== indent) throw NOT_PLAIN;
    return isSeqItem(line.text) ? this.sequence(indent) : this.mapping(indent, line.text);
  }

  /** Count the open collections; past MAX_PLAIN_DEPTH the reader declines. */
  private enter(): void {
    if (++this.depth > MAX_PLAIN_DEPTH) throw NOT_PLAIN;
  }

  /** A block mapping at `indent`; `first` is the text of its first entry (it may follow a `- `). */
  mapping(indent: number, first: string): Record<string, unknown> {
    this.enter();
    const out: Record<string, unknown> = {};
    let text = first;
    for (;;) {
      const { key, rest } = entry(text);
      if (Object.prototype.hasOwnProperty.call(out, key)) throw NOT_PLAIN; // the package reports it
      this.at++;
      out[key] = rest === '' ? this.nested(indent, true) : this.inline(rest, indent);
      const next = this.lines[this.at];
      if (!next || next.indent < indent) {
        this.depth--;
        return out;
      }
      if (next.indent > indent) throw NOT_PLAIN;
      text = next.text;
    }
  }

  /** A block sequence at `indent`. */
  sequence(indent: number): Value[] {
    this.enter();
    const out: Value[] = [];
    for (;;) {
      const line = this.lines[this.at]!;
      let i = 1;
      while (line.text.charCodeAt(i) === 32) i++;
      const rest = line.text.slice(i);
      if (rest === '' || rest.startsWith('#')) {
        this.at++;
        out.push(this.nested(indent, false));
      } else if (isSeqItem(rest)) {
        throw NOT_PLAIN; // a sequence in a sequence on one line
      } else if (isEntry(rest)) {
        // `- key: value`: a mapping whose entries line up with its first key.
        out.push(this.mapping(indent + i, rest));
      } else {
        this.at++;
        out.push(this.inline(rest, indent));
      }
      const next = this.lines[this.at];
      // A line at this indentation that is no item ends a sequence under a key at the same indentation.
      if (!next || next.indent < indent || (next.indent === indent && !isSeqItem(next.text))) {
        this.depth--;
        return out;
      }
      if (next.indent > indent) throw NOT_PLAIN;
    }
  }

  /**
   * The value of a key or a `-` with nothing after it on its line: a block below it (deeper, or a
   * sequence at the key's own indentation), or null.
   */
  nested(indent: number, mayBeCompactSeq: boolean): Value {
    const next = this.lines[this.at];
    if (next && next.indent > indent) return this.block(next.indent);
    if (next && next.indent === indent && mayBeCompactSeq && isSeqItem(next.text)) return this.sequence(indent);
    return null;
  }

  /** A value on the line of its key or `-`; nothing may continue it on a deeper line. */
  inline(text: string, indent: number): Value {
    const v = scalarOrFlow(text);
    const next = this.lines[this.at];
    if (next && next.indent > indent) throw NOT_PLAIN; // a multi-line scalar, or an error
    return v;
  }
}

const isSeqItem = (t: string): boolean => t.charCodeAt(0) === 45 /* - */ && (t.length === 1 || t.charCodeAt(1) === 32);

const PLAIN_KEY = /^[A-Za-z0-9_$][A-Za-z0-9_$.\/-]*(?=:(?: |$))/;

function isEntry(t: string): boolean {
  if (PLAIN_KEY.test(t)) return true;
  const c = t.charCodeAt(0);
  if (c !== 34 && c !== 39) return false;
  const q = quoted(t, 0);
  return q !== undefined && t.charCodeAt(q.end) === 58 && (q.end + 1 === t.length || t.charCodeAt(q.end + 1) === 32);
}

/** `key: rest` → the key and what follows `: ` (trimmed, '' for nothing or a comment). */
function entry(t: string): { key: string; rest: string } {
  let key: string;
  let after: number;
  const m = PLAIN_KEY.exec(t);
  if (m) {
    key = m[0];
    if (key.length > 1000) throw NOT_PLAIN; // the package limits implicit keys to 1024 characters
    // A key that is not a string (null, true, 12, 1e3, .inf) or that JSON objects treat apart.
    if (resolvePlain(key) !== key || key === '__proto__') throw NOT_PLAIN;
    after = key.length + 1;
  } else {
    const c = t.charCodeAt(0);
    const q = c === 34 || c === 39 ? quoted(t, 0) : undefined;
    if (!q || t.charCodeAt(q.end) !== 58 || (q.end + 1 < t.length && t.charCodeAt(q.end + 1) !== 32)) throw NOT_PLAIN;
    if (q.value === '__proto__' || q.end > 1000) throw NOT_PLAIN;
    key = q.value;
    after = q.end + 1;
  }
  const rest = t.slice(after).trim();
  return { key, rest: rest.startsWith('#') ? '' : rest };
}

/** A scalar or a one-line flow collection filling the rest of a line (a comment may follow). */
function scalarOrFlow(t: string): Value {
  const c = t.charCodeAt(0);
  if (c === 34 || c === 39) {
    const q = quoted(t, 0);
    if (!q) throw NOT_PLAIN;
    endOfLine(t, q.end);
    return q.value;
  }
  if (c === 91 /* [ */) return flowSequence(t);
  if (c === 123 /* { */) {
    let i = 1;
    while (t.charCodeAt(i) === 32) i++;
    if (t.charCodeAt(i) !== 125 /* } */) throw NOT_PLAIN;
    endOfLine(t, i + 1);
    return {};
  }
  // Indicators that start something else: anchors, aliases, tags, block scalars, explicit keys...
  if ('-?:,]}#&*!|>%@`'.includes(t[0]!)) throw NOT_PLAIN;
  let end = t.indexOf(' #');
  if (end < 0) end = t.length;
  const s = t.slice(0, end).trimEnd();
  // `a: b` inside a value is a nested mapping (an error here); a trailing `:` likewise.
  if (s.includes(': ') || s.endsWith(':')) throw NOT_PLAIN;
  return resolvePlain(s);
}

/** Only spaces and a comment may follow position `i`. */
function endOfLine(t: string, i: number): void {
  while (t.charCodeAt(i) === 32) i++;
  if (i < t.length && (t.charCodeAt(i) !== 35 || t.charCodeAt(i - 1) !== 32)) throw NOT_PLAIN;
}

/** `[a, "b", 'c']` on one line: plain or quoted scalars, no empty item, no nesting. */
function flowSequence(t: string): Value[] {
  const out: Value[] = [];
  let i = 1;
  const spaces = (): void => {
    while (t.charCodeAt(i) === 32) i++;
  };
  spaces();
  if (t.charCodeAt(i) === 93 /* ] */) {
    endOfLine(t, i + 1);
    return out;
  }
  for (;;) {
    spaces();
    const c = t.charCodeAt(i);
    if (c === 34 || c === 39) {
      const q = quoted(t, i);
      if (!q) throw NOT_PLAIN;
      out.push(q.value);
      i = q.end;
    } else {
      const start = i;
      while (i < t.length && !',[]{}#:"\''.includes(t[i]!)) i++;
      const s = t.slice(start, i).trimEnd();
      if (s === '' || '-?!&*|>%@`'.includes(s[0]!)) throw NOT_PLAIN;
      out.push(resolvePlain(s));
    }
    spaces();
    const d = t.charCodeAt(i);
    if (d === 93) {
      endOfLine(t, i + 1);
      return out;
    }
    if (d !== 44 /* , */) throw NOT_PLAIN;
    i++;
  }
}

const ESCAPES: Record<string, string> = {
  '0': '\0', a: '\x07', b: '\b', t: '\t', n: '\n', v: '\v', f: '\f', r: '\r', e: '\x1b', ' ': ' ', '"': '"', '/': '/', '\\': '\\',
  N: '\u0085', _: '\u00a0', L: '\u2028', P: '\u2029',
};
const HEX_ESCAPE: Record<string, number> = { x: 2, u: 4, U: 8 };

/** A quoted scalar starting at `i` and closing on the same line: its value and the index after it. */
function quoted(t: string, i: number): { value: string; end: number } | undefined {
  const q = t[i];
  if (q === "'") {
    let value = '';
    for (let j = i + 1; j < t.length; ) {
      const k = t.indexOf("'", j);
      if (k < 0) return undefined;
      value += t.slice(j, k);
      if (t[k + 1] === "'") {
        value += "'";
        j = k + 2;
      } else return { value, end: k + 1 };
    }
    return undefined;
  }
  let value = '';
  for (let j = i + 1; j < t.length; ) {
    const c = t[j]!;
    if (c === '"') return { value, end: j + 1 };
    if (c !== '\\') {
      value += c;
      j++;
      continue;
    }
    const e = t[j + 1];
    if (e === undefined) return undefined; // an escaped line break: several lines
    const simple = ESCAPES[e];
    if (simple !== undefined) {
      value += simple;
      j += 2;
      continue;
    }
    const n = HEX_ESCAPE[e];
    if (n === undefined) return undefined;
    const hex = t.slice(j + 2, j + 2 + n);
    if (hex.length !== n || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
    const code = parseInt(hex, 16);
    if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return undefined;
    value += String.fromCodePoint(code);
    j += 2 + n;
  }
  return undefined;
}

/**
 * A plain scalar as YAML 1.2's core schema resolves it (the `yaml` package's default): null,
 * booleans, decimal integers; any other number form is left to the package.
 */
function resolvePlain(s: string): Value {
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null;
  if (s === 'true' || s === 'True' || s === 'TRUE') return true;
  if (s === 'false' || s === 'False' || s === 'FALSE') return false;
  const c = s.charCodeAt(0);
  // Digits, signs and dots may start a number (int, octal, hex, float, .inf, .nan).
  if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46) {
    if (/^[-+]?[0-9]+$/.test(s)) {
      if (s.replace(/^[-+]?0*/, '').length > 15) throw NOT_PLAIN; // past the exact integers
      return parseInt(s, 10);
    }
    if (/^(?:0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$/.test(s)) throw NOT_PLAIN;
  }
  return s;
}
