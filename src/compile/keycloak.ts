import { createHash } from 'node:crypto';
import { KC_MANAGED_ATTR, kcMarker, MANAGED_BY_VALUE, ownedAttributes } from '../model/ownership.js';
import { resourceKey, type DesiredResource, type JsonObject } from '../model/resource.js';
import type { TenantDesired, UserSpec } from './desired.js';

/** Client scope on every agent client that puts the `tenant_id` claim into tokens. */
export const TENANT_CLAIM_SCOPE = 'systemprompt-tenant';

export const claimConfig = (claim: string, jsonType: string, extra: JsonObject = {}): JsonObject => ({
  'claim.name': claim,
  'jsonType.label': jsonType,
  'access.token.claim': 'true',
  'id.token.claim': 'true',
  'userinfo.token.claim': 'true',
  'introspection.token.claim': 'true',
  ...extra,
});

/** The realm as we manage it; `tenant` is '' for the shared realm of organization isolation. */
export function realmSpec(displayName: string, tenant: string, extra: JsonObject = {}): JsonObject {
  // User profile: ADMIN_EDIT keeps our marker attribute on users (the declarative profile drops
  // undeclared ones); users are identified by email, so first and last names are not required
  // (else the first login stops at an "update your profile" form).
  return { displayName, enabled: true, attributes: ownedAttributes(kcMarker(tenant)), unmanagedAttributePolicy: 'ADMIN_EDIT', namesRequired: false, ...extra };
}

/** A realm role; `composites`: the realm roles its holders hold through it. */
export const roleSpec = (description: string, tenant: string, composites: string[] = []): JsonObject => ({ description, attributes: ownedAttributes(kcMarker(tenant)), composites });

/** Held by every user of a tenant's own realm (through the user's grant role). */
export const MEMBER_ROLE = 'member';
/** A set of scopes longer than this is named by a hash in its grant role's name. */
const GRANT_KEY_MAX = 120;

/**
 * The one realm role a user is granted: `base` for a user without scopes, else `base:read+write`,
 * a composite of `base` and the scopes' roles. Users with the same scopes share it, so each user
 * holds one role directly and a read lists each user once (Keycloak's cost is per user listed).
 */
