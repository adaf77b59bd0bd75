import { SystemPromptError } from '../errors.js';
import { withPassword, type Endpoints } from '../targets/endpoints.js';
import { stackPaths } from './paths.js';
import { readSecret } from './secrets.js';
import { stackStatus } from './stack.js';
import { readState } from './state.js';

async function stoppedComponents(env: NodeJS.ProcessEnv): Promise<string[]> {
  return (await stackStatus({ env })).components.filter((c) => !c.running).map((c) => c.name);
}

/**
 * The running dev stack as targets: recorded in its state file, checked alive and healthy, passwords
 * read from its 0600 files; else a SystemPromptError saying what to do. Its own kubeconfig is used
 * even when the shell has a KUBECONFIG (never mix targets).
 */
export async function devStackEndpoints(env: NodeJS.ProcessEnv, deps: { stoppedComponents?: (env: NodeJS.ProcessEnv) => Promise<string[]> } = {}): Promise<Endpoints> {
  const set = ['SYSTEMPROMPT_KEYCLOAK_URL', 'SYSTEMPROMPT_KEYCLOAK_USER', 'SYSTEMPROMPT_KEYCLOAK_PASSWORD', 'KUBECONFIG', 'SYSTEMPROMPT_POSTGRES_URL'].filter((v) => env[v]);
  const paths = stackPaths(env);
  const state = await readState(paths.stateFile);
  const noStack = new SystemPromptError(`no targets: the ${set.length ? 'environment names only ' + set.join(', ') : 'environment names none'} and no local stack is running (${paths.stackDir})`, {
    hint: 'run `systemprompt dev up` (then optionally `eval "$(systemprompt dev env)"`), or set SYSTEMPROMPT_KEYCLOAK_URL, SYSTEMPROMPT_KEYCLOAK_USER, SYSTEMPROMPT_KEYCLOAK_PASSWORD, KUBECONFIG and SYSTEMPROMPT_POSTGRES_URL',
  });
  if (!state?.keycloak || !state.kube || !state.postgres) throw noStack;
  const down = await (deps.stoppedComponents ?? stoppedComponents)(env);
  // The second PostgreSQL server is needed only by postgres.servers (without it, one server is
  // offered), Redis only by the gateway (devStackRedisUrl): neither is a target.
  const stopped = down.filter((c) => c !== 'postgres2' && c !== 'redis');
  if (stopped.length) {
    throw new SystemPromptError(`no targets: the local stack in ${paths.stackDir} is not running (${stopped.join(', ')} down)`, {
      hint: 'run `systemprompt dev up`, or set SYSTEMPROMPT_KEYCLOAK_URL, SYSTEMPROMPT_KEYCLOAK_USER, SYSTEMPROMPT_KEYCLOAK_PASSWORD, KUBECONFIG and SYSTEMPROMPT_POSTGRES_URL',
    });
  }
  const [kcPassword, pgPassword] = await Promise.all([readSecret(state.keycloak.passwordFile), readSecret(state.postgres.passwordFile)]);
  if (!kcPassword || !pgPassword) throw noStack;
  const second = state.postgres2 && !down.includes('postgres2') ? await readSecret(state.postgres2.passwordFile) : undefined;
  return {
    keycloak: { url: state.keycloak.url, username: state.keycloak.user, password: kcPassword },
    // The stack's own kubeconfig, even when the shell has a KUBECONFIG (never mix targets).
    kubeconfigPath: state.kube.kubeconfig,
    context: state.kube.context,
    postgresUrl: withPassword(state.postgres.url, pgPassword),
    // postgres.servers by position: the first listed server is the stack's first, the second its second.
    ...(state.postgres2 && second ? { postgresMore: [withPassword(state.postgres2.url, second)] } : {}),
    source: 'dev-stack',
  };
}


/**
 * The stack's Redis as a URL with its password (for the gateway's `--redis` and tests), or
 * undefined when the stack has none running.
 */
export async function devStackRedisUrl(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const status = await stackStatus({ env });
  const rec = status.state?.redis;
  if (!rec || !status.components.find((c) => c.name === 'redis')?.running) return undefined;
  const password = await readSecret(rec.passwordFile);
  if (!password) return undefined;
  const url = new URL(rec.url);
  url.username = rec.user;
  url.password = password;
  return url.toString().replace(/\/$/, '');
}
