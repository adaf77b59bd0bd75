import type { CompileEnvironment, DesiredState } from '../compile/desired.js';
import { devStackEndpoints } from '../dev/endpoints.js';
import { postgresServerUrls, resolveEndpoints, type Endpoints } from '../targets/endpoints.js';
import { TARGETS, type TargetName } from '../model/resource.js';
import type { LiveState } from '../plan/plan.js';
import { readLive } from '../reconcile/reconcile.js';
import { connectTargets, type Connected } from '../targets/connect.js';
import { configureFailpoint } from '../targets/failpoint.js';
import { compileEnvironment, postgresUrlsFromVariables } from '../targets/environment.js';

/** The live side of plan and apply: endpoints, target clients, reads with request counts. */
export class LiveSession {
  private endpoints: Endpoints | undefined;
  private connected: Connected | undefined;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    readonly selected: readonly TargetName[] = TARGETS,
    private readonly opts: { context?: string | undefined; debug?: ((line: string) => void) | undefined } = {},
  ) {}

  async getEndpoints(): Promise<Endpoints> {
    if (!this.endpoints) {
      const e = await resolveEndpoints(this.env, devStackEndpoints);
      this.endpoints = this.opts.context ? { ...e, context: this.opts.context } : e;
    }
    return this.endpoints;
  }

  /**
   * Offline commands use the environment variables only; live ones the resolved endpoints, where
   * every server of postgres.servers must have its URL (else an error before anything is read).
   */
  async environment(offline: boolean, postgresServers?: readonly string[]): Promise<CompileEnvironment> {
    if (offline) {
      return compileEnvironment({ keycloakUrl: this.env.SYSTEMPROMPT_KEYCLOAK_URL, postgresUrl: this.env.SYSTEMPROMPT_POSTGRES_URL, postgresServers: postgresUrlsFromVariables(this.env, postgresServers) });
    }
    const e = await this.getEndpoints();
    return compileEnvironment({ keycloakUrl: e.keycloak.url, postgresUrl: e.postgresUrl, ...(postgresServers ? { postgresServers: postgresServerUrls(e, postgresServers) } : {}) });
  }

  async connect(): Promise<Connected> {
    if (!this.connected) {
      configureFailpoint(this.env.SYSTEMPROMPT_FAILPOINT);
      this.connected = await connectTargets(await this.getEndpoints(), this.selected, this.opts.debug);
    }
    return this.connected;
  }

  /** Read every selected target (in parallel); the counts are the requests of this read alone. */
  async readLive(desired: DesiredState): Promise<LiveState> {
    return readLive(desired, (await this.connect()).targets);
  }

  async close(): Promise<void> {
    await this.connected?.close();
  }
}
