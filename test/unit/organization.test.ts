import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import { loadRepository } from '../../src/config/repository.js';
import type { DesiredResource } from '../../src/model/resource.js';
import { mustLoad, textFiles } from '../helpers/repo.js';

const agent = `name: assistant
tenant_aware: true
security:
  oauth2:
    scopes: ["tenant:{{tenant_id}}"]
card:
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: "http://localhost:8080/authorize"
          tokenUrl: "http://localhost:8080/token"
          scopes:
            read: "Read"
  security:
    - oauth2: ["read"]
`;

function repo(project: string, tenants: Record<string, string>): Record<string, string> {
  const files: Record<string, string> = { 'systemprompt.yaml': project, 'services/agents/assistant.yaml': agent };
  for (const [name, body] of Object.entries(tenants)) files[`tenants/${name}.yaml`] = `name: ${name}\n${body}`;
  return files;
}

const orgProject = 'tenancy:\n  isolation: organization\n  default_tenant: acme\n';
const users = (...emails: string[]): string => `users:\n${emails.map((e) => `  - email: ${e}\n    scopes: [read]\n`).join('')}`;

const byKey = (rs: DesiredResource[]): Map<string, DesiredResource> => new Map(rs.map((r) => [`${r.kind} ${r.name}`, r]));

describe('organization isolation', () => {
  const desired = compile(mustLoad(textFiles(repo(orgProject, { acme: users('ann@acme.test', 'al@acme.test'), globex: users('gus@globex.test') }))));
  const kc = desired.resources.filter((r) => r.target === 'keycloak');
  const rs = byKey(kc);

  it('makes one shared realm with organizations on and a login that must name an organization the user is in', () => {
    expect(kc.filter((r) => r.kind === 'Realm').map((r) => r.name)).toEqual(['systemprompt']);
    expect(rs.get('Realm systemprompt')!.spec).toMatchObject({ organizationsEnabled: true, organizationMembershipRequired: true });
    expect(rs.get('Realm systemprompt')!.tenant).toBe('');
  });

  it('makes each tenant an Organization whose alias is the tenant name, and each user a member of it', () => {
    expect(rs.get('Organization systemprompt/acme')).toMatchObject({ tenant: 'acme', destructive: true, spec: { name: 'acme', enabled: true } });
    expect(rs.get('User systemprompt/ann@acme.test')!.spec).toMatchObject({ organization: 'acme', realmRoles: ['member:acme:read'] });
    expect(rs.get('User systemprompt/gus@globex.test')!.spec).toMatchObject({ organization: 'globex', realmRoles: ['member:globex:read'] });
    // One role per user, per tenant: the tenant's member role and the shared scope roles through it.
    expect(rs.get('RealmRole systemprompt/member:acme:read')).toMatchObject({ tenant: 'acme', spec: { composites: ['member:acme', 'scope:read'] } });
    expect(rs.get('User systemprompt/gus@globex.test')!.dependsOn).toContain('keycloak:Organization:systemprompt/globex');
  });

  it('creates the catalog scopes and the agent client once, the tenant-templated scopes per tenant', () => {
    expect(kc.filter((r) => r.kind === 'Client').map((r) => r.name)).toEqual(['systemprompt/assistant']);
    expect(kc.filter((r) => r.kind === 'ClientScope' && r.name === 'systemprompt/read')).toHaveLength(1);
    const client = rs.get('Client systemprompt/assistant')!;
    expect(client.tenant).toBe('');
    expect(client.spec.defaultClientScopes).toEqual(['systemprompt-tenant', 'tenant:acme', 'tenant:globex']);
    // The tenant's own scope lands only for holders of the tenant's member role.
    expect(rs.get('ClientScope systemprompt/tenant:acme')).toMatchObject({ tenant: 'acme', spec: { roleScopeMappings: ['member:acme'] } });
    // tenant_id comes from the organization the user signed in to, not a constant.
    const claim = rs.get('ClientScope systemprompt/systemprompt-tenant')!.spec.protocolMappers as Array<{ protocolMapper: string; config: Record<string, string> }>;
    expect(claim[0]).toMatchObject({ protocolMapper: 'oidc-organization-membership-mapper', config: { 'claim.name': 'tenant_id', multivalued: 'false' } });
  });

  it('tells applications which scope selects the organization (Secret and card)', () => {
    const oidc = desired.resources.find((r) => r.kind === 'Secret' && r.name === 'tenant-acme/systemprompt-oidc')!;
    expect(oidc.spec.data).toMatchObject({ OIDC_ISSUER: 'http://localhost:8080/realms/systemprompt', OIDC_ORGANIZATION_SCOPE: 'organization:acme', TENANT_ID: 'acme' });
    const card = desired.tenants.find((t) => t.name === 'acme')!.agents[0]!.card as { securitySchemes: { oauth2: { flows: { authorizationCode: { scopes: Record<string, string> } } } } };
    expect(Object.keys(card.securitySchemes.oauth2.flows.authorizationCode.scopes)).toContain('organization:acme');
  });

  it('keeps a namespace and a database per tenant', () => {
    expect(desired.resources.filter((r) => r.kind === 'Namespace').map((r) => r.name).sort()).toEqual(['tenant-acme', 'tenant-globex']);
    expect(desired.resources.filter((r) => r.kind === 'Database').map((r) => r.name).sort()).toEqual(['tenant_acme', 'tenant_globex']);
  });

  it('lets one tenant keep a realm of its own (isolation: per_tenant in its file)', () => {
    const mixed = compile(mustLoad(textFiles(repo(orgProject, { acme: users('ann@acme.test'), big: `isolation: per_tenant\n${users('ann@acme.test')}` }))));
    const realms = mixed.resources.filter((r) => r.kind === 'Realm').map((r) => r.name).sort();
    expect(realms).toEqual(['big', 'systemprompt']);
    expect(mixed.resources.some((r) => r.kind === 'Organization' && r.name === 'systemprompt/big')).toBe(false);
    expect(mixed.resources.find((r) => r.kind === 'User' && r.name === 'big/ann@acme.test')!.spec).not.toHaveProperty('organization');
  });

  it('is unchanged for per_tenant repositories: no organization anywhere', () => {
    const plain = compile(mustLoad(textFiles(repo('tenancy:\n  default_tenant: acme\n', { acme: users('ann@acme.test') }))));
    expect(plain.resources.some((r) => r.kind === 'Organization' || r.spec.organizationsEnabled !== undefined || r.spec.organization !== undefined)).toBe(false);
  });
});

