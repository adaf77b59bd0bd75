import { stringify } from 'yaml';
import { AGENT_DIR, TENANT_DIR } from '../config/repository.js';
import type { KubeHttp } from '../targets/kube-http.js';

/** A Tenant or Agent custom resource as the API server returns it. */
export interface CustomResource {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; generation?: number; resourceVersion?: string; uid?: string; deletionTimestamp?: string; labels?: Record<string, string>; finalizers?: string[] };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export const GROUP = 'systemprompt.io';
export const VERSION = 'v1alpha1';
export const crPath = (plural: string, namespace?: string, name?: string, sub?: string): string =>
  `/apis/${GROUP}/${VERSION}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${plural}${name ? `/${encodeURIComponent(name)}` : ''}${sub ? `/${sub}` : ''}`;

/** Plain JSON access to the API server, as the operator uses it. */
export type CrApi = Pick<KubeHttp, 'request'>;

/** Every object of a custom resource (in one namespace, or all), page by page. */
export async function listResources<T extends { metadata: CustomResource['metadata'] } = CustomResource>(api: CrApi, plural: string, namespace?: string): Promise<T[]> {
  const out: T[] = [];
  let cont: string | undefined;
  do {
    const page = await api.request<{ items: T[]; metadata?: { continue?: string } }>('GET', crPath(plural, namespace), { query: { limit: '500', continue: cont } });
    for (const i of page.items) out.push(i);
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return out;
}

/** The tenant a Tenant resource names: its spec's name, else the object's. */
export const tenantNameOf = (cr: CustomResource): string => (typeof cr.spec?.name === 'string' ? cr.spec.name : cr.metadata.name);

/** Where a synthetic repository file came from, for diagnostics and status. */
export interface FileOrigin {
  kind: 'Tenant' | 'Agent';
  namespace: string;
  name: string;
}

/**
 * Tenant and Agent resources as the files of a config repository: `spec` is exactly a tenant or an
 * agent file, so the same loader validates them (schema, names, references) and the same compiler
 * builds the desired state. A Tenant's file is named after its `spec.name` (else its object name).
 * `project` is the content of systemprompt.yaml (the scope catalog, naming), when the operator is given one.
 */
export function resourcesAsFiles(tenants: CustomResource[], agents: CustomResource[], project?: string): { files: Map<string, Uint8Array>; origins: Map<string, FileOrigin> } {
  const files = new Map<string, Uint8Array>();
  const origins = new Map<string, FileOrigin>();
  const enc = new TextEncoder();
  if (project !== undefined) files.set('systemprompt.yaml', enc.encode(project));
  const add = (dir: string, kind: FileOrigin['kind'], r: CustomResource): void => {
    if (r.metadata.deletionTimestamp) return;
    const name = tenantNameOf(r);
    let file = `${dir}/${name}.yaml`;
    // Two objects naming one tenant: both files exist, and the loader reports the duplicate.
    for (let i = 2; files.has(file); i++) file = `${dir}/${name}.${i}.yaml`;
    files.set(file, enc.encode(stringify(r.spec ?? {}, { lineWidth: 0 })));
    origins.set(file, { kind, namespace: r.metadata.namespace ?? '', name: r.metadata.name });
  };
  for (const t of tenants) add(TENANT_DIR, 'Tenant', t);
  for (const a of agents) add(AGENT_DIR, 'Agent', a);
  return { files, origins };
}
