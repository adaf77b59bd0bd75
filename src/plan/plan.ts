import { createHash } from 'node:crypto';
import type { DesiredState, Placement } from '../compile/desired.js';
import { splitPgResourceName } from '../compile/postgres.js';
import { quantitiesEqual } from '../compile/quantity.js';
import { isSecretRef, resourceKey, TARGETS, type DesiredResource, type Json, type JsonObject, type LiveResource, type SecretRef, type TargetName } from '../model/resource.js';
import { canonicalJson, diffSpec, flattenSpec, joinPath, splitPath, type DiffOptions, type FieldDiff } from './diff.js';

export type Action = 'create' | 'update' | 'delete';

export interface Change {
  action: Action;
  target: TargetName;
  kind: string;
  name: string;
  tenant?: string;
  /** Deleting a realm, a namespace or a database: refused without --allow-destroy. */
  destructive: boolean;
  diff: FieldDiff[];
  /** Keys (`target:kind:name`) of changes or resources this one needs first. */
  dependsOn: string[];
  /** Desired spec for create and update; secrets appear only as references. */
  spec?: JsonObject;
}

export interface Skipped {
  target: TargetName;
  kind: string;
  name: string;
  tenant?: string;
  reason: string;
}

export interface Plan {
  format: 'systemprompt.plan/v1';
  offline: boolean;
  changes: Change[];
  /** Managed objects kept although no longer desired (deletion_policy: retain). */
  retained: Skipped[];
  /** Desired objects that exist without our marker: never touched; apply refuses while any remain. */
  conflicts: Skipped[];
  summary: {
    create: number;
    update: number;
    delete: number;
    destructive: number;
    unchanged: number;
    retained: number;
    conflicts: number;
  };
  /** Requests made to read the live state, per target. */
  requests: Record<TargetName | 'total', number>;
  /** Hash of the live state the plan was computed against; a saved plan applies only if it still matches. */
  liveFingerprint: string;
  /** Hash of the desired state. */
  desiredFingerprint: string;
  /** The targets planned (`--target`); all three unless limited. */
  targets?: TargetName[];
  /** The A2A AgentCard each tenant serves for each of its agents (not a change: derived from the config). */
  cards: Array<{ tenant: string; agent: string; card: Record<string, unknown> }>;
  /** With several PostgreSQL servers (postgres.servers): where each tenant's database is, or goes. */
  placements?: Placement[];
}

type ResourceIdLike = { target: TargetName; kind: string; name: string };

export interface LiveState {
  resources: LiveResource[];
  requests: Partial<Record<TargetName, number>>;
}

export const EMPTY_LIVE: LiveState = { resources: [], requests: {} };

/** How values compare per target: Kubernetes quantities by value outside metadata and Secret data. */
function diffOptions(target: TargetName, storedDigest: (ref: string) => string | undefined): DiffOptions {
  if (target !== 'kubernetes') return { storedDigest };
  return { storedDigest, sameScalar: (d, l, path) => !path.startsWith('metadata') && !path.startsWith('data') && quantitiesEqual(d, l) };
}

/**
 * The desired spec as the live side is projected: a Kubernetes object without its identity
 * (apiVersion, kind, name, namespace: they are the resource's key, and no field manager owns them).
 */
export function comparable(d: DesiredResource): JsonObject {
  if (d.target !== 'kubernetes') return d.spec;
  const { apiVersion: _a, kind: _k, metadata, ...rest } = d.spec;
  const { name: _n, namespace: _ns, ...meta } = (metadata ?? {}) as JsonObject;
  return Object.keys(meta).length ? { ...rest, metadata: meta } : rest;
}

