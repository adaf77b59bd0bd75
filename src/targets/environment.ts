import { DEFAULT_ENVIRONMENT, type CompileEnvironment } from '../compile/desired.js';
import { UsageError } from '../errors.js';
import { postgresUrlVariable } from './endpoints.js';

/**
 * The compile environment from explicit target URLs (env variables of DESIGN §2), falling back
 * to the defaults. Only host, port and URL are taken: credentials never reach the desired state.
 * `postgresServers`: the admin URL of each named server of postgres.servers that is known.
 */
export function compileEnvironment(vars: { keycloakUrl?: string | undefined; postgresUrl?: string | undefined; postgresServers?: ReadonlyArray<{ name: string; url: string; variable?: string }> }): CompileEnvironment {
  const env: CompileEnvironment = { ...DEFAULT_ENVIRONMENT };
  if (vars.keycloakUrl) env.keycloakUrl = parseUrl(vars.keycloakUrl, 'SYSTEMPROMPT_KEYCLOAK_URL').origin + pathOf(vars.keycloakUrl);
  if (vars.postgresUrl) Object.assign(env, hostPort(vars.postgresUrl, 'SYSTEMPROMPT_POSTGRES_URL', 'postgresHost', 'postgresPort'));
  if (vars.postgresServers?.length) {
    env.postgresServers = {};
    for (const s of vars.postgresServers) {
      const at = hostPort(s.url, s.variable ?? postgresUrlVariable(s.name), 'host', 'port');
      env.postgresServers[s.name] = { host: at.host, port: at.port };
    }
  }
  return env;
}

/**
 * Offline (no target is asked): the URLs of postgres.servers that the environment names, by the
 * same rule as postgresServerUrls; a server without one gets a default address in the output.
 */
export function postgresUrlsFromVariables(env: NodeJS.ProcessEnv, servers: readonly string[] | undefined): Array<{ name: string; url: string; variable: string }> {
  const out: Array<{ name: string; url: string; variable: string }> = [];
  (servers ?? []).forEach((name, i) => {
    const named = postgresUrlVariable(name);
    const variable = env[named] ? named : i === 0 && env.SYSTEMPROMPT_POSTGRES_URL ? 'SYSTEMPROMPT_POSTGRES_URL' : undefined;
    if (variable) out.push({ name, url: env[variable]!, variable });
  });
  return out;
}

function hostPort<H extends string, P extends string>(url: string, variable: string, h: H, p: P): Record<H, string> & Record<P, number> {
  const u = parseUrl(url, variable);
  return { [h]: u.hostname || DEFAULT_ENVIRONMENT.postgresHost, [p]: u.port ? Number(u.port) : 5432 } as Record<H, string> & Record<P, number>;
}

function parseUrl(s: string, name: string): URL {
  try {
    return new URL(s);
  } catch {
    // never echo the value: it may hold a password
    throw new UsageError(`${name} is not a valid URL`, { hint: `e.g. ${name.startsWith('SYSTEMPROMPT_POSTGRES_URL') ? 'postgresql://admin:PASSWORD@127.0.0.1:5432/postgres' : 'http://localhost:8080'}` });
  }
}

function pathOf(s: string): string {
  return new URL(s).pathname.replace(/\/+$/, '');
}
