import { SystemPromptError } from '../errors.js';

/**
 * Where the product's targets are, and how to log in. Kubernetes loads the usual way: the named
 * kubeconfig, else KUBECONFIG / ~/.kube/config, else the pod's service account (in a cluster).
 * Keycloak takes an admin user (password grant on the master realm) or a confidential client
 * (client credentials), e.g. a service-account client with the realm-admin role.
 */
export interface Endpoints {
  keycloak: KeycloakLogin;
  /** A kubeconfig file; undefined = the default loading rules (KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeconfigPath?: string;
  context?: string;
  /** The PostgreSQL admin URL: the one server, or the first of postgres.servers. */
  postgresUrl: string;
  /**
   * From the environment: admin URLs of named servers of postgres.servers, by the NAME of their
   * variable SYSTEMPROMPT_POSTGRES_URL_<NAME> (present only when such variables are set).
   */
  postgresNamed?: Record<string, string>;
  /**
   * From the dev stack: admin URLs of its further PostgreSQL servers, in order (present only when
   * it runs more than one); they serve postgres.servers by position (see postgresServerUrls).
   */
  postgresMore?: string[];
  source: 'env' | 'dev-stack';
}

export interface KeycloakLogin {
  url: string;
  /** Realm the admin user or client lives in (default `master`). */
  realm?: string;
  username?: string;
  password?: string;
  clientId?: string;
  clientSecret?: string;
}

const KC_URL = 'SYSTEMPROMPT_KEYCLOAK_URL';
const PG_URL = 'SYSTEMPROMPT_POSTGRES_URL';

/** The PostgreSQL admin URL with its password filled in. */
export function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

const ALL_HINT =
  'set SYSTEMPROMPT_KEYCLOAK_URL, SYSTEMPROMPT_POSTGRES_URL and either SYSTEMPROMPT_KEYCLOAK_USER + SYSTEMPROMPT_KEYCLOAK_PASSWORD or SYSTEMPROMPT_KEYCLOAK_CLIENT_ID + SYSTEMPROMPT_KEYCLOAK_CLIENT_SECRET (Kubernetes: KUBECONFIG, ~/.kube/config or the pod service account), or unset them to use the local stack (`systemprompt dev up`)';

/**
 * Targets named by the environment (DESIGN §2), or undefined when it names none: the environment
 * counts once SYSTEMPROMPT_KEYCLOAK_URL or SYSTEMPROMPT_POSTGRES_URL is set (a KUBECONFIG alone,
 * common in shells, does not), and must then be complete.
 */
export function endpointsFromEnvironment(env: NodeJS.ProcessEnv): Endpoints | undefined {
  const named = namedPostgresUrls(env);
  if (!env[KC_URL] && !env[PG_URL] && !named) return undefined;
  const missing: string[] = [];
  if (!env[KC_URL]) missing.push(KC_URL);
  const user = !!(env.SYSTEMPROMPT_KEYCLOAK_USER || env.SYSTEMPROMPT_KEYCLOAK_PASSWORD);
  const client = !!(env.SYSTEMPROMPT_KEYCLOAK_CLIENT_ID || env.SYSTEMPROMPT_KEYCLOAK_CLIENT_SECRET);
  if (client && !user) {
    for (const v of ['SYSTEMPROMPT_KEYCLOAK_CLIENT_ID', 'SYSTEMPROMPT_KEYCLOAK_CLIENT_SECRET']) if (!env[v]) missing.push(v);
  } else {
    for (const v of ['SYSTEMPROMPT_KEYCLOAK_USER', 'SYSTEMPROMPT_KEYCLOAK_PASSWORD']) if (!env[v]) missing.push(v);
  }
  if (!env[PG_URL]) missing.push(PG_URL);
  if (missing.length) {
    throw new SystemPromptError(`targets from the environment are incomplete: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set`, { hint: ALL_HINT });
  }
  const keycloak: KeycloakLogin = { url: env[KC_URL]! };
  if (env.SYSTEMPROMPT_KEYCLOAK_REALM) keycloak.realm = env.SYSTEMPROMPT_KEYCLOAK_REALM;
  if (client && !user) {
    keycloak.clientId = env.SYSTEMPROMPT_KEYCLOAK_CLIENT_ID!;
    keycloak.clientSecret = env.SYSTEMPROMPT_KEYCLOAK_CLIENT_SECRET!;
  } else {
    keycloak.username = env.SYSTEMPROMPT_KEYCLOAK_USER!;
    keycloak.password = env.SYSTEMPROMPT_KEYCLOAK_PASSWORD!;
  }
  const e: Endpoints = { keycloak, postgresUrl: env[PG_URL]!, source: 'env' };
  if (named) e.postgresNamed = named;
  if (env.KUBECONFIG) e.kubeconfigPath = env.KUBECONFIG;
  return e;
}

