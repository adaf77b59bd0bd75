import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Diagnostic } from '../config/diagnostics.js';
import { LoadCache } from '../config/load-cache.js';
import { AGENT_DIR, PROJECT_FILE, TENANT_DIR, isConfigPath, loadRepository } from '../config/repository.js';
import { customResources } from '../crds/objects.js';
import { gitCredentialsFor, scrubSecrets, withGitAuth, type GitAuth, type GitCredentials } from './gitcredentials.js';
import { crPath, GROUP, listResources, VERSION, type CrApi, type CustomResource } from './resources.js';
import type { Condition } from './status.js';

/**
 * The ConfigSource controller: fetch a git repository with the `git` command line, validate the
 * config at the wanted revision, server-side apply its Tenant and Agent objects into the
 * ConfigSource's namespace (labelled and owned by it), prune the ones gone from git, and say in
 * status what was fetched, tried and applied. A commit that does not validate touches nothing.
 */

export const CONFIG_SOURCE_LABEL = 'systemprompt.io/config-source';
const FIELD_MANAGER = 'systemprompt-operator';
const DEFAULT_INTERVAL_MS = 60_000;
const MAX_DIAGNOSTICS = 1000;

export interface ConfigSourceSpec {
  git: { url: string; ref?: { branch?: string; tag?: string; commit?: string }; path?: string; secretRef?: { name: string } };
  interval?: string;
  suspend?: boolean;
  allowDestroy?: boolean;
}

export interface ConfigSource extends Omit<CustomResource, 'spec'> {
  spec?: ConfigSourceSpec;
}

export interface ConfigSourceStatus {
  observedGeneration: number;
  conditions: Condition[];
  lastAttemptedRevision?: string;
  lastAppliedRevision?: string;
  plan?: { create: number; update: number; delete: number };
  diagnostics: string[];
}

type Api = CrApi;
type Log = (level: 'info' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** `spec.interval` in milliseconds: 30s, 1m, 1h30m, 500ms (default and floor: see below). */
export function parseInterval(v: string | undefined): number {
  if (v === undefined || v === '') return DEFAULT_INTERVAL_MS;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    end = re.lastIndex;
  }
  if (end === 0 || end !== v.length) return DEFAULT_INTERVAL_MS;
  return Math.max(1000, Math.round(total)); // never more often than once a second
}

/** What to resolve: a branch, a tag, a commit, or the remote HEAD. */
export function wantedRef(spec: ConfigSourceSpec): { kind: 'branch' | 'tag' | 'commit' | 'head'; value: string } {
  const ref = spec.git.ref ?? {};
  if (ref.commit) return { kind: 'commit', value: ref.commit };
  if (ref.tag) return { kind: 'tag', value: ref.tag };
  if (ref.branch) return { kind: 'branch', value: ref.branch };
  return { kind: 'head', value: 'HEAD' };
}

/** `spec.git.path` as a tree prefix ('' for the root, else `dir/`); undefined when it leaves the repository. */
export function pathPrefix(p: string | undefined): string | undefined {
  const parts = (p ?? '.').split('/').filter((s) => s !== '' && s !== '.');
  if (parts.some((s) => s === '..')) return undefined;
  return parts.length ? `${parts.join('/')}/` : '';
}

/** A URL as it may be shown: no user or password. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}

/** Of the existing objects, those this ConfigSource made that it no longer renders. */
export function toPrune(existing: CustomResource[], source: string, rendered: ReadonlySet<string>): CustomResource[] {
  return existing.filter((o) => labelsOf(o)[CONFIG_SOURCE_LABEL] === source && !rendered.has(`${o.kind}/${o.metadata.name}`) && !o.metadata.deletionTimestamp);
}

/** Rendered objects whose name an object not made by this ConfigSource already holds (never taken over). */
export function conflicts(existing: CustomResource[], source: string, rendered: ReadonlySet<string>): CustomResource[] {
  return existing.filter((o) => rendered.has(`${o.kind}/${o.metadata.name}`) && labelsOf(o)[CONFIG_SOURCE_LABEL] !== source);
}

const labelsOf = (o: CustomResource): Record<string, string> => ((o.metadata as { labels?: Record<string, string> }).labels ?? {});

