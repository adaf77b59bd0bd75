import { KC_MANAGED_ATTR, kcMarker, MANAGED_BY_VALUE, ownedAttributes } from '../model/ownership.js';
import { resourceKey, type DesiredResource, type JsonObject } from '../model/resource.js';
import type { TenantDesired } from './desired.js';

/** Client scope on every agent client that puts the `tenant_id` claim into tokens. */
export const TENANT_CLAIM_SCOPE = 'systemprompt-tenant';

const claimConfig = (claim: string, jsonType: string, extra: JsonObject = {}): JsonObject => ({
  'claim.name': claim,
  'jsonType.label': jsonType,
  'access.token.claim': 'true',
  'id.token.claim': 'true',
  'userinfo.token.claim': 'true',
  'introspection.token.claim': 'true',
  ...extra,
});

/** The attributes of every user: the same object for all of them (a large repository has many). */
let userAttributes: JsonObject | undefined;

export function keycloakResources(t: TenantDesired): DesiredResource[] {
  const realm = t.realm;
  const key = (kind: string, name: string): string => resourceKey({ target: 'keycloak', kind, name });
  const realmKey = key('Realm', realm);
  // Objects that are equal across a tenant's resources are built once and shared (never mutated).
  const marked = ownedAttributes(kcMarker(t.name));
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

  const out: DesiredResource[] = [
    {
      target: 'keycloak',
      kind: 'Realm',
      name: realm,
      tenant: t.name,
      // User profile: ADMIN_EDIT keeps our marker attribute on users (the declarative profile drops
      // undeclared ones); users are identified by email, so first and last names are not required
      // (else the first login stops at an "update your profile" form).
      spec: { displayName: t.displayName, enabled: true, attributes: marked, unmanagedAttributePolicy: 'ADMIN_EDIT', namesRequired: false },
      dependsOn: [],
      destructive: true,
    },
  ];

  for (const s of t.scopes) {
    if (s.role) out.push(res('RealmRole', s.role, { description: `Holders get the OAuth scope "${s.name}"`, attributes: marked }, []));
  }

  const scopeKeys: string[] = [];
  const scopeAttributes = ownedAttributes({ 'include.in.token.scope': 'true', 'display.on.consent.screen': 'false', ...kcMarker(t.name) });
  for (const s of t.scopes) {
    scopeKeys.push(key('ClientScope', `${realm}/${s.name}`));
    out.push(
      res(
        'ClientScope',
        s.name,
        {
          description: s.description,
          protocol: 'openid-connect',
          attributes: scopeAttributes,
          // A client scope with a role scope mapping lands in a token only for users holding the role.
          roleScopeMappings: s.role ? [s.role] : [],
          protocolMappers: [],
        },
        s.role ? [roleKey(s.role)] : [],
      ),
    );
  }
  scopeKeys.push(key('ClientScope', `${realm}/${TENANT_CLAIM_SCOPE}`));
  out.push(
    res(
      'ClientScope',
      TENANT_CLAIM_SCOPE,
      {
        description: 'Puts the tenant_id claim into tokens',
        protocol: 'openid-connect',
        attributes: ownedAttributes({ 'include.in.token.scope': 'false', 'display.on.consent.screen': 'false', ...kcMarker(t.name) }),
        roleScopeMappings: [],
        protocolMappers: [
          { name: 'tenant_id', protocolMapper: 'oidc-hardcoded-claim-mapper', config: claimConfig('tenant_id', 'String', { 'claim.value': t.name }) },
        ],
      },
      [],
    ),
  );

  const clientAttributes = ownedAttributes({ 'pkce.code.challenge.method': 'S256', ...kcMarker(t.name) });
  for (const a of t.agents) {
    const mappers: JsonObject[] = [
      {
        name: 'audience',
        protocolMapper: 'oidc-audience-mapper',
        config: { 'included.client.audience': a.clientId, 'access.token.claim': 'true', 'id.token.claim': 'false', 'userinfo.token.claim': 'false', 'introspection.token.claim': 'true' },
      },
    ];
    if (a.userScopeTemplates.length > 0) {
      mappers.push({ name: 'user_id', protocolMapper: 'oidc-usermodel-property-mapper', config: claimConfig('user_id', 'String', { 'user.attribute': 'username' }) });
    }
    out.push(
      res(
        'Client',
        a.clientId,
        {
          name: a.name,
          enabled: true,
          protocol: 'openid-connect',
          publicClient: false,
          clientAuthenticatorType: 'client-secret',
          standardFlowEnabled: true,
          implicitFlowEnabled: false,
          directAccessGrantsEnabled: false,
          serviceAccountsEnabled: false,
          redirectUris: a.redirectUris,
          webOrigins: ['+'],
          attributes: clientAttributes,
          defaultClientScopes: [TENANT_CLAIM_SCOPE, ...a.defaultScopes].sort(),
          optionalClientScopes: a.optionalScopes,
          protocolMappers: mappers,
        },
        scopeKeys.filter((k) => [TENANT_CLAIM_SCOPE, ...a.defaultScopes, ...a.optionalScopes].some((s) => k === key('ClientScope', `${realm}/${s}`))),
      ),
    );
  }

  const roleOf = new Map(t.scopes.map((s) => [s.name, s.role]));
  userAttributes ??= Object.freeze(ownedAttributes({ [KC_MANAGED_ATTR]: [MANAGED_BY_VALUE] })) as JsonObject;
  for (const u of t.users) {
    const roles = u.scopes.map((s) => roleOf.get(s)).filter((r): r is string => !!r).sort();
    out.push(
      res(
        'User',
        u.username,
        { email: u.email, enabled: u.enabled, emailVerified: true, realmRoles: roles, attributes: userAttributes },
        roles.map(roleKey),
      ),
    );
  }
  return out;
}
