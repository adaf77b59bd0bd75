import { pgComment } from '../model/ownership.js';
import { resourceKey, type DesiredResource } from '../model/resource.js';
import type { TenantDesired } from './desired.js';
import { DATABASE_SECRET, POSTGRES_PASSWORD_REF } from './kubernetes.js';

/**
 * A role's or database's resource name: the PostgreSQL name itself on the one implicit server,
 * `server/name` once placed on one of several servers (so a plan shows where it is, and a key
 * never mixes two servers' objects).
 */
export function pgResourceName(name: string, server?: string): string {
  return server === undefined ? name : `${server}/${name}`;
}

/** `second/tenant_a` -> { server: 'second', name: 'tenant_a' }; `tenant_a` -> { name: 'tenant_a' }. */
export function splitPgResourceName(resourceName: string): { server?: string; name: string } {
  const i = resourceName.indexOf('/');
  return i < 0 ? { name: resourceName } : { server: resourceName.slice(0, i), name: resourceName.slice(i + 1) };
}

/** The tenant's login role and database; `server` once placed on one of several servers. */
export function postgresResources(t: TenantDesired, server?: string): DesiredResource[] {
  const secretKey = resourceKey({ target: 'kubernetes', kind: 'Secret', name: `${t.namespace}/${DATABASE_SECRET}` });
  const roleKey = resourceKey({ target: 'postgres', kind: 'Role', name: pgResourceName(t.dbRole, server) });
  return [
    {
      target: 'postgres',
      kind: 'Role',
      name: pgResourceName(t.dbRole, server),
      tenant: t.name,
      // The password lives only in the tenant's Secret, which is created first.
      spec: { login: true, comment: pgComment(t.name, t.deletionPolicy), password: { secretRef: POSTGRES_PASSWORD_REF } },
      dependsOn: [secretKey],
    },
    {
      target: 'postgres',
      kind: 'Database',
      name: pgResourceName(t.database, server),
      tenant: t.name,
      spec: { owner: t.dbRole, publicConnect: false, comment: pgComment(t.name, t.deletionPolicy, server) },
      dependsOn: [roleKey],
      destructive: true,
    },
  ];
}