/** The outcome of one sync, as status is built from it. */
export type SyncOutcome =
  | { kind: 'applied'; revision: string; plan: { create: number; update: number; delete: number }; warnings: string[] }
  | { kind: 'invalid'; revision: string; diagnostics: string[] }
  | { kind: 'conflict'; revision: string; message: string }
  | { kind: 'stalled'; reason: string; message: string; revision?: string }
  | { kind: 'failed'; reason: string; message: string; revision?: string };

/**
 * A ConfigSource's status after a sync, in kstatus terms. Undefined when it would not change, so an
 * idle operator writes nothing. `lastAppliedRevision` moves only on `applied`; `plan` is that of the
 * last sync that changed something or applied a new revision.
 */
export function configSourceStatus(cs: ConfigSource, o: SyncOutcome, now: Date): ConfigSourceStatus | undefined {
  const prev = (cs.status ?? {}) as Partial<ConfigSourceStatus>;
  const generation = cs.metadata.generation ?? 0;
  let ready: [Condition['status'], string, string];
  let stalled: [Condition['status'], string, string] = ['False', 'Applied', ''];
  let diagnostics: string[] = [];
  let lastApplied = prev.lastAppliedRevision;
  let plan = prev.plan;
  switch (o.kind) {
    case 'applied': {
      const changed = o.plan.create + o.plan.update + o.plan.delete > 0;
      // diagnostics say why a revision does not validate; warnings of an applied one go in the message.
      ready = ['True', 'Applied', `revision ${o.revision} applied${o.warnings.length ? `; warnings: ${o.warnings.join('; ')}` : ''}`];
      if (changed || o.revision !== prev.lastAppliedRevision || !plan) plan = o.plan;
      lastApplied = o.revision;
      break;
    }
    case 'invalid':
      ready = ['False', 'InvalidConfiguration', `revision ${o.revision} does not validate (${o.diagnostics.length} error${o.diagnostics.length === 1 ? '' : 's'}); revision ${prev.lastAppliedRevision ?? '(none)'} stays applied`];
      stalled = ['True', 'InvalidConfiguration', ready[2]];
      diagnostics = o.diagnostics;
      break;
    case 'conflict':
      ready = ['False', 'Conflict', o.message];
      stalled = ['True', 'Conflict', o.message];
      break;
    case 'stalled':
      ready = ['False', o.reason, o.message];
      stalled = ['True', o.reason, o.message];
      break;
    case 'failed':
      ready = ['False', o.reason, o.message];
      stalled = ['False', o.reason, ''];
      break;
  }
  const previous = (type: Condition['type']): Condition | undefined => (prev.conditions ?? []).find((c) => c.type === type);
  const cond = (type: Condition['type'], [status, reason, message]: [Condition['status'], string, string]): Condition => {
    const p = previous(type);
    return { type, status, observedGeneration: generation, lastTransitionTime: p && p.status === status ? p.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'), reason, message: message.slice(0, 2000) };
  };
  const attempted = o.revision ?? prev.lastAttemptedRevision;
  const status: ConfigSourceStatus = {
    observedGeneration: generation,
    conditions: [cond('Ready', ready), cond('Reconciling', ['False', 'Done', '']), cond('Stalled', stalled)],
    ...(attempted ? { lastAttemptedRevision: attempted } : {}),
    ...(lastApplied ? { lastAppliedRevision: lastApplied } : {}),
    ...(plan ? { plan } : {}),
    diagnostics: diagnostics.slice(0, MAX_DIAGNOSTICS).map((d) => d.slice(0, 2000)),
  };
  return sameStatus(prev, status) ? undefined : status;
}

function sameStatus(a: Partial<ConfigSourceStatus>, b: ConfigSourceStatus): boolean {
  const key = (c: Condition): string => `${c.type}|${c.status}|${c.reason}|${c.message}|${c.observedGeneration}`;
  return (
    a.observedGeneration === b.observedGeneration &&
    a.lastAttemptedRevision === b.lastAttemptedRevision &&
    a.lastAppliedRevision === b.lastAppliedRevision &&
    JSON.stringify(a.plan ?? null) === JSON.stringify(b.plan ?? null) &&
    JSON.stringify(a.diagnostics ?? []) === JSON.stringify(b.diagnostics) &&
    (a.conditions ?? []).map(key).sort().join('\n') === b.conditions.map(key).sort().join('\n')
  );
}

// ---------------------------------------------------------------------------------------------
// git

const GIT_ENV = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME ?? os.tmpdir(),
  GIT_TERMINAL_PROMPT: '0', // never wait for a password
  GIT_ASKPASS: 'true',
  SSH_ASKPASS: 'true',
  GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
  GIT_CONFIG_NOSYSTEM: '1',
  LC_ALL: 'C',
});

