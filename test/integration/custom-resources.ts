import { KubeConfig } from '@kubernetes/client-node';
import type { Endpoints } from '../../src/targets/endpoints.js';
import { KubeHttp } from '../../src/targets/kube-http.js';

const API = '/apis/systemprompt.io/v1alpha1';
export const CUSTOM_RESOURCE_PLURALS = ['configsources', 'tenants', 'agents'] as const;

/** KubeHttp for the stack's kubeconfig (and context) in `endpoints`. */
export function kubeHttpFor(endpoints: Endpoints): KubeHttp {
  const kc = new KubeConfig();
  kc.loadFromFile(endpoints.kubeconfigPath!);
  if (endpoints.context) kc.setCurrentContext(endpoints.context);
  return new KubeHttp(kc);
}

const notFound = (e: { code?: number }): undefined => {
  if (e.code !== 404) throw e;
  return undefined;
};

/**
 * Delete every Tenant, Agent and ConfigSource in `namespace` (in all namespaces without one),
 * dropping their finalizers first: nobody is left to release them. Returns how many it deleted;
 * it does not wait for them to be gone.
 */
export async function deleteCustomResources(kube: KubeHttp, namespace?: string): Promise<number> {
  let deleted = 0;
  for (const plural of CUSTOM_RESOURCE_PLURALS) {
    const list = await kube
      .request<{ items: Array<{ metadata: { name: string; namespace: string; finalizers?: string[] } }> }>('GET', namespace ? `${API}/namespaces/${namespace}/${plural}` : `${API}/${plural}`)
      .catch(notFound);
    for (const { metadata: m } of list?.items ?? []) {
      const one = `${API}/namespaces/${m.namespace}/${plural}/${m.name}`;
      if (m.finalizers?.length) await kube.request('PATCH', one, { contentType: 'application/merge-patch+json', body: { metadata: { finalizers: null } } }).catch(notFound);
      await kube.request('DELETE', one).catch(notFound);
      deleted++;
    }
  }
  return deleted;
}

/** How many objects of `plural` are left in `namespace`. */
export async function countCustomResources(kube: KubeHttp, namespace: string, plural: string): Promise<number> {
  const left = await kube.request<{ items: unknown[] }>('GET', `${API}/namespaces/${namespace}/${plural}`).catch(notFound);
  return left?.items.length ?? 0;
}
