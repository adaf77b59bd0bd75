import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, POSTGRES_SERVER_ANNOTATION, TENANT_LABEL } from '../model/ownership.js';
import { resourceKey, type DesiredResource, type JsonObject } from '../model/resource.js';
import type { CompileEnvironment, TenantDesired } from './desired.js';
import { minQuantity } from './quantity.js';
import { organizationScope } from './organization.js';
import { DATABASE_SECRET, OIDC_SECRET } from './secret-names.js';

export { DATABASE_SECRET, OIDC_SECRET };
export const WORKLOAD_NAME = 'systemprompt-tenant';
export const QUOTA_NAME = 'systemprompt-quota';
export const LIMITS_NAME = 'systemprompt-limits';
export const NETPOL_NAME = 'systemprompt-isolation';
/** Annotation holding the tenant's request rate (enforced by the gateway, not by Kubernetes). */
export const RATE_ANNOTATION = 'systemprompt.io/requests-per-minute';
/** Annotation on the database Secret: the digest of the password it holds (never the password). */
export const PASSWORD_DIGEST_ANNOTATION = 'systemprompt.io/password-digest';

/** Secret references resolved at apply time; never values. */
export const POSTGRES_PASSWORD_REF = 'postgres-password';
export const clientSecretRef = (clientId: string): string => `client-secret:${clientId}`;

/** The kinds we manage, in creation order (the Namespace first, the Secrets last). */
export const KUBE_KINDS = ['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ResourceQuota', 'LimitRange', 'NetworkPolicy', 'Secret'] as const;

export function labels(t: TenantDesired): JsonObject {
  return { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [TENANT_LABEL]: t.name };
}

/** Environment-variable-safe key for an agent: `assistant-v2` -> `ASSISTANT_V2`. */
export const envKey = (name: string): string => name.toUpperCase().replace(/[^A-Z0-9]/g, '_');

/**
 * The Secret `systemprompt-database`: how the tenant's workloads reach its database. With several
 * servers, `server` names the one it was placed on (key POSTGRES_SERVER, and an annotation that
 * plan reads back).
 */
export function databaseSecret(t: TenantDesired, host: string, port: number, server?: string): DesiredResource {
  const ns = t.namespace;
  const pgUrlFormat = `postgresql://${encodeURIComponent(t.dbRole)}:{}@${host}:${port}/${encodeURIComponent(t.database)}`;
  const data: JsonObject = {
    DATABASE_URL: { secretRef: POSTGRES_PASSWORD_REF, format: pgUrlFormat },
    PGHOST: host,
    PGPORT: String(port),
    PGDATABASE: t.database,
    PGUSER: t.dbRole,
    PGPASSWORD: { secretRef: POSTGRES_PASSWORD_REF },
  };
  const annotations: JsonObject = { [PASSWORD_DIGEST_ANNOTATION]: { secretRef: POSTGRES_PASSWORD_REF, digest: true } };
  if (server !== undefined) {
    data.POSTGRES_SERVER = server;
    annotations[POSTGRES_SERVER_ANNOTATION] = server;
  }
  return {
    target: 'kubernetes',
    kind: 'Secret',
    name: `${ns}/${DATABASE_SECRET}`,
    tenant: t.name,
    // Secrets are written as `data` (base64 on the way out), never `stringData`: server-side apply
    // then records each key as ours, and removes a key we stop sending.
    spec: { apiVersion: 'v1', kind: 'Secret', metadata: { name: DATABASE_SECRET, namespace: ns, labels: labels(t), annotations }, type: 'Opaque', data },
    dependsOn: [resourceKey({ target: 'kubernetes', kind: 'Namespace', name: ns })],
  };
}

