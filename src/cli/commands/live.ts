import type { PlanDeps } from '../../commands/plan.js';
import { UsageError } from '../../errors.js';
import { compileEnvironment } from '../../targets/environment.js';
import type { Io } from '../io.js';

/** Wires plan/apply to the live targets. Replaced by the real targets in the reconcile engine. */
export function liveDeps(io: Io, opts: { offline: boolean; context?: string | undefined; debug?: boolean }): PlanDeps {
  return {
    environment: async () => compileEnvironment({ keycloakUrl: io.env.SYSTEMPROMPT_KEYCLOAK_URL, postgresUrl: io.env.SYSTEMPROMPT_POSTGRES_URL }),
    readLive: async () => {
      void opts;
      throw new UsageError('planning against live targets is not available yet', { hint: 'use `systemprompt plan --offline`' });
    },
  };
}
