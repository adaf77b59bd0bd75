/** Plain-text helpers for splicing edits into a file without touching anything else. */

export interface TextEdit {
  start: number;
  end: number;
  text: string;
}

export function splice(text: string, edit: TextEdit): string {
  return text.slice(0, edit.start) + edit.text + text.slice(edit.end);
}

/** Offset of the first character of the line holding `pos`. */
export function lineStart(text: string, pos: number): number {
  return text.lastIndexOf('\n', pos - 1) + 1;
}

/** 0-based column of `pos`. */
export function columnOf(text: string, pos: number): number {
  return pos - lineStart(text, pos);
}

/**
 * Where the line a node ends on ends: just after its newline (or the end of the text).
 * `end` is a node's end offset; when it already follows a newline it is returned as is.
 */
export function endOfLineAfter(text: string, end: number): number {
  if (end > 0 && text[end - 1] === '\n') return end;
  const nl = text.indexOf('\n', end);
  return nl < 0 ? text.length : nl + 1;
}

/** The file's line ending: CRLF when it uses one, LF otherwise. */
export function eolOf(text: string): string {
  return text.includes('\r\n') ? '\r\n' : '\n';
}

export const spaces = (n: number): string => ' '.repeat(Math.max(0, n));