/** `auth` adds credentials (gitcredentials.ts): environment variables and `-c` options, never a secret in argv. */
function git(args: string[], opts: { cwd?: string; signal?: AbortSignal; timeoutMs?: number; auth?: GitAuth } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', ['-c', 'protocol.ext.allow=never', ...(opts.auth?.args ?? []), ...args], { cwd: opts.cwd, env: { ...GIT_ENV(), ...opts.auth?.env }, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 120_000, signal: opts.signal }, (err, stdout, stderr) => {
      if (err) reject(new Error(redactUrl(`git ${args[0] === '--git-dir' ? args[2] : args[0]}: ${String(stderr).trim() || err.message}`)));
      else resolve(stdout);
    });
  });
}

/** Blobs by id, through one `git cat-file --batch`. */
function catFiles(gitDir: string, ids: string[], signal?: AbortSignal): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['--git-dir', gitDir, 'cat-file', '--batch'], { env: GIT_ENV(), stdio: ['pipe', 'pipe', 'pipe'], signal });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`git cat-file: ${stderr.trim() || `exit ${code}`}`));
      const out = Buffer.concat(chunks);
      const blobs = new Map<string, Buffer>();
      let at = 0;
      while (at < out.length) {
        const nl = out.indexOf(0x0a, at);
        const header = out.subarray(at, nl).toString('utf8').split(' ');
        if (header[1] === 'missing') return reject(new Error(`git cat-file: ${header[0]} missing`));
        const size = Number(header[2]);
        blobs.set(header[0]!, out.subarray(nl + 1, nl + 1 + size));
        at = nl + 1 + size + 1;
      }
      resolve(blobs);
    });
    child.stdin.end(ids.map((id) => `${id}\n`).join(''));
  });
}

/** The bare clone of one ConfigSource (a new one when its URL changes). */
function cacheDir(cacheRoot: string, cs: ConfigSource): string {
  const id = createHash('sha256').update(`${cs.metadata.namespace}/${cs.metadata.name}/${cs.spec!.git.url}`).digest('hex').slice(0, 16);
  return path.join(cacheRoot, `${cs.metadata.namespace}_${cs.metadata.name}_${id}.git`);
}

/**
 * The bare cache of one ConfigSource's repository, fetched now (with `credentials`, from its
 * secretRef, when given); returns the commit of the wanted ref.
 */
