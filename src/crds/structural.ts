/**
 * JSON Schema (draft 2020-12, the subset schemas/ uses) -> a Kubernetes *structural* OpenAPI v3
 * schema, as the API server requires for a CustomResourceDefinition (apiextensions.k8s.io/v1).
 *
 * What the API server refuses under `fieldValidation=Strict`, and what this writes instead
 * (measured on kube-apiserver v1.34.4, see test/integration/crds.test.ts):
 * - `$ref`/`$defs`: inlined (a recursive reference becomes `x-kubernetes-preserve-unknown-fields`).
 * - `type: [string, integer]`: `x-kubernetes-int-or-string: true` + `anyOf: [{type: integer}, {type: string}]`.
 * - `type: [string, number]` (a quantity such as `2.3` or `500m`): int-or-string admits integers only
 *   (2.3 is refused) and the API server compiles no CEL rule on a node without a type, so the node
 *   keeps no `type`, gets `x-kubernetes-preserve-unknown-fields: true`, and keeps `pattern` and the
 *   bounds, which the server applies to strings and numbers respectively. An object, list or boolean
 *   there is not refused by the server (the JSON Schema refuses it).
 * - `const`: `enum: [v]`; `enum` without `type`: the type of its values.
 * - `if`/`then` inside `allOf` (a discriminated union such as a security scheme's `type`): the
 *   branches' properties are merged into the parent and each branch's `required` becomes a CEL rule.
 * - `examples`, `$schema`, `$id`, `$comment`, `title`: dropped (the keywords, not properties of those names).
 * - `uniqueItems`: `x-kubernetes-list-type: set` for scalar items (dropped, with a note, otherwise).
 * - `additionalProperties: false` next to `properties`: dropped (unknown fields are pruned, or refused
 *   under Strict validation and server-side apply).
 * - `propertyNames`: a CEL rule over the map's keys, only for a map not inside a list or map (there
 *   the server's CEL cost estimate exceeds its budget: the rule is dropped, with a note).
 * - `patternProperties` with one pattern: `additionalProperties` with its schema + the same key rule.
 * - CEL names properties as the server declares them: `in` is `__in__`, `a-b` is `a__dash__b`.
 * - an object with neither `properties` nor `additionalProperties` (free-form JSON), a node with no
 *   type at all, or `oneOf`/`anyOf` whose branches carry types: `x-kubernetes-preserve-unknown-fields: true`.
 * - `pattern` must be RE2: lookaround and back-references make generation fail.
 * Every lossy step is recorded as a note, which the CRD files list in their header.
 */

export type Schema = Record<string, unknown>;

export interface ConversionNote {
  /** Field path in the custom resource, e.g. `spec.card.capabilities.extensions[].params`. */
  path: string;
  kind: 'preserve-unknown' | 'dropped' | 'cel';
  what: string;
}

export interface Converted {
  schema: Schema;
  notes: ConversionNote[];
}

/** Keywords dropped without trace: annotations and JSON Schema plumbing. */
const DROPPED = new Set(['$schema', '$id', '$comment', '$defs', 'definitions', 'examples', 'title', 'readOnly', 'writeOnly', 'deprecated']);
/** Keywords handled below; anything else makes generation fail, so that a new schema feature is never silently lost. */
const HANDLED = new Set([
  '$ref', 'type', 'description', 'default', 'enum', 'const', 'format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'items', 'minItems', 'maxItems', 'uniqueItems', 'properties', 'required',
  'additionalProperties', 'patternProperties', 'propertyNames', 'minProperties', 'maxProperties', 'allOf', 'oneOf', 'anyOf', 'if', 'then', 'else',
]);
const SCALARS = new Set(['string', 'integer', 'number', 'boolean']);

export class SchemaConversionError extends Error {}

/** Convert `schema` (found in the document `root`, against which `#/...` references resolve). */
export function toStructural(schema: Schema, root: Schema, path: string): Converted {
  const notes: ConversionNote[] = [];
  const out = convert(schema, { root, notes, refs: [] }, path);
  return { schema: out, notes };
}