/** The variable holding the admin URL of the server `name` of postgres.servers: `second-eu` -> SYSTEMPROMPT_POSTGRES_URL_SECOND_EU. */
export function postgresUrlVariable(name: string): string {
  return `${PG_URL}_${name.toUpperCase().replace(/-/g, '_')}`;
}

/** SYSTEMPROMPT_POSTGRES_URL_<NAME> variables that are set, by NAME; undefined when none is. */
function namedPostgresUrls(env: NodeJS.ProcessEnv): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith(`${PG_URL}_`) && v) out[k.slice(PG_URL.length + 1)] = v;
  return Object.keys(out).length ? out : undefined;
}

/**
 * The admin URL of each server of postgres.servers, in list order. From the environment: server
 * NAME's variable SYSTEMPROMPT_POSTGRES_URL_<NAME> ('-' becomes '_'); the first server falls back
 * to SYSTEMPROMPT_POSTGRES_URL. From the dev stack: its servers in order (the first entry gets its
 * first server, the second its second). A server without a URL, or two servers at one address, is
 * an error naming what to set; no URL (it holds a password) is ever part of a message.
 */
export function postgresServerUrls(e: Endpoints, servers: readonly string[]): Array<{ name: string; url: string }> {
  const stack = [e.postgresUrl, ...(e.postgresMore ?? [])];
  const missing: string[] = [];
  const out: Array<{ name: string; url: string }> = [];
  servers.forEach((name, i) => {
    const url = e.source === 'dev-stack' ? stack[i] : (e.postgresNamed?.[postgresUrlVariable(name).slice(PG_URL.length + 1)] ?? (i === 0 ? e.postgresUrl : undefined));
    if (url) out.push({ name, url });
    else missing.push(name);
  });
  if (missing.length && e.source === 'dev-stack') {
    throw new SystemPromptError(`postgres.servers lists ${servers.length} PostgreSQL servers, and the local stack runs ${stack.length}: no server for ${missing.join(', ')}`, {
      hint: `the local stack serves postgres.servers by position; for more servers set their URLs in the environment (${missing.map(postgresUrlVariable).join(', ')}, with SYSTEMPROMPT_POSTGRES_URL and the other target variables)`,
    });
  }
  if (missing.length) {
    const vars = missing.map(postgresUrlVariable);
    throw new SystemPromptError(`no admin URL for PostgreSQL server${missing.length === 1 ? '' : 's'} ${missing.join(', ')} of postgres.servers: ${vars.join(', ')} ${vars.length === 1 ? 'is' : 'are'} not set`, {
      hint: `set ${vars.join(', ')} to an admin connection of ${missing.length === 1 ? 'that server' : 'each server'} (e.g. postgresql://admin:PASSWORD@db2.example:5432/postgres); the first listed server may use SYSTEMPROMPT_POSTGRES_URL`,
    });
  }
  const at = new Map<string, string>();
  for (const s of out) {
    const where = addressOf(s.url);
    const other = where && at.get(where);
    if (other) {
      throw new SystemPromptError(`PostgreSQL servers ${other} and ${s.name} of postgres.servers have the same address (${where})`, {
        hint: `give each server its own URL (${postgresUrlVariable(other)}, ${postgresUrlVariable(s.name)}): one server listed twice would hold databases under two names`,
      });
    }
    if (where) at.set(where, s.name);
  }
  return out;
}

/** host:port of a PostgreSQL URL (no credentials), or undefined when it does not parse. */
function addressOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}`;
  } catch {
    return undefined;
  }
}

/**
 * The environment's targets, else `fallback` (the CLI passes the running local stack), else an
 * error saying what to set.
 */
export async function resolveEndpoints(env: NodeJS.ProcessEnv, fallback?: (env: NodeJS.ProcessEnv) => Promise<Endpoints>): Promise<Endpoints> {
  const fromEnv = endpointsFromEnvironment(env);
  if (fromEnv) return fromEnv;
  if (fallback) return fallback(env);
  throw new SystemPromptError('no targets: the environment names none', { hint: ALL_HINT });
}