export async function fetchRevision(cacheRoot: string, cs: ConfigSource, signal?: AbortSignal, credentials?: GitCredentials): Promise<string> {
  const spec = cs.spec!;
  const url = spec.git.url;
  if (url.startsWith('-')) throw new Error('spec.git.url may not start with "-"');
  const gitDir = cacheDir(cacheRoot, cs);
  if (!(await stat(path.join(gitDir, 'HEAD')).then(() => true, () => false))) {
    await mkdir(gitDir, { recursive: true });
    await git(['init', '--quiet', '--bare', gitDir], { signal });
  }
  const want = wantedRef(spec);
  const refspecs = ['+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*', ...(want.kind === 'head' ? ['+HEAD:refs/systemprompt/HEAD'] : [])];
  await withGitAuth(cacheRoot, credentials, (auth) => git(['--git-dir', gitDir, 'fetch', '--quiet', '--prune', '--no-write-fetch-head', '--update-head-ok', '--', url, ...refspecs], { signal, auth })).catch((e: unknown) => {
    throw new Error(scrubSecrets(e instanceof Error ? e.message : String(e), credentials));
  });
  const rev = { branch: `refs/heads/${want.value}`, tag: `refs/tags/${want.value}`, commit: want.value, head: 'refs/systemprompt/HEAD' }[want.kind];
  try {
    return (await git(['--git-dir', gitDir, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { signal })).trim();
  } catch {
    throw Object.assign(new Error(`${want.kind} ${want.value} not found in ${redactUrl(url)}`), { notFound: true });
  }
}

/** The config files (repository-relative paths) of `prefix` at `commit` in the cache of `cs`. */
export async function readFilesAt(cacheRoot: string, cs: ConfigSource, commit: string, prefix: string, signal?: AbortSignal): Promise<Map<string, Uint8Array>> {
  const gitDir = cacheDir(cacheRoot, cs);
  const listing = await git(['--git-dir', gitDir, 'ls-tree', '-r', '-z', '--full-tree', commit, '--', ...(prefix ? [prefix] : [])], { signal });
  const wanted: Array<{ rel: string; oid: string }> = [];
  for (const entry of listing.split('\0')) {
    if (!entry) continue;
    const tab = entry.indexOf('\t');
    const [mode, type, oid] = entry.slice(0, tab).split(' ');
    const full = entry.slice(tab + 1);
    if (type !== 'blob' || mode === '120000' || !full.startsWith(prefix)) continue; // no symlinks or submodules
    const rel = full.slice(prefix.length);
    if (isConfigPath(rel)) wanted.push({ rel, oid: oid! });
  }
  const blobs = wanted.length ? await catFiles(gitDir, wanted.map((w) => w.oid), signal) : new Map<string, Buffer>();
  return new Map(wanted.map((w) => [w.rel, new Uint8Array(blobs.get(w.oid)!)]));
}

// ---------------------------------------------------------------------------------------------
// one sync

export interface SyncOptions {
  api: Api;
  cacheRoot: string;
  log: Log;
  signal?: AbortSignal;
  now?: () => Date;
  /**
   * What each ConfigSource (by uid) last applied. A sync that finds the same revision, the same
   * ConfigSource generation and its objects at the generations it left them then reads no files
   * and writes nothing (a fetch and two lists each interval, whatever the number of tenants).
   */
  applied?: Map<string, AppliedRevision>;
  /** Files parsed and validated by this ConfigSource's earlier syncs: a new revision parses its changed files only. */
  loadCache?: LoadCache;
}

export interface AppliedRevision {
  revision: string;
  sourceGeneration: number | undefined;
  /** `Kind/name` → metadata.generation after the apply. */
  generations: Map<string, number | undefined>;
  warnings: string[];
}

/** The objects a ConfigSource made (not being deleted), by `Kind/name`, with their generations. */
function madeBy(existing: CustomResource[], source: string): Map<string, number | undefined> {
  return new Map(existing.filter((o) => labelsOf(o)[CONFIG_SOURCE_LABEL] === source && !o.metadata.deletionTimestamp).map((o) => [`${o.kind}/${o.metadata.name}`, o.metadata.generation]));
}

const sameGenerations = (a: Map<string, number | undefined>, b: Map<string, number | undefined>): boolean => a.size === b.size && [...a].every(([k, g]) => b.has(k) && b.get(k) === g);

async function listMade(api: Api, ns: string): Promise<CustomResource[]> {
  const existing: CustomResource[] = [];
  for (const [kind, plural] of [['Tenant', 'tenants'], ['Agent', 'agents']] as const) {
    for (const i of await listResources(api, plural, ns)) existing.push({ ...i, kind });
  }
  return existing;
}

/** Fetch, validate, apply and prune one ConfigSource; write its status if it changed. True when objects changed. */
export async function syncConfigSource(cs: ConfigSource, o: SyncOptions): Promise<boolean> {
  const ns = cs.metadata.namespace!;
  const name = cs.metadata.name;
  const fields = { configSource: `${ns}/${name}` };
  let outcome: SyncOutcome;
  let changed = false;
  try {
    ({ outcome, changed } = await sync(cs, o));
  } catch (e) {
    outcome = { kind: 'failed', reason: 'SyncFailed', message: redactUrl(e instanceof Error ? e.message : String(e)) };
  }
  if (outcome.kind === 'applied') {
    if (changed || outcome.revision !== (cs.status as Partial<ConfigSourceStatus> | undefined)?.lastAppliedRevision) o.log('info', 'config source applied', { ...fields, revision: outcome.revision, ...outcome.plan });
  } else {
    o.log('error', 'config source not applied', { ...fields, reason: outcome.kind === 'invalid' ? 'InvalidConfiguration' : outcome.kind === 'conflict' ? 'Conflict' : outcome.reason, revision: outcome.revision, ...(outcome.kind === 'invalid' ? { diagnostics: outcome.diagnostics.slice(0, 20) } : { error: outcome.message }) });
  }
  const status = configSourceStatus(cs, outcome, (o.now ?? (() => new Date()))());
  if (status) {
    await o.api
      .request('PATCH', crPath('configsources', ns, name, 'status'), {
        query: { fieldManager: FIELD_MANAGER, force: 'true' },
        contentType: 'application/apply-patch+yaml',
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ConfigSource', metadata: { name, namespace: ns }, status },
      })
      .catch((e: unknown) => o.log('error', 'config source status write failed', { ...fields, error: e instanceof Error ? e.message : String(e) }));
  }
  return changed;
}

async function sync(cs: ConfigSource, o: SyncOptions): Promise<{ outcome: SyncOutcome; changed: boolean }> {
  const spec = cs.spec!;
  const ns = cs.metadata.namespace!;
  const name = cs.metadata.name;
  const prefix = pathPrefix(spec.git.path);
  if (prefix === undefined) return { outcome: { kind: 'stalled', reason: 'InvalidPath', message: `spec.git.path ${spec.git.path} leaves the repository` }, changed: false };
  // The Secret is read on every sync: one created or fixed later is used at the next interval.
  let credentials: GitCredentials | undefined;
  if (spec.git.secretRef) {
    const got = await gitCredentialsFor(o.api, ns, spec.git.secretRef.name, spec.git.url);
    if (!got.ok) return { outcome: { kind: 'stalled', reason: got.reason, message: got.message }, changed: false };
    credentials = got.credentials;
  }
  await mkdir(o.cacheRoot, { recursive: true });
  let revision: string;
  try {
    revision = await fetchRevision(o.cacheRoot, cs, o.signal, credentials);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { outcome: (e as { notFound?: boolean }).notFound ? { kind: 'stalled', reason: 'RevisionNotFound', message } : { kind: 'failed', reason: 'FetchFailed', message }, changed: false };
  }
  const memo = o.applied?.get(cs.metadata.uid ?? '');
  if (memo && memo.revision === revision && memo.sourceGeneration === cs.metadata.generation && sameGenerations(madeBy(await listMade(o.api, ns), name), memo.generations)) {
    return { outcome: { kind: 'applied', revision, plan: { create: 0, update: 0, delete: 0 }, warnings: memo.warnings }, changed: false };
  }
  const files = await readFilesAt(o.cacheRoot, cs, revision, prefix, o.signal);
  if (!files.has(PROJECT_FILE) && ![...files.keys()].some((f) => f.startsWith(`${TENANT_DIR}/`) || f.startsWith(`${AGENT_DIR}/`))) {
    const where = prefix ? `${prefix.slice(0, -1)}/` : 'the repository root';
    return { outcome: { kind: 'stalled', reason: 'NoConfiguration', revision, message: `${where} holds no systemprompt.yaml, tenants/*.yaml or services/agents/*.yaml at revision ${revision}; nothing applied` }, changed: false };
  }
  const loaded = loadRepository(files, { cache: o.loadCache });
  const show = (d: Diagnostic): string => `${prefix}${d.file}:${d.line}:${d.col}: ${d.code}: ${d.message}`;
  if (!loaded.repo) {
    return { outcome: { kind: 'invalid', revision, diagnostics: loaded.diagnostics.filter((d) => d.severity === 'error').map(show) }, changed: false };
  }
  const warnings = loaded.diagnostics.filter((d) => d.severity === 'warning').map(show);
  // Agents first: a Tenant that lists an agent validates only once that Agent exists.
  const objects = customResources(loaded.repo)
    .map((r) => r.object as { kind: 'Tenant' | 'Agent'; metadata: { name: string; labels?: Record<string, string> } })
    .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'Agent' ? -1 : 1));
  const rendered = new Set(objects.map((x) => `${x.kind}/${x.metadata.name}`));
  const existing = await listMade(o.api, ns);
  const taken = conflicts(existing, name, rendered);
  if (taken.length) {
    return { outcome: { kind: 'conflict', revision, message: `${taken.map((t) => `${t.kind} ${ns}/${t.metadata.name}`).join(', ')} exist${taken.length === 1 ? 's' : ''} and ${taken.length === 1 ? 'is' : 'are'} not managed by this ConfigSource; nothing applied` }, changed: false };
  }
  const owner = { apiVersion: `${GROUP}/${VERSION}`, kind: 'ConfigSource', name, uid: cs.metadata.uid!, controller: true };
  const before = new Map(existing.map((x) => [`${x.kind}/${x.metadata.name}`, x.metadata.resourceVersion]));
  const plan = { create: 0, update: 0, delete: 0 };
  const generations = new Map<string, number | undefined>();
  for (const obj of objects) {
    const body = { ...obj, metadata: { ...obj.metadata, namespace: ns, labels: { ...(obj.metadata.labels ?? {}), [CONFIG_SOURCE_LABEL]: name }, ownerReferences: [owner] } };
    const plural = obj.kind === 'Tenant' ? 'tenants' : 'agents';
    const got = await o.api.request<CustomResource>('PATCH', crPath(plural, ns, obj.metadata.name), { query: { fieldManager: FIELD_MANAGER, force: 'true' }, contentType: 'application/apply-patch+yaml', body });
    const key = `${obj.kind}/${obj.metadata.name}`;
    generations.set(key, got.metadata.generation);
    if (!before.has(key)) plan.create++;
    else if (before.get(key) !== got.metadata.resourceVersion) plan.update++;
  }
  for (const gone of toPrune(existing, name, rendered)) {
    await o.api.request('DELETE', crPath(gone.kind === 'Tenant' ? 'tenants' : 'agents', ns, gone.metadata.name)).catch((e: { code?: number }) => {
      if (e.code !== 404) throw e;
    });
    plan.delete++;
  }
  o.applied?.set(cs.metadata.uid ?? '', { revision, sourceGeneration: cs.metadata.generation, generations, warnings });
  return { outcome: { kind: 'applied', revision, plan, warnings }, changed: plan.create + plan.update + plan.delete > 0 };
}

