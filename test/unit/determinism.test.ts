import { describe, expect, it } from 'vitest';
import { buildArtifacts } from '../../src/compile/build.js';
import { compile } from '../../src/compile/compile.js';
import { loadRepository } from '../../src/config/repository.js';
import { computePlan, EMPTY_LIVE } from '../../src/plan/plan.js';
import { filesOf, PROJECT_ROOT } from '../helpers/repo.js';

/** Small seeded PRNG (mulberry32), so a failing case can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCOPES = ['anonymous', 'user', 'read', 'write', 'admin'];

function randomRepo(seed: number): Map<string, string> {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const files = new Map<string, string>();
  const agents = Array.from({ length: 1 + Math.floor(r() * 4) }, (_, i) => `agent-${i}`);
  for (const a of agents) {
    files.set(`services/agents/${a}.yaml`, `name: ${a}\ntenant_aware: ${r() < 0.5}\nsecurity:\n  oauth2:\n    scopes: ["tenant:{{tenant_id}}"${r() < 0.3 ? ', "user:{{user_id}}"' : ''}]\n`);
  }
  const tenants = ['default', ...Array.from({ length: Math.floor(r() * 6) }, (_, i) => `t${seed}-${i}`)];
  for (const t of tenants) {
    const users = Array.from({ length: Math.floor(r() * 8) }, (_, i) => {
      const scopes = [...new Set(Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(SCOPES)))];
      return `  - email: u${i}@${t}.example.com\n    scopes: [${scopes.join(', ')}]\n    enabled: ${r() < 0.9}\n`;
    });
    const list = r() < 0.5 ? `agents: [${agents.filter(() => r() < 0.6).join(', ')}]\n` : '';
    files.set(`tenants/${t}.yaml`, `name: ${t}\n${list}quotas:\n  cpu: "${1 + Math.floor(r() * 8)}"\n  memory: ${1 + Math.floor(r() * 16)}Gi\n  pods: ${Math.floor(r() * 50)}\nusers:\n${users.join('') || '  []\n'}`.replace('users:\n  []\n', 'users: []\n'));
  }
  return files;
}

function shuffled<K, V>(m: Map<K, V>, seed: number): Map<K, V> {
  const r = rng(seed);
  const entries = [...m];
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return new Map(entries);
}

function compiledBytes(files: Map<string, string | Uint8Array>): string {
  const loaded = loadRepository(files);
  if (!loaded.repo) throw new Error(JSON.stringify(loaded.diagnostics.slice(0, 3)));
  const state = compile(loaded.repo);
  const plan = computePlan(state, EMPTY_LIVE, { offline: true });
  return JSON.stringify({ state, plan, build: [...buildArtifacts(state)] });
}

describe('compiling is deterministic', () => {
  it('gives the same bytes for the example, whatever the order files are read in', () => {
    const files = filesOf(PROJECT_ROOT);
    const first = compiledBytes(files);
    for (let s = 1; s <= 5; s++) expect(compiledBytes(shuffled(files, s))).toBe(first);
  });

  it.each(Array.from({ length: 25 }, (_, i) => i + 1))('random repository, seed %i: same input, same bytes', (seed) => {
    const files = randomRepo(seed);
    const a = compiledBytes(files);
    expect(compiledBytes(shuffled(files, seed * 7))).toBe(a);
    expect(compiledBytes(new Map(files))).toBe(a);
  });
});

describe('the loader never throws', () => {
  it.each(Array.from({ length: 40 }, (_, i) => i + 1))('on mutated example files, seed %i', (seed) => {
    const r = rng(seed);
    const files = filesOf(PROJECT_ROOT);
    const mutated = new Map<string, Uint8Array>();
    for (const [k, v] of files) {
      const bytes = Buffer.from(v);
      const n = 1 + Math.floor(r() * 6);
      for (let i = 0; i < n; i++) {
        const pos = Math.floor(r() * bytes.length);
        const op = r();
        if (op < 0.4) bytes[pos] = Math.floor(r() * 128);
        else if (op < 0.7) bytes[pos] = ':-[]{}&*!|>\'"%@`#,\n '.charCodeAt(Math.floor(r() * 22));
        else bytes[pos] = 0x20;
      }
      mutated.set(k, bytes);
    }
    const result = loadRepository(mutated);
    for (const d of result.diagnostics) {
      expect(d.message.length).toBeGreaterThan(0);
      expect(d.code).toMatch(/^SP\d{3}$/);
    }
    if (result.repo) expect(() => compile(result.repo!)).not.toThrow();
  });
});
