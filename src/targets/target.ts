import type { DesiredState } from '../compile/desired.js';
import type { JsonObject, LiveResource, TargetName } from '../model/resource.js';
import type { Change } from '../plan/plan.js';

/** Resolves secret references (`postgres-password`, `client-secret:<client>`) for one tenant. */
export interface SecretResolver {
  /**
   * The value behind `ref` for `tenant`. `mayGenerate` is true only where the value is first
   * stored (the Secret that keeps it); everywhere else a missing value is an error.
   */
  resolve(tenant: string, ref: string, opts?: { mayGenerate?: boolean }): Promise<string>;
  /**
   * The value `tenant`'s Kubernetes Secret already holds for `ref`, if any: a client created anew
   * (deleted by hand) gets the secret its applications already use, instead of a new one.
   */
  stored(tenant: string, ref: string): Promise<string | undefined>;
}

export interface ApplyContext {
  secrets: SecretResolver;
  desired: DesiredState;
  /** The spec to write for a create or update: from the desired state (a plan shows a redacted copy). */
  specOf(change: Change): JsonObject;
}

/**
 * What a run lends its targets while it writes: `fence()` throws once the run may no longer write
 * (its lock was lost), and is called before every write request; `signal` cuts retries short.
 */
export interface RunGuard {
  fence(): void;
  signal?: AbortSignal;
}

/**
 * A read limited to some tenants (the operator reconciles one tenant at a time): the realms,
 * namespaces and PostgreSQL roles and databases they use or used. A target reads only these
 * names (and, where its markers allow, what is marked as one of these tenants'); the caller drops
 * whatever else a read returns as another tenant's.
 */
export interface ReadScope {
  tenants: string[];
  realms: string[];
  namespaces: string[];
  /** PostgreSQL role and database names. */
  pgNames: string[];
}

/** One target system behind the reconcile engine: read what we manage, apply one change. */
export interface Target {
  readonly name: TargetName;
  /**
   * Live state of everything we manage, and of anything that would collide with the desired state;
   * with a scope, of that scope only.
   */
  read(desired: DesiredState, scope?: ReadScope): Promise<LiveResource[]>;
  /** Make one planned change. Idempotent: applying a change that already happened succeeds. */
  apply(change: Change, ctx: ApplyContext): Promise<void>;
  /** Requests made so far (reads and writes). */
  readonly requests: { reads: number; writes: number };
  close(): Promise<void>;
}