interface Ctx {
  root: Schema;
  notes: ConversionNote[];
  /** References being expanded on the way here: a repeat is recursion. */
  refs: string[];
  /** Inside a list or a map: a CEL rule here runs once per element, which multiplies its estimated cost. */
  repeated?: boolean;
}

function isObject(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function resolvePointer(root: Schema, ref: string, path: string): Schema {
  if (!ref.startsWith('#/')) throw new SchemaConversionError(`${path}: only local references are supported, not ${ref}`);
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = isObject(node) ? node[key] : undefined;
  }
  if (!isObject(node)) throw new SchemaConversionError(`${path}: reference ${ref} not found`);
  return node;
}

/** The referenced schema with the referring node's own keywords on top (`required` lists are joined). */
function mergeRef(target: Schema, own: Schema): Schema {
  const merged: Schema = { ...target, ...own };
  if (Array.isArray(target.required) && Array.isArray(own.required)) merged.required = [...new Set([...(target.required as string[]), ...(own.required as string[])])];
  return merged;
}

function preserveUnknown(node: Schema, ctx: Ctx, path: string, why: string): Schema {
  ctx.notes.push({ path, kind: 'preserve-unknown', what: why });
  const out: Schema = {};
  if (typeof node.description === 'string') out.description = node.description;
  if (node.type === 'object') out.type = 'object';
  out['x-kubernetes-preserve-unknown-fields'] = true;
  return out;
}

function convert(input: Schema | boolean, ctx: Ctx, path: string): Schema {
  if (input === true) return preserveUnknown({}, ctx, path, 'any value (`true` schema)');
  if (input === false) throw new SchemaConversionError(`${path}: a \`false\` schema cannot be expressed`);
  let node = input;
  // $ref: inline, with this node's keywords on top.
  let refs = ctx.refs;
  while (typeof node.$ref === 'string') {
    const ref = node.$ref;
    const { $ref: _ignored, ...own } = node;
    const target = mergeRef(resolvePointer(ctx.root, ref, path), own);
    if (refs.includes(ref)) return preserveUnknown(target, ctx, path, `recursive reference ${ref}`);
    node = target;
    refs = [...refs, ref];
  }
  const c: Ctx = { ...ctx, refs };
  for (const k of Object.keys(node)) {
    if (!HANDLED.has(k) && !DROPPED.has(k)) throw new SchemaConversionError(`${path}: JSON Schema keyword ${k} is not supported by the CRD generator`);
  }
  const rules: Schema[] = [];
  node = flattenAllOf(node, c, path, rules);

  if (node.if !== undefined || node.then !== undefined || node.else !== undefined) {
    throw new SchemaConversionError(`${path}: if/then/else outside allOf is not supported`);
  }
  const junctions = (['oneOf', 'anyOf'] as const).filter((k) => Array.isArray(node[k]));
  for (const k of junctions) {
    const branches = node[k] as unknown[];
    const onlyRequired = branches.every((b) => isObject(b) && Object.keys(b).every((key) => key === 'required'));
    if (!onlyRequired) return preserveUnknown(node, c, path, `${k} with typed branches`);
  }

  const out: Schema = {};
  if (typeof node.description === 'string') out.description = node.description;

  const enumValues = node.const !== undefined ? [node.const] : Array.isArray(node.enum) ? (node.enum as unknown[]) : undefined;
  let type = node.type;
  if (type === undefined) type = inferType(node, enumValues);
  if (Array.isArray(type)) {
    const types = [...new Set(type as string[])].filter((t) => t !== 'null').sort();
    if (type.includes('null')) out.nullable = true;
    if (types.length === 1) type = types[0];
    else if (types.join(',') === 'integer,string') {
      out['x-kubernetes-int-or-string'] = true;
      out.anyOf = [{ type: 'integer' }, { type: 'string' }];
      type = undefined;
      copyScalarKeywords(node, out, path);
      if (node.default !== undefined) out.default = node.default;
    } else if (types.join(',') === 'number,string') {
      return stringOrNumber(node, out, c, path);
    } else {
      return preserveUnknown(node, c, path, `type ${JSON.stringify(node.type)}`);
    }
  }
  if (type === undefined) {
    if (out['x-kubernetes-int-or-string']) return finish(out, rules);
    return preserveUnknown(node, c, path, 'no type');
  }
  if (typeof type !== 'string') throw new SchemaConversionError(`${path}: bad type ${JSON.stringify(type)}`);
  out.type = type;

  if (SCALARS.has(type)) {
    if (enumValues) out.enum = enumValues;
    copyScalarKeywords(node, out, path);
  } else if (type === 'array') {
    for (const k of ['minItems', 'maxItems'] as const) if (node[k] !== undefined) out[k] = node[k];
    const items = isObject(node.items) || typeof node.items === 'boolean' ? convert(node.items as Schema | boolean, { ...c, repeated: true }, `${path}[]`) : undefined;
    if (node.uniqueItems === true) {
      if (items && typeof items.type === 'string' && SCALARS.has(items.type) && !items.nullable) out['x-kubernetes-list-type'] = 'set';
      else c.notes.push({ path, kind: 'dropped', what: 'uniqueItems (items are not scalars)' });
    }
    if (items) out.items = items;
    else return preserveUnknown(node, c, path, 'array without items');
  } else if (type === 'object') {
    const result = convertObject(node, out, c, path, rules);
    if (result) return result;
  } else {
    throw new SchemaConversionError(`${path}: type ${type} is not supported`);
  }
  if (node.default !== undefined) out.default = node.default;
  for (const k of junctions) out[k] = node[k];
  return finish(out, rules);
}

