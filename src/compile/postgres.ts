import { pgComment } from '../model/ownership.js';
import { resourceKey, type DesiredResource } from '../model/resource.js';
import type { TenantDesired } from './desired.js';
import { DATABASE_SECRET, POSTGRES_PASSWORD_REF } from './kubernetes.js';


export function postgresResources(t: TenantDesired): DesiredResource[] {
  const secretKey = resourceKey({ target: 'kubernetes', kind: 'Secret', name: `${t.namespace}/${DATABASE_SECRET}` });
  const roleKey = resourceKey({ target: 'postgres', kind: 'Role', name: t.dbRole });
  return [
    {
      target: 'postgres',
      kind: 'Role',
      name: t.dbRole,
      tenant: t.name,
      // The password lives only in the tenant's Secret, which is created first.
      spec: { login: true, comment: pgComment(t.name, t.deletionPolicy), password: { secretRef: POSTGRES_PASSWORD_REF } },
      dependsOn: [secretKey],
    },
    {
      target: 'postgres',
      kind: 'Database',
      name: t.database,
      tenant: t.name,
      spec: { owner: t.dbRole, publicConnect: false, comment: pgComment(t.name, t.deletionPolicy) },
      dependsOn: [roleKey],
      destructive: true,
    },
  ];
}