/** DesiredState x LiveState -> Plan. Pure. */
export function computePlan(desired: DesiredState, live: LiveState, opts: { offline?: boolean } = {}): Plan {
  if (desired.postgresServers && !desired.placements) throw new Error('internal: databases not placed (placeDatabases) before planning');
  const liveByKey = new Map(live.resources.map((r) => [resourceKey(r), r]));
  const changes: Change[] = [];
  const conflicts: Skipped[] = [];
  const retained: Skipped[] = [];
  let unchanged = 0;

  // Where each tenant's secrets are stored (its Kubernetes Secrets), and the digest recorded there.
  const stored = new Map<string, string>();
  for (const d of desired.resources) {
    if (d.target !== 'kubernetes') continue;
    const l = liveByKey.get(resourceKey(d));
    for (const { ref, path } of secretRefsOf(d.spec)) {
      if (!ref.digest) continue;
      const v = l?.managed ? valueAt(l.spec, path) : undefined;
      if (typeof v === 'string') stored.set(`${d.tenant}\0${ref.secretRef}`, v);
    }
  }

  // Changes of Kubernetes Secrets, with their desired resource (the change's spec hides the data).
  const secretChanges: Array<{ c: Change; d: DesiredResource }> = [];
  const push = (c: Change, d: DesiredResource): void => {
    changes.push(c);
    if (d.target === 'kubernetes' && d.kind === 'Secret') secretChanges.push({ c, d });
  };
  for (const d of desired.resources) {
    const l = liveByKey.get(resourceKey(d));
    if (!l) {
      push(change('create', d, flattenSpec(d.spec, 'after')), d);
      continue;
    }
    if (!l.managed) {
      conflicts.push({ ...id(d), reason: `exists, but systemprompt did not write it; it is never changed. Rename the tenant, or remove the existing ${d.kind.toLowerCase()}` });
      continue;
    }
    if (l.terminating) {
      conflicts.push({ ...id(d), reason: 'is being deleted; plan again once it is gone' });
      continue;
    }
    const diff = diffSpec(comparable(d), l.spec, diffOptions(d.target, (ref) => stored.get(`${d.tenant}\0${ref}`)));
    if (diff.length === 0) unchanged++;
    else push(change('update', d, diff), d);
  }

  // A secret that is about to be stored anew (its Kubernetes Secret is created, or gains the key)
  // gets a new value: every existing object that uses it must be told, e.g. the database role.
  const newSecrets = new Set<string>();
  for (const { c, d } of secretChanges) {
    for (const { ref, path } of secretRefsOf(d.spec)) {
      if (c.action === 'create' || c.diff.some((f) => f.path === path && f.before === undefined)) newSecrets.add(`${c.tenant}\0${ref.secretRef}`);
    }
  }
  // (Only objects that exist and are ours are told; against empty targets there are none.)
  if (newSecrets.size > 0 && liveByKey.size > 0) {
    const changed = new Set(changes.map((c) => resourceKey(c)));
    for (const d of desired.resources) {
      if (d.target === 'kubernetes' || changed.has(resourceKey(d)) || !liveByKey.get(resourceKey(d))?.managed) continue;
      const refs = [...new Set(secretRefsOf(d.spec).map((r) => r.ref.secretRef))].filter((r) => newSecrets.has(`${d.tenant}\0${r}`));
      if (refs.length === 0) continue;
      unchanged--;
      changes.push(change('update', d, refs.map((r) => ({ path: `(secret ${r})`, before: '(sensitive)', after: '(new value)', sensitive: true }))));
    }
  }

  // Deletions: managed live objects no longer desired. Children of a deleted realm or namespace
  // go with their parent; a retained database keeps its owner role.
  const deletedParents = new Set<string>();
  const retainedDbs = new Set<string>();
  // (Against empty targets, as offline, there is nothing to delete: no index of the desired keys.)
  const desiredKeys = new Set<string>(live.resources.length === 0 ? [] : desiredByKey(desired).keys());
  if (live.resources.length > 0) for (const k of desired.ignored ?? []) desiredKeys.add(k);
  const orphans = live.resources.filter((l) => l.managed && !l.terminating && !desiredKeys.has(resourceKey(l)));
  // Objects inside a namespace that is already being deleted go with it.
  for (const l of live.resources) if (l.terminating) deletedParents.add(`${l.target}:${l.name}`);
  for (const l of orphans) {
    if ((l.kind === 'Realm' && l.target === 'keycloak') || (l.kind === 'Namespace' && l.target === 'kubernetes')) deletedParents.add(`${l.target}:${l.name}`);
    // The owner role on the same server (`second/tenant_a` with several servers).
    if (l.target === 'postgres' && l.kind === 'Database' && l.retain) retainedDbs.add(pgSibling(l.name, String(l.spec.owner ?? '')));
  }
  for (const l of orphans) {
    const parent = l.name.includes('/') ? `${l.target}:${l.name.slice(0, l.name.indexOf('/'))}` : undefined;
    if (parent && deletedParents.has(parent)) continue;
    if (l.target === 'postgres' && l.kind === 'Database' && l.retain) {
      retained.push({ ...id(l), reason: 'deletion_policy: retain — the database and its data are kept' });
      continue;
    }
    if (l.target === 'postgres' && l.kind === 'Role' && retainedDbs.has(l.name)) {
      retained.push({ ...id(l), reason: 'owns a retained database' });
      continue;
    }
    const destructive = (l.target === 'keycloak' && l.kind === 'Realm') || (l.target === 'kubernetes' && l.kind === 'Namespace') || (l.target === 'postgres' && l.kind === 'Database');
    const diff = flattenSpec(l.spec, 'before').map((f) => (l.target === 'kubernetes' && l.kind === 'Secret' ? redactData(f) : f));
    const c: Change = { action: 'delete', target: l.target, kind: l.kind, name: l.name, destructive, diff, dependsOn: [] };
    if (l.tenant) c.tenant = l.tenant;
    changes.push(c);
  }

  const ordered = orderChanges(changes);
  retained.sort(cmpKey);
  conflicts.sort(cmpKey);
  const requests = { kubernetes: 0, postgres: 0, keycloak: 0, total: 0 } as Plan['requests'];
  for (const t of TARGETS) {
    requests[t] = live.requests[t] ?? 0;
    requests.total += requests[t];
  }
  const count = (a: Action): number => ordered.filter((c) => c.action === a).length;
  return {
    format: 'systemprompt.plan/v1',
    offline: opts.offline ?? false,
    changes: ordered,
    retained,
    conflicts,
    summary: {
      create: count('create'),
      update: count('update'),
      delete: count('delete'),
      destructive: ordered.filter((c) => c.destructive).length,
      unchanged,
      retained: retained.length,
      conflicts: conflicts.length,
    },
    requests,
    liveFingerprint: fingerprintLive(live.resources),
    desiredFingerprint: fingerprintDesired(desired.resources),
    cards: desired.tenants.flatMap((t) => t.agents.map((a) => ({ tenant: t.name, agent: a.name, card: a.card }))),
    ...(desired.placements ? { placements: desired.placements } : {}),
  };
}