export function grantRole(base: string, scopes: string[]): string {
  if (!scopes.length) return base;
  const key = [...scopes].sort().join('+');
  return `${base}:${key.length <= GRANT_KEY_MAX ? key : createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/**
 * The grant roles of a tenant's users: for each user its role, and the composite roles to create
 * (one per distinct set of scopes). `roleOf` maps a scope to its realm role (scopes without one,
 * such as the public scope, are left out).
 */
export function grantRoles(users: Array<{ scopes: string[] }>, base: string, roleOf: Map<string, string | undefined>, describe: (scopes: string[]) => string): { roleOfUser: string[]; composites: Map<string, { description: string; composites: string[] }> } {
  const composites = new Map<string, { description: string; composites: string[] }>();
  const roleOfUser = users.map((u) => {
    const scopes = [...new Set(u.scopes.filter((s) => roleOf.get(s)))].sort();
    const name = grantRole(base, scopes);
    if (scopes.length && !composites.has(name)) composites.set(name, { description: describe(scopes), composites: [base, ...scopes.map((s) => roleOf.get(s)!)].sort() });
    return name;
  });
  return { roleOfUser, composites };
}

/** A client scope that lands in a token only for holders of `role` (everyone when undefined). */
export function scopeSpec(description: string, tenant: string, role: string | undefined, protocolMappers: JsonObject[] = [], inTokenScope = true): JsonObject {
  return {
    description,
    protocol: 'openid-connect',
    attributes: ownedAttributes({ 'include.in.token.scope': String(inTokenScope), 'display.on.consent.screen': 'false', ...kcMarker(tenant) }),
    // A client scope with a role scope mapping lands in a token only for users holding the role.
    roleScopeMappings: role ? [role] : [],
    protocolMappers,
  };
}

/** The tenant_id claim: a constant in a tenant's own realm, the user's organization in the shared one. */
export function tenantClaimScope(tenant: string, claim: JsonObject): JsonObject {
  return scopeSpec('Puts the tenant_id claim into tokens', tenant, undefined, [{ name: 'tenant_id', protocolMapper: claim.protocolMapper!, config: claimConfig('tenant_id', 'String', claim.config as JsonObject) }], false);
}

export interface ClientShape {
  name: string;
  clientId: string;
  redirectUris: string[];
  defaultScopes: string[];
  optionalScopes: string[];
  /** Adds the user_id claim. */
  userId: boolean;
}

/** An agent's confidential client: authorization code + PKCE, its own audience. */
export function clientSpec(c: ClientShape, tenant: string): JsonObject {
  const mappers: JsonObject[] = [
    {
      name: 'audience',
      protocolMapper: 'oidc-audience-mapper',
      config: { 'included.client.audience': c.clientId, 'access.token.claim': 'true', 'id.token.claim': 'false', 'userinfo.token.claim': 'false', 'introspection.token.claim': 'true' },
    },
  ];
  if (c.userId) mappers.push({ name: 'user_id', protocolMapper: 'oidc-usermodel-property-mapper', config: claimConfig('user_id', 'String', { 'user.attribute': 'username' }) });
  return {
    name: c.name,
    enabled: true,
    protocol: 'openid-connect',
    publicClient: false,
    clientAuthenticatorType: 'client-secret',
    standardFlowEnabled: true,
    implicitFlowEnabled: false,
    directAccessGrantsEnabled: false,
    serviceAccountsEnabled: false,
    redirectUris: c.redirectUris,
    webOrigins: ['+'],
    attributes: ownedAttributes({ 'pkce.code.challenge.method': 'S256', ...kcMarker(tenant) }),
    defaultClientScopes: [TENANT_CLAIM_SCOPE, ...c.defaultScopes].sort(),
    optionalClientScopes: c.optionalScopes,
    protocolMappers: mappers,
  };
}

/** The attributes of every user: one object for all of them (a large repository has many; never mutated). */
const USER_ATTRIBUTES = Object.freeze(ownedAttributes({ [KC_MANAGED_ATTR]: [MANAGED_BY_VALUE] })) as JsonObject;

export const userSpec = (u: UserSpec, realmRoles: string[], extra: JsonObject = {}): JsonObject => ({
  email: u.email,
  enabled: u.enabled,
  emailVerified: true,
  realmRoles,
  attributes: USER_ATTRIBUTES,
  ...extra,
});

export function keycloakResources(t: TenantDesired): DesiredResource[] {
  const realm = t.realm;
  const key = (kind: string, name: string): string => resourceKey({ target: 'keycloak', kind, name });
  const realmKey = key('Realm', realm);
  // Role keys are built once per tenant and shared by its users (never mutated).
  const roleKeys = new Map<string, string>();
  const roleKey = (role: string): string => {
    let k = roleKeys.get(role);
    if (k === undefined) roleKeys.set(role, (k = key('RealmRole', `${realm}/${role}`)));
    return k;
  };
  const res = (kind: string, name: string, spec: JsonObject, dependsOn: string[]): DesiredResource => ({
    target: 'keycloak',
    kind,
    name: `${realm}/${name}`,
    tenant: t.name,
    spec,
    dependsOn: [realmKey, ...dependsOn],
  });

  const out: DesiredResource[] = [{ target: 'keycloak', kind: 'Realm', name: realm, tenant: t.name, spec: realmSpec(t.displayName, t.name), dependsOn: [], destructive: true }];
  for (const s of t.scopes) if (s.role) out.push(res('RealmRole', s.role, roleSpec(`Holders get the OAuth scope "${s.name}"`, t.name), []));

  const scopeKeys: string[] = [];
  for (const s of t.scopes) {
    scopeKeys.push(key('ClientScope', `${realm}/${s.name}`));
    out.push(res('ClientScope', s.name, scopeSpec(s.description, t.name, s.role), s.role ? [roleKey(s.role)] : []));
  }
  scopeKeys.push(key('ClientScope', `${realm}/${TENANT_CLAIM_SCOPE}`));
  out.push(res('ClientScope', TENANT_CLAIM_SCOPE, tenantClaimScope(t.name, { protocolMapper: 'oidc-hardcoded-claim-mapper', config: { 'claim.value': t.name } }), []));

  for (const a of t.agents) {
    const spec = clientSpec({ name: a.name, clientId: a.clientId, redirectUris: a.redirectUris, defaultScopes: a.defaultScopes, optionalScopes: a.optionalScopes, userId: a.userScopeTemplates.length > 0 }, t.name);
    out.push(res('Client', a.clientId, spec, scopeKeys.filter((k) => [TENANT_CLAIM_SCOPE, ...a.defaultScopes, ...a.optionalScopes].some((s) => k === key('ClientScope', `${realm}/${s}`)))));
  }

  out.push(res('RealmRole', MEMBER_ROLE, roleSpec(`Users of tenant ${t.name}`, t.name), []));
  const grants = grantRoles(t.users, MEMBER_ROLE, new Map(t.scopes.map((s) => [s.name, s.role])), (scopes) => `Users of tenant ${t.name} with the scopes ${scopes.join(', ')}`);
  for (const [name, g] of grants.composites) out.push(res('RealmRole', name, roleSpec(g.description, t.name, g.composites), g.composites.map(roleKey)));
  t.users.forEach((u, i) => {
    const role = grants.roleOfUser[i]!;
    out.push(res('User', u.username, userSpec(u, [role]), [roleKey(role)]));
  });
  return out;
}