describe('organization isolation rules', () => {
  it('refuses an email in two tenants of the shared realm, at the second entry (SP044)', () => {
    const r = loadRepository(textFiles(repo(orgProject, { acme: users('ann@acme.test'), globex: users('gus@globex.test', 'Ann@acme.test') })));
    expect(r.repo).toBeUndefined();
    const d = r.diagnostics.find((x) => x.code === 'SP044')!;
    expect(d).toMatchObject({ file: 'tenants/globex.yaml', line: 5, severity: 'error' });
    expect(d.message).toMatch(/also a user of tenant `acme`/);
  });

  it('allows the same email in a tenant with a realm of its own', () => {
    const r = loadRepository(textFiles(repo(orgProject, { acme: users('ann@acme.test'), globex: `isolation: per_tenant\n${users('ann@acme.test')}` })));
    expect(r.diagnostics.filter((x) => x.severity === 'error')).toEqual([]);
  });

  it('refuses a tenant realm named like the shared realm (SP023)', () => {
    const r = loadRepository(textFiles(repo(orgProject, { acme: users('ann@acme.test'), systemprompt: 'isolation: per_tenant\n' })));
    expect(r.diagnostics.find((x) => x.code === 'SP023')).toMatchObject({ file: 'tenants/systemprompt.yaml' });
  });
});
