import { LineCounter, isAlias, isCollection, isMap, isPair, isScalar, isSeq, parseDocument, visit, type Alias, type Document } from 'yaml';
import type { Diagnostic, DiagnosticCode } from './diagnostics.js';
import { parsePlainYaml } from './plain-yaml.js';

/** One YAML file of the repository, parsed, with what is needed to point back into it. */
export interface SourceFile {
  /** Repository-relative path with forward slashes. */
  readonly file: string;
  readonly text: string;
  /** The plain JSON value of the document (always a mapping once parsed successfully). */
  readonly value: Record<string, unknown>;
}

/**
 * The syntax tree with positions, parsed again on demand: only files with a problem need it, and
 * not keeping a tree per file halves the memory and garbage-collection work of a large repository.
 */
const trees = new WeakMap<SourceFile, { doc: Document.Parsed; lines: LineCounter }>();
function treeOf(source: SourceFile): { doc: Document.Parsed; lines: LineCounter } {
  let t = trees.get(source);
  if (!t) {
    const lines = new LineCounter();
    t = { doc: parseDocument(source.text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true }), lines };
    trees.set(source, t);
  }
  return t;
}

/** 1-based line and column of a character offset. */
export function positionAt(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

export type PathSegment = string | number;

/**
 * Files above this size are refused before parsing. A config file is kilobytes; 4 MiB holds a tenant
 * of about 80,000 users and parses in about 6 s with the `yaml` package, which reads about 0.6 MB/s
 * (plain YAML, read by plain-yaml.ts, in a fraction of a second).
 */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;
/** Alias expansions allowed per document; YAML "billion laughs" stop here. */
export const MAX_ALIAS_COUNT = 100;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface ParsedSource {
  source?: SourceFile;
  /** The decoded text, when the bytes were UTF-8 (also when the YAML in it is broken). */
  text?: string;
  diagnostics: Diagnostic[];
}

/**
 * Parse one file. Never throws: every problem becomes a diagnostic, and every diagnostic has a line
 * and a column (1:1 for a problem of the file as a whole).
 */
export function parseSource(file: string, content: Uint8Array | string): ParsedSource {
  let text: string | undefined;
  const fileDiag = (code: DiagnosticCode, message: string, hint?: string, line = 1, col = 1): ParsedSource => ({
    ...(text !== undefined ? { text } : {}),
    diagnostics: [{ code, severity: 'error', file, line, col, path: '', message, ...(hint ? { hint } : {}) }],
  });

  if (typeof content === 'string') {
    text = content;
  } else {
    if (content.byteLength > MAX_FILE_BYTES) {
      return fileDiag('SP005', `file is ${content.byteLength} bytes, over the ${MAX_FILE_BYTES}-byte limit for a config file`, 'split it, or check that this is the file you meant');
    }
    if (content.includes(0)) {
      return fileDiag('SP005', 'file contains NUL bytes: this is binary data, not YAML text', 'remove the file or replace it with a YAML document');
    }
    try {
      text = utf8.decode(content);
    } catch {
      const bad = firstInvalidUtf8(content);
      const where = bad === undefined ? '' : ` (byte 0x${content[bad.offset]!.toString(16).toUpperCase().padStart(2, '0')} at line ${bad.line}, column ${bad.col})`;
      return fileDiag('SP005', `file is not valid UTF-8 text${where}`, 'save the file as UTF-8 (it may be in Latin-1 or Windows-1252)');
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  // Most files are plain YAML with no error: read those fast. The rest (and every error, with its
  // position) goes through the `yaml` package.
  const plain = parsePlainYaml(text);
  if (plain) return { source: { file, text, value: plain }, diagnostics: [] };

  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, strict: true });
  } catch (e) {
    return fileDiag('SP001', `YAML could not be parsed: ${e instanceof Error ? e.message : String(e)}`);
  }

  if (doc.errors.length > 0) {
    const diagnostics = doc.errors.map((err): Diagnostic => {
      const pos = positionAt(text!, err.pos[0]);
      const dup = err.code === 'DUPLICATE_KEY';
      const multi = err.code === 'MULTIPLE_DOCS';
      const message = firstLine(err.message);
      return {
        code: dup ? 'SP002' : multi ? 'SP005' : 'SP001',
        severity: 'error',
        file,
        line: pos.line,
        col: pos.col,
        path: '',
        message: dup ? 'duplicate key: a mapping may hold each key once' : multi ? 'file holds several YAML documents; one is expected' : `YAML syntax: ${message}`,
        ...(dup
          ? { hint: 'remove or merge the repeated key' }
          : multi
            ? { hint: 'split the documents into one file each' }
            : yamlHint(err.code) ? { hint: yamlHint(err.code)! } : {}),
      };
    });
    return { diagnostics, text };
  }

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // Point at the alias whose expansion crossed the limit, not at the file.
    const alias = aliasOverLimit(doc, MAX_ALIAS_COUNT);
    if (alias || /excessive alias/i.test(msg)) {
      const pos = positionAt(text, alias?.range?.[0] ?? doc.contents?.range?.[0] ?? 0);
      const which = alias ? ` at alias \`*${alias.source}\`` : '';
      return fileDiag('SP003', `too many alias references (more than ${MAX_ALIAS_COUNT})${which}: refusing to expand a possible alias bomb`, 'write the values out, or use fewer anchors and aliases', pos.line, pos.col);
    }
    const unresolved = unresolvedAlias(doc);
    if (unresolved) {
      const pos = positionAt(text, unresolved.range?.[0] ?? 0);
      return fileDiag('SP001', `YAML syntax: alias \`*${unresolved.source}\` refers to no anchor \`&${unresolved.source}\` before it`, yamlHint('BAD_ALIAS'), pos.line, pos.col);
    }
    const pos = positionAt(text, doc.contents?.range?.[0] ?? 0);
    return fileDiag('SP001', `YAML could not be read: ${firstLine(msg)}`, undefined, pos.line, pos.col);
  }

  if (value === null || value === undefined) {
    return fileDiag('SP004', 'file is empty: a YAML mapping is expected', 'add the file\'s fields, or delete the file', 1, 1);
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    const pos = positionAt(text, doc.contents?.range?.[0] ?? 0);
    const what = Array.isArray(value) ? 'a list' : `a ${typeof value}`;
    return fileDiag('SP004', `document is ${what}; a mapping (key: value) is expected`, undefined, pos.line, pos.col);
  }
  return { source: { file, text, value: value as Record<string, unknown> }, diagnostics: [] };
}

