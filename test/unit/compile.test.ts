import { describe, expect, it } from 'vitest';
import { buildArtifacts } from '../../src/compile/build.js';
import { compile } from '../../src/compile/compile.js';
import { grantRole } from '../../src/compile/keycloak.js';
import { exampleRepo, mustLoad, textFiles } from '../helpers/repo.js';

const kindsOf = (state: ReturnType<typeof compile>, tenant: string): string[] =>
  [...new Set(state.resources.filter((r) => r.tenant === tenant).map((r) => `${r.target}/${r.kind}`))].sort();

describe('compile', () => {
  it('compiles every example tenant into realm, clients, users, namespace objects, database and role', () => {
    const state = compile(exampleRepo());
    expect(state.tenants.map((t) => t.name)).toEqual(['customer-a', 'customer-b', 'default']);
    for (const t of state.tenants) {
      expect(kindsOf(state, t.name)).toEqual(
        expect.arrayContaining([
          'keycloak/Realm', 'keycloak/Client', 'keycloak/User', 'keycloak/ClientScope', 'keycloak/RealmRole',
          'kubernetes/Namespace', 'kubernetes/ResourceQuota', 'kubernetes/LimitRange', 'kubernetes/NetworkPolicy',
          'kubernetes/ServiceAccount', 'kubernetes/Role', 'kubernetes/RoleBinding', 'kubernetes/Secret',
          'postgres/Database', 'postgres/Role',
        ]),
      );
    }
  });

  it('names resources per tenancy.naming and resolves {{tenant_id}} in agent scopes', () => {
    const state = compile(exampleRepo());
    const a = state.tenants.find((t) => t.name === 'customer-a')!;
    expect([a.realm, a.namespace, a.database, a.dbRole]).toEqual(['customer-a', 'tenant-customer-a', 'tenant_customer-a', 'tenant_customer-a']);
    const assistant = a.agents.find((x) => x.name === 'assistant')!;
    expect(assistant.defaultScopes).toEqual(['tenant:customer-a']);
    expect(state.resources.some((r) => r.kind === 'ClientScope' && r.name === 'customer-a/tenant:customer-a')).toBe(true);
    expect(state.resources.some((r) => r.kind === 'ClientScope' && r.name.includes('{{'))).toBe(false);
  });

  it('gives tenants without an agents list only tenant_aware agents', () => {
    const state = compile(exampleRepo());
    expect(state.tenants.find((t) => t.name === 'customer-b')!.agents.map((a) => a.name)).toEqual(['assistant']);
    expect(state.tenants.find((t) => t.name === 'customer-a')!.agents.map((a) => a.name)).toEqual(['assistant', 'welcome']);
  });

  it('grants each user one role, a composite of the roles of its scopes (anonymous needs none)', () => {
    const state = compile(exampleRepo());
    const bob = state.resources.find((r) => r.kind === 'User' && r.name === 'customer-a/bob@customer-a.example.com')!;
    expect(bob.spec.realmRoles).toEqual(['member:read+user']);
    expect(bob.dependsOn).toContain('keycloak:RealmRole:customer-a/member:read+user');
    const grant = state.resources.find((r) => r.kind === 'RealmRole' && r.name === 'customer-a/member:read+user')!;
    expect(grant.spec.composites).toEqual(['member', 'scope:read', 'scope:user']);
    expect(grant.dependsOn).toEqual(expect.arrayContaining(['keycloak:RealmRole:customer-a/member', 'keycloak:RealmRole:customer-a/scope:read', 'keycloak:RealmRole:customer-a/scope:user']));
    // Users with the same scopes share one grant role; the plain roles carry no composites.
    const grants = state.resources.filter((r) => r.kind === 'RealmRole' && r.name.startsWith('customer-a/member'));
    expect(new Set(grants.map((r) => r.name)).size).toBe(grants.length);
    expect(state.resources.find((r) => r.kind === 'RealmRole' && r.name === 'customer-a/scope:read')!.spec.composites).toEqual([]);
    const anon = state.resources.find((r) => r.kind === 'ClientScope' && r.name === 'customer-a/anonymous')!;
    expect(anon.spec.roleScopeMappings).toEqual([]);
    const write = state.resources.find((r) => r.kind === 'ClientScope' && r.name === 'customer-a/write')!;
    expect(write.spec.roleScopeMappings).toEqual(['scope:write']);
  });

  it('names a grant role by its scopes, sorted, and by a hash when they are many', () => {
    expect(grantRole('member', [])).toBe('member');
    expect(grantRole('member:acme', ['write', 'read'])).toBe('member:acme:read+write');
    const many = Array.from({ length: 30 }, (_, i) => `scope-${i}`);
    const name = grantRole('member', many);
    expect(name).toMatch(/^member:[0-9a-f]{16}$/);
    expect(grantRole('member', [...many].reverse())).toBe(name);
    expect(grantRole('member', many.slice(1))).not.toBe(name);
  });

  it('points agent cards at the tenant realm', () => {
    const state = compile(exampleRepo(), { keycloakUrl: 'http://kc.test:9', postgresHost: 'db', postgresPort: 5 });
    const card = state.tenants.find((t) => t.name === 'customer-b')!.agents[0]!.card as Record<string, any>;
    const flow = card.securitySchemes.oauth2.flows.authorizationCode;
    expect(flow.authorizationUrl).toBe('http://kc.test:9/realms/customer-b/protocol/openid-connect/auth');
    expect(flow.tokenUrl).toBe('http://kc.test:9/realms/customer-b/protocol/openid-connect/token');
    expect(card.protocolVersion).toBe('0.3.0');
  });

  it('realises {{user_id}} scopes as a user_id claim on the client', () => {
    const repo = mustLoad(textFiles({
      'tenants/default.yaml': 'name: default\n',
      'services/agents/assistant.yaml': 'security:\n  oauth2:\n    scopes: ["user:{{user_id}}"]\n  isolation: per_tenant\n',
    }));
    const state = compile(repo);
    const client = state.resources.find((r) => r.kind === 'Client')!;
    expect(client.name).toBe('default/assistant');
    expect(JSON.stringify(client.spec.protocolMappers)).toContain('"claim.name":"user_id"');
  });

  it('compiles the agents: map form like single-agent files', () => {
    const single = compile(mustLoad(textFiles({
      'tenants/default.yaml': 'name: default\n',
      'services/agents/assistant.yaml': 'name: assistant\ntenant_aware: true\nsecurity:\n  oauth2:\n    scopes: ["tenant:{{tenant_id}}"]\n',
      'services/agents/welcome.yaml': 'description: hi\n',
    })));
    const map = compile(mustLoad(textFiles({
      'tenants/default.yaml': 'name: default\n',
      'services/agents/all.yaml': 'agents:\n  assistant:\n    tenant_aware: true\n    security:\n      oauth2:\n        scopes: ["tenant:{{tenant_id}}"]\n  welcome:\n    description: hi\n',
    })));
    expect(JSON.stringify(map)).toBe(JSON.stringify(single));
  });

  it('leaves every password as a reference in build output', () => {
    const files = buildArtifacts(compile(exampleRepo()));
    const all = [...files.values()].join('\n');
    expect(files.get('customer-a/kubernetes.yaml')).toContain('PGPASSWORD: ${secret:postgres-password}');
    expect(files.get('customer-a/postgres.sql')).toContain(`CREATE ROLE "tenant_customer-a" LOGIN PASSWORD :'postgres_password';`);
    expect(all).not.toMatch(/"secret"\s*:/);
    expect(files.has('customer-a/agents/assistant.card.json')).toBe(true);
  });
});
