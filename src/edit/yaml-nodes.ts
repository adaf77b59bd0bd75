import {
  isMap,
  isScalar,
  isSeq,
  parse,
  parseDocument,
  type CST,
  type Document,
  type Node,
  type Pair,
  type Scalar,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { columnOf, endOfLineAfter, lineStart, spaces } from './text.js';

/**
 * Node-level helpers for editing YAML text in place: every function returns the offsets to splice,
 * computed from the node ranges of the `yaml` package, so that nothing outside the node changes.
 */

/** The file cannot be edited safely in place (broken YAML, or a form these edits do not handle). */
export class YamlEditError extends Error {}

export function parseForEdit(text: string): Document.Parsed {
  const doc = parseDocument(text, { keepSourceTokens: true, uniqueKeys: true, strict: true, prettyErrors: false });
  if (doc.errors.length > 0) throw new YamlEditError(`the file is not valid YAML (${doc.errors[0]!.message.split('\n')[0]})`);
  return doc;
}

export function rootMap(doc: Document.Parsed): YAMLMap<unknown, unknown> {
  if (!isMap(doc.contents)) throw new YamlEditError('the document is not a mapping');
  return doc.contents;
}

export type Range = [number, number, number];

export function rangeOf(node: unknown): Range {
  const r = node && typeof node === 'object' && 'range' in node ? (node as { range?: Range | null }).range : undefined;
  if (!r) throw new YamlEditError('a node has no source position');
  return r;
}

export function pairOf(map: YAMLMap<unknown, unknown>, key: string): Pair<unknown, unknown> | undefined {
  return map.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
}

/** The offset just after the `:` of a block or flow pair. */
export function colonAfterKey(text: string, pair: Pair<unknown, unknown>): number {
  const at = text.indexOf(':', rangeOf(pair.key)[1]);
  if (at < 0) throw new YamlEditError('cannot find the ":" of a key');
  return at + 1;
}

/** Offset of the `-` of item `i` of a block sequence. */
export function dashOf(seq: YAMLSeq<unknown>, i: number): number {
  const tok = seq.srcToken as CST.BlockSequence | undefined;
  if (!tok || tok.type !== 'block-seq') throw new YamlEditError('a block sequence has no source tokens');
  const items = tok.items.filter((it) => it.start.some((t) => t.type === 'seq-item-ind'));
  const ind = items[i]?.start.find((t) => t.type === 'seq-item-ind');
  if (!ind) throw new YamlEditError(`cannot find item ${i} of a list`);
  return ind.offset;
}

/** The whole lines of block-sequence item `i`: from the start of its `-` line to the end of its last line. */
export function blockItemLines(text: string, seq: YAMLSeq<unknown>, i: number): { start: number; end: number } {
  const dash = dashOf(seq, i);
  const start = lineStart(text, dash);
  if (text.slice(start, dash).trim() !== '') throw new YamlEditError('a list item shares its line with other content');
  return { start, end: endOfLineAfter(text, rangeOf(seq.items[i])[2]) };
}

/** Where new lines go after the last item of a block sequence or the last pair of a block map. */
export function blockEnd(text: string, node: YAMLSeq<unknown> | YAMLMap<unknown, unknown>): number {
  const last = node.items[node.items.length - 1];
  if (last === undefined) throw new YamlEditError('an empty block collection');
  const endNode: unknown = isSeq(node) ? last : ((last as Pair<unknown, unknown>).value ?? (last as Pair<unknown, unknown>).key);
  return endOfLineAfter(text, rangeOf(endNode)[2]);
}

/** Column of the keys of a block map. */
export function keyColumn(text: string, map: YAMLMap<unknown, unknown>): number {
  const first = map.items[0];
  if (!first) throw new YamlEditError('an empty mapping');
  return columnOf(text, rangeOf(first.key)[0]);
}

/** The indentation step the file uses (the first nested block collection decides), 2 by default. */
export function indentUnit(text: string, doc: Document.Parsed): number {
  const visit = (node: unknown, parentCol: number): number | undefined => {
    if (isMap(node) && !node.flow) {
      for (const p of node.items) {
        const col = columnOf(text, rangeOf(p.key)[0]);
        const v = p.value;
        if (isMap(v) && !v.flow && v.items.length > 0) {
          const step = columnOf(text, rangeOf(v.items[0]!.key)[0]) - col;
          if (step > 0) return step;
        }
        if (isSeq(v) && !v.flow && v.items.length > 0) {
          const step = columnOf(text, dashOf(v, 0)) - col;
          if (step > 0) return step;
        }
        const inner = visit(v, col);
        if (inner) return inner;
      }
    } else if (isSeq(node) && !node.flow) {
      for (const item of node.items) {
        const inner = visit(item, parentCol);
        if (inner) return inner;
      }
    }
    return undefined;
  };
  return visit(doc.contents, 0) ?? 2;
}

export type QuoteStyle = 'PLAIN' | 'QUOTE_DOUBLE' | 'QUOTE_SINGLE';

export function quoteStyleOf(node: unknown): QuoteStyle {
  if (isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE')) return node.type;
  return 'PLAIN';
}

/**
 * A string as YAML source in the given style. Plain only when it is safe in both block and flow
 * context and reads back as the same string; double quotes otherwise.
 */
export function renderString(value: string, style: QuoteStyle = 'PLAIN', context: 'flow' | 'block' = 'flow'): string {
  if (style === 'QUOTE_SINGLE' && !/[\n\r\t\\]/.test(value)) return `'${value.replace(/'/g, "''")}'`;
  const plain = context === 'flow' ? /^[A-Za-z0-9_][A-Za-z0-9._%+@/=-]*$/ : /^[A-Za-z0-9_][A-Za-z0-9 ._%+@/=()-]*(?<! )$/;
  if (style === 'PLAIN' && plain.test(value) && readsBack(value)) return value;
  return JSON.stringify(value);
}

function readsBack(s: string): boolean {
  try {
    return parse(s) === s;
  } catch {
    return false;
  }
}

export const isNullNode = (n: unknown): boolean => n === null || n === undefined || (isScalar(n) && n.value === null);

/** Replace the source text of a scalar (without its trailing comment). */
export function replaceScalar(scalar: Scalar, text: string): { start: number; end: number; text: string } {
  const r = rangeOf(scalar);
  return { start: r[0], end: r[1], text };
}

/** Append an item to a flow sequence: `[a, b]` -> `[a, b, c]`; multi-line lists get a new line. */
export function flowSeqAppend(text: string, seq: YAMLSeq<unknown>, item: string, eol: string): { start: number; end: number; text: string } {
  const r = rangeOf(seq);
  const last = seq.items[seq.items.length - 1];
  if (last === undefined) {
    const inner = text.slice(r[0] + 1, r[1] - 1);
    if (inner.trim() !== '') throw new YamlEditError('an empty flow list holds comments');
    return { start: r[0], end: r[1], text: `[${item}]` };
  }
  const lastRange = rangeOf(last);
  const firstStart = rangeOf(seq.items[0])[0];
  if (text.slice(r[0], firstStart).includes('\n')) {
    // Multi-line flow list: one item per line, at the column of the last item.
    return { start: lastRange[1], end: lastRange[1], text: `,${eol}${spaces(columnOf(text, lastRange[0]))}${item}` };
  }
  return { start: lastRange[1], end: lastRange[1], text: `, ${item}` };
}

/** Remove item `i` of a flow sequence with its separating comma. */
export function flowSeqRemove(seq: YAMLSeq<unknown>, i: number): { start: number; end: number; text: string } {
  const item = rangeOf(seq.items[i]);
  const next = seq.items[i + 1];
  if (next !== undefined) return { start: item[0], end: rangeOf(next)[0], text: '' };
  const prev = seq.items[i - 1];
  if (prev !== undefined) return { start: rangeOf(prev)[1], end: item[1], text: '' };
  return { start: item[0], end: item[1], text: '' };
}

/** Add `key: value` to a flow mapping: `{a: 1}` -> `{a: 1, key: value}`. */
export function flowMapAdd(text: string, map: YAMLMap<unknown, unknown>, pairText: string): { start: number; end: number; text: string } {
  const last = map.items[map.items.length - 1];
  if (!last) {
    const r = rangeOf(map);
    if (text.slice(r[0] + 1, r[1] - 1).trim() !== '') throw new YamlEditError('an empty flow mapping holds comments');
    return { start: r[0], end: r[1], text: `{${pairText}}` };
  }
  const end = isNullNode(last.value) && !(last.value && rangeOf(last.value)[1] > rangeOf(last.value)[0]) ? rangeOf(last.key)[1] : rangeOf(last.value)[1];
  return { start: end, end, text: `, ${pairText}` };
}

/** The node as a typed value, or a clear refusal. */
export function expectSeq(node: unknown, what: string): YAMLSeq<unknown> {
  if (!isSeq(node)) throw new YamlEditError(`${what} is not a list`);
  return node;
}

export function expectMap(node: unknown, what: string): YAMLMap<unknown, unknown> {
  if (!isMap(node)) throw new YamlEditError(`${what} is not a mapping`);
  return node;
}

export type { Node };
