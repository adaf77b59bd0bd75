import { CoordinationV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { KubeHttp } from './kube-http.js';
import { KUBE_KINDS } from '../compile/kubernetes.js';
import type { DesiredState } from '../compile/desired.js';
import { TargetError } from '../errors.js';
import { FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ourFieldsEntry, TENANT_LABEL, type ManagedFieldsEntry } from '../model/ownership.js';
import { isSecretRef, redact, secretDigest, type Json, type JsonObject, type LiveResource } from '../model/resource.js';
import type { Change } from '../plan/plan.js';
import { kubeError } from './kube-errors.js';
import { mapLimit, READ_CONCURRENCY } from './limit.js';
import { requestRunner } from './retry.js';
import type { ApplyContext, ReadScope, Target } from './target.js';

const SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
const PAGE = 500;

type Obj = KubernetesObject & Record<string, unknown>;

/** API path prefix and plural per kind. */
const API: Record<string, { prefix: string; plural: string; namespaced: boolean }> = {
  Namespace: { prefix: '/api/v1', plural: 'namespaces', namespaced: false },
  ServiceAccount: { prefix: '/api/v1', plural: 'serviceaccounts', namespaced: true },
  Role: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'roles', namespaced: true },
  RoleBinding: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'rolebindings', namespaced: true },
  ResourceQuota: { prefix: '/api/v1', plural: 'resourcequotas', namespaced: true },
  LimitRange: { prefix: '/api/v1', plural: 'limitranges', namespaced: true },
  NetworkPolicy: { prefix: '/apis/networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true },
  Secret: { prefix: '/api/v1', plural: 'secrets', namespaced: true },
};

function objectPath(kind: string, name: string, namespace?: string): string {
  const a = API[kind];
  if (!a) throw new TargetError('kubernetes', `unknown kind ${kind}`);
  const enc = encodeURIComponent;
  return a.namespaced ? `${a.prefix}/namespaces/${enc(namespace ?? '')}/${a.plural}/${enc(name)}` : `${a.prefix}/${a.plural}/${enc(name)}`;
}

/** Kubernetes through @kubernetes/client-node: list per kind and label, server-side apply, delete. */
export class KubernetesTarget implements Target {
  readonly name = 'kubernetes' as const;
  readonly requests = { reads: 0, writes: 0 };
  private readonly http: KubeHttp;
  private readonly coord: CoordinationV1Api;

  constructor(readonly kubeconfig: KubeConfig, debug?: (line: string) => void) {
    this.http = new KubeHttp(kubeconfig);
    this.call = requestRunner('kubernetes', this.requests, kubeError, debug);
    this.coord = kubeconfig.makeApiClient(CoordinationV1Api);
  }

  /**
   * Kubernetes config the usual way: the named kubeconfig file, else KUBECONFIG or ~/.kube/config,
   * else the pod's service account (in a cluster); `context` picks a context of the file.
   */
  static connect(path: string | undefined, context?: string, debug?: (line: string) => void): KubernetesTarget {
    const kc = new KubeConfig();
    const where = path ?? 'the default kubeconfig (KUBECONFIG, ~/.kube/config or the in-cluster service account)';
    try {
      if (path) kc.loadFromFile(path);
      else kc.loadFromDefault();
    } catch (e) {
      throw new TargetError('kubernetes', `cannot load kubeconfig ${where}: ${(e as Error).message}`);
    }
    if (!kc.getCurrentCluster()) throw new TargetError('kubernetes', `no cluster in ${where}`, { hint: 'set KUBECONFIG, or run inside a cluster' });
    if (context) {
      if (!kc.getContexts().some((c) => c.name === context)) throw new TargetError('kubernetes', `context ${context} is not in ${where}`);
      kc.setCurrentContext(context);
    }
    return new KubernetesTarget(kc, debug);
  }

  /** Plain JSON access to the API server (the apply lock's Lease). */
  get api(): KubeHttp {
    return this.http;
  }

