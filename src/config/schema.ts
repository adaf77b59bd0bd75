import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { didYouMean, type Diagnostic, type DiagnosticCode } from './diagnostics.js';
import { formatPath, locate, pointerToPath, type PathSegment, type SourceFile } from './source.js';

/** The JSON Schemas in /schemas are the single source of truth for the config format. */
export type SchemaName = 'systemprompt' | 'tenant' | 'agent';

export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));
export const SCHEMA_IDS: Record<SchemaName, string> = {
  systemprompt: 'https://systemprompt.io/schemas/systemprompt.schema.json',
  tenant: 'https://systemprompt.io/schemas/tenant.schema.json',
  agent: 'https://systemprompt.io/schemas/agent.schema.json',
};

export function readSchema(name: SchemaName): Record<string, unknown> {
  return JSON.parse(readFileSync(`${SCHEMA_DIR}${name}.schema.json`, 'utf8')) as Record<string, unknown>;
}

export type ValidatorName = 'systemprompt' | 'tenant' | 'singleAgent' | 'agentMap';

let validators: Record<ValidatorName, ValidateFunction> | undefined;

/** Compiled once, on first use (no I/O at import time). */
function getValidators(): Record<ValidatorName, ValidateFunction> {
  if (validators) return validators;
  const ajv = new Ajv2020({ allErrors: true, strict: false, verbose: true });
  for (const name of ['systemprompt', 'tenant', 'agent'] as const) ajv.addSchema(readSchema(name));
  const get = (ref: string): ValidateFunction => {
    const v = ajv.getSchema(ref);
    if (!v) throw new Error(`schema ${ref} not found`);
    return v;
  };
  validators = {
    systemprompt: get(SCHEMA_IDS.systemprompt),
    tenant: get(SCHEMA_IDS.tenant),
    singleAgent: get(`${SCHEMA_IDS.agent}#/$defs/singleAgent`),
    agentMap: get(`${SCHEMA_IDS.agent}#/$defs/agentMap`),
  };
  return validators;
}

/** Validate a parsed file against one schema; every violation becomes a positioned diagnostic. */
export function validateAgainst(which: ValidatorName, source: SourceFile): Diagnostic[] {
  const validate = getValidators()[which];
  if (validate(source.value)) return [];
  return errorsToDiagnostics(validate.errors ?? [], source);
}

const IGNORED = new Set(['if', 'then', 'else', 'oneOf', 'anyOf', 'allOf', 'not', '$ref']);

