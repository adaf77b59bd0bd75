/** The desired and live state of the three targets, as one list of resources. */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export type TargetName = 'keycloak' | 'kubernetes' | 'postgres';
export const TARGETS: readonly TargetName[] = ['kubernetes', 'postgres', 'keycloak'];

export interface ResourceId {
  target: TargetName;
  /** Realm, ClientScope, RealmRole, Client, User | Namespace, ResourceQuota, ... | Role, Database */
  kind: string;
  /** Unique within (target, kind): `realm`, `realm/client`, `namespace/object`, `database`. */
  name: string;
}

export interface DesiredResource extends ResourceId {
  tenant: string;
  /** The fields we manage, as JSON. Secret values appear only as references ({ "secretRef": ... }). */
  spec: JsonObject;
  /** Keys of resources that must exist before this one. */
  dependsOn: string[];
  /** Deleting it loses data: realm, namespace, database. */
  destructive?: boolean;
}

export interface LiveResource extends ResourceId {
  /** The tenant named by our marker; undefined when unmarked. */
  tenant?: string;
  /** Carries our ownership marker; unmarked resources are never updated or deleted. */
  managed: boolean;
  /** Live values of the fields we manage, in the same shape as the desired spec. */
  spec: JsonObject;
  /** Resource is being deleted (a Terminating namespace). */
  terminating?: boolean;
  /** For databases: deletion_policy recorded on the live object. */
  retain?: boolean;
}

export function resourceKey(r: ResourceId): string {
  return `${r.target}:${r.kind}:${r.name}`;
}

/** A reference to a secret value the apply step resolves (generated once, or read from a target). */
export interface SecretRef {
  secretRef: string;
  /** Optional format with `{}` where the secret goes, e.g. a connection URL. */
  format?: string;
}

export function isSecretRef(v: unknown): v is SecretRef & JsonObject {
  return !!v && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>).secretRef === 'string';
}

/** Ownership markers written on every object we manage. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'systemprompt';
export const TENANT_LABEL = 'systemprompt.io/tenant';
export const FIELD_MANAGER = 'systemprompt';
