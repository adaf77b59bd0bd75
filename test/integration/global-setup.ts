import type { TestProject } from 'vitest/node';
import { devStackEndpoints, devStackRedisUrl } from '../../src/dev/endpoints.js';
import { resolveEndpoints, type Endpoints } from '../../src/targets/endpoints.js';
import { stackDown, stackUp } from '../../src/dev/stack.js';
import { deleteCustomResources, kubeHttpFor } from './custom-resources.js';

declare module 'vitest' {
  export interface ProvidedContext {
    endpoints: Endpoints;
    /** SYSTEMPROMPT_REDIS_URL, else the running stack's Redis (with its password); '' when neither. */
    redisUrl: string;
  }
}

const progress = (component: string, message: string) => void process.stderr.write(`[dev stack] ${component.padEnd(8)} ${message}\n`);

/**
 * Integration tests run against real services. Targets come from the environment when
 * SYSTEMPROMPT_KEYCLOAK_URL / SYSTEMPROMPT_POSTGRES_URL are set; otherwise the local stack is
 * brought up with the same code as `systemprompt dev up` (or a running one is reused). The Redis of
 * the gateway tests is SYSTEMPROMPT_REDIS_URL's, else the running stack's. A stack
 * started here is stopped afterwards unless SYSTEMPROMPT_KEEP_STACK=1; a reused one is left running.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const env = process.env;
  const redisUrl = async () => env.SYSTEMPROMPT_REDIS_URL || (await devStackRedisUrl(env)) || '';
  if (env.SYSTEMPROMPT_KEYCLOAK_URL || env.SYSTEMPROMPT_POSTGRES_URL) {
    project.provide('endpoints', await resolveEndpoints(env, devStackEndpoints));
    project.provide('redisUrl', await redisUrl());
    return undefined;
  }
  const up = await stackUp({ env, progress });
  const endpoints = await resolveEndpoints(env, devStackEndpoints);
  project.provide('endpoints', endpoints);
  project.provide('redisUrl', await redisUrl());
  await removeLeftoverCustomResources(endpoints);
  const startedAll = up.alreadyRunning.length === 0;
  if (!startedAll || env.SYSTEMPROMPT_KEEP_STACK === '1') return undefined;
  return async () => {
    await stackDown({ env, progress });
  };
}

/**
 * The operator tests run operators that watch every namespace. Tenants, Agents and ConfigSources an
 * earlier run (or a bench) left on a reused stack would be theirs to work through, and some carry
 * finalizers no operator will release: remove them all, finalizers first, before any test starts.
 */
async function removeLeftoverCustomResources(endpoints: Endpoints): Promise<void> {
  if (!endpoints.kubeconfigPath) return;
  const removed = await deleteCustomResources(kubeHttpFor(endpoints));
  if (removed) progress('kube', `removed ${removed} custom resources left by an earlier run`);
}
