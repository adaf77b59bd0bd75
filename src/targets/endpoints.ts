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
  postgresUrl: string;
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
  if (!env[KC_URL] && !env[PG_URL]) return undefined;
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
  if (env.KUBECONFIG) e.kubeconfigPath = env.KUBECONFIG;
  return e;
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
