import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import { canonicalJson } from '../../src/plan/diff.js';
import { jsonBlocks, writeJson, writeJsonFile } from '../../src/plan/json-stream.js';
import { computePlan, EMPTY_LIVE, fingerprintDesired, fingerprintLive } from '../../src/plan/plan.js';
import { isSecretRef, resourceKey, type LiveResource } from '../../src/model/resource.js';
import { ApplySecrets } from '../../src/reconcile/secrets.js';
import { ourClientScopes } from '../../src/targets/keycloak.js';
import { mapLimit } from '../../src/targets/limit.js';
import { exampleRepo } from '../helpers/repo.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const streamed = (v: unknown, size?: number, depth?: number): string => [...jsonBlocks(v, size, depth)].join('');

describe('streamed JSON', () => {
  const desired = compile(exampleRepo());
  const plan = computePlan(desired, EMPTY_LIVE, { offline: true });
  // A live state with objects to delete and to keep, so that every part of a plan has entries.
  const live: LiveResource[] = [
    ...desired.resources.slice(0, 5).map((r) => ({ target: r.target, kind: r.kind, name: r.name, managed: true, spec: {}, ...(r.tenant ? { tenant: r.tenant } : {}) })),
    { target: 'keycloak', kind: 'Realm', name: 'gone', managed: true, tenant: 'gone', spec: { displayName: 'Gone "quoted"\nline', enabled: true } },
    { target: 'postgres', kind: 'Database', name: 'gone_db', managed: true, tenant: 'gone', retain: true, spec: { owner: 'gone_db' } },
    { target: 'postgres', kind: 'Role', name: 'gone_db', managed: true, tenant: 'gone', spec: {} },
    { target: 'kubernetes', kind: 'Namespace', name: desired.resources.find((r) => r.kind === 'Namespace')!.name.replace(/^/, 'x'), managed: false, spec: {} },
  ];

  it('is byte-identical to JSON.stringify for the example repository plan', () => {
    expect(streamed(plan)).toBe(`${JSON.stringify(plan, null, 2)}\n`);
    const withLive = computePlan(desired, { resources: live, requests: { keycloak: 3 } });
    expect(withLive.changes.some((c) => c.action === 'delete')).toBe(true);
    expect(withLive.retained.length).toBeGreaterThan(0);
    expect(streamed(withLive)).toBe(`${JSON.stringify(withLive, null, 2)}\n`);
    // apply -o json: the plan one level down, next to the result
    const applied = { plan: withLive, result: { applied: 0, failed: [], skipped: 0, writes: 0 } };
    expect(streamed(applied, undefined, 3)).toBe(`${JSON.stringify(applied, null, 2)}\n`);
    for (const depth of [0, 1, 2, 4, 9]) expect(streamed(applied, 100, depth)).toBe(`${JSON.stringify(applied, null, 2)}\n`);
  });

  it('is the same in blocks of any size', () => {
    const want = `${JSON.stringify(plan, null, 2)}\n`;
    for (const size of [1, 7, 4096]) expect(streamed(plan, size)).toBe(want);
    const blocks = [...jsonBlocks(plan, 4096)];
    expect(blocks.length).toBeGreaterThan(1);
  });

  it('follows JSON.stringify on edge cases', () => {
    const cases: unknown[] = [
      {},
      [],
      null,
      'a\nb',
      42,
      { a: undefined, b: () => 1, c: [undefined, () => 1, null], d: {}, e: [], f: [[], {}, [[1, { g: 'ü\u2028"' }]]] },
      [{ x: { y: { z: { w: [1, 2, { v: 'deep\nline' }] } } } }],
      { toJSON: () => ({ replaced: true }) },
      { date: new Date(0), nan: NaN, inf: -Infinity },
      { only: undefined },
      // more items than one batch, some of them left out or nested
      { items: Array.from({ length: 600 }, (_, i) => (i % 97 === 0 ? undefined : i % 5 === 0 ? [i, { n: `${i}\n` }] : { i, s: `x${i}` })) },
      [Array.from({ length: 257 }, (_, i) => ({ deep: { list: [i, i + 1] } }))],
    ];
    for (const c of cases) for (const depth of [0, 1, 2, 5]) expect(streamed(c, 3, depth), JSON.stringify(c)).toBe(`${JSON.stringify(c, null, 2)}\n`);
  });

  it('writes the same to a callback and to a file', async () => {
    let out = '';
    writeJson(plan, (t) => (out += t));
    expect(out).toBe(`${JSON.stringify(plan, null, 2)}\n`);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sp-json-')), 'plan.json');
    await writeJsonFile(file, plan);
    expect(readFileSync(file, 'utf8')).toBe(out);
  });
});

