import type { Io } from '../cli/io.js';
import { renderDiagnostics } from '../config/diagnostics.js';
import { compile } from '../compile/compile.js';
import type { CompileEnvironment } from '../compile/desired.js';
import { loadRepository } from '../config/repository.js';
import { ConfigInvalidError } from '../errors.js';
import { informer, logger, type Cache } from '../operator/operator.js';
import { resourcesAsFiles } from '../operator/resources.js';
import type { KubernetesTarget } from '../targets/kubernetes.js';
import type { ConfigSource } from './gateway.js';

/**
 * The gateway's configuration in a cluster: every namespace's Tenant and Agent resources (those the
 * operator reconciles, with the same project file), kept by informers (list + watch) and turned into
 * a repository by the operator's own resourcesAsFiles, so the gateway serves exactly what the
 * operator provisions. A change is loaded after `debounceMs` of quiet. If the resources do not
 * validate together, the errors name the resources and the last valid configuration stays.
 */
export function clusterSource(io: Io, kube: KubernetesTarget, env: CompileEnvironment, opts: { project?: string; debounceMs: number }): ConfigSource {
  const stop = new AbortController();
  const log = logger(io);
  let onChange: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const changed = (): void => {
    if (!onChange) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => onChange?.(), opts.debounceMs);
  };
  const caches: Record<'tenants' | 'agents', Cache> = {
    tenants: informer(kube.kubeconfig, kube.api, 'tenants', log, stop.signal, changed, changed),
    agents: informer(kube.kubeconfig, kube.api, 'agents', log, stop.signal, changed, changed),
  };
  return {
    describe: 'watching the Tenant and Agent resources of every namespace',
    load: async () => {
      await Promise.all([caches.tenants.synced, caches.agents.synced]);
      const { files, origins } = resourcesAsFiles(caches.tenants.list(), caches.agents.list(), opts.project);
      const loaded = loadRepository(files);
      // Errors only: the warnings of a repository (a default tenant without a file) mean nothing here.
      const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
      if (errors.length) {
        const named = errors.map((d) => {
          const o = origins.get(d.file);
          return o ? { ...d, file: `${o.kind} ${o.namespace}/${o.name}` } : d;
        });
        io.err(renderDiagnostics(named, () => undefined));
      }
      if (!loaded.repo) throw new ConfigInvalidError('the Tenant and Agent resources do not validate together');
      return compile(loaded.repo, env);
    },
    watch: (cb) => {
      onChange = cb;
      return Promise.resolve(async () => {
        onChange = undefined;
        if (timer) clearTimeout(timer);
        stop.abort();
        await Promise.all([caches.tenants.stop(), caches.agents.stop()]);
      });
    },
  };
}