export function kubernetesResources(t: TenantDesired, env: CompileEnvironment): DesiredResource[] {
  const ns = t.namespace;
  const nsKey = resourceKey({ target: 'kubernetes', kind: 'Namespace', name: ns });
  const tenantLabels = labels(t); // shared by the tenant's objects (never mutated)
  const meta = (name: string, extra: JsonObject = {}): JsonObject => ({ name, namespace: ns, labels: tenantLabels, ...extra });
  const obj = (kind: string, apiVersion: string, name: string, body: JsonObject, metaExtra: JsonObject = {}): DesiredResource => ({
    target: 'kubernetes',
    kind,
    name: `${ns}/${name}`,
    tenant: t.name,
    spec: { apiVersion, kind, metadata: meta(name, metaExtra), ...body },
    dependsOn: [nsKey],
  });

  const out: DesiredResource[] = [
    {
      target: 'kubernetes',
      kind: 'Namespace',
      name: ns,
      tenant: t.name,
      spec: {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: ns,
          labels: tenantLabels,
          ...(t.quotas.requestsPerMinute !== undefined ? { annotations: { [RATE_ANNOTATION]: String(t.quotas.requestsPerMinute) } } : {}),
        },
      },
      dependsOn: [],
      destructive: true,
    },
    obj('ServiceAccount', 'v1', WORKLOAD_NAME, { automountServiceAccountToken: true }),
    obj('Role', 'rbac.authorization.k8s.io/v1', WORKLOAD_NAME, {
      rules: [
        { apiGroups: [''], resources: ['configmaps', 'secrets', 'services', 'pods', 'endpoints'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'update', 'patch', 'delete'] },
      ],
    }),
    obj('RoleBinding', 'rbac.authorization.k8s.io/v1', WORKLOAD_NAME, {
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: WORKLOAD_NAME },
      subjects: [{ kind: 'ServiceAccount', name: WORKLOAD_NAME, namespace: ns }],
    }),
  ];

  const hard: JsonObject = {};
  const q = t.quotas;
  if (q.cpu !== undefined) Object.assign(hard, { 'requests.cpu': q.cpu, 'limits.cpu': q.cpu });
  if (q.memory !== undefined) Object.assign(hard, { 'requests.memory': q.memory, 'limits.memory': q.memory });
  if (q.storage !== undefined) hard['requests.storage'] = q.storage;
  if (q.pods !== undefined) hard.pods = String(q.pods);
  if (Object.keys(hard).length > 0) out.push(obj('ResourceQuota', 'v1', QUOTA_NAME, { spec: { hard } }));

  // Defaults so that containers without resources are admitted under a cpu/memory quota;
  // never larger than the quota itself.
  const cpuMax = q.cpu ?? '1';
  const memMax = q.memory ?? '1Gi';
  out.push(
    obj('LimitRange', 'v1', LIMITS_NAME, {
      spec: {
        limits: [
          {
            type: 'Container',
            default: { cpu: minQuantity('500m', cpuMax), memory: minQuantity('512Mi', memMax) },
            defaultRequest: { cpu: minQuantity('100m', cpuMax), memory: minQuantity('128Mi', memMax) },
          },
        ],
      },
    }),
    obj('NetworkPolicy', 'networking.k8s.io/v1', NETPOL_NAME, {
      spec: {
        podSelector: {},
        policyTypes: ['Ingress'],
        // Only pods of this namespace may connect; every other namespace is denied.
        ingress: [{ from: [{ podSelector: {} }] }],
      },
    }),
  );

  out.push(databaseSecret(t, env.postgresHost, env.postgresPort));

  const oidc: JsonObject = { OIDC_ISSUER: t.issuer, TENANT_ID: t.name };
  // In the shared realm a login names the tenant's organization; Keycloak refuses non-members.
  if (t.organization) oidc.OIDC_ORGANIZATION_SCOPE = organizationScope(t.organization);
  for (const a of t.agents) {
    oidc[`${envKey(a.name)}_CLIENT_ID`] = a.clientId;
    oidc[`${envKey(a.name)}_CLIENT_SECRET`] = { secretRef: clientSecretRef(a.clientId) };
  }
  const oidcSecret = obj('Secret', 'v1', OIDC_SECRET, { type: 'Opaque', data: oidc });
  // Client secrets are read from Keycloak: the clients must exist first.
  oidcSecret.dependsOn.push(...t.agents.map((a) => resourceKey({ target: 'keycloak', kind: 'Client', name: `${t.realm}/${a.clientId}` })));
  out.push(oidcSecret);
  return out;
}