/** The resource name of `name` on the same PostgreSQL server as resource `of`. */
function pgSibling(of: string, name: string): string {
  const { server } = splitPgResourceName(of);
  return server === undefined ? name : `${server}/${name}`;
}

/** Secret references inside a spec, with the diff path of each. */
function secretRefsOf(v: Json | undefined, path = '', out: Array<{ ref: SecretRef; path: string }> = []): Array<{ ref: SecretRef; path: string }> {
  if (isSecretRef(v)) out.push({ ref: v, path });
  else if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) secretRefsOf(x, joinPath(path, k), out);
  return out;
}

function valueAt(spec: Json | undefined, path: string): Json | undefined {
  let cur = spec;
  for (const seg of splitPath(path)) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = cur[seg];
  }
  return cur;
}

const desiredIndex = new WeakMap<DesiredState, Map<string, DesiredResource>>();
/** The desired resources by key (built once per desired state). */
export function desiredByKey(desired: DesiredState): Map<string, DesiredResource> {
  let m = desiredIndex.get(desired);
  if (!m) {
    m = new Map(desired.resources.map((r) => [resourceKey(r), r]));
    desiredIndex.set(desired, m);
  }
  return m;
}

function id(r: { target: TargetName; kind: string; name: string; tenant?: string }): Skipped {
  const s: Skipped = { target: r.target, kind: r.kind, name: r.name, reason: '' };
  if (r.tenant) s.tenant = r.tenant;
  return s;
}

