/**
 * What "managed by systemprompt" means on each target, in one place. The compiler writes these
 * markers; the targets read them back to tell our objects from look-alikes.
 *
 * - Kubernetes: an object is ours only when it has a managedFields entry of our server-side-apply
 *   field manager (operation Apply, no subresource). The labels below are for selection and for
 *   people; a label alone proves nothing (anyone can write it).
 * - Keycloak: the attribute KC_MANAGED_ATTR on realms, roles, client scopes, clients and users;
 *   KC_OWNED_ATTRS lists the attribute keys we write, so a key we stop writing is removed.
 * - PostgreSQL: a COMMENT on roles and databases starting with PG_MARKER_PREFIX.
 */
import type { JsonObject } from './resource.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'systemprompt';
export const TENANT_LABEL = 'systemprompt.io/tenant';
export const FIELD_MANAGER = 'systemprompt';

/** A Kubernetes managedFields entry, as the API server returns it. */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
}

/** Our server-side-apply entry on a Kubernetes object, or undefined when we never applied it. */
export function ourFieldsEntry(managedFields: ManagedFieldsEntry[] | undefined): ManagedFieldsEntry | undefined {
  return (managedFields ?? []).find((m) => m.manager === FIELD_MANAGER && m.operation === 'Apply' && !m.subresource);
}

export const KC_MANAGED_ATTR = 'systemprompt.io/managed-by';
export const KC_TENANT_ATTR = 'systemprompt.io/tenant';
/** Comma-separated list of the attribute keys we write on a Keycloak object (itself excluded). */
export const KC_OWNED_ATTRS = 'systemprompt.io/owned-attributes';

/** Our marker; `tenant` '' (the shared realm's own objects) names no tenant. */
export function kcMarker(tenant: string): JsonObject {
  return tenant ? { [KC_MANAGED_ATTR]: MANAGED_BY_VALUE, [KC_TENANT_ATTR]: tenant } : { [KC_MANAGED_ATTR]: MANAGED_BY_VALUE };
}

/** Attributes as we write them: the given keys plus the list of those keys. */
export function ownedAttributes(attrs: JsonObject): JsonObject {
  const keys = Object.keys(attrs).filter((k) => k !== KC_OWNED_ATTRS).sort();
  const list = keys.join(',');
  const arrays = Object.values(attrs).some((v) => Array.isArray(v));
  return { ...attrs, [KC_OWNED_ATTRS]: arrays ? [list] : list };
}

/** The attribute keys a live Keycloak object says we wrote; undefined when it carries no list. */
export function ownedAttributeKeys(attrs: Record<string, unknown> | undefined): string[] | undefined {
  const v = attrs?.[KC_OWNED_ATTRS];
  const s = typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
  return s === undefined ? undefined : s.split(',').filter(Boolean);
}

export const isKcMarked = (attrs: Record<string, unknown> | undefined): boolean => {
  const v = attrs?.[KC_MANAGED_ATTR];
  return v === MANAGED_BY_VALUE || (Array.isArray(v) && v.includes(MANAGED_BY_VALUE));
};

export const kcTenantOf = (attrs: Record<string, unknown> | undefined): string | undefined => {
  const v = attrs?.[KC_TENANT_ATTR];
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
};

/** Marker written as the COMMENT of roles and databases we manage. */
export const PG_MARKER_PREFIX = 'managed-by=systemprompt';

/**
 * The marker of a tenant's role or database. A database placed on one of several servers also
 * records the server's name (`server=second`); a database on the one implicit server does not.
 */
export function pgComment(tenant: string, deletionPolicy: 'retain' | 'delete', server?: string): string {
  return `${PG_MARKER_PREFIX} tenant=${tenant} deletion_policy=${deletionPolicy}${server === undefined ? '' : ` server=${server}`}`;
}

/**
 * Annotation on a tenant's database Secret naming the server its database was placed on (with
 * several servers): plan reads it back, so that a server dropped from postgres.servers while it
 * still holds the database is an error rather than a new, empty database elsewhere.
 */
export const POSTGRES_SERVER_ANNOTATION = 'systemprompt.io/postgres-server';

export interface PgMarker {
  tenant: string;
  retain: boolean;
  /** The comment without the password digest: what the desired spec calls `comment`. */
  comment: string;
  /** Digest of the password the role was last given (see secretDigest), when recorded. */
  passwordDigest?: string;
}

const DIGEST_FIELD = / password=([0-9a-f]{16,64})$/;

export function parsePgMarker(comment: string | null | undefined): PgMarker | undefined {
  if (!comment || !comment.startsWith(PG_MARKER_PREFIX)) return undefined;
  const tenant = /(?:^| )tenant=([a-z0-9-]+)/.exec(comment)?.[1];
  if (!tenant) return undefined;
  const digest = DIGEST_FIELD.exec(comment)?.[1];
  const m: PgMarker = { tenant, retain: !/deletion_policy=delete/.test(comment), comment: comment.replace(DIGEST_FIELD, '') };
  if (digest) m.passwordDigest = digest;
  return m;
}

/** The role comment as written: the marker plus the digest of the password just set. */
export function pgRoleComment(comment: string, passwordDigest: string): string {
  return `${comment} password=${passwordDigest}`;
}
