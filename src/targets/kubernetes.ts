import { CoordinationV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { KubeHttp } from './kube-http.js';
import { KUBE_KINDS } from '../compile/kubernetes.js';
import type { DesiredState } from '../compile/desired.js';
import { quantitiesEqual } from '../compile/quantity.js';
import { TargetError } from '../errors.js';
import { FIELD_MANAGER, isSecretRef, MANAGED_BY_LABEL, MANAGED_BY_VALUE, TENANT_LABEL, type Json, type JsonObject, type LiveResource } from '../model/resource.js';
import type { Change } from '../plan/plan.js';
import { kubeError } from './kube-errors.js';
import { requestRunner } from './retry.js';
import type { ApplyContext, Target } from './target.js';

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

/** Top-level fields we manage per kind (besides apiVersion, kind and metadata). */
const FIELDS: Record<string, string[]> = {
  Namespace: [],
  ServiceAccount: ['automountServiceAccountToken'],
  Role: ['rules'],
  RoleBinding: ['roleRef', 'subjects'],
  ResourceQuota: ['spec'],
  LimitRange: ['spec'],
  NetworkPolicy: ['spec'],
  Secret: ['type', 'stringData'],
};

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

  static fromFile(path: string, context?: string, debug?: (line: string) => void): KubernetesTarget {
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(path);
    } catch (e) {
      throw new TargetError('kubernetes', `cannot load kubeconfig ${path}: ${(e as Error).message}`);
    }
    if (context) {
      if (!kc.getContexts().some((c) => c.name === context)) throw new TargetError('kubernetes', `context ${context} is not in ${path}`);
      kc.setCurrentContext(context);
    }
    return new KubernetesTarget(kc, debug);
  }

  get coordination(): CoordinationV1Api {
    return this.coord;
  }

  private readonly call: ReturnType<typeof requestRunner>;

  private async listAll(kind: string, selector: string | undefined): Promise<Obj[]> {
    const a = API[kind]!;
    const out: Obj[] = [];
    let cont: string | undefined;
    do {
      const page = await this.call(`list ${kind}${selector ? ` -l ${selector}` : ''}`, 'read', () =>
        this.http.request<{ items: Obj[]; metadata?: { continue?: string } }>('GET', `${a.prefix}/${a.plural}`, {
          query: { labelSelector: selector, limit: String(PAGE), continue: cont },
        }),
      );
      out.push(...page.items);
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  /**
   * One list per kind with our label selector; namespaces are listed whole (one request) so that
   * an unmarked namespace with a tenant's name is seen and left alone.
   */
  async read(desired: DesiredState): Promise<LiveResource[]> {
    const desiredSpecs = new Map(desired.resources.filter((r) => r.target === 'kubernetes').map((r) => [`${r.kind}:${r.name}`, r.spec]));
    const lists = await Promise.all(KUBE_KINDS.map(async (kind) => [kind, await this.listAll(kind, kind === 'Namespace' ? undefined : SELECTOR)] as const));
    const out: LiveResource[] = [];
    for (const [kind, items] of lists) {
      for (const o of items) {
        const labels = o.metadata?.labels ?? {};
        const managed = labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
        const name = kind === 'Namespace' ? o.metadata!.name! : `${o.metadata!.namespace}/${o.metadata!.name}`;
        if (kind === 'Namespace' && !managed && !desiredSpecs.has(`Namespace:${name}`)) continue;
        const spec = project(kind, o);
        const want = desiredSpecs.get(`${kind}:${name}`);
        if (want) normalizeQuantities(want, spec);
        const live: LiveResource = { target: 'kubernetes', kind, name, managed, spec };
        if (labels[TENANT_LABEL]) live.tenant = labels[TENANT_LABEL];
        if (kind === 'Namespace' && (o as { status?: { phase?: string } }).status?.phase === 'Terminating') live.terminating = true;
        out.push(live);
      }
    }
    return out;
  }

  async apply(change: Change, ctx: ApplyContext): Promise<void> {
    if (change.action === 'delete') {
      const [ns, name] = change.kind === 'Namespace' ? [undefined, change.name] : splitName(change.name);
      try {
        await this.call(`delete ${change.kind} ${change.name}`, 'write', () =>
          this.http.request('DELETE', objectPath(change.kind, name, ns), { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' } }),
        );
      } catch (e) {
        if (!(e instanceof TargetError && /\(404\)/.test(e.message))) throw e;
      }
      return;
    }
    const body = (await resolveSecrets(change.spec as Json, change.tenant!, ctx, change.kind === 'Secret')) as Obj;
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
      if (e instanceof TargetError && /\(404\)/.test(e.message)) return undefined;
      throw e;
    }
  }

  async close(): Promise<void> {}
}

function apiVersionOf(kind: string): string {
  if (kind === 'Role' || kind === 'RoleBinding') return 'rbac.authorization.k8s.io/v1';
  if (kind === 'NetworkPolicy') return 'networking.k8s.io/v1';
  return 'v1';
}

function splitName(n: string): [string, string] {
  const i = n.indexOf('/');
  return [n.slice(0, i), n.slice(i + 1)];
}

/** The live object in the shape of our desired spec: the fields we manage, secrets decoded. */
export function project(kind: string, o: Obj): JsonObject {
  const m = o.metadata ?? {};
  const meta: JsonObject = { name: m.name ?? '' };
  if (m.namespace) meta.namespace = m.namespace;
  meta.labels = (m.labels ?? {}) as JsonObject;
  meta.annotations = (m.annotations ?? {}) as JsonObject;
  const spec: JsonObject = { apiVersion: o.apiVersion ?? apiVersionOf(kind), kind, metadata: meta };
  for (const f of FIELDS[kind] ?? []) {
    if (kind === 'Secret' && f === 'stringData') {
      const data = (o.data ?? {}) as Record<string, string>;
      spec.stringData = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    } else if (o[f] !== undefined) {
      spec[f] = JSON.parse(JSON.stringify(o[f])) as Json;
    }
  }
  return spec;
}

/** Quantities the API server rewrote ("0.5" -> "500m") compare by value. */
export function normalizeQuantities(want: JsonObject, live: JsonObject): void {
  const walk = (w: Json | undefined, l: Json | undefined, set: (v: Json) => void): void => {
    if (typeof w === 'string' && typeof l === 'string' && w !== l) {
      try {
        if (quantitiesEqual(w, l)) set(w);
      } catch {
        /* not quantities */
      }
      return;
    }
    if (Array.isArray(w) && Array.isArray(l)) w.forEach((x, i) => walk(x, l[i], (v) => (l[i] = v)));
    else if (w && l && typeof w === 'object' && typeof l === 'object' && !Array.isArray(w) && !Array.isArray(l)) {
      for (const k of Object.keys(w)) walk(w[k], l[k], (v) => (l[k] = v));
    }
  };
  if (live.kind === 'ResourceQuota' || live.kind === 'LimitRange') walk(want.spec, live.spec, () => {});
}

/** Replace secret references with their values (only ever on the way to the API server). */
async function resolveSecrets(v: Json, tenant: string, ctx: ApplyContext, mayGenerate: boolean): Promise<Json> {
  if (isSecretRef(v)) {
    const value = await ctx.secrets.resolve(tenant, v.secretRef, { mayGenerate });
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