describe('fingerprints hashed piece by piece', () => {
  const desired = compile(exampleRepo());
  it('desired: the digest of the canonical JSON of all resources', () => {
    expect(fingerprintDesired(desired.resources)).toBe(sha(canonicalJson(desired.resources)));
    expect(fingerprintDesired([])).toBe(sha(canonicalJson([])));
  });
  it('live: the digest of the sorted lines, joined', () => {
    const live: LiveResource[] = desired.resources.map((r, i) => ({ target: r.target, kind: r.kind, name: r.name, managed: i % 3 !== 0, spec: r.spec }));
    const lines = live.map((r) => `${resourceKey(r)}|${r.managed ? 1 : 0}|${r.terminating ? 1 : 0}|${canonicalJson(r.spec)}`).sort();
    expect(fingerprintLive(live)).toBe(sha(lines.join('\n')));
    expect(fingerprintLive([])).toBe(sha(''));
  });
});

describe('bounded fan-out (mapLimit)', () => {
  it('keeps the order of the items, with at most `limit` calls at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([...Array(50).keys()], 4, async (x, i) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, (x * 7) % 5));
      running--;
      return x * 10 + i;
    });
    expect(out).toEqual([...Array(50).keys()].map((x) => x * 11));
    expect(peak).toBe(4);
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });

  it('rejects with the first failure and starts nothing more', async () => {
    const started: number[] = [];
    await expect(
      mapLimit([...Array(20).keys()], 2, async (x) => {
        started.push(x);
        await new Promise((r) => setTimeout(r, 1));
        if (x === 3) throw new Error('boom 3');
        return x;
      }),
    ).rejects.toThrow('boom 3');
    await new Promise((r) => setTimeout(r, 20));
    expect(Math.max(...started)).toBeLessThanOrEqual(4);
  });
});

describe('indexes instead of scans', () => {
  const desired = compile(exampleRepo());
  const leaf = (n: string): string => n.slice(n.indexOf('/') + 1);
  const realmOf = (n: string): string => n.slice(0, n.indexOf('/'));

  it("ourClientScopes: each realm's managed client scopes, as the per-client filter found them", () => {
    const index = ourClientScopes(desired);
    const realms = new Set(desired.resources.filter((r) => r.target === 'keycloak' && r.kind === 'Realm').map((r) => r.name));
    expect(realms.size).toBeGreaterThan(1);
    for (const realm of realms) {
      const scan = new Set(desired.resources.filter((r) => r.target === 'keycloak' && r.kind === 'ClientScope' && realmOf(r.name) === realm).map((r) => leaf(r.name)));
      expect(index.get(realm) ?? new Set()).toEqual(scan);
    }
    expect(ourClientScopes(desired)).toBe(index);
  });

  it('ApplySecrets.stored reads the Secret key the first scan found, per tenant', async () => {
    const reads: string[] = [];
    const secrets = new ApplySecrets(desired, { readSecretValue: async (ns, name, key) => (reads.push(`${ns}/${name}:${key}`), `v:${ns}/${name}:${key}`) });
    let checked = 0;
    for (const t of desired.tenants) {
      for (const r of desired.resources) {
        if (r.target !== 'kubernetes' || r.kind !== 'Secret' || r.tenant !== t.name) continue;
        for (const v of Object.values((r.spec.data ?? {}) as Record<string, unknown>)) {
          if (!isSecretRef(v)) continue;
          const ref = v.secretRef;
          // What the old scan answered: the first Secret of the tenant (compiler order) holding ref.
          const first = desired.resources.find((x) => x.target === 'kubernetes' && x.kind === 'Secret' && x.tenant === t.name && Object.values((x.spec.data ?? {}) as Record<string, unknown>).some((y) => isSecretRef(y) && y.secretRef === ref))!;
          const key = Object.keys(first.spec.data as object).find((k) => { const y = (first.spec.data as Record<string, unknown>)[k]; return isSecretRef(y) && y.secretRef === ref; })!;
          expect(await secrets.stored(t.name, ref)).toBe(`v:${first.name}:${key}`);
          checked++;
        }
      }
      expect(await secrets.stored(t.name, 'no-such-ref')).toBeUndefined();
    }
    expect(checked).toBeGreaterThan(0);
    expect(await secrets.stored('no-such-tenant', 'x')).toBeUndefined();
  });
});

describe('canonicalJson', () => {
  // The definition it must keep to (fingerprints of saved plans depend on the exact bytes).
  const reference = (v: unknown): string => {
    if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
    if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`).join(',')}}`;
    return JSON.stringify(v) ?? 'null';
  };
  it('gives the same bytes as the map/join definition', () => {
    const desired = compile(exampleRepo());
    expect(canonicalJson(desired.resources)).toBe(reference(desired.resources));
    for (const v of [[], {}, null, 0, 'x"\n', [undefined, null, [], {}], { b: 1, a: [{ d: undefined, c: 'ü' }], '': true, 'z y': [1.5, -0] }]) expect(canonicalJson(v)).toBe(reference(v));
  });
});
