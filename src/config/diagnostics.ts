/** Diagnostics are records; rendering them like a compiler is one function at the edge. */

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  code: DiagnosticCode;
  severity: Severity;
  /** Repository-relative path with forward slashes, e.g. `tenants/acme.yaml`. */
  file: string;
  /**
   * 1-based. A problem of the file as a whole (binary, not UTF-8, too large, misnamed, missing) is
   * at 1:1; the loader never leaves a diagnostic without a line and a column.
   */
  line: number;
  col: number;
  /** YAML path of the offending node, e.g. `users[2].scopes[0]`; empty for the document. */
  path: string;
  message: string;
  hint?: string;
}

/** Every diagnostic code, with a one-line summary (also the reference table in the README). */
export const CODES = {
  SP001: 'YAML syntax error',
  SP002: 'duplicate key in a mapping',
  SP003: 'too many alias references (alias bomb)',
  SP004: 'document is empty or not a mapping',
  SP005: 'file cannot be read as YAML text (binary, not UTF-8, too large, several documents)',
  SP010: 'wrong type',
  SP011: 'required field missing',
  SP012: 'unknown field',
  SP013: 'value not allowed (pattern, enum, range, length)',
  SP020: 'invalid tenant or agent name',
  SP021: 'tenant name differs from its file name',
  SP022: 'rendered resource name invalid (realm, namespace, database)',
  SP023: 'two tenants render the same resource name',
  SP024: 'tenant pins a PostgreSQL server that postgres.servers does not list',
  SP030: 'user scope not in the scope catalog',
  SP031: 'security requirement names an undeclared security scheme',
  SP032: 'security requirement names a scope its scheme does not declare',
  SP033: 'tenant names an agent that does not exist',
  SP034: 'template uses an unknown variable',
  SP035: 'default tenant has no tenant file',
  SP036: 'tenancy disabled but several tenants exist',
  SP037: 'agent card URL is not an absolute http(s) URL',
  SP040: 'tenant defined twice',
  SP041: 'user email defined twice in one tenant',
  SP042: 'agent defined twice',
  SP043: 'PostgreSQL server listed twice in postgres.servers',
  SP044: 'user email in two tenants of the shared realm (organization isolation)',
} as const;

export type DiagnosticCode = keyof typeof CODES;

export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return (
    cmp(a.file, b.file) || a.line - b.line || a.col - b.col || cmp(a.code, b.code) || cmp(a.message, b.message)
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}

/**
 * `tenants/acme.yaml:7:5: error SP012: unknown field "tenant_awre" (at agents.x)`
 * followed by the source line with a caret when the text is known, and the hint.
 */
export function renderDiagnostic(d: Diagnostic, sourceText?: (file: string) => string | undefined): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
  const at = d.path ? ` (at ${d.path})` : '';
  let out = `${where}: ${d.severity} ${d.code}: ${d.message}${at}\n`;
  const text = d.line > 0 ? sourceText?.(d.file) : undefined;
  if (text !== undefined) {
    const lineText = nthLine(text, d.line);
    if (lineText !== undefined && lineText.length <= 500) {
      const num = String(d.line);
      const pad = ' '.repeat(num.length);
      out += ` ${num} | ${lineText.replace(/\t/g, ' ')}\n ${pad} | ${' '.repeat(Math.max(0, d.col - 1))}^\n`;
    }
  }
  if (d.hint) out += `  hint: ${d.hint}\n`;
  return out;
}

export function renderDiagnostics(diags: readonly Diagnostic[], sourceText?: (file: string) => string | undefined): string {
  const errors = diags.filter((d) => d.severity === 'error').length;
  const warnings = diags.length - errors;
  const body = diags.map((d) => renderDiagnostic(d, sourceText)).join('');
  const summary = [errors ? `${errors} error${errors === 1 ? '' : 's'}` : '', warnings ? `${warnings} warning${warnings === 1 ? '' : 's'}` : '']
    .filter(Boolean)
    .join(', ');
  return summary ? `${body}${summary}\n` : body;
}

function nthLine(text: string, line: number): string | undefined {
  let start = 0;
  for (let i = 1; i < line; i++) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return undefined;
    start = nl + 1;
  }
  const end = text.indexOf('\n', start);
  return text.slice(start, end < 0 ? text.length : end).replace(/\r$/, '');
}

/** The closest candidate by edit distance, if close enough to be a plausible typo. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  return bestDist <= limit ? best : undefined;
}

export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
