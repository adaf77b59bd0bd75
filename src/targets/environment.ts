import { DEFAULT_ENVIRONMENT, type CompileEnvironment } from '../compile/desired.js';
import { UsageError } from '../errors.js';

/**
 * The compile environment from explicit target URLs (env variables of DESIGN §2), falling back
 * to the defaults. Only host, port and URL are taken: credentials never reach the desired state.
 */
export function compileEnvironment(vars: { keycloakUrl?: string | undefined; postgresUrl?: string | undefined }): CompileEnvironment {
  const env: CompileEnvironment = { ...DEFAULT_ENVIRONMENT };
  if (vars.keycloakUrl) env.keycloakUrl = parseUrl(vars.keycloakUrl, 'SYSTEMPROMPT_KEYCLOAK_URL').origin + pathOf(vars.keycloakUrl);
  if (vars.postgresUrl) {
    const u = parseUrl(vars.postgresUrl, 'SYSTEMPROMPT_POSTGRES_URL');
    env.postgresHost = u.hostname || DEFAULT_ENVIRONMENT.postgresHost;
    env.postgresPort = u.port ? Number(u.port) : 5432;
  }
  return env;
}

function parseUrl(s: string, name: string): URL {
  try {
    return new URL(s);
  } catch {
    // never echo the value: it may hold a password
    throw new UsageError(`${name} is not a valid URL`, { hint: `e.g. ${name === 'SYSTEMPROMPT_POSTGRES_URL' ? 'postgresql://admin:PASSWORD@127.0.0.1:5432/postgres' : 'http://localhost:8080'}` });
  }
}

function pathOf(s: string): string {
  return new URL(s).pathname.replace(/\/+$/, '');
}
