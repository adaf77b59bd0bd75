import { postgresServerUrls, type Endpoints } from './endpoints.js';
import { TARGETS, type TargetName } from '../model/resource.js';
import type { KubernetesTarget } from './kubernetes.js';
import type { SecretSources } from '../reconcile/secrets.js';
import type { Target } from './target.js';

export interface Connected {
  targets: Partial<Record<TargetName, Target>>;
  kubernetes: KubernetesTarget;
  /** Where secret values come from at write time: the tenants' Secrets, Keycloak's client secrets. */
  secretSources(): SecretSources;
  close(): Promise<void>;
}

/**
 * Clients for the selected targets. Nothing connects until the first request; the client libraries
 * are loaded here, not at start-up, so commands that need no target start fast.
 */
export async function connectTargets(endpoints: Endpoints, selected: readonly TargetName[] = TARGETS, debug?: (line: string) => void): Promise<Connected> {
  const { KubernetesTarget } = await import('./kubernetes.js');
  const targets: Connected['targets'] = {};
  // Always there: the apply lock is a Lease, and the database password lives in a Kubernetes Secret.
  const kubernetes = KubernetesTarget.connect(endpoints.kubeconfigPath, endpoints.context, debug);
  if (selected.includes('kubernetes')) targets.kubernetes = kubernetes;
  if (selected.includes('postgres')) {
    // With postgres.servers, the target asks for the servers the desired state names.
    targets.postgres = new (await import('./postgres.js')).PostgresTarget(endpoints.postgresUrl, debug, (servers) => postgresServerUrls(endpoints, servers));
  }
  if (selected.includes('keycloak')) targets.keycloak = new (await import('./keycloak.js')).KeycloakTarget(endpoints.keycloak, debug);
  return {
    targets,
    kubernetes,
    secretSources: () => {
      const keycloak = targets.keycloak as { clientSecret?: (realm: string, clientId: string) => Promise<string | undefined> } | undefined;
      return {
        readSecretValue: (ns, name, key) => kubernetes.readSecretValue(ns, name, key),
        ...(keycloak?.clientSecret ? { clientSecret: (realm: string, id: string) => keycloak.clientSecret!(realm, id) } : {}),
      };
    },
    close: async () => {
      await Promise.all(Object.values(targets).map((t) => t?.close()));
    },
  };
}
