import type { SecretSource } from '../runtime/tenant-db.js';

export interface FromKubernetesOptions {
  /** A kubeconfig file; default: KUBECONFIG, then ~/.kube/config, then the pod's service account. */
  kubeconfig?: string;
  /** A context of that kubeconfig; default its current context. */
  context?: string;
}

/**
 * Secret values read from the Kubernetes API with the process's credentials: the in-cluster service
 * account or a kubeconfig. The Kubernetes client is loaded on the first read, not when the SDK is
 * imported. The credentials need `get` on the Secret `systemprompt-database` of each tenant
 * namespace served (see the README).
 */
export function fromKubernetes(opts: FromKubernetesOptions = {}): SecretSource {
  let target: Promise<SecretSource> | undefined;
  const connect = (): Promise<SecretSource> => {
    const t = import('../targets/kubernetes.js').then(({ KubernetesTarget }) => KubernetesTarget.connect(opts.kubeconfig, opts.context));
    // A failed start (no kubeconfig yet) is tried again on the next read.
    t.catch(() => {
      if (target === t) target = undefined;
    });
    return t;
  };
  return {
    async readSecretValue(namespace, name, key) {
      target ??= connect();
      return (await target).readSecretValue(namespace, name, key);
    },
  };
}