  get coordination(): CoordinationV1Api {
    return this.coord;
  }

  private readonly call: ReturnType<typeof requestRunner>;

  private async listAll(kind: string, selector: string | undefined, namespace?: string, fieldSelector?: string): Promise<Obj[]> {
    const a = API[kind]!;
    const out: Obj[] = [];
    let cont: string | undefined;
    const where = `${namespace ? ` -n ${namespace}` : ''}${selector ? ` -l ${selector}` : ''}${fieldSelector ? ` --field-selector ${fieldSelector}` : ''}`;
    do {
      const page = await this.call(`list ${kind}${where}`, 'read', () =>
        this.http.request<{ items: Obj[]; metadata?: { continue?: string } }>('GET', `${a.prefix}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${a.plural}`, {
          query: { labelSelector: selector, fieldSelector, limit: String(PAGE), continue: cont },
        }),
      );
      for (const o of page.items) out.push(o);
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  /**
   * One list per kind with our label selector; namespaces are listed whole (one request) so that
   * a namespace with a tenant's name that we did not make is seen and left alone. An object is ours
   * only when our field manager applied it; what we own is read from its managedFields, so a
   * field we stop sending shows as a removal. Secret data is hashed here and never leaves.
   */
  async read(desired: DesiredState, scope?: ReadScope): Promise<LiveResource[]> {
    const desiredNames = new Set(desired.resources.filter((r) => r.target === 'kubernetes').map((r) => `${r.kind}:${r.name}`));
    const lists = scope
      ? await this.readNamespaces(scope.namespaces)
      : await Promise.all(KUBE_KINDS.map(async (kind) => [kind, await this.listAll(kind, kind === 'Namespace' ? undefined : SELECTOR)] as const));
    const out: LiveResource[] = [];
    for (const [kind, items] of lists) {
      for (const o of items) {
        const labels = o.metadata?.labels ?? {};
        const name = kind === 'Namespace' ? o.metadata!.name! : `${o.metadata!.namespace}/${o.metadata!.name}`;
        const ours = ourFieldsEntry(o.metadata?.managedFields as ManagedFieldsEntry[] | undefined);
        if (!ours && !desiredNames.has(`${kind}:${name}`)) continue;
        const live: LiveResource = { target: 'kubernetes', kind, name, managed: !!ours, spec: ours ? ownedProjection(kind, o, ours.fieldsV1 ?? {}) : {} };
        if (ours && labels[TENANT_LABEL]) live.tenant = labels[TENANT_LABEL];
        if (kind === 'Namespace' && (o as { status?: { phase?: string } }).status?.phase === 'Terminating') live.terminating = true;
        out.push(live);
      }
    }
    return out;
  }

  /** A scoped read: each namespace by name (ours or not), and our objects of each kind inside it. */
  private async readNamespaces(namespaces: string[]): Promise<Array<readonly [string, Obj[]]>> {
    // A bounded number of lists at once, however many namespaces are in scope.
    const lists = namespaces.flatMap((ns) => KUBE_KINDS.map((kind) => [ns, kind] as const));
    return mapLimit(lists, READ_CONCURRENCY * KUBE_KINDS.length, async ([ns, kind]) =>
      [kind, kind === 'Namespace' ? await this.listAll(kind, undefined, undefined, `metadata.name=${ns}`) : await this.listAll(kind, SELECTOR, ns)] as const,
    );
  }

  async apply(change: Change, ctx: ApplyContext): Promise<void> {
    if (change.action === 'delete') {
      const [ns, name] = change.kind === 'Namespace' ? [undefined, change.name] : splitName(change.name);
      try {
        await this.call(`delete ${change.kind} ${change.name}`, 'write', () =>
          this.http.request('DELETE', objectPath(change.kind, name, ns), { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' } }),
        );
      } catch (e) {
        if (!(e instanceof TargetError && e.status === 404)) throw e;
      }
      return;
    }
    const spec = ctx.specOf(change);
    const body = (await resolveSecrets(spec, change.tenant!, ctx, change.kind === 'Secret')) as Obj;
    if (change.kind === 'Secret' && body.data) body.data = Object.fromEntries(Object.entries(body.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
    const [ns, name] = change.kind === 'Namespace' ? [undefined, change.name] : splitName(change.name);
    // Server-side apply: we own exactly the fields we send; `force` takes them over from other managers.
    await this.call(`apply ${change.kind} ${change.name}`, 'write', () =>
      this.http.request('PATCH', objectPath(change.kind, name, ns), {
        query: { fieldManager: FIELD_MANAGER, force: 'true' },
        body,
        contentType: 'application/apply-patch+yaml',
      }),
    );
  }

  /** A decoded value of a Secret, or undefined when the Secret or key is absent. */
  async readSecretValue(namespace: string, name: string, key: string): Promise<string | undefined> {
    try {
      const s = await this.call(`get Secret ${namespace}/${name}`, 'read', () => this.http.request<{ data?: Record<string, string> }>('GET', objectPath('Secret', name, namespace)));
      const v = s.data?.[key];
      return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
    } catch (e) {
      if (e instanceof TargetError && e.status === 404) return undefined;
      throw e;
    }
  }

  async close(): Promise<void> {}
}

function splitName(n: string): [string, string] {
  const i = n.indexOf('/');
  return [n.slice(0, i), n.slice(i + 1)];
}

/**
 * The part of a live object that our field manager owns, in the shape of our desired spec.
 * `fieldsV1` is the server's record of our fields (`f:<name>` per field; `k:`/`v:`/`i:` inside
 * lists, which we compare whole). Identity (apiVersion, kind, name, namespace) is left out: it is
 * in the resource's key. Secret data is replaced by hashes of the values.
 */
export function ownedProjection(kind: string, o: Obj, fieldsV1: Record<string, unknown>): JsonObject {
  const picked = (pick(o, fieldsV1) ?? {}) as JsonObject;
  const meta = picked.metadata as JsonObject | undefined;
  if (meta) {
    delete meta.name;
    delete meta.namespace;
    if (Object.keys(meta).length === 0) delete picked.metadata;
  }
  if (kind === 'Secret') {
    const data = picked.data as Record<string, string> | undefined;
    if (data) picked.data = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, redact(Buffer.from(String(v), 'base64'))]));
  }
  return picked;
}

function pick(value: unknown, fields: Record<string, unknown>): Json | undefined {
  if (value === undefined) return undefined;
  const keys = Object.keys(fields).filter((k) => k !== '.');
  // A leaf, or a list whose items are keyed (k:), valued (v:) or indexed (i:): compared whole.
  if (keys.length === 0 || keys.some((k) => !k.startsWith('f:')) || !value || typeof value !== 'object' || Array.isArray(value)) {
    return JSON.parse(JSON.stringify(value)) as Json;
  }
  const out: JsonObject = {};
  for (const k of keys) {
    const name = k.slice(2);
    if (name === 'apiVersion' || name === 'kind') continue;
    const v = pick((value as Record<string, unknown>)[name], (fields[k] ?? {}) as Record<string, unknown>);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** Replace secret references with their values (only ever on the way to the API server). */
async function resolveSecrets(v: Json, tenant: string, ctx: ApplyContext, mayGenerate: boolean): Promise<Json> {
  if (isSecretRef(v)) {
    const value = await ctx.secrets.resolve(tenant, v.secretRef, { mayGenerate });
    if (v.digest) return secretDigest(value);
    return typeof v.format === 'string' ? v.format.replace('{}', encodeURIComponent(value)) : value;
  }
  if (Array.isArray(v)) return Promise.all(v.map((x) => resolveSecrets(x, tenant, ctx, mayGenerate)));
  if (v && typeof v === 'object') {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) out[k] = await resolveSecrets(x, tenant, ctx, mayGenerate);
    return out;
  }
  return v;
}
