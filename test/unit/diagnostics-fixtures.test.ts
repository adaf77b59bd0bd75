import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderDiagnostics } from '../../src/config/diagnostics.js';
import { readRepositoryFiles } from '../../src/config/files.js';
import { loadRepository } from '../../src/config/repository.js';
import { run } from '../../src/cli/main.js';
import { bufferIo } from '../helpers/io.js';

const root = path.resolve(__dirname, '../fixtures/diagnostics');
const scenarios = readdirSync(root).sort();

describe('diagnostic scenarios (one fixture folder each)', () => {
  it.each(scenarios)('%s', async (name) => {
    const dir = path.join(root, name);
    const result = loadRepository(await readRepositoryFiles(dir));
    const rendered = renderDiagnostics(result.diagnostics, (f) => result.sources.get(f));
    await expect(rendered).toMatchFileSnapshot(path.join(dir, 'expected.txt'));
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    if (name.startsWith('valid-') || name === 'missing-default-tenant') {
      expect(errors).toEqual([]);
      expect(result.repo).toBeDefined();
    } else {
      expect(errors.length).toBeGreaterThan(0);
      expect(result.repo).toBeUndefined();
    }
    for (const d of result.diagnostics) {
      expect(d.file, JSON.stringify(d)).toMatch(/^(systemprompt\.ya?ml|tenants\/.+|services\/agents\/.+)$/);
      // Every diagnostic names file:line:col; a problem of the whole file is at 1:1.
      expect(d.line, JSON.stringify(d)).toBeGreaterThan(0);
      expect(d.col, JSON.stringify(d)).toBeGreaterThan(0);
      expect(rendered).toContain(`${d.file}:${d.line}:${d.col}: ${d.severity} ${d.code}:`);
    }
  });

  it.each(scenarios.filter((s) => !s.startsWith('valid-') && s !== 'missing-default-tenant'))('validate exits 1 on %s without a stack trace', async (name) => {
    const io = bufferIo();
    const code = await run(['node', 'systemprompt', 'validate', '--dir', path.join(root, name)], io);
    expect(code).toBe(1);
    expect(io.stderr).toMatch(/: error SP\d{3}: /);
    expect(io.stderr).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);
    expect(io.stderr).not.toContain('internal error');
  });
});
