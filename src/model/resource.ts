import { createHash } from 'node:crypto';

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
  /** Resolves to secretDigest(value) instead of the value: a public fingerprint of it. */
  digest?: boolean;
}

/**
 * A one-way fingerprint of a secret value (128 bits of SHA-256 over a fixed prefix and the value).
 * Recorded next to the value where it is stored and where it was last handed out (a role's
 * comment), so a plan can tell that the two disagree without ever reading the value.
 */
export function secretDigest(value: string): string {
  return createHash('sha256').update(`systemprompt secret\0${value}`).digest('hex').slice(0, 32);
}

/** A live value that is only known by its hash (Secret data): never the value itself. */
export interface Redacted {
  $sha256: string;
}

export function isRedacted(v: unknown): v is Redacted & JsonObject {
  return !!v && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>).$sha256 === 'string';
}

export function redact(value: string | Buffer): Redacted & JsonObject {
  return { $sha256: createHash('sha256').update(value).digest('hex') };
}

/** A live secret consumer (a database role): the digest of the value it was given, when recorded. */
export interface GivenSecret {
  $digest: string;
}

export function isGivenSecret(v: unknown): v is GivenSecret & JsonObject {
  return !!v && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>).$digest === 'string';
}

export function isSecretRef(v: unknown): v is SecretRef & JsonObject {
  return !!v && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>).secretRef === 'string';
}