function finish(out: Schema, rules: Schema[]): Schema {
  if (rules.length > 0) out['x-kubernetes-validations'] = rules;
  return out;
}

function inferType(node: Schema, enumValues: unknown[] | undefined): string | undefined {
  if (enumValues && enumValues.length > 0) {
    const kinds = new Set(enumValues.map((v) => (typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v)));
    if (kinds.size === 1) {
      const [k] = [...kinds];
      if (k === 'string' || k === 'boolean' || k === 'integer' || k === 'number') return k;
    }
    if ([...kinds].every((k) => k === 'integer' || k === 'number')) return 'number';
    return undefined;
  }
  if (node.properties !== undefined || node.additionalProperties !== undefined || node.patternProperties !== undefined || node.propertyNames !== undefined) return 'object';
  if (node.items !== undefined) return 'array';
  return undefined;
}

const RE2_UNSUPPORTED = /\(\?[=!<]|\\[1-9]/;

function copyScalarKeywords(node: Schema, out: Schema, path: string): void {
  for (const k of ['format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'] as const) {
    if (node[k] === undefined) continue;
    if (k === 'pattern' && RE2_UNSUPPORTED.test(String(node.pattern))) throw new SchemaConversionError(`${path}: pattern ${String(node.pattern)} is not RE2 (no lookaround or back-references)`);
    // Draft 2020-12's numeric exclusiveMinimum/Maximum is OpenAPI v3.0's boolean form next to minimum/maximum.
    if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && typeof node[k] === 'number') {
      out[k === 'exclusiveMinimum' ? 'minimum' : 'maximum'] = node[k];
      out[k] = true;
      continue;
    }
    out[k] = node[k];
  }
}

const CEL_RESERVED = new Set(['true', 'false', 'null', 'in', 'as', 'break', 'const', 'continue', 'else', 'for', 'function', 'if', 'import', 'let', 'loop', 'package', 'namespace', 'return', 'var', 'void', 'while']);

