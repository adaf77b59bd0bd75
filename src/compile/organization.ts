import { uniqSorted } from './compile.js';
import type { TenantDesired } from './desired.js';
import { clientSpec, grantRoles, realmSpec, roleSpec, scopeSpec, TENANT_CLAIM_SCOPE, tenantClaimScope, userSpec } from './keycloak.js';
import { resourceKey, type DesiredResource, type JsonObject } from '../model/resource.js';

/**
 * Organization isolation: tenants share one realm, each tenant a Keycloak Organization whose
 * alias is the tenant name. Shared once: the realm (organizations on, a login that names an
 * organization refused to non-members), the catalog's scopes and roles, the tenant_id claim (from
 * the user's organization) and one client per agent. Per tenant: the organization, its users
 * (members of it), and for scopes written with {{tenant_id}} a client scope and a member role.
 * One email is one account in the shared realm, so a user belongs to one such tenant (rule SP044).
 */

/** The scope a login requests to sign in as a member of the tenant's organization. */
export const organizationScope = (alias: string): string => `organization:${alias}`;
/** Held by every user of the tenant (through the user's grant role): carries the tenant's own ({{tenant_id}}) scopes. */
export const memberRole = (tenant: string): string => `member:${tenant}`;

const SHARED = '';
const key = (kind: string, name: string): string => resourceKey({ target: 'keycloak', kind, name });

/** The tenant's own scopes: those its agents write with {{tenant_id}} (every token of the agent gets them). */
const tenantOwnScopes = (t: TenantDesired): string[] => uniqSorted(t.agents.flatMap((a) => a.defaultScopes));

export function sharedRealmResources(realm: string, tenants: TenantDesired[]): DesiredResource[] {
  const realmKey = key('Realm', realm);
  const res = (kind: string, name: string, spec: JsonObject, dependsOn: string[] = []): DesiredResource => ({ target: 'keycloak', kind, name: `${realm}/${name}`, tenant: SHARED, spec, dependsOn: [realmKey, ...dependsOn] });
  const out: DesiredResource[] = [
    {
      target: 'keycloak',
      kind: 'Realm',
      name: realm,
      tenant: SHARED,
      spec: realmSpec(`Tenants of ${realm}`, SHARED, { organizationsEnabled: true, organizationMembershipRequired: true }),
      dependsOn: [],
      destructive: true,
    },
  ];

  // The catalog (and card-declared) scopes, the same for every tenant: the first definition wins.
  const scopes = new Map<string, { description: string; role?: string }>();
  for (const t of tenants) {
    const own = new Set(tenantOwnScopes(t));
    for (const s of t.scopes) if (!own.has(s.name) && !scopes.has(s.name)) scopes.set(s.name, s);
  }
  const names = [...scopes.keys()].sort();
  for (const n of names) {
    const s = scopes.get(n)!;
    if (s.role) out.push(res('RealmRole', s.role, roleSpec(`Holders get the OAuth scope "${n}"`, SHARED)));
  }
  for (const n of names) {
    const s = scopes.get(n)!;
    out.push(res('ClientScope', n, scopeSpec(s.description, SHARED, s.role), s.role ? [key('RealmRole', `${realm}/${s.role}`)] : []));
  }
  // The claim from the organization the login named (single-valued: a user is in one organization).
  out.push(res('ClientScope', TENANT_CLAIM_SCOPE, tenantClaimScope(SHARED, { protocolMapper: 'oidc-organization-membership-mapper', config: { multivalued: 'false' } })));

  // One client per agent, for every tenant that has it: the union of what the tenants ask for.
  const agents = new Map<string, { name: string; redirect: Set<string>; def: Set<string>; opt: Set<string>; userId: boolean }>();
  for (const t of tenants) {
    for (const a of t.agents) {
      let c = agents.get(a.clientId);
      if (!c) agents.set(a.clientId, (c = { name: a.name, redirect: new Set(), def: new Set(), opt: new Set(), userId: false }));
      for (const u of a.redirectUris) c.redirect.add(u);
      for (const s of a.defaultScopes) c.def.add(s);
      for (const s of a.optionalScopes) c.opt.add(s);
      c.userId ||= a.userScopeTemplates.length > 0;
    }
  }
  for (const [clientId, c] of [...agents].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const spec = clientSpec({ name: c.name, clientId, redirectUris: uniqSorted(c.redirect), defaultScopes: uniqSorted(c.def), optionalScopes: uniqSorted(c.opt), userId: c.userId }, SHARED);
    const linked = [TENANT_CLAIM_SCOPE, ...c.def, ...c.opt].sort().map((s) => key('ClientScope', `${realm}/${s}`));
    out.push(res('Client', clientId, spec, linked));
  }
  return out;
}

export function organizationResources(t: TenantDesired): DesiredResource[] {
  const realm = t.realm;
  const alias = t.organization!;
  const realmKey = key('Realm', realm);
  const orgKey = key('Organization', `${realm}/${alias}`);
  const res = (kind: string, name: string, spec: JsonObject, dependsOn: string[]): DesiredResource => ({ target: 'keycloak', kind, name: `${realm}/${name}`, tenant: t.name, spec, dependsOn: [realmKey, ...dependsOn] });
  const out: DesiredResource[] = [
    {
      ...res('Organization', alias, { name: alias, description: t.displayName, enabled: true, attributes: roleSpec('', t.name).attributes! }, []),
      destructive: true,
    },
  ];
  const member = memberRole(t.name);
  const roleKey = (role: string): string => key('RealmRole', `${realm}/${role}`);
  out.push(res('RealmRole', member, roleSpec(`Members of tenant ${t.name}: the tenant's own scopes`, t.name), []));
  for (const s of tenantOwnScopes(t)) out.push(res('ClientScope', s, scopeSpec(`Tenant ${t.name}`, t.name, member), [roleKey(member)]));
  const grants = grantRoles(t.users, member, new Map(t.scopes.map((s) => [s.name, s.role])), (scopes) => `Members of tenant ${t.name} with the scopes ${scopes.join(', ')}`);
  for (const [name, g] of grants.composites) out.push(res('RealmRole', name, roleSpec(g.description, t.name, g.composites), g.composites.map(roleKey)));
  t.users.forEach((u, i) => {
    const role = grants.roleOfUser[i]!;
    out.push(res('User', u.username, userSpec(u, [role], { organization: alias }), [orgKey, roleKey(role)]));
  });
  return out;
}