function change(action: Action, d: DesiredResource, diff: FieldDiff[]): Change {
  const isSecret = d.target === 'kubernetes' && d.kind === 'Secret';
  return { action, target: d.target, kind: d.kind, name: d.name, tenant: d.tenant, destructive: false, diff: isSecret ? diff.map(redactData) : diff, dependsOn: d.dependsOn, spec: redactSpec(d) };
}

/** A field of a Secret's data, as every rendering shows it: that it changes, never its value. */
function redactData(f: FieldDiff): FieldDiff {
  if (!(f.path === 'data' || f.path.startsWith('data.') || f.path.startsWith('data['))) return f;
  const out: FieldDiff = { path: f.path, sensitive: true };
  if (f.before !== undefined) out.before = '(sensitive)';
  if (f.after !== undefined) out.after = '(sensitive)';
  return out;
}

/**
 * The spec as a plan shows it: a Secret's data values are never part of a plan, not even those
 * that are not secret by themselves. Apply takes specs from the desired state, not from the plan.
 */
function redactSpec(d: DesiredResource): JsonObject {
  if (!(d.target === 'kubernetes' && d.kind === 'Secret')) return d.spec;
  const data = d.spec.data;
  if (!data || typeof data !== 'object' || Array.isArray(data)) return d.spec;
  return { ...d.spec, data: Object.fromEntries(Object.keys(data).map((k) => [k, '(sensitive)'])) };
}

/**
 * Creates and updates in dependency order, otherwise in the compiler's order (Kahn's algorithm,
 * always taking the earliest ready change); then deletes, children before their realm, namespace
 * or database owner.
 */
export function orderChanges(changes: Change[]): Change[] {
  const upserts = changes.filter((c) => c.action !== 'delete');
  const deletes = changes.filter((c) => c.action === 'delete');
  const index = new Map(upserts.map((c, i) => [resourceKey(c), i]));
  const waiting = upserts.map((c) => c.dependsOn.filter((d) => index.has(d)).length);
  const dependents = upserts.map(() => [] as number[]);
  upserts.forEach((c, i) => {
    for (const d of c.dependsOn) {
      const j = index.get(d);
      if (j !== undefined) dependents[j]!.push(i);
    }
  });
  const ready = new MinHeap();
  waiting.forEach((n, i) => n === 0 && ready.push(i));
  const out: Change[] = [];
  while (ready.size > 0) {
    const i = ready.pop();
    out.push(upserts[i]!);
    for (const j of dependents[i]!) if (--waiting[j]! === 0) ready.push(j);
  }
  if (out.length !== upserts.length) throw new Error('internal: dependency cycle among planned changes');
  const rank = (c: Change): number => (c.kind === 'Namespace' || c.kind === 'Realm' || (c.target === 'postgres' && c.kind === 'Role') ? 1 : 0);
  const sortedDeletes = [...deletes].sort((a, b) => rank(a) - rank(b) || cmpKey(a, b));
  return [...out, ...sortedDeletes];
}

class MinHeap {
  private a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(v: number): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): number {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

function cmpKey(a: ResourceIdLike, b: ResourceIdLike): number {
  const ka = resourceKey(a);
  const kb = resourceKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Fingerprint of the managed live state (order-independent). */
export function fingerprintLive(resources: LiveResource[]): string {
  const items = resources
    .map((r) => `${resourceKey(r)}|${r.managed ? 1 : 0}|${r.terminating ? 1 : 0}|${canonicalJson(r.spec)}`)
    .sort();
  // Hashed a piece at a time: the same digest as that of items.join('\n'), without the one string.
  const h = createHash('sha256');
  items.forEach((s, i) => h.update(i === 0 ? s : `\n${s}`));
  return h.digest('hex');
}

/** sha256 of canonicalJson(resources), one resource at a time (the whole is past V8's string limit at scale). */
export function fingerprintDesired(resources: DesiredResource[]): string {
  const h = createHash('sha256').update('[');
  resources.forEach((r, i) => h.update(i === 0 ? canonicalJson(r) : `,${canonicalJson(r)}`));
  return h.update(']').digest('hex');
}
