import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Alias, parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { CODES, renderDiagnostics, type Diagnostic } from '../../src/config/diagnostics.js';
import { readRepositoryFiles } from '../../src/config/files.js';
import { loadRepository } from '../../src/config/repository.js';
import { MAX_ALIAS_COUNT, MAX_FILE_BYTES, aliasOverLimit, firstInvalidUtf8, parseSource, positionAt } from '../../src/config/source.js';
import { CARD_URL_FIELDS, urlProblem } from '../../src/config/urls.js';
import { bufferIo } from '../helpers/io.js';
import { PROJECT_ROOT } from '../helpers/repo.js';

const FIXTURES = path.resolve(__dirname, '../fixtures/diagnostics');

async function renderFixture(name: string): Promise<{ rendered: string; diagnostics: Diagnostic[] }> {
  const result = loadRepository(await readRepositoryFiles(path.join(FIXTURES, name)));
  return { rendered: renderDiagnostics(result.diagnostics, (f) => result.sources.get(f)), diagnostics: result.diagnostics };
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The alias at which the `yaml` package itself gives up, caught by wrapping Alias#resolve for one call. */
function aliasYamlRejects(text: string): { line: number; col: number } | undefined {
  const doc = parseDocument(text);
  const original = Alias.prototype.resolve;
  let thrower: Alias | undefined;
  Alias.prototype.resolve = function (this: Alias, ...args: Parameters<typeof original>) {
    try {
      return original.apply(this, args);
    } catch (e) {
      thrower ??= this;
      throw e;
    }
  };
  try {
    doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch {
    // expected for a bomb
  } finally {
    Alias.prototype.resolve = original;
  }
  return thrower?.range ? positionAt(text, thrower.range[0]) : undefined;
}

function aliasWeReport(text: string): { line: number; col: number } | undefined {
  const alias = aliasOverLimit(parseDocument(text), MAX_ALIAS_COUNT);
  return alias?.range ? positionAt(text, alias.range[0]) : undefined;
}

/** Documents the yaml package refuses to expand, each crossing the limit at a different alias. */
const bombs: Record<string, string> = {
  'the fixture': readFileSync(path.join(FIXTURES, 'alias-bomb/tenants/acme.yaml'), 'utf8'),
  'a flat list of 101 references to one scalar': `name: x\na: &a v\nl:\n${'  - *a\n'.repeat(101)}`,
  'nested mappings': [
    'a: &a { k1: v, k2: v, k3: v }',
    'b: &b { k1: *a, k2: *a, k3: *a, k4: *a, k5: *a, k6: *a, k7: *a }',
    'c: &c { k1: *b, k2: *b, k3: *b, k4: *b, k5: *b, k6: *b, k7: *b }',
    'd: &d { k1: *c, k2: *c, k3: *c }',
  ].join('\n'),
  'an anchor redefined later (the alias refers to the latest one)': [
    'a: &a [x, x]',
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'a2: &a [y]',
    'c: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'd: &d [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
  ].join('\n'),
  'aliases used as keys': `name: x\na: &a k\nm:\n${'  *a : v\n'.repeat(120)}`,
};

describe('alias bomb (SP003) points at the alias that crossed the limit', () => {
  it('renders tenants/acme.yaml:5:8, the first *c, whose expansion goes over 100', async () => {
    const { rendered } = await renderFixture('alias-bomb');
    expect(rendered).toContain('tenants/acme.yaml:5:8: error SP003: too many alias references (more than 100) at alias `*c`');
    expect(rendered).toContain(' 5 | d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n   |        ^\n');
  });


  it.each(Object.keys(bombs))('finds the same alias as the yaml package does: %s', (name) => {
    const text = bombs[name]!;
    const theirs = aliasYamlRejects(text);
    expect(theirs, 'the yaml package rejects this document').toBeDefined();
    expect(aliasWeReport(text)).toEqual(theirs);
    const parsed = parseSource('tenants/x.yaml', enc(text));
    expect(parsed.diagnostics.map((d) => [d.code, d.line, d.col])).toEqual([['SP003', theirs!.line, theirs!.col]]);
  });

  it('finds nothing in a document the yaml package accepts, at the limit', () => {
    const text = `name: x\na: &a v\nl:\n${'  - *a\n'.repeat(99)}`;
    expect(aliasYamlRejects(text)).toBeUndefined();
    expect(aliasWeReport(text)).toBeUndefined();
    expect(parseSource('tenants/x.yaml', enc(text)).diagnostics).toEqual([]);
  });
});

describe('whole-file problems (SP005) point at 1:1', () => {
  it('a binary file', async () => {
    const { rendered } = await renderFixture('binary-junk');
    expect(rendered).toBe(
      'tenants/acme.yaml:1:1: error SP005: file contains NUL bytes: this is binary data, not YAML text\n' +
        '  hint: remove the file or replace it with a YAML document\n1 error\n',
    );
  });

  it('a file that is not UTF-8, naming the first bad byte in the message', async () => {
    const { rendered } = await renderFixture('not-utf8');
    expect(rendered).toContain('tenants/cafe.yaml:1:1: error SP005: file is not valid UTF-8 text (byte 0xE9 at line 2, column 19)\n');
    expect(rendered).toContain('tenants/latin1.yaml:1:1: error SP005: file is not valid UTF-8 text (byte 0xE9 at line 1, column 10)\n');
  });

  it('a file over the size limit (generated here, not committed): validate renders tenants/big.yaml:1:1 and exits 1', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-too-large-'));
    try {
      mkdirSync(path.join(dir, 'tenants'));
      writeFileSync(path.join(dir, 'tenants/default.yaml'), 'name: default\n');
      const head = 'name: big\nusers:\n';
      const user = '  - email: someone@example.com\n';
      const body = head + user.repeat(Math.ceil((MAX_FILE_BYTES + 1 - head.length) / user.length));
      writeFileSync(path.join(dir, 'tenants/big.yaml'), body);
      const size = Buffer.byteLength(body);
      expect(size).toBeGreaterThan(MAX_FILE_BYTES);

      const io = bufferIo();
      expect(await run(['node', 'systemprompt', 'validate', '--dir', dir], io)).toBe(1);
      expect(io.stderr).toBe(
        `tenants/big.yaml:1:1: error SP005: file is ${size} bytes, over the ${MAX_FILE_BYTES}-byte limit for a config file\n` +
          '  hint: split it, or check that this is the file you meant\n1 error\n',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('systemprompt.yml (misspelt), a tenant file name that is not a label, an agent file name that is not a label, a missing default tenant', () => {
    const result = loadRepository(
      new Map<string, string>([
        ['systemprompt.yml', 'tenancy: {}\n'],
        ['tenants/Bad_Name.yaml', 'name: bad-name\n'],
        ['services/agents/Bot.yaml', 'tenant_aware: true\n'],
      ]),
    );
    const rendered = renderDiagnostics(result.diagnostics, (f) => result.sources.get(f));
    expect(rendered).toContain('systemprompt.yml:1:1: error SP005: project settings are read from systemprompt.yaml');
    expect(rendered).toContain('tenants/Bad_Name.yaml:1:1: error SP020: tenant file name "Bad_Name" is not a DNS-1123 label');
    expect(rendered).toContain('services/agents/Bot.yaml:1:1: error SP020: agent name "Bot" (from the file name) is not a DNS-1123 label');
    expect(rendered).toContain('systemprompt.yaml:1:1: warning SP035: default tenant `default` has no file tenants/default.yaml');
    for (const d of result.diagnostics) expect([d.line, d.col], JSON.stringify(d)).not.toContain(0);
  });

  it('every loader diagnostic in a pile of broken inputs has a line and a column', () => {
    const inputs: Array<[string, Uint8Array | string]> = [
      ['tenants/a.yaml', new Uint8Array([0x6e, 0x3a, 0x20, 0xff])],
      ['tenants/b.yaml', new Uint8Array([0, 1, 2])],
      ['tenants/c.yaml', ''],
      ['tenants/d.yaml', '---\na: 1\n---\nb: 2\n'],
      ['tenants/e.yaml', 'a: [\n'],
      ['tenants/f.yaml', 'a: 1\na: 2\n'],
      ['tenants/g.yaml', '- 1\n'],
      ['tenants/h.yaml', 'a: *nowhere\n'],
      ['tenants/i.yaml', bombs['the fixture']!],
      ['tenants/j.yaml', '"text"\n'],
      ['tenants/k.yaml', '\t\tname: k\n'],
    ];
    for (const [file, content] of inputs) {
      const { diagnostics } = parseSource(file, content);
      expect(diagnostics.length, file).toBeGreaterThan(0);
      for (const d of diagnostics) {
        expect(d.line, JSON.stringify(d)).toBeGreaterThan(0);
        expect(d.col, JSON.stringify(d)).toBeGreaterThan(0);
      }
    }
  });
});

describe('an alias with no anchor before it is a syntax error at the alias, not an alias bomb', () => {
  it.each([
    ['an anchor that does not exist', 'name: x\nusers: *nowhere\n', 'nowhere', 2, 8],
    ['an anchor defined after the alias', 'name: x\nagents: [*later]\nother: &later [a]\n', 'later', 2, 10],
  ])('%s', (_name, text, anchor, line, col) => {
    expect(parseSource('tenants/x.yaml', text).diagnostics.map((d) => [d.code, d.line, d.col, d.message])).toEqual([
      ['SP001', line, col, `YAML syntax: alias \`*${anchor}\` refers to no anchor \`&${anchor}\` before it`],
    ]);
  });
});

describe('firstInvalidUtf8', () => {
  it.each([
    ['overlong encoding', [0x61, 0xc0, 0x80], 1],
    ['UTF-16 surrogate', [0xed, 0xa0, 0x80], 0],
    ['truncated at the end', [0x61, 0x0a, 0x62, 0xe2, 0x82], 3],
    ['beyond U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 0],
    ['a lone continuation byte', [0x41, 0x80], 1],
    ['F5 lead byte', [0xf5, 0x80, 0x80, 0x80], 0],
  ])('%s', (_name, bytes, offset) => {
    expect(firstInvalidUtf8(new Uint8Array(bytes))?.offset).toBe(offset);
  });

  it('counts lines and columns in characters', () => {
    // "a: 1\n" is 5 bytes, 'b: "h' 5, é 2, the emoji 4 (two UTF-16 units): 0xFF is byte 16, column 9.
    const bytes = new Uint8Array([...enc('a: 1\nb: "h\u00e9\u{1F600}'), 0xff, 0x0a]);
    expect(firstInvalidUtf8(bytes)).toEqual({ offset: 16, line: 2, col: 9 });
  });

  it('agrees with a fatal TextDecoder on random bytes', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let seed = 12345;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 16) % n;
    };
    // Mostly ASCII, continuation bytes and lead bytes, so that both valid and broken sequences occur.
    const byte = (): number => [() => random(0x80), () => 0x80 + random(0x40), () => 0xc0 + random(0x40)][random(3)]!();
    for (let n = 0; n < 5000; n++) {
      const bytes = new Uint8Array(Array.from({ length: 1 + random(12) }, byte));
      let valid = true;
      try {
        decoder.decode(bytes);
      } catch {
        valid = false;
      }
      const bad = firstInvalidUtf8(bytes);
      expect(bad === undefined, Buffer.from(bytes).toString('hex')).toBe(valid);
      if (bad) expect(() => decoder.decode(bytes.subarray(0, bad.offset))).not.toThrow();
    }
  });
});

describe('agent card URLs (SP037)', () => {
  it('the bad-card-url fixture: one SP037 per bad URL, at the value', async () => {
    const { rendered, diagnostics } = await renderFixture('bad-card-url');
    expect(rendered).toContain(
      'services/agents/welcome.yaml:3:8: error SP037: "htp:/localhost:8080/api/v1/agents/welcome" is not an absolute http(s) URL: its scheme is `htp` (at card.url)\n' +
        '  hint: did you mean `http://localhost:8080/api/v1/agents/welcome`?\n',
    );
    expect(rendered).toContain('services/agents/welcome.yaml:4:12: error SP037: "not a url" is not an absolute http(s) URL (at card.iconUrl)\n');
    expect(rendered).toContain('services/agents/welcome.yaml:8:10: error SP037: "http:/example.com" is not an absolute http(s) URL: `//` must follow `http:` (at card.provider.url)\n');
    expect(rendered).toContain('services/agents/welcome.yaml:24:29: error SP037: "http//localhost:8080/authorize" is not an absolute http(s) URL: `:` is missing after `http` (at card.securitySchemes.oauth2.flows.authorizationCode.authorizationUrl)\n');
    expect(rendered).toContain('services/agents/more.yaml:10:25: error SP037: "localhost:8080/token" is not an absolute http(s) URL: it has no scheme (at agents.helper.card.securitySchemes.oauth2.flows.clientCredentials.tokenUrl)\n');
    expect(diagnostics.every((d) => d.code === 'SP037')).toBe(true);
    const paths = diagnostics.map((d) => `${d.file} ${d.path}`).sort();
    expect(paths).toEqual(
      [
        'services/agents/more.yaml agents.helper.card.securitySchemes.oauth2.flows.clientCredentials.tokenUrl',
        'services/agents/welcome.yaml card.url',
        'services/agents/welcome.yaml card.iconUrl',
        'services/agents/welcome.yaml card.documentationUrl',
        'services/agents/welcome.yaml card.provider.url',
        'services/agents/welcome.yaml card.additionalInterfaces[0].url',
        'services/agents/welcome.yaml card.capabilities.extensions[0].uri',
        'services/agents/welcome.yaml card.securitySchemes.oauth2.oauth2MetadataUrl',
        'services/agents/welcome.yaml card.securitySchemes.oauth2.flows.authorizationCode.authorizationUrl',
        'services/agents/welcome.yaml card.securitySchemes.oauth2.flows.authorizationCode.tokenUrl',
        'services/agents/welcome.yaml card.securitySchemes.oauth2.flows.authorizationCode.refreshUrl',
        'services/agents/welcome.yaml card.securitySchemes.oidc.openIdConnectUrl',
      ].sort(),
    );
  });

  it('validate prints them and exits 1', async () => {
    const io = bufferIo();
    expect(await run(['node', 'systemprompt', 'validate', '--dir', path.join(FIXTURES, 'bad-card-url')], io)).toBe(1);
    expect(io.stderr).toContain('services/agents/welcome.yaml:4:12: error SP037: "not a url" is not an absolute http(s) URL (at card.iconUrl)');
    expect(io.stderr).toMatch(/\n12 errors\n$/);
  });

  it.each([
    'http://localhost:8080/api/v1/agents/welcome',
    'https://example.com',
    'HTTPS://Example.com/a?b=c#d',
    'http://127.0.0.1:8080/x',
    'http://[::1]:8080/x',
    'https://user@example.com/path',
    'https://example.com/{{tenant_id}}',
  ])('accepts %s', (url) => {
    expect(urlProblem(url)).toBeUndefined();
  });

  it.each([
    ['htp:/localhost', 'its scheme is `htp`'],
    ['not a url', 'is not an absolute http(s) URL'],
    ['', 'the URL is empty'],
    ['   ', 'the URL is empty'],
    ['http:/localhost', '`//` must follow `http:`'],
    ['http:localhost', '`//` must follow `http:`'],
    ['http//localhost', '`:` is missing after `http`'],
    ['//example.com/x', 'it has no scheme'],
    ['/relative/path', 'is a relative URL'],
    ['example.com/x', 'it has no scheme'],
    ['localhost:8080', 'it has no scheme'],
    ['ftp://example.com', 'its scheme is `ftp`'],
    ['mailto:someone@example.com', 'its scheme is `mailto`'],
    ['https://', 'it names no host'],
    ['https://user@', 'it names no host'],
    ['https://example.com/a b', 'it contains a space'],
    ['https://exa mple.com', 'it contains a space'],
    ['https://example.com/\tx', 'it contains the character U+0009'],
    ['https://localhost:99999/', 'the host or port `localhost:99999` is not valid'],
    ['http://exa%mple.com', 'is not valid'],
  ])('rejects %j: %s', (url, reason) => {
    expect(urlProblem(url)?.message).toContain(reason);
  });

  it('takes any scheme for an extension uri, but still an absolute URI', () => {
    expect(urlProblem('urn:example:ext', { anyScheme: true })).toBeUndefined();
    expect(urlProblem('https://example.com/ext/v1', { anyScheme: true })).toBeUndefined();
    expect(urlProblem('no scheme here', { anyScheme: true })?.message).toBe('"no scheme here" is not an absolute URI');
  });

  /** Every property of a JSON Schema whose name ends in Url/url/uri, as a path with `*` for any key or index. */
  function urlFieldsOf(schema: Record<string, unknown>, start: unknown): string[] {
    const defs = (schema.$defs ?? {}) as Record<string, unknown>;
    const out = new Set<string>();
    const walk = (node: unknown, at: string[], seen: Set<unknown>): void => {
      if (!node || typeof node !== 'object' || seen.has(node)) return;
      const n = node as Record<string, unknown>;
      const next = new Set(seen).add(node);
      if (typeof n.$ref === 'string' && n.$ref.startsWith('#/$defs/')) walk(defs[n.$ref.slice('#/$defs/'.length)], at, next);
      for (const k of ['allOf', 'anyOf', 'oneOf']) for (const sub of (n[k] as unknown[] | undefined) ?? []) walk(sub, at, next);
      if (n.then) walk(n.then, at, next);
      for (const [name, sub] of Object.entries((n.properties ?? {}) as Record<string, unknown>)) {
        if (/(url|uri)$/i.test(name)) out.add([...at, name].join('.'));
        walk(sub, [...at, name], next);
      }
      if (n.items) walk(n.items, [...at, '*'], next);
      if (n.additionalProperties && typeof n.additionalProperties === 'object') walk(n.additionalProperties, [...at, '*'], next);
    };
    walk(start, [], new Set());
    return [...out].sort();
  }

  it('checks every URL-valued field of the agent schema and of the A2A card schema', () => {
    const matches = (pattern: readonly string[], field: string): boolean => {
      const segs = field.split('.');
      return segs.length === pattern.length && pattern.every((p, i) => p === '*' || p === segs[i]);
    };
    const agent = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'schemas/agent.schema.json'), 'utf8')) as Record<string, unknown>;
    const a2a = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'schemas/a2a-agent-card.schema.json'), 'utf8')) as Record<string, unknown>;
    for (const fields of [urlFieldsOf(agent, (agent.$defs as Record<string, unknown>).agentCard), urlFieldsOf(a2a, a2a)]) {
      expect(fields.length).toBeGreaterThanOrEqual(CARD_URL_FIELDS.length);
      expect(fields.filter((f) => !CARD_URL_FIELDS.some((c) => matches(c.path, f))), 'URL fields not checked').toEqual([]);
      expect(CARD_URL_FIELDS.filter((c) => !fields.some((f) => matches(c.path, f))).map((c) => c.path.join('.')), 'checked paths the schema lacks').toEqual([]);
    }
    expect(urlFieldsOf(agent, (agent.$defs as Record<string, unknown>).agentCard)).toContain('securitySchemes.*.flows.authorizationCode.tokenUrl');
  });
});

describe('README', () => {
  it('lists every diagnostic code, SP037 among them', () => {
    const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('## Diagnostics');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const missing = Object.keys(CODES).filter((code) => !section.includes(code));
    expect(missing).toEqual([]);
    expect(section).toMatch(/\| SP037 \| agent card URL/);
  });
});
