import type { Isolation } from '../config/model.js';
import type { DesiredResource } from '../model/resource.js';

/** Where the targets are, as seen by tenants' workloads and clients. Input to the (pure) compiler. */
export interface CompileEnvironment {
  /** Keycloak's public base URL (issuers are `${url}/realms/${realm}`). */
  keycloakUrl: string;
  /** PostgreSQL host and port as tenant workloads reach it. */
  postgresHost: string;
  postgresPort: number;
  /**
   * Host and port of each named server of `postgres.servers`, as tenant workloads reach it (from its
   * admin URL). A listed server missing here (an offline build without its variable) gets the
   * first server's address if it is the first, else the default.
   */
  postgresServers?: Record<string, { host: string; port: number }>;
}

/** A server of `postgres.servers` and where tenant workloads reach it. */
export interface PostgresServer {
  name: string;
  host: string;
  port: number;
}

/** Where a tenant's database is, or goes: decided by placeDatabases (src/plan/placement.ts). */
export interface Placement {
  tenant: string;
  database: string;
  server: string;
  /** false: the database exists there; true: it is created there by this plan. */
  new: boolean;
  /**
   * exists: found on that server (never moved); recorded: its Secret says so (the database is gone:
   * made again there); pinned: the tenant's postgres.server; least-loaded: the server holding the
   * fewest of our databases, counting those placed earlier in the same plan (ties: list order).
   */
  reason: 'exists' | 'recorded' | 'pinned' | 'least-loaded';
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
  /** Where the gateway proxies the agent's API calls (the agent's `upstream`). */
  upstream?: string;
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
  /** The server of postgres.servers the tenant pins its database to. */
  postgresServer?: string;
  issuer: string;
  quotas: {
    cpu?: string;
    memory?: string;
    storage?: string;
    pods?: number;
    requestsPerMinute?: number;
    requestsPerMinutePerUser?: number;
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
  /**
   * `postgres.servers`, in list order; undefined with one implicit server. With servers, the
   * tenants' roles, databases and database Secrets are compiled unplaced, and placeDatabases puts
   * each database on a server (names `server/database`) before anything is planned.
   */
  postgresServers?: PostgresServer[];
  /** Set by placeDatabases: where each tenant's database is (with several servers only). */
  placements?: Placement[];
}
