/** A unified diff of two texts (for `--dry-run`), without dependencies. */

const CONTEXT = 3;
/** Above this many cells the middle of a diff is shown as one replaced block instead of an LCS. */
const MAX_LCS_CELLS = 4_000_000;

type Op = { kind: ' ' | '-' | '+'; line: string };

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function diffLines(a: string[], b: string[]): Op[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const ops: Op[] = a.slice(0, pre).map((line) => ({ kind: ' ', line }));
  const am = a.slice(pre, a.length - suf);
  const bm = b.slice(pre, b.length - suf);
  if ((am.length + 1) * (bm.length + 1) > MAX_LCS_CELLS) {
    for (const line of am) ops.push({ kind: '-', line });
    for (const line of bm) ops.push({ kind: '+', line });
  } else {
    // LCS table from the end, then walk forward.
    const w = bm.length + 1;
    const t = new Uint32Array((am.length + 1) * w);
    for (let i = am.length - 1; i >= 0; i--) {
      for (let j = bm.length - 1; j >= 0; j--) {
        t[i * w + j] = am[i] === bm[j] ? t[(i + 1) * w + j + 1]! + 1 : Math.max(t[(i + 1) * w + j]!, t[i * w + j + 1]!);
      }
    }
    let i = 0;
    let j = 0;
    while (i < am.length || j < bm.length) {
      if (i < am.length && j < bm.length && am[i] === bm[j]) {
        ops.push({ kind: ' ', line: am[i]! });
        i++;
        j++;
      } else if (i < am.length && (j === bm.length || t[(i + 1) * w + j]! >= t[i * w + j + 1]!)) {
        ops.push({ kind: '-', line: am[i]! });
        i++;
      } else {
        ops.push({ kind: '+', line: bm[j]! });
        j++;
      }
    }
  }
  for (let k = a.length - suf; k < a.length; k++) ops.push({ kind: ' ', line: a[k]! });
  return ops;
}

/**
 * `--- a/FILE` / `+++ b/FILE` and hunks with three lines of context; `null` is an absent file
 * (shown as /dev/null). Empty when the texts are equal.
 */
export function unifiedDiff(file: string, before: string | null, after: string | null): string {
  if (before === after) return '';
  const ops = diffLines(splitLines(before ?? ''), splitLines(after ?? ''));
  let out = `--- ${before === null ? '/dev/null' : `a/${file}`}\n+++ ${after === null ? '/dev/null' : `b/${file}`}\n`;
  // Group changes into hunks with context.
  const changed = ops.map((o, i) => (o.kind !== ' ' ? i : -1)).filter((i) => i >= 0);
  let k = 0;
  while (k < changed.length) {
    const start = Math.max(0, changed[k]! - CONTEXT);
    let end = changed[k]!;
    while (k < changed.length && changed[k]! <= end + 2 * CONTEXT) {
      end = changed[k]!;
      k++;
    }
    end = Math.min(ops.length - 1, end + CONTEXT);
    let aStart = 1;
    let bStart = 1;
    for (let i = 0; i < start; i++) {
      if (ops[i]!.kind !== '+') aStart++;
      if (ops[i]!.kind !== '-') bStart++;
    }
    const hunk = ops.slice(start, end + 1);
    const aLen = hunk.filter((o) => o.kind !== '+').length;
    const bLen = hunk.filter((o) => o.kind !== '-').length;
    out += `@@ -${aLen === 0 ? aStart - 1 : aStart},${aLen} +${bLen === 0 ? bStart - 1 : bStart},${bLen} @@\n`;
    out += hunk.map((o) => `${o.kind}${o.line}\n`).join('');
  }
  return out;
}
