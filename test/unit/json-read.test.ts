import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSavedPlan } from '../../src/commands/apply.js';
import { compile } from '../../src/compile/compile.js';
import { UsageError } from '../../src/errors.js';
import { JsonReadError, readJsonFile } from '../../src/plan/json-read.js';
import { writeJsonFile } from '../../src/plan/json-stream.js';
import { computePlan, EMPTY_LIVE } from '../../src/plan/plan.js';
import { exampleRepo } from '../helpers/repo.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-json-read-'));
let n = 0;
const fileWith = (text: string): string => {
  const f = path.join(dir, `f${n++}.json`);
  writeFileSync(f, text);
  return f;
};

describe('reading JSON in blocks', () => {
  const plan = computePlan(compile(exampleRepo()), EMPTY_LIVE, { offline: true });
  const docs: unknown[] = [
    plan,
    { a: [1, -2.5e3, true, false, null, 'x'], b: {}, c: [], d: [[], {}, [[1]]], e: 'q"uo\\te\\\\"', f: '{[brackets]}, in a string', g: 'é ü 😀 \u2028' },
    [{ x: 1 }, [2, [3]], 'four', 5, null],
    'just a string',
    42,
    null,
    { ['__proto__']: { polluted: true }, ok: 1 },
    { deep: { er: { est: [{ a: { b: [1, { c: 'd' }] } }] } } },
  ];

  it('equals JSON.parse, for any layout, block size and depth', async () => {
    for (const doc of docs) {
      for (const text of [JSON.stringify(doc, null, 2), JSON.stringify(doc), ` \n${JSON.stringify(doc, null, '\t')}\r\n`]) {
        const f = fileWith(text);
        const want = JSON.parse(text) as unknown;
        for (const chunkBytes of doc === plan ? [61, 1 << 16] : [1, 3, 7, 64, 1 << 16]) {
          for (const depth of [0, 1, 2, 3]) {
            const got = await readJsonFile(f, { chunkBytes, depth });
            expect(got, `${text.slice(0, 60)} chunk ${chunkBytes} depth ${depth}`).toEqual(want);
          }
        }
      }
    }
    // __proto__ is an own key, as JSON.parse makes it, not the prototype
    const p = (await readJsonFile(fileWith('{"__proto__":{"polluted":true}}'), { depth: 1 })) as Record<string, unknown>;
    expect(Object.getPrototypeOf(p)).toBe(Object.prototype);
    expect(Object.keys(p)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reads a plan far larger than the largest string it may hold', async () => {
    const f = path.join(dir, 'plan.json');
    await writeJsonFile(f, plan);
    // (indented one level deeper in the file than alone: twice its length is ample)
    const largest = 2 * Math.max(...plan.changes.map((c) => JSON.stringify(c, null, 2).length), ...plan.cards.map((c) => JSON.stringify(c, null, 2).length));
    // No string longer than `largest` (plus a block of 4 KiB) is made: the file is many times that.
    expect(statSync(f).size).toBeGreaterThan(10 * (largest + 4096));
    expect(await readJsonFile(f, { chunkBytes: 4096, maxValueChars: largest })).toEqual(plan);
    await expect(readJsonFile(f, { chunkBytes: 4096, maxValueChars: 500 })).rejects.toThrow(/a value longer than 500 characters/);
  });

  it('rejects what JSON.parse rejects, saying where', async () => {
    for (const bad of ['{"a": 1', '{"a": 1,}', '[1, 2,]', '{"a" 1}', '{a: 1}', '[1 2]', '{"a": tru}', '{"a": 1} x', '', '[', '{"a": [1, {"b": }]}']) {
      const f = fileWith(bad);
      expect(() => JSON.parse(bad), bad).toThrow();
      for (const depth of [0, 2]) await expect(readJsonFile(f, { chunkBytes: 2, depth }), bad).rejects.toThrow(JsonReadError);
    }
    await expect(readJsonFile(fileWith('{"a": 1,\n "b": x}'))).rejects.toThrow(/at character 15/);
  });

  it('is how apply reads a saved plan', async () => {
    const f = path.join(dir, 'saved.json');
    await writeJsonFile(f, plan);
    expect(await readSavedPlan(f)).toEqual(plan);
    await expect(readSavedPlan(fileWith('{"not":"a plan"}'))).rejects.toThrow(/is not a plan saved by/);
    await expect(readSavedPlan(fileWith('{"format": "systemprompt.plan/v1", "changes": ['))).rejects.toThrow(UsageError);
    await expect(readSavedPlan(path.join(dir, 'missing.json'))).rejects.toThrow(/cannot read plan file .*ENOENT/);
  });
});
