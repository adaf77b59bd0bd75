/**
 * Validity of the names a tenant renders to. Every name that reaches Keycloak (URL path),
 * Kubernetes (object name, label) or PostgreSQL (identifier) passes through one of these first.
 */

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

/** A problem with a name, or undefined when it is fine. */
export type NameProblem = { message: string; hint?: string } | undefined;

const RESERVED_REALMS = new Set(['master']);
const RESERVED_NAMESPACES = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease']);
const RESERVED_DATABASES = new Set(['postgres', 'template0', 'template1']);

export function checkNamespaceName(s: string): NameProblem {
  if (s.length > 63) return { message: `namespace ${JSON.stringify(s)} is ${s.length} characters; Kubernetes allows 63`, hint: `shorten the tenant name by ${s.length - 63} characters, or change tenancy.naming.namespace` };
  if (!DNS_LABEL.test(s)) return { message: `namespace ${JSON.stringify(s)} is not a DNS-1123 label`, hint: 'tenancy.naming.namespace may only add lowercase letters, digits and `-`' };
  if (RESERVED_NAMESPACES.has(s) || s.startsWith('kube-')) return { message: `namespace ${JSON.stringify(s)} is reserved by Kubernetes`, hint: 'rename the tenant or change tenancy.naming.namespace' };
  return undefined;
}

export function checkRealmName(s: string): NameProblem {
  if (Buffer.byteLength(s) > 63) return { message: `realm ${JSON.stringify(s)} is longer than 63 characters`, hint: 'shorten the tenant name or change tenancy.naming.realm' };
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(s)) return { message: `realm ${JSON.stringify(s)} may only hold letters, digits, '_' and '-'`, hint: 'change tenancy.naming.realm' };
  if (RESERVED_REALMS.has(s.toLowerCase())) return { message: `realm ${JSON.stringify(s)} is Keycloak's administration realm`, hint: 'rename the tenant or change tenancy.naming.realm' };
  return undefined;
}

/** PostgreSQL identifiers: ≤ 63 bytes; we also keep them lowercase and shell/URL-safe. */
export function checkDatabaseName(s: string): NameProblem {
  if (Buffer.byteLength(s) > 63) return { message: `database ${JSON.stringify(s)} is ${Buffer.byteLength(s)} bytes; PostgreSQL allows 63`, hint: `shorten the tenant name by ${Buffer.byteLength(s) - 63} characters, or change tenancy.naming.database` };
  if (!/^[a-z_][a-z0-9_-]*$/.test(s)) return { message: `database ${JSON.stringify(s)} must start with a lowercase letter or '_' and hold only lowercase letters, digits, '_' and '-'`, hint: 'change tenancy.naming.database' };
  if (RESERVED_DATABASES.has(s) || s.startsWith('pg_')) return { message: `database ${JSON.stringify(s)} is reserved by PostgreSQL`, hint: 'rename the tenant or change tenancy.naming.database' };
  return undefined;
}

/** A PostgreSQL identifier, double-quoted. Only ever called on names that passed checkDatabaseName. */
export function quoteIdent(s: string): string {
  if (s.includes('\0')) throw new Error('identifier contains NUL');
  return `"${s.replace(/"/g, '""')}"`;
}