function errorsToDiagnostics(errors: ErrorObject[], source: SourceFile): Diagnostic[] {
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (IGNORED.has(e.keyword)) continue;
    const base = pointerToPath(e.instancePath, source.value);
    const d = toDiagnostic(e, base, source);
    if (!d) continue;
    const key = `${d.line}:${d.col}:${d.code}:${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out;
}

function toDiagnostic(e: ErrorObject, base: PathSegment[], source: SourceFile): Diagnostic | undefined {
  const mk = (code: DiagnosticCode, path: PathSegment[], message: string, hint?: string, at: 'key' | 'value' = 'value'): Diagnostic => {
    const pos = locate(source, path, at);
    return { code, severity: 'error', file: source.file, line: pos.line, col: pos.col, path: formatPath(path), message, ...(hint ? { hint } : {}) };
  };
  const params = e.params as Record<string, unknown>;
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
  // An error about a mapping key (propertyNames) points at the key itself.
  const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
  if (propertyName !== undefined) {
    const path = [...base, propertyName];
    return mk('SP013', path, `key ${JSON.stringify(propertyName)} ${describe(e)}`, patternHint(e), 'key');
  }
  if (e.keyword === 'propertyNames') return undefined; // reported through its sub-error above
  switch (e.keyword) {
    case 'additionalProperties':
    case 'unevaluatedProperties': {
      const field = String(params.additionalProperty ?? params.unevaluatedProperty);
      const known = Object.keys((parent.properties as Record<string, unknown> | undefined) ?? {}).filter((k) => k !== '$schema');
      const guess = didYouMean(field, known);
      const hint = guess ? `did you mean \`${guess}\`?` : known.length ? `allowed here: ${known.join(', ')}` : undefined;
      return mk('SP012', [...base, field], `unknown field \`${field}\``, hint, 'key');
    }
    case 'required': {
      const field = String(params.missingProperty);
      return mk('SP011', base, `missing required field \`${field}\``, `add \`${field}:\` here`);
    }
    case 'type': {
      const expected = String(params.type).replace(',', ' or ');
      return mk('SP010', base, `expected ${article(expected)}, found ${kindOf(e.data)}`);
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map((v) => String(v));
      const guess = typeof e.data === 'string' ? didYouMean(e.data, allowed) : undefined;
      return mk('SP013', base, `${JSON.stringify(e.data)} is not allowed; expected one of: ${allowed.join(', ')}`, guess ? `did you mean \`${guess}\`?` : undefined);
    }
    case 'const':
      return mk('SP013', base, `must be ${JSON.stringify(params.allowedValue)}`);
    default:
      return mk('SP013', base, `${shortValue(e.data)} ${describe(e)}`, patternHint(e));
  }
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'pattern':
      return patternName(String(p.pattern)) ? `is not ${patternName(String(p.pattern))}` : `does not match the pattern ${String(p.pattern)}`;
    case 'maxLength':
      return `is longer than ${String(p.limit)} characters`;
    case 'minLength':
      return Number(p.limit) === 1 ? 'must not be empty' : `is shorter than ${String(p.limit)} characters`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${String(p.comparison)} ${String(p.limit)}`;
    case 'uniqueItems':
      return `holds a repeated item (items ${String(p.j)} and ${String(p.i)} are equal)`;
    case 'maxItems':
      return `has more than ${String(p.limit)} items`;
    case 'minItems':
      return `has fewer than ${String(p.limit)} items`;
    case 'minProperties':
      return `needs at least ${String(p.limit)} entr${Number(p.limit) === 1 ? 'y' : 'ies'}`;
    case 'maxProperties':
      return `has more than ${String(p.limit)} entries`;
    default:
      return e.message ?? 'is not valid';
  }
}

const PATTERN_NAMES: Array<[RegExp, string, string]> = [
  [/^\^\[a-z0-9\]\(\[-a-z0-9\]\*\[a-z0-9\]\)\?\$$/, 'a DNS-1123 label', 'use lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters'],
  [/@/, 'a valid email address', 'write it as name@example.com'],
  [/^\^\[0-9\]\+/, 'a Kubernetes quantity', 'e.g. "4", "500m", "8Gi"'],
  [/^\^\[a-z\]\[a-z0-9_\.-\]\*\$$/, 'a valid scope name', 'use lowercase letters, digits, `_`, `.` and `-`, starting with a letter'],
  [/\\\{\\\{/, 'a valid scope (templates: {{tenant_id}}, {{user_id}})', 'use lowercase letters, digits, `_.:-` and the templates {{tenant_id}} or {{user_id}}'],
];

function patternName(pattern: string): string | undefined {
  return PATTERN_NAMES.find(([re]) => re.test(pattern))?.[1];
}

function patternHint(e: ErrorObject): string | undefined {
  if (e.keyword !== 'pattern') return undefined;
  return PATTERN_NAMES.find(([re]) => re.test(String((e.params as Record<string, unknown>).pattern)))?.[2];
}

function article(t: string): string {
  const words: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', null: 'null' };
  return t
    .split(' or ')
    .map((w) => words[w] ?? w)
    .join(' or ');
}

export function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(truncate(v))}`;
  return `${typeof v} ${String(v)}`;
}

/** A value as it may appear in a message: scalars quoted and cut short, collections named. */
function shortValue(v: unknown): string {
  if (Array.isArray(v)) return `the list (${v.length} items)`;
  if (v && typeof v === 'object') return 'the mapping';
  return JSON.stringify(truncate(v)) ?? String(v);
}

function truncate(v: unknown): unknown {
  return typeof v === 'string' && v.length > 80 ? `${v.slice(0, 77)}...` : v;
}