/** A property name as the API server's CEL environment spells it (reserved words become `__in__`, `-` becomes `__dash__`, ...). */
export function celField(name: string): string {
  if (CEL_RESERVED.has(name)) return `__${name}__`;
  if (!/^[A-Za-z_.\-/][A-Za-z0-9_.\-/]*$/.test(name)) throw new SchemaConversionError(`property ${name} cannot be named in a CEL rule`);
  return name.replace(/__/g, '__underscores__').replace(/\./g, '__dot__').replace(/-/g, '__dash__').replace(/\//g, '__slash__');
}

/** A CEL string literal. */
function celString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * `type: [string, number]`: no structural type admits both, and the API server compiles no CEL rule
 * for a node without a type. So the node keeps no type and preserves any value; `pattern`,
 * `minLength`/`maxLength` still apply to a string and `minimum`/`maximum` to a number (OpenAPI value
 * validations only check values of their own type), which is what the JSON Schema says for those
 * two types. An object, list or boolean there passes the API server (not the JSON Schema).
 */
function stringOrNumber(node: Schema, out: Schema, ctx: Ctx, path: string): Schema {
  ctx.notes.push({ path, kind: 'preserve-unknown', what: 'a string or a number such as 2.3 (int-or-string admits no fractions); pattern and bounds still apply, other JSON types are not refused' });
  const result: Schema = {};
  // kubectl explain shows an untyped node as <Object>: say what it holds.
  result.description = `${typeof out.description === 'string' ? `${out.description} ` : ''}(A string or a number.)`;
  if (out.nullable) result.nullable = true;
  result['x-kubernetes-preserve-unknown-fields'] = true;
  copyScalarKeywords(node, result, path);
  return result;
}

/**
 * `allOf`: plain members are merged into the node; `if: {properties: {k: {const: v}}}, then: S` members
 * (a union discriminated by `k`) merge S's properties into the node and turn S's `required` into a CEL rule.
 */
function flattenAllOf(node: Schema, ctx: Ctx, path: string, rules: Schema[]): Schema {
  if (!Array.isArray(node.allOf)) return node;
  const { allOf, ...rest } = node;
  let merged: Schema = { ...rest };
  const branches: Array<{ key: string; value: string; required: string[]; allowed?: string[] }> = [];
  const addProperties = (props: unknown): void => {
    if (!isObject(props)) return;
    const mine = { ...(isObject(merged.properties) ? merged.properties : {}) };
    for (const [k, v] of Object.entries(props)) if (!(k in mine)) mine[k] = v;
    merged.properties = mine;
  };
  for (const raw of allOf as unknown[]) {
    if (!isObject(raw)) throw new SchemaConversionError(`${path}: allOf member is not a schema`);
    if (raw.if !== undefined) {
      const cond = discriminator(raw.if);
      if (!cond || raw.else !== undefined || !isObject(raw.then)) throw new SchemaConversionError(`${path}: only allOf members of the form if {properties: {k: {const: v}}} then S are supported`);
      let then: Schema = raw.then;
      while (typeof then.$ref === 'string') {
        const { $ref, ...own } = then;
        then = mergeRef(resolvePointer(ctx.root, $ref, path), own);
      }
      addProperties(then.properties);
      const required = (Array.isArray(then.required) ? (then.required as string[]) : []).filter((r) => r !== cond.key);
      const closed = then.additionalProperties === false;
      branches.push({ ...cond, required, allowed: closed ? Object.keys(isObject(then.properties) ? then.properties : {}) : undefined });
      continue;
    }
    let member: Schema = raw;
    while (typeof member.$ref === 'string') {
      const { $ref, ...own } = member;
      member = mergeRef(resolvePointer(ctx.root, $ref, path), own);
    }
    const { properties, required, ...others } = member;
    addProperties(properties);
    if (Array.isArray(required)) merged.required = [...new Set([...((merged.required as string[] | undefined) ?? []), ...(required as string[])])];
    merged = { ...others, ...merged };
  }
  // One rule per branch: its required fields, and (for a closed branch) none of the other branches' fields.
  const all = Object.keys(isObject(merged.properties) ? merged.properties : {});
  for (const b of branches) {
    const forbidden = b.allowed ? all.filter((p) => !b.allowed!.includes(p) && p !== b.key) : [];
    if (b.required.length === 0 && forbidden.length === 0) continue;
    const checks = [...b.required.map((r) => `has(self.${celField(r)})`), ...forbidden.map((f) => `!has(self.${celField(f)})`)];
    const says = [...(b.required.length ? [`requires ${b.required.join(', ')}`] : []), ...(forbidden.length ? [`allows no ${forbidden.join(', ')}`] : [])];
    rules.push({ rule: `self.${celField(b.key)} != ${celString(b.value)} || (${checks.join(' && ')})`, message: `${b.key} ${b.value} ${says.join(' and ')}` });
    ctx.notes.push({ path, kind: 'cel', what: `if ${b.key} is ${b.value}: ${says.join('; ')}` });
  }
  return merged;
}

function discriminator(cond: unknown): { key: string; value: string } | undefined {
  if (!isObject(cond) || !isObject(cond.properties)) return undefined;
  const entries = Object.entries(cond.properties);
  if (entries.length !== 1) return undefined;
  const [key, s] = entries[0]!;
  if (!isObject(s) || typeof s.const !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return undefined;
  return { key, value: s.const };
}

function convertObject(node: Schema, out: Schema, ctx: Ctx, path: string, rules: Schema[]): Schema | undefined {
  for (const k of ['minProperties', 'maxProperties'] as const) if (node[k] !== undefined) out[k] = node[k];
  const props = isObject(node.properties) ? node.properties : undefined;
  let additional = node.additionalProperties as Schema | boolean | undefined;
  let keyPattern: string | undefined;
  let keyMaxLength: number | undefined;
  if (isObject(node.patternProperties)) {
    const entries = Object.entries(node.patternProperties);
    if (entries.length !== 1 || props || (additional !== undefined && additional !== false)) {
      return preserveUnknown(node, ctx, path, 'patternProperties that one additionalProperties schema cannot express');
    }
    keyPattern = entries[0]![0];
    additional = entries[0]![1] as Schema;
  }
  if (isObject(node.propertyNames)) {
    const names = node.propertyNames;
    let resolved: Schema = names;
    while (typeof resolved.$ref === 'string') {
      const { $ref, ...own } = resolved;
      resolved = mergeRef(resolvePointer(ctx.root, $ref, path), own);
    }
    if (typeof resolved.pattern === 'string') {
      if (keyPattern) return preserveUnknown(node, ctx, path, 'both patternProperties and propertyNames');
      keyPattern = resolved.pattern;
    }
    if (typeof resolved.maxLength === 'number') keyMaxLength = resolved.maxLength;
  }
  if ((keyPattern !== undefined || keyMaxLength !== undefined) && ctx.repeated) {
    // The API server estimates a rule over the keys of a map inside a list or map beyond its CEL cost budget.
    ctx.notes.push({ path, kind: 'dropped', what: `the key rule${keyPattern !== undefined ? ` ${keyPattern}` : ''}${keyMaxLength !== undefined ? ` (at most ${keyMaxLength} characters)` : ''}: a CEL rule on the keys of a nested map exceeds the API server's cost budget` });
  } else if (keyPattern !== undefined || keyMaxLength !== undefined) {
    if (keyPattern !== undefined && RE2_UNSUPPORTED.test(keyPattern)) throw new SchemaConversionError(`${path}: key pattern ${keyPattern} is not RE2`);
    const checks = [...(keyPattern !== undefined ? [`k.matches(${celString(keyPattern)})`] : []), ...(keyMaxLength !== undefined ? [`size(k) <= ${keyMaxLength}`] : [])];
    rules.push({ rule: `self.all(k, ${checks.join(' && ')})`, message: `keys must${keyPattern !== undefined ? ` match ${keyPattern}` : ''}${keyPattern !== undefined && keyMaxLength !== undefined ? ' and' : ''}${keyMaxLength !== undefined ? ` be at most ${keyMaxLength} characters` : ''}` });
  }

  if (props) {
    if (additional !== undefined && additional !== false) return preserveUnknown(node, ctx, path, 'both properties and additionalProperties');
    if (Array.isArray(node.required)) out.required = node.required;
    const converted: Schema = {};
    for (const [name, sub] of Object.entries(props)) {
      if (!isObject(sub) && typeof sub !== 'boolean') throw new SchemaConversionError(`${path}.${name}: not a schema`);
      converted[name] = convert(sub as Schema | boolean, ctx, path ? `${path}.${name}` : name);
    }
    out.properties = converted;
    return undefined;
  }
  if (Array.isArray(node.required)) out.required = node.required;
  if (additional === undefined || additional === true) {
    ctx.notes.push({ path, kind: 'preserve-unknown', what: 'a free-form JSON object' });
    out['x-kubernetes-preserve-unknown-fields'] = true;
    return undefined;
  }
  if (additional === false) return undefined; // an object that must stay empty: every field is pruned
  out.additionalProperties = convert(additional, { ...ctx, repeated: true }, `${path}{}`);
  return undefined;
}
