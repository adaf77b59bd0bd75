import { isMap, isScalar, isSeq, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import { columnOf, endOfLineAfter, eolOf, lineStart, spaces, splice, type TextEdit } from './text.js';
import {
  YamlEditError,
  blockEnd,
  blockItemLines,
  colonAfterKey,
  dashOf,
  expectMap,
  flowMapAdd,
  flowSeqAppend,
  flowSeqRemove,
  indentUnit,
  isNullNode,
  keyColumn,
  pairOf,
  parseForEdit,
  quoteStyleOf,
  rangeOf,
  renderString,
  replaceScalar,
  rootMap,
  type QuoteStyle,
} from './yaml-nodes.js';

/**
 * Edits of a tenant file's `users:` list, as text splices: comments, key order, quoting and blank
 * lines outside the edited node stay byte-identical. Each function takes and returns the file text.
 */

export interface UserEntry {
  email: string;
  scopes: string[];
  enabled: boolean;
}

/** How the file writes its users, learnt from the existing entries so that new ones match. */
interface UserStyle {
  /** Column of the `-` of block items. */
  dashCol: number;
  /** Columns from the `-` to the item's first key. */
  gap: number;
  /** Items written as flow mappings: `- {email: a, scopes: [read]}`. */
  flowItems: boolean;
  emailQuote: QuoteStyle;
  /** Scopes as a block list, with the `-` this many columns right of the `scopes` key. */
  blockScopesOffset?: number;
}

function applyEdits(text: string, edits: TextEdit[]): string {
  return [...edits].sort((a, b) => b.start - a.start).reduce(splice, text);
}

/** Insert whole lines at a line boundary (adding the missing final newline first). */
function insertLines(text: string, at: number, lines: string, eol: string): TextEdit {
  const needsBreak = at === text.length && text.length > 0 && !text.endsWith('\n');
  return { start: at, end: at, text: `${needsBreak ? eol : ''}${lines}` };
}

function learnStyle(text: string, doc: Document.Parsed, users: YAMLSeq<unknown> | undefined, usersKeyCol: number): UserStyle {
  const unit = indentUnit(text, doc);
  const style: UserStyle = { dashCol: usersKeyCol + unit, gap: 2, flowItems: false, emailQuote: 'PLAIN' };
  if (!users || users.items.length === 0) return style;
  const first = users.items[0];
  if (!users.flow) {
    const dash = dashOf(users, 0);
    style.dashCol = columnOf(text, dash);
    const start = rangeOf(first)[0];
    if (lineStart(text, start) === lineStart(text, dash)) style.gap = Math.max(2, start - dash);
    style.flowItems = isMap(first) && Boolean(first.flow);
  }
  if (isMap(first)) style.emailQuote = quoteStyleOf(pairOf(first, 'email')?.value);
  for (const item of users.items) {
    if (!isMap(item) || item.flow) continue;
    const sp = pairOf(item, 'scopes');
    if (sp && isSeq(sp.value) && sp.value.items.length > 0) {
      if (!sp.value.flow) style.blockScopesOffset = columnOf(text, dashOf(sp.value, 0)) - columnOf(text, rangeOf(sp.key)[0]);
      break;
    }
  }
  return style;
}

function flowScopes(scopes: readonly string[]): string {
  return `[${scopes.map((s) => renderString(s)).join(', ')}]`;
}

function flowUser(u: UserEntry, style: UserStyle): string {
  const parts = [`email: ${renderString(u.email, style.emailQuote)}`];
  if (u.scopes.length > 0) parts.push(`scopes: ${flowScopes(u.scopes)}`);
  if (!u.enabled) parts.push('enabled: false');
  return `{${parts.join(', ')}}`;
}

function blockUser(u: UserEntry, style: UserStyle, eol: string): string {
  const head = `${spaces(style.dashCol)}-${spaces(style.gap - 1)}`;
  if (style.flowItems) return `${head}${flowUser(u, style)}${eol}`;
  const kc = style.dashCol + style.gap;
  const lines = [`${head}email: ${renderString(u.email, style.emailQuote)}`];
  if (u.scopes.length > 0) {
    if (style.blockScopesOffset !== undefined) {
      lines.push(`${spaces(kc)}scopes:`, ...u.scopes.map((s) => `${spaces(kc + style.blockScopesOffset!)}- ${renderString(s)}`));
    } else {
      lines.push(`${spaces(kc)}scopes: ${flowScopes(u.scopes)}`);
    }
  }
  if (!u.enabled) lines.push(`${spaces(kc)}enabled: false`);
  return lines.map((l) => l + eol).join('');
}

/** Append a user to `users:`, creating the key, or turning `users: []` into a block list, as needed. */
export function addUser(text: string, user: UserEntry): string {
  const doc = parseForEdit(text);
  const root = rootMap(doc);
  const eol = eolOf(text);
  const pair = pairOf(root, 'users');
  if (!pair) {
    if (root.flow) return applyEdits(text, [flowMapAdd(text, root, `users: [${flowUser(user, learnStyle(text, doc, undefined, 0))}]`)]);
    const keyCol = keyColumn(text, root);
    const style = learnStyle(text, doc, undefined, keyCol);
    return applyEdits(text, [insertLines(text, blockEnd(text, root), `${spaces(keyCol)}users:${eol}${blockUser(user, style, eol)}`, eol)]);
  }
  const keyCol = columnOf(text, rangeOf(pair.key)[0]);
  const value = pair.value;
  if (isNullNode(value)) {
    const style = learnStyle(text, doc, undefined, keyCol);
    const colon = colonAfterKey(text, pair);
    const edits: TextEdit[] = [];
    if (isScalar(value) && rangeOf(value)[1] > rangeOf(value)[0]) edits.push({ start: colon, end: rangeOf(value)[1], text: '' });
    edits.push(insertLines(text, endOfLineAfter(text, colon), blockUser(user, style, eol), eol));
    return applyEdits(text, edits);
  }
  if (!isSeq(value)) throw new YamlEditError('`users` is not a list');
  const style = learnStyle(text, doc, value, keyCol);
  if (value.flow) {
    if (value.items.length === 0 && !root.flow) {
      // `users: []` becomes a block list; a comment after the brackets stays on the `users:` line.
      const colon = colonAfterKey(text, pair);
      const end = rangeOf(value)[1];
      return applyEdits(text, [
        { start: colon, end, text: '' },
        insertLines(text, endOfLineAfter(text, end), blockUser(user, style, eol), eol),
      ]);
    }
    return applyEdits(text, [flowSeqAppend(text, value, flowUser(user, style), eol)]);
  }
  return applyEdits(text, [insertLines(text, blockEnd(text, value), blockUser(user, style, eol), eol)]);
}

function userAt(doc: Document.Parsed, index: number, email: string): { users: YAMLSeq<unknown>; user: YAMLMap<unknown, unknown> } {
  const pair = pairOf(rootMap(doc), 'users');
  if (!pair || !isSeq(pair.value)) throw new YamlEditError('the file has no `users:` list');
  const seq = pair.value;
  const user = expectMap(seq.items[index], `users[${index}]`);
  const e = pairOf(user, 'email')?.value;
  if (!isScalar(e) || String(e.value).toLowerCase() !== email.toLowerCase()) {
    throw new YamlEditError(`users[${index}] is not ${email}; the file changed while it was being edited`);
  }
  return { users: seq, user };
}

/** Remove a block list's item `i`; the last item leaves `key: []`. */
function removeBlockItem(text: string, seq: YAMLSeq<unknown>, i: number, colon: number, eol: string): TextEdit {
  const lines = blockItemLines(text, seq, i);
  if (seq.items.length > 1) return { ...lines, text: '' };
  return { start: colon, end: lines.end, text: ` []${eol}` };
}

/** Remove the user at `index` of `users:` (checked to be `email`). */
export function removeUser(text: string, index: number, email: string): string {
  const doc = parseForEdit(text);
  const { users } = userAt(doc, index, email);
  if (users.flow) return applyEdits(text, [flowSeqRemove(users, index)]);
  const pair = pairOf(rootMap(doc), 'users')!;
  return applyEdits(text, [removeBlockItem(text, users, index, colonAfterKey(text, pair), eolOf(text))]);
}

/** Grant one scope (no change when the user holds it). */
export function addScope(text: string, index: number, email: string, scope: string): string {
  const doc = parseForEdit(text);
  const { user } = userAt(doc, index, email);
  const eol = eolOf(text);
  const pair = pairOf(user, 'scopes');
  const item = renderString(scope);
  if (!pair) {
    if (user.flow) return applyEdits(text, [flowMapAdd(text, user, `scopes: [${item}]`)]);
    return applyEdits(text, [insertLines(text, blockEnd(text, user), `${spaces(keyColumn(text, user))}scopes: [${item}]${eol}`, eol)]);
  }
  const value = pair.value;
  if (isNullNode(value)) {
    const colon = colonAfterKey(text, pair);
    const end = isScalar(value) ? rangeOf(value)[1] : colon;
    return applyEdits(text, [{ start: colon, end: Math.max(colon, end), text: ` [${item}]` }]);
  }
  if (!isSeq(value)) throw new YamlEditError('`scopes` is not a list');
  if (value.items.some((s) => isScalar(s) && s.value === scope)) return text;
  if (value.flow) return applyEdits(text, [flowSeqAppend(text, value, item, eol)]);
  const dash = dashOf(value, 0);
  const first = rangeOf(value.items[0])[0];
  const gap = lineStart(text, first) === lineStart(text, dash) ? first - dash : 2;
  return applyEdits(text, [insertLines(text, blockEnd(text, value), `${spaces(columnOf(text, dash))}-${spaces(gap - 1)}${item}${eol}`, eol)]);
}

/** Revoke one scope (no change when the user does not hold it); the last one leaves `scopes: []`. */
export function removeScope(text: string, index: number, email: string, scope: string): string {
  const doc = parseForEdit(text);
  const { user } = userAt(doc, index, email);
  const pair = pairOf(user, 'scopes');
  if (!pair || !isSeq(pair.value)) return text;
  const seq = pair.value;
  const i = seq.items.findIndex((s) => isScalar(s) && s.value === scope);
  if (i < 0) return text;
  if (seq.flow) return applyEdits(text, [flowSeqRemove(seq, i)]);
  return applyEdits(text, [removeBlockItem(text, seq, i, colonAfterKey(text, pair), eolOf(text))]);
}

/** Set `enabled`; `true` is the default, so enabling a user without the key changes nothing. */
export function setEnabled(text: string, index: number, email: string, enabled: boolean): string {
  const doc = parseForEdit(text);
  const { user } = userAt(doc, index, email);
  const pair = pairOf(user, 'enabled');
  if (pair) {
    if (!isScalar(pair.value)) throw new YamlEditError('`enabled` is not a true/false value');
    if (pair.value.value === enabled) return text;
    if (isNullNode(pair.value) && rangeOf(pair.value)[1] === rangeOf(pair.value)[0]) {
      const colon = colonAfterKey(text, pair);
      return applyEdits(text, [{ start: colon, end: colon, text: ` ${enabled}` }]);
    }
    return applyEdits(text, [replaceScalar(pair.value, String(enabled))]);
  }
  if (enabled) return text;
  const eol = eolOf(text);
  if (user.flow) return applyEdits(text, [flowMapAdd(text, user, 'enabled: false')]);
  return applyEdits(text, [insertLines(text, blockEnd(text, user), `${spaces(keyColumn(text, user))}enabled: false${eol}`, eol)]);
}

export interface NewTenant {
  name: string;
  displayName?: string;
  /** A `# yaml-language-server: $schema=...` line, without its newline. */
  modeline?: string;
}

/** The text of a new tenant file with no users. */
export function newTenantFile(t: NewTenant): string {
  const lines: string[] = [];
  if (t.modeline) lines.push(t.modeline);
  lines.push(`name: ${renderString(t.name)}`);
  if (t.displayName !== undefined) lines.push(`display_name: ${renderString(t.displayName, 'PLAIN', 'block')}`);
  lines.push('users: []');
  return `${lines.join('\n')}\n`;
}
