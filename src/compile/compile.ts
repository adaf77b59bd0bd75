import { isolationOf, type AgentConfig, type Repository, type TenantConfig } from '../config/model.js';
import { resourceKey, type DesiredResource } from '../model/resource.js';
import { buildCard } from './card.js';
import { DEFAULT_ENVIRONMENT, type AgentBinding, type CompileEnvironment, type DesiredState, type ScopeSpec, type TenantDesired } from './desired.js';
import { keycloakResources } from './keycloak.js';
import { kubernetesResources } from './kubernetes.js';
import { organizationResources, organizationScope, sharedRealmResources } from './organization.js';
import { postgresResources } from './postgres.js';
import { renderTemplate, usesVariable } from './templates.js';

/** The scope in the catalog that every user gets without a grant. */
export const PUBLIC_SCOPE = 'anonymous';
/** Realm role that carries a catalog scope: a user granted `read` holds `scope:read`. */
export const scopeRole = (scope: string): string => `scope:${scope}`;

/**
 * Repository -> DesiredState. Pure and deterministic: the same repository and environment give
 * the same bytes. The repository must be valid (loadRepository returned it).
 */
export function compile(repo: Repository, env: CompileEnvironment = DEFAULT_ENVIRONMENT): DesiredState {
  const tenants = repo.tenants.map((t) => compileTenant(repo, t, env));
  const resources: DesiredResource[] = [];
  // Organization isolation: the shared realm, its scopes and the agents' clients, once for all.
  const inShared = tenants.filter((t) => t.isolation === 'organization');
  if (inShared.length) for (const r of sharedRealmResources(repo.project.tenancy.realm, inShared)) resources.push(r);
  for (const t of tenants) {
    const kc = t.isolation === 'organization' ? organizationResources(t) : keycloakResources(t);
    // One at a time: a tenant with hundreds of thousands of users would overflow push(...spread).
    for (const part of [kubernetesResources(t, env), postgresResources(t), kc]) for (const r of part) resources.push(r);
  }
  assertUniqueKeys(resources);
  const servers = repo.project.postgresServers;
  if (!servers) return { tenants, resources };
  // Several servers: the databases are placed later, against the live state (placeDatabases).
  const postgresServers = servers.map((s, i) => {
    const at = env.postgresServers?.[s.name] ?? (i === 0 ? { host: env.postgresHost, port: env.postgresPort } : { host: DEFAULT_ENVIRONMENT.postgresHost, port: DEFAULT_ENVIRONMENT.postgresPort });
    return { name: s.name, host: at.host, port: at.port };
  });
  return { tenants, resources, postgresServers };
}

export function agentsOf(repo: Repository, t: TenantConfig): AgentConfig[] {
  if (t.agents) {
    const byName = new Map(repo.agents.map((a) => [a.name, a]));
    return t.agents.map((n) => byName.get(n)).filter((a): a is AgentConfig => a !== undefined);
  }
  const isDefault = t.name === repo.project.tenancy.defaultTenant;
  // Tenant-aware agents serve every tenant; the others serve the default tenant only.
  return repo.agents.filter((a) => a.tenantAware || isDefault);
}

function compileTenant(repo: Repository, t: TenantConfig, env: CompileEnvironment): TenantDesired {
  const naming = repo.project.tenancy.naming;
  const vars = { tenant_id: t.name };
  const isolation = isolationOf(repo.project, t);
  const realm = isolation === 'organization' ? repo.project.tenancy.realm : renderTemplate(naming.realm, vars);
  const database = renderTemplate(naming.database, vars);
  const keycloakUrl = repo.project.keycloak.publicUrl ?? env.keycloakUrl;
  const issuer = `${keycloakUrl.replace(/\/+$/, '')}/realms/${encodeURIComponent(realm)}`;

  const scopes = new Map<string, ScopeSpec>();
  for (const [name, description] of Object.entries(repo.project.scopes)) {
    scopes.set(name, name === PUBLIC_SCOPE ? { name, description } : { name, description, role: scopeRole(name) });
  }

  const agents: AgentBinding[] = agentsOf(repo, t).map((a) => {
    const tenantScopes = a.oauth2Scopes.filter((s) => !usesVariable(s, 'user_id')).map((s) => renderTemplate(s, vars));
    const userScopeTemplates = a.oauth2Scopes.filter((s) => usesVariable(s, 'user_id')).map((s) => renderTemplate(s, vars));
    for (const s of tenantScopes) if (!scopes.has(s)) scopes.set(s, { name: s, description: `Tenant ${t.name}` });
    const declared = cardScopes(a.card);
    for (const [s, description] of declared) {
      if (!scopes.has(s)) scopes.set(s, s === PUBLIC_SCOPE ? { name: s, description } : { name: s, description, role: scopeRole(s) });
    }
    return {
      name: a.name,
      clientId: a.name,
      defaultScopes: uniqSorted(tenantScopes),
      optionalScopes: uniqSorted([...declared.keys()].filter((s) => !tenantScopes.includes(s))),
      redirectUris: uniqSorted([...repo.project.keycloak.redirectUris, ...a.redirectUris]),
      userScopeTemplates,
      // Per tenant: an upstream may name the tenant ({{tenant_id}}), e.g. the agent in the tenant's namespace.
      ...(a.upstream !== undefined ? { upstream: renderTemplate(a.upstream, vars) } : {}),
      // Organization isolation: the card names the scope that selects the tenant's organization.
      card: buildCard(a, { issuer, tenantScopes: isolation === 'organization' ? [...tenantScopes, organizationScope(t.name)] : tenantScopes }),
    };
  });

  return {
    name: t.name,
    displayName: t.displayName,
    isolation,
    ...(isolation === 'organization' ? { organization: t.name } : {}),
    realm,
    namespace: renderTemplate(naming.namespace, vars),
    database,
    dbRole: database,
    deletionPolicy: t.deletionPolicy,
    ...(t.postgresServer !== undefined ? { postgresServer: t.postgresServer } : {}),
    issuer,
    quotas: { ...t.quotas },
    scopes: [...scopes.values()].sort((a, b) => cmp(a.name, b.name)),
    agents: agents.sort((a, b) => cmp(a.name, b.name)),
    users: t.users
      .map((u) => ({ email: u.email, username: u.email.toLowerCase(), enabled: u.enabled, scopes: uniqSorted(u.scopes) }))
      .sort((a, b) => cmp(a.username, b.username)),
  };
}

/** Scopes declared by the card's oauth2 flows, name -> description, sorted. */
function cardScopes(card: Record<string, unknown> | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const schemes = (card?.securitySchemes ?? {}) as Record<string, { type?: string; flows?: Record<string, { scopes?: Record<string, string> }> }>;
  for (const name of Object.keys(schemes).sort()) {
    const s = schemes[name]!;
    if (s.type !== 'oauth2') continue;
    for (const flow of Object.keys(s.flows ?? {}).sort()) {
      for (const [scope, desc] of Object.entries(s.flows![flow]!.scopes ?? {})) if (!out.has(scope)) out.set(scope, desc);
    }
  }
  return new Map([...out].sort(([a], [b]) => cmp(a, b)));
}

export function uniqSorted(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort(cmp);
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function assertUniqueKeys(resources: DesiredResource[]): void {
  const seen = new Set<string>();
  for (const r of resources) {
    const k = resourceKey(r);
    if (seen.has(k)) throw new Error(`internal: resource ${k} compiled twice`);
    seen.add(k);
  }
}
