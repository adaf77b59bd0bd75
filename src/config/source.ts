import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { Diagnostic, DiagnosticCode } from './diagnostics.js';

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
 * of about 80,000 users and parses in about 6 s with the `yaml` package, which reads about 0.6 MB/s.
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

/** Parse one file. Never throws: every problem becomes a diagnostic. */
export function parseSource(file: string, content: Uint8Array | string): ParsedSource {
  let text: string | undefined;
  const fileDiag = (code: DiagnosticCode, message: string, hint?: string, line = 0, col = 0): ParsedSource => ({
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
      return fileDiag('SP005', 'file is not valid UTF-8 text', 'save the file as UTF-8');
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

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
    if (/alias/i.test(msg)) {
      return fileDiag('SP003', `too many alias references (more than ${MAX_ALIAS_COUNT}): refusing to expand a possible alias bomb`, 'write the values out, or use fewer anchors and aliases');
    }
    return fileDiag('SP001', `YAML could not be read: ${firstLine(msg)}`);
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