/**
 * The alias at which converting `doc` to JSON goes over `max` alias expansions. It repeats the count
 * the `yaml` package keeps in `toJS({ maxAliasCount })` (per anchor: references so far times the
 * largest expansion nested in the anchored node), in the same document order, so that the
 * diagnostic can name the alias that crossed the limit; the package's error does not.
 */
export function aliasOverLimit(doc: Document, max: number): Alias | undefined {
  const counts = new Map<unknown, { count: number; aliasCount: number }>();
  const latestAnchor = new Map<string, unknown>();
  const targets = new Map<Alias, unknown>();
  const aliasCount = (node: unknown): number => {
    if (isAlias(node)) {
      const d = counts.get(targets.get(node));
      return d ? d.count * d.aliasCount : 0;
    }
    if (isCollection(node)) return node.items.reduce<number>((m, item) => Math.max(m, aliasCount(item)), 0);
    if (isPair(node)) return Math.max(aliasCount(node.key), aliasCount(node.value));
    return 1;
  };
  let hit: Alias | undefined;
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) {
        const found = latestAnchor.get(node.source);
        const d = counts.get(found);
        if (!d) return undefined;
        targets.set(node, found);
        d.count += 1;
        if (d.aliasCount === 0) d.aliasCount = aliasCount(found);
        if (d.count * d.aliasCount > max) {
          hit = node;
          return visit.BREAK;
        }
        return undefined;
      }
      const anchor = (node as { anchor?: string }).anchor;
      if (anchor) {
        latestAnchor.set(anchor, node);
        counts.set(node, { count: 1, aliasCount: 0 });
      }
      return undefined;
    },
  });
  return hit;
}

/** The first alias with no anchor of its name before it (the `yaml` package cannot resolve it). */
function unresolvedAlias(doc: Document): Alias | undefined {
  const anchors = new Set<string>();
  let hit: Alias | undefined;
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) {
        if (anchors.has(node.source)) return undefined;
        hit = node;
        return visit.BREAK;
      }
      const anchor = (node as { anchor?: string }).anchor;
      if (anchor) anchors.add(anchor);
      return undefined;
    },
  });
  return hit;
}

/** Offset, line and column (in characters) of the first byte that breaks UTF-8, if any. */
export function firstInvalidUtf8(bytes: Uint8Array): { offset: number; line: number; col: number } | undefined {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      if (b === 0x0a) {
        line++;
        lineStart = i + 1;
      }
      i++;
      continue;
    }
    // Unicode 15, table 3-7: the well-formed UTF-8 byte sequences.
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else n = -1;
    let ok = n > 0;
    for (let k = 1; ok && k <= n; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) ok = false;
    }
    if (!ok) {
      const col = utf8.decode(bytes.subarray(lineStart, i)).length + 1;
      return { offset: i, line, col };
    }
    i += n + 1;
  }
  return undefined;
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i < 0 ? s : s.slice(0, i)).replace(/ at line \d+, column \d+:?$/, '').trim();
}

function yamlHint(code: string): string | undefined {
  switch (code) {
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation: nested keys use spaces, consistently';
    case 'TAB_AS_INDENT':
      return 'YAML indentation uses spaces, not tabs';
    case 'BAD_ALIAS':
      return 'an alias (*name) must refer to an anchor (&name) defined earlier in the file';
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      return 'a key must fit on one line; is a colon or quote missing on the line before?';
    default:
      return undefined;
  }
}

/**
 * Line and column of the node at `path`. With `at: 'key'`, the position of the mapping key
 * (used for unknown fields). Falls back to the deepest existing ancestor.
 */
export function locate(source: SourceFile, path: readonly PathSegment[], at: 'key' | 'value' = 'value'): { line: number; col: number } {
  const { doc, lines } = treeOf(source);
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
      if (!pair) break;
      if (last && at === 'key') {
        offset = rangeStart(pair.key) ?? offset;
        break;
      }
      node = pair.value;
      offset = rangeStart(node) ?? rangeStart(pair.key) ?? offset;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) break;
      node = item;
      offset = rangeStart(node) ?? offset;
    } else {
      break;
    }
  }
  const pos = lines.linePos(offset);
  return { line: pos.line, col: pos.col };
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

function rangeStart(node: unknown): number | undefined {
  if (node && typeof node === 'object' && 'range' in node) {
    const r = (node as { range?: [number, number, number] | null }).range;
    return r ? r[0] : undefined;
  }
  return undefined;
}

/** `users[2].scopes[0]`, `agents.assistant.card`, `scopes["a b"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** ajv's `/users/2/scopes/0` → ['users', 2, 'scopes', '0'→0 when the parent is a list]. */
export function pointerToPath(pointer: string, root: unknown): PathSegment[] {
  if (!pointer) return [];
  const out: PathSegment[] = [];
  let cur: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const n = Number(seg);
      out.push(n);
      cur = cur[n];
    } else {
      out.push(seg);
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}
