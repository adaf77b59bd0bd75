import { SystemPromptError } from '../errors.js';
import { stackPaths } from './paths.js';
import { readSecret } from './secrets.js';
import { stackStatus } from './stack.js';
import { readState } from './state.js';

/** Where the product's targets are: from the environment (DESIGN §2) or the running dev stack. */
export interface Endpoints {
  keycloak: { url: string; username: string; password: string };
  kubeconfigPath: string;
  context?: string;
  postgresUrl: string;
  source: 'env' | 'dev-stack';
}

const ENV_VARS = ['SYSTEMPROMPT_KEYCLOAK_URL', 'SYSTEMPROMPT_KEYCLOAK_USER', 'SYSTEMPROMPT_KEYCLOAK_PASSWORD', 'KUBECONFIG', 'SYSTEMPROMPT_POSTGRES_URL'] as const;

/** The PostgreSQL admin URL with its password filled in. */
export function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

async function stoppedComponents(env: NodeJS.ProcessEnv): Promise<string[]> {
  return (await stackStatus({ env })).components.filter((c) => !c.running).map((c) => c.name);
}

/**
 * Targets from the environment when SYSTEMPROMPT_KEYCLOAK_URL or SYSTEMPROMPT_POSTGRES_URL is set
 * (all of §2's variables are then required; a KUBECONFIG alone, common in shells, does not count),
 * else the running dev stack recorded in its state file (checked alive and healthy; passwords read
 * from its 0600 files), else a SystemPromptError saying what to do.
 */
export async function resolveEndpoints(env: NodeJS.ProcessEnv, deps: { stoppedComponents?: (env: NodeJS.ProcessEnv) => Promise<string[]> } = {}): Promise<Endpoints> {
  const set = ENV_VARS.filter((v) => env[v]);
  if (env.SYSTEMPROMPT_KEYCLOAK_URL || env.SYSTEMPROMPT_POSTGRES_URL) {
    const missing = ENV_VARS.filter((v) => !env[v]);
    if (missing.length) {
      throw new SystemPromptError(`targets from the environment are incomplete: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set`, {
        hint: 'set all of SYSTEMPROMPT_KEYCLOAK_URL, SYSTEMPROMPT_KEYCLOAK_USER, SYSTEMPROMPT_KEYCLOAK_PASSWORD, KUBECONFIG and SYSTEMPROMPT_POSTGRES_URL, or unset them to use the local stack (`systemprompt dev up`)',
      });
    }
    return {
      keycloak: { url: env.SYSTEMPROMPT_KEYCLOAK_URL!, username: env.SYSTEMPROMPT_KEYCLOAK_USER!, password: env.SYSTEMPROMPT_KEYCLOAK_PASSWORD! },
      kubeconfigPath: env.KUBECONFIG!,
      postgresUrl: env.SYSTEMPROMPT_POSTGRES_URL!,
      source: 'env',
    };
  }
  const paths = stackPaths(env);
  const state = await readState(paths.stateFile);
  const noStack = new SystemPromptError(`no targets: the ${set.length ? 'environment names only ' + set.join(', ') : 'environment names none'} and no local stack is running (${paths.stackDir})`, {
    hint: 'run `systemprompt dev up` (then optionally `eval "$(systemprompt dev env)"`), or set SYSTEMPROMPT_KEYCLOAK_URL, SYSTEMPROMPT_KEYCLOAK_USER, SYSTEMPROMPT_KEYCLOAK_PASSWORD, KUBECONFIG and SYSTEMPROMPT_POSTGRES_URL',
  });
  if (!state?.keycloak || !state.kube || !state.postgres) throw noStack;
  const stopped = await (deps.stoppedComponents ?? stoppedComponents)(env);
  if (stopped.length) {
    throw new SystemPromptError(`no targets: the local stack in ${paths.stackDir} is not running (${stopped.join(', ')} down)`, {
      hint: 'run `systemprompt dev up`, or set SYSTEMPROMPT_KEYCLOAK_URL, SYSTEMPROMPT_KEYCLOAK_USER, SYSTEMPROMPT_KEYCLOAK_PASSWORD, KUBECONFIG and SYSTEMPROMPT_POSTGRES_URL',
    });
  }
  const [kcPassword, pgPassword] = await Promise.all([readSecret(state.keycloak.passwordFile), readSecret(state.postgres.passwordFile)]);
  if (!kcPassword || !pgPassword) throw noStack;
  return {
    keycloak: { url: state.keycloak.url, username: state.keycloak.user, password: kcPassword },
    // The stack's own kubeconfig, even when the shell has a KUBECONFIG (never mix targets).
    kubeconfigPath: state.kube.kubeconfig,
    context: state.kube.context,
    postgresUrl: withPassword(state.postgres.url, pgPassword),
    source: 'dev-stack',
  };
}
