import { createHash } from 'node:crypto';
import { isGivenSecret, isRedacted, isSecretRef, type Json } from '../model/resource.js';

export interface FieldDiff {
  /** Dotted path inside the spec, e.g. `spec.hard["limits.cpu"]`. */
  path: string;
  before?: Json;
  after?: Json;
  /** The value is a secret: rendered as (sensitive), never printed. */
  sensitive?: boolean;
}

export interface DiffOptions {
  /**
   * Two different strings that mean the same value (Kubernetes quantities: "0.7" and "700m").
   * Called only for strings that differ, with the path, so metadata can be kept literal.
   */
  sameScalar?: (desired: string, live: string, path: string) => boolean;
  /** The digest of a secret where it is stored (its Secret), to tell a consumer that is out of step. */
  storedDigest?: (ref: string) => string | undefined;
}

/**
 * Differences between a desired spec and the live one, both ways: a field the desired spec sets
 * that the live object lacks or holds otherwise, and a field the live object holds that the
 * desired spec no longer sets (a removal). The live side must therefore hold exactly the fields we
 * own (each target projects it so). Objects compare key by key; arrays and scalars as wholes.
 * An empty object and an absent one are the same. Secret values never appear: a secret reference
 * compares by presence (and, for a consumer, by the digest of what it was given); a redacted live
 * value ({$sha256}) compares with the hash of the desired value.
 */
export function diffSpec(desired: Json | undefined, live: Json | undefined, opts: DiffOptions = {}, path = ''): FieldDiff[] {
  if (isSecretRef(desired)) {
    if (live === undefined || live === null) return [{ path, after: '(sensitive)', sensitive: true }];
    if (isGivenSecret(live)) {
      const stored = opts.storedDigest?.(desired.secretRef);
      if (stored !== undefined && stored !== live.$digest) return [{ path, before: '(out of step with its Secret)', after: '(sensitive)', sensitive: true }];
    }
    return [];
  }
  if (isRedacted(live)) {
    if (typeof desired === 'string' && sha256(desired) === live.$sha256) return [];
    return [{ path, ...(desired === undefined ? { before: '(sensitive)' } : { before: '(sensitive)', after: '(sensitive)' }), sensitive: true }];
  }
  if (isPlainObject(desired) || isPlainObject(live)) {
    const d = isPlainObject(desired) ? desired : undefined;
    const l = isPlainObject(live) ? live : undefined;
    if ((desired !== undefined && !d) || (live !== undefined && !l)) return [entry(path, live, desired)];
    const keys = [...new Set([...Object.keys(d ?? {}), ...Object.keys(l ?? {})])].sort();
    if (keys.length === 0) return [];
    return keys.flatMap((k) => diffSpec(d?.[k], l?.[k], opts, joinPath(path, k)));
  }
  if (desired === undefined && live === undefined) return [];
  return valuesEqual(desired, live, opts, path) ? [] : [entry(path, live, desired)];
}

/** All fields of a spec, as a diff from nothing (creates) or to nothing (deletes). */
export function flattenSpec(spec: Json, side: 'after' | 'before', path = ''): FieldDiff[] {
  const out: FieldDiff[] = [];
  flattenInto(spec, side, path, out);
  return out;
}

/** flattenSpec into `out`, in one pass (it runs over every field of every created object). */
function flattenInto(spec: Json, side: 'after' | 'before', path: string, out: FieldDiff[]): void {
  if (isSecretRef(spec) || isRedacted(spec) || isGivenSecret(spec)) {
    out.push(side === 'after' ? { path, after: '(sensitive)', sensitive: true } : { path, before: '(sensitive)', sensitive: true });
    return;
  }
  if (isPlainObject(spec)) {
    const keys = Object.keys(spec);
    if (keys.length === 0) {
      out.push(side === 'after' ? { path, after: {} } : { path, before: {} });
      return;
    }
    keys.sort();
    for (const k of keys) flattenInto(spec[k]!, side, childPath(path, k), out);
    return;
  }
  out.push(side === 'after' ? { path, after: spec } : { path, before: spec });
}

function valuesEqual(a: Json | undefined, b: Json | undefined, opts: DiffOptions, path: string): boolean {
  if (a === b) return true;
  if (typeof a === 'string' && typeof b === 'string') return opts.sameScalar?.(a, b, path) ?? false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => valuesEqual(x, b[i], opts, `${path}[${i}]`));
  if (isPlainObject(a)) {
    if (!isPlainObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && valuesEqual(a[k], b[k], opts, joinPath(path, k)));
  }
  return false;
}

function entry(path: string, before: Json | undefined, after: Json | undefined): FieldDiff {
  const d: FieldDiff = { path };
  if (before !== undefined) d.before = before;
  if (after !== undefined) d.after = after;
  return d;
}

/** Splits a path made by joinPath back into its keys. */
export function splitPath(path: string): string[] {
  const out: string[] = [];
  const re = /(?:^|\.)([A-Za-z_$][A-Za-z0-9_$]*)|\[("(?:[^"\\]|\\.)*")\]/g;
  for (let m = re.exec(path); m; m = re.exec(path)) out.push(m[1] ?? (JSON.parse(m[2]!) as string));
  return out;
}

export function joinPath(path: string, key: string): string {
  const seg = segmentOf(key);
  if (!path) return seg.startsWith('"') ? `[${seg}]` : seg;
  return seg.startsWith('"') ? `${path}[${seg}]` : `${path}.${seg}`;
}

/**
 * Memo of small string functions over keys: the same few keys recur in every object of a large
 * plan. Bounded, since a long-lived process may meet ever new keys.
 */
function memo(fn: (key: string) => string, max = 10_000): (key: string) => string {
  const cache = new Map<string, string>();
  return (key) => {
    let v = cache.get(key);
    if (v === undefined) {
      if (cache.size >= max) cache.clear();
      v = fn(key);
      cache.set(key, v);
    }
    return v;
  };
}

/**
 * joinPath, memoised: every object of a kind has the same paths, and a plan of 10,000 tenants
 * then holds each path string once rather than once per object. Bounded like memo().
 */
const childPaths = new Map<string, Map<string, string>>();
let childPathCount = 0;
function childPath(path: string, key: string): string {
  let byKey = childPaths.get(path);
  if (!byKey) {
    if (childPathCount >= 50_000) {
      childPaths.clear();
      childPathCount = 0;
    }
    byKey = new Map();
    childPaths.set(path, byKey);
  }
  let p = byKey.get(key);
  if (p === undefined) {
    p = joinPath(path, key);
    byKey.set(key, p);
    childPathCount++;
  }
  return p;
}

/** A key as a path segment: bare when it is an identifier, else quoted. */
const segmentOf = memo((key) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : JSON.stringify(key)));
/** A key as JSON. */
const quotedKey = memo((key) => JSON.stringify(key));

export function isPlainObject(v: unknown): v is { [k: string]: Json } {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return valuesEqual(a as Json, b as Json, {}, '');
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/**
 * JSON with sorted keys: the canonical bytes used for fingerprints. Built by appending (no
 * intermediate arrays per object): it runs over every desired and live resource of each plan.
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) s += i === 0 ? canonicalJson(v[i]) : `,${canonicalJson(v[i])}`;
    return `${s}]`;
  }
  if (isPlainObject(v)) {
    const keys = Object.keys(v).sort();
    let s = '{';
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      s += `${i === 0 ? '' : ','}${quotedKey(k)}:${canonicalJson(v[k])}`;
    }
    return `${s}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