// ---------------------------------------------------------------------------------------------
// the loop

export interface RunConfigSourcesOptions {
  api: Api;
  signal: AbortSignal;
  log: Log;
  /** After a sync changed Tenant or Agent objects (the operator enqueues a reconcile). */
  onApplied?: () => void;
  /** Where the bare clones live: $SYSTEMPROMPT_CACHE_DIR/configsources, else the temp folder. */
  cacheRoot?: string;
  /** How often to list ConfigSources for new, changed or due ones. */
  pollMs?: number;
}

/** Sync every ConfigSource of every namespace when due (its interval, or at once when its spec changed), until `signal`. */
export async function runConfigSources(opts: RunConfigSourcesOptions): Promise<void> {
  const cacheRoot = opts.cacheRoot ?? path.join(process.env.SYSTEMPROMPT_CACHE_DIR || path.join(os.tmpdir(), 'systemprompt-cache'), 'configsources');
  const pollMs = opts.pollMs ?? 2000;
  const next = new Map<string, { due: number; generation: number | undefined }>();
  const applied = new Map<string, AppliedRevision>();
  const loadCaches = new Map<string, LoadCache>();
  let listError: string | undefined;
  while (!opts.signal.aborted) {
    let wait = pollMs;
    try {
      const sources = await listResources<ConfigSource>(opts.api, 'configsources');
      listError = undefined;
      const seen = new Set<string>();
      for (const cs of sources) {
        if (opts.signal.aborted) break;
        const uid = cs.metadata.uid ?? `${cs.metadata.namespace}/${cs.metadata.name}`;
        seen.add(uid);
        if (cs.metadata.deletionTimestamp || !cs.spec || cs.spec.suspend) continue;
        const entry = next.get(uid);
        const now = Date.now();
        if (entry && entry.generation === cs.metadata.generation && now < entry.due) {
          wait = Math.min(wait, entry.due - now);
          continue;
        }
        let loadCache = loadCaches.get(uid);
        if (!loadCache) loadCaches.set(uid, (loadCache = new LoadCache()));
        const changed = await syncConfigSource(cs, { api: opts.api, cacheRoot, log: opts.log, signal: opts.signal, applied, loadCache });
        const interval = parseInterval(cs.spec.interval);
        next.set(uid, { due: Date.now() + interval, generation: cs.metadata.generation });
        wait = Math.min(wait, interval);
        if (changed) opts.onApplied?.();
      }
      for (const uid of next.keys()) if (!seen.has(uid)) next.delete(uid);
      for (const uid of applied.keys()) if (!seen.has(uid)) applied.delete(uid);
      for (const uid of loadCaches.keys()) if (!seen.has(uid)) loadCaches.delete(uid);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (message !== listError) opts.log('error', 'listing config sources failed', { error: message });
      listError = message;
    }
    await sleep(Math.max(100, wait), opts.signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
