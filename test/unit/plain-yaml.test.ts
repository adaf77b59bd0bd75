import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { MAX_PLAIN_DEPTH, parsePlainYaml } from '../../src/config/plain-yaml.js';
import { parseSource } from '../../src/config/source.js';
import { generateRepository } from '../../bench/compile/generate.js';
import { filesOf, PROJECT_ROOT } from '../helpers/repo.js';

/** What the loader took from the `yaml` package before the fast reader: a mapping, or nothing. */
function viaPackage(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, strict: true });
  if (doc.errors.length > 0) return undefined;
  try {
    const v: unknown = doc.toJS({ maxAliasCount: 100 });
    return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The fast reader either declines, or agrees with the package exactly (values, types, key order). */
function agrees(text: string): boolean {
  const fast = parsePlainYaml(text);
  if (fast === undefined) return true;
  const slow = viaPackage(text);
  if (slow === undefined) return false;
  return JSON.stringify(fast) === JSON.stringify(slow) && sameTypes(fast, slow);
}

/** -0 and 0, NaN and null look alike in JSON: compare the leaves too. */
function sameTypes(a: unknown, b: unknown): boolean {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameTypes(x, b[i]));
  if (a && typeof a === 'object') return !!b && typeof b === 'object' && Object.keys(a).every((k) => sameTypes((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  return Object.is(a, b);
}

const corpus = (): string[] => {
  const texts = [...filesOf(path.join(PROJECT_ROOT, 'test/fixtures')).values(), ...filesOf(PROJECT_ROOT).values()].map((b) => Buffer.from(b).toString('utf8'));
  const generated = generateRepository({ tenants: 12, users: 8, agents: 3 });
  return [...texts, ...[...generated.values()].map(String)];
};

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [' ', '  ', '-', '- ', ':', ': ', '#', ' #', '"', "'", '[', ']', '{', '}', ',', '\n', 'a', '0', '1.5', '.', '&a ', '*a', '!', '|', '>', '\\', '~', 'null', 'true', '0x1F', '1e3', '? ', '---', '\t', 'é', '\\u00e9', "''", '__proto__'];

function mutate(text: string, random: () => number): string {
  const lines = text.split('\n');
  const n = 1 + Math.floor(random() * 3);
  for (let k = 0; k < n && lines.length > 0; k++) {
    const i = Math.floor(random() * lines.length);
    const line = lines[i]!;
    const at = Math.floor(random() * (line.length + 1));
    switch (Math.floor(random() * 6)) {
      case 0:
        lines[i] = line.slice(0, at) + PIECES[Math.floor(random() * PIECES.length)]! + line.slice(at);
        break;
      case 1:
        lines[i] = line.slice(0, at) + line.slice(at + 1 + Math.floor(random() * 3));
        break;
      case 2:
        lines.splice(i, 0, line); // a repeated line: duplicate keys
        break;
      case 3:
        lines[i] = random() < 0.5 ? ` ${line}` : line.replace(/^ /, '');
        break;
      case 4:
        lines.splice(i, 1);
        break;
      default:
        lines[i] = `${line} # note`;
    }
  }
  return lines.join('\n');
}

describe('plain YAML reader', () => {
  it('reads the repository, fixtures and generated files as the yaml package does', () => {
    let read = 0;
    for (const text of corpus()) {
      expect(agrees(text), text).toBe(true);
      if (parsePlainYaml(text) !== undefined) read++;
    }
    // It is the common path, not a rarity.
    expect(read).toBeGreaterThan(40);
  });

  it('reads every generated tenant and agent file (the bench repository)', () => {
    for (const [rel, text] of generateRepository({ tenants: 5, users: 7, agents: 5 })) {
      expect(parsePlainYaml(String(text)), rel).toBeDefined();
    }
  });

  it('agrees with the yaml package or declines, on edge cases', () => {
    const cases = [
      'a: 1\nb: -1\nc: +1\nd: 007\ne: 1.5\nf: 1e3\ng: .inf\nh: .nan\ni: 0x1f\nj: 0o17\nk: 12345678901234567890\n',
      'a: true\nb: True\nc: TRUE\nd: yes\ne: no\nf: on\ng: null\nh: ~\ni:\nj: Null\nk: NULL\nl: nUll\n',
      'a: "x\\ty\\n\\"q\\" \\\\ \\u00e9 \\x41 \\U0001F600 \\/ \\_ \\N"\nb: \'it\'\'s\'\nc: "unterminated\n',
      'a: "bad \\q escape"\n',
      'a: plain # comment\nb: not#comment\nc: "q" # c\nd: \'s\' # c\ne: [a, b] # c\nf: {} # c\n',
      'a: b: c\n',
      'a: b:\n',
      'a: x:y\nb: http://example.com/x?y=1#frag\n',
      'a:\n  - 1\n  - two\n  -\n  - - nested\n',
      'a:\n- 1\n- 2\nb: 3\n',
      'a:\n  - k: v\n    l: w\n  - k: x\n',
      'a:\n  -   k: v\n      l: w\n',
      'a:\n  - k: v\n   l: w\n',
      'a:\n  b:\n    c: 1\n  d: 2\ne: 3\n',
      'a:\n  b: 1\n   c: 2\n',
      'a:\n    b: 1\n  c: 2\n',
      'a: 1\na: 2\n',
      'a: 1\n"a": 2\n',
      '"quoted key": 1\n\'single\': 2\n"k"x: 3\n',
      'a: [x, "y, z", \'w\', 1, true, null, ~]\n',
      'a: [x, [y]]\n',
      'a: [x,]\nb: [ ]\nc: []\nd: [x y]\n',
      'a: [x: y]\n',
      'a: [x\n  , y]\n',
      'a: {x: 1}\n',
      'a: &anchor 1\nb: *anchor\n',
      'a: !tag x\n',
      'a: |\n  block\n',
      'a: >\n  folded\n',
      'a: multi\n  line\n',
      'a: multi\n\n  line after blank\n',
      '---\na: 1\n',
      'a: 1\n---\nb: 2\n',
      'a: 1\n...\n',
      '%YAML 1.2\n---\na: 1\n',
      '- a\n- b\n',
      'just a string\n',
      '',
      '# only a comment\n',
      '  a: 1\n',
      'a: 1\r\nb: 2\r\n',
      'a:\tb\n',
      '1: one\ntrue: yes\nnull: x\n',
      '__proto__: x\n',
      'a:\n  # comment\n  b: 1\n# at column 0\n  c: 2\n',
      'a: # comment\n  b: 1\n',
      '? a\n: b\n',
      'a: -\nb: - x\nc: -x\nd: --x\n',
      'a: @x\nb: `x\nc: %x\n',
      'a : 1\n',
      'a:1\n',
      'a: "x"y\n',
      'a: \'x\'\'\n',
      `${'k'.repeat(1100)}: 1\n`,
      'a: 1 \nb: two  \n',
      'a:\n  -\n    b: 1\n',
      'a:\n  - # c\n    b: 1\n',
      'a: "\\ud800"\n',
      'é: 1\n',
      'a: é ü\n',
      'emails:\n  - email: user0@x.example.com\n    scopes: [user, read]\n    enabled: false\n',
    ];
    for (const c of cases) expect(agrees(c), JSON.stringify(c)).toBe(true);
  });

  // SP_FUZZ=200000 SP_FUZZ_SEED=7 for a longer run.
  const runs = Number(process.env.SP_FUZZ ?? 4000);
  it(`agrees with the yaml package or declines, on ${runs} mutated files`, () => {
    const texts = corpus();
    const random = rng(Number(process.env.SP_FUZZ_SEED ?? 12));
    let read = 0;
    for (let k = 0; k < runs; k++) {
      const text = mutate(texts[k % texts.length]!, random);
      expect(agrees(text), JSON.stringify(text)).toBe(true);
      if (parsePlainYaml(text) !== undefined) read++;
    }
    expect(read).toBeGreaterThan(runs / 8);
  });

  it(`declines what nests deeper than ${MAX_PLAIN_DEPTH} collections, and reads what does not`, () => {
    const nested = (n: number): string => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k:\n`).join('');
    expect(parsePlainYaml(nested(MAX_PLAIN_DEPTH + 1))).toBeUndefined();
    expect(agrees(nested(MAX_PLAIN_DEPTH + 1))).toBe(true);
    let v: unknown = parsePlainYaml(nested(MAX_PLAIN_DEPTH));
    for (let i = 0; i < MAX_PLAIN_DEPTH - 1; i++) v = (v as { k: unknown }).k;
    expect(v).toEqual({ k: null });
    expect(parsePlainYaml(nested(4000))).toBeUndefined();
  });

  it('leaves errors to the yaml package, with their positions', () => {
    const r = parseSource('tenants/a.yaml', 'name: a\nname: b\n');
    expect(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.code}`)).toEqual(['2:1 SP002']);
    const ok = parseSource('tenants/a.yaml', readFileSync(path.join(PROJECT_ROOT, 'tenants/customer-a.yaml')));
    expect(ok.diagnostics).toEqual([]);
    expect(ok.source?.value.name).toBe('customer-a');
  });
});
