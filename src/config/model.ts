import type { PathSegment, SourceFile } from './source.js';

/** The typed view of a config repository, after parsing and schema validation. */

export interface Naming {
  realm: string;
  namespace: string;
  database: string;
}

/** per_tenant: a Keycloak realm per tenant; organization: an Organization in one shared realm. */
export type Isolation = 'per_tenant' | 'organization';

export interface ProjectConfig {
  tenancy: {
    enabled: boolean;
    isolation: Isolation;
    /** The shared realm of organization-isolated tenants. */
    realm: string;
    defaultTenant: string;
    naming: Naming;
  };
  /** Scope catalog: name -> description, in file order. */
  scopes: Record<string, string>;
  keycloak: {
    redirectUris: string[];
    publicUrl?: string;
  };
  /** `postgres.servers`, in list order; undefined when not set (one implicit server). */
  postgresServers?: PostgresServerConfig[];
  /** `systemprompt.yaml`, when present. */
  source?: SourceFile;
}

export interface PostgresServerConfig {
  name: string;
  /** Position in `postgres.servers`. */
  index: number;
}

export interface UserConfig {
  email: string;
  scopes: string[];
  enabled: boolean;
  /** Position in the tenant's `users` list. */
  index: number;
}

export interface Quotas {
  cpu?: string;
  memory?: string;
  storage?: string;
  pods?: number;
  requestsPerMinute?: number;
  requestsPerMinutePerUser?: number;
}

export interface TenantConfig {
  name: string;
  displayName: string;
  quotas: Quotas;
  /** Explicit agent list, or undefined for "every tenant_aware agent". */
  agents?: string[];
  deletionPolicy: 'retain' | 'delete';
  /** Set in the tenant file; else the project's tenancy.isolation applies. */
  isolation?: Isolation;
  /** `postgres.server`: the server of postgres.servers the tenant's database is pinned to. */
  postgresServer?: string;
  users: UserConfig[];
  source: SourceFile;
  /** File name without extension. */
  fileStem: string;
}

export interface AgentConfig {
  name: string;
  displayName?: string;
  description?: string;
  tenantAware: boolean;
  redirectUris: string[];
  /** Templated OAuth scopes from `security.oauth2.scopes`, as written. */
  oauth2Scopes: string[];
  isolation: 'per_tenant';
  /** Where the gateway proxies this agent's API calls; none: the gateway serves its card only. */
  upstream?: string;
  /** The A2A AgentCard part as written (plain JSON). */
  card?: Record<string, unknown>;
  source: SourceFile;
  /** Where this agent sits in its file: [] for a single-agent file, ['agents', id] for the map form. */
  basePath: PathSegment[];
}

export interface Repository {
  project: ProjectConfig;
  tenants: TenantConfig[];
  agents: AgentConfig[];
}

export const DEFAULT_SCOPES: Readonly<Record<string, string>> = {
  anonymous: 'Public access',
  user: 'Authenticated user access',
  read: 'Read tenant data',
  write: 'Write tenant data',
  admin: 'Administer the tenant',
};

export const DEFAULT_NAMING: Readonly<Naming> = {
  realm: '{{tenant_id}}',
  namespace: 'tenant-{{tenant_id}}',
  database: 'tenant_{{tenant_id}}',
};

/** A tenant's isolation: its own setting, else the project's. */
export function isolationOf(project: ProjectConfig, t: TenantConfig): Isolation {
  return t.isolation ?? project.tenancy.isolation;
}

export const DEFAULT_SHARED_REALM = 'systemprompt';

export const DEFAULT_REDIRECT_URIS: readonly string[] = ['http://localhost:8080/*', 'http://127.0.0.1:8080/*'];
