import type { Endpoints } from '../dev/endpoints.js';
import { TARGETS, type TargetName } from '../model/resource.js';
import { KubernetesTarget } from './kubernetes.js';
import { PostgresTarget } from './postgres.js';
import type { Target } from './target.js';

export interface Connected {
  targets: Partial<Record<TargetName, Target>>;
  kubernetes?: KubernetesTarget;
  close(): Promise<void>;
}

/** Keycloak joins through this hook once its target exists (kept apart to avoid a cycle). */
export type KeycloakFactory = (endpoints: Endpoints, debug?: (l: string) => void) => Target & { clientSecret(realm: string, clientId: string): Promise<string | undefined> };
let keycloakFactory: KeycloakFactory | undefined;
export function registerKeycloakTarget(f: KeycloakFactory): void {
  keycloakFactory = f;
}
export function keycloakAvailable(): boolean {
  return keycloakFactory !== undefined;
}

/** Clients for the selected targets. Nothing connects until the first request. */
export function connectTargets(endpoints: Endpoints, selected: readonly TargetName[] = TARGETS, debug?: (line: string) => void): Connected {
  const targets: Connected['targets'] = {};
  let kubernetes: KubernetesTarget | undefined;
  if (selected.includes('kubernetes') || selected.includes('postgres')) {
    // The database password lives in a Kubernetes Secret: postgres needs it too.
    kubernetes = KubernetesTarget.fromFile(endpoints.kubeconfigPath, endpoints.context, debug);
    if (selected.includes('kubernetes')) targets.kubernetes = kubernetes;
  }
  if (selected.includes('postgres')) targets.postgres = new PostgresTarget(endpoints.postgresUrl, debug);
  if (selected.includes('keycloak') && keycloakFactory) targets.keycloak = keycloakFactory(endpoints, debug);
  return {
    targets,
    ...(kubernetes ? { kubernetes } : {}),
    close: async () => {
      await Promise.all(Object.values(targets).map((t) => t?.close()));
    },
  };
}
