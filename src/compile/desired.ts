import type { Isolation } from '../config/model.js';
import type { DesiredResource } from '../model/resource.js';

/** Where the targets are, as seen by tenants' workloads and clients. Input to the (pure) compiler. */
export interface CompileEnvironment {
  /** Keycloak's public base URL (issuers are `${url}/realms/${realm}`). */
  keycloakUrl: string;
  /** PostgreSQL host and port as tenant workloads reach it. */
  postgresHost: string;
  postgresPort: number;
}

export const DEFAULT_ENVIRONMENT: CompileEnvironment = {
  keycloakUrl: 'http://localhost:8080',
  postgresHost: '127.0.0.1',
  postgresPort: 5432,
};

export interface AgentBinding {
  name: string;
  clientId: string;
  /** Client scopes every token of this client gets (tenant templates, tenant claim). */
  defaultScopes: string[];
  /** Client scopes a token gets when asked for and, for role-scoped ones, held by the user. */
  optionalScopes: string[];
  redirectUris: string[];
  /** Scopes written with {{user_id}}: realised as a `user_id` claim. */
  userScopeTemplates: string[];
  /** The A2A AgentCard this tenant serves for the agent. */
  card: Record<string, unknown>;
}

export interface ScopeSpec {
  name: string;
  description: string;
  /** Realm role a user must hold for the scope to land in a token; undefined = everyone. */
  role?: string;
}

export interface UserSpec {
  email: string;
  username: string;
  enabled: boolean;
  scopes: string[];
}

export interface TenantDesired {
  name: string;
  displayName: string;
  /** per_tenant: `realm` is the tenant's own; organization: `realm` is the shared realm. */
  isolation: Isolation;
  /** Organization isolation: the alias of the tenant's Keycloak Organization (the tenant name). */
  organization?: string;
  realm: string;
  namespace: string;
  database: string;
  dbRole: string;
  deletionPolicy: 'retain' | 'delete';
  issuer: string;
  quotas: {
    cpu?: string;
    memory?: string;
    storage?: string;
    pods?: number;
    requestsPerMinute?: number;
  };
  scopes: ScopeSpec[];
  agents: AgentBinding[];
  users: UserSpec[];
}

export interface DesiredState {
  tenants: TenantDesired[];
  /** Every resource of every tenant, sorted by tenant, target, kind order and name. */
  resources: DesiredResource[];
  /** Keys left out by `--target` although desired: never planned for deletion. */
  ignored?: string[];
}
