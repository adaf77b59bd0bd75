import { isSecretRef, type Json } from '../model/resource.js';

export interface FieldDiff {
  /** Dotted path inside the spec, e.g. `spec.hard["limits.cpu"]`. */
  path: string;
  before?: Json;
  after?: Json;
  /** The value is a secret: rendered as (sensitive), never printed. */
  sensitive?: boolean;
}

/**
 * Differences between a desired spec and the live one, over the fields the desired spec sets
 * (fields we do not manage are ignored). Secret references compare by presence only.
 */
export function diffSpec(desired: Json | undefined, live: Json | undefined, path = ''): FieldDiff[] {
  if (isSecretRef(desired)) {
    return live === undefined || live === null ? [{ path, after: '(sensitive)', sensitive: true }] : [];
  }
  if (isPlainObject(desired)) {
    const liveObj = isPlainObject(live) ? live : undefined;
    if (!liveObj) return [entry(path, live, desired)];
    const out: FieldDiff[] = [];
    for (const k of Object.keys(desired).sort()) out.push(...diffSpec(desired[k], liveObj[k], join(path, k)));
    return out;
  }
  if (Array.isArray(desired)) {
    return deepEqual(desired, live) ? [] : [entry(path, live, desired)];
  }
  if (desired === undefined) return [];
  return deepEqual(desired, live) ? [] : [entry(path, live, desired)];
}

/** All fields of a spec, as a diff from nothing (creates) or to nothing (deletes). */
export function flattenSpec(spec: Json, side: 'after' | 'before', path = ''): FieldDiff[] {
  if (isSecretRef(spec)) return [{ path, [side]: '(sensitive)', sensitive: true }];
  if (isPlainObject(spec)) {
    const keys = Object.keys(spec).sort();
    if (keys.length === 0) return [{ path, [side]: {} }];
    return keys.flatMap((k) => flattenSpec(spec[k]!, side, join(path, k)));
  }
  return [{ path, [side]: spec }];
}

function entry(path: string, before: Json | undefined, after: Json | undefined): FieldDiff {
  const d: FieldDiff = { path };
  if (before !== undefined) d.before = before;
  if (after !== undefined) d.after = after;
  return d;
}

function join(path: string, key: string): string {
  const seg = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : JSON.stringify(key);
  if (!path) return seg.startsWith('"') ? `[${seg}]` : seg;
  return seg.startsWith('"') ? `${path}[${seg}]` : `${path}.${seg}`;
}

export function isPlainObject(v: unknown): v is { [k: string]: Json } {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isPlainObject(a)) {
    if (!isPlainObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** JSON with sorted keys: the canonical bytes used for fingerprints. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isPlainObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}
