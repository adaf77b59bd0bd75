/**
 * The small error taxonomy users see. Every failure that reaches the CLI edge is one of these;
 * anything else is an internal error and is reported as such (stack only with SYSTEMPROMPT_DEBUG=1).
 */
export class SystemPromptError extends Error {
  /** What the user can do about it, printed under the message. */
  readonly hint: string | undefined;
  /** Process exit code for this failure. */
  readonly exitCode: number;
  constructor(message: string, opts: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? 1;
  }
}

/** Bad input from the user: flags, arguments, files. */
export class UsageError extends SystemPromptError {}

/** The configuration repository is invalid; diagnostics were already rendered. */
export class ConfigInvalidError extends SystemPromptError {}

/** A required tool (JDK, Go, Maven, PostgreSQL) is missing on this machine. */
export class MissingToolError extends SystemPromptError {}

/**
 * A target system (Keycloak, Kubernetes, PostgreSQL) refused or failed a request. What kind of
 * failure it was is in the codes the server sent (HTTP status, Kubernetes reason, SQLSTATE), never
 * to be guessed from the message, whose words change with the server's version and language.
 */
export class TargetError extends SystemPromptError {
  readonly target: string;
  readonly transient: boolean;
  /** HTTP status of a Keycloak or Kubernetes answer. */
  readonly status: number | undefined;
  /** Kubernetes `reason` (AlreadyExists, Conflict, NotFound, ...). */
  readonly reason: string | undefined;
  /** PostgreSQL SQLSTATE (42710 duplicate object, 42P04 duplicate database, ...). */
  readonly sqlstate: string | undefined;
  constructor(target: string, message: string, opts: { hint?: string; transient?: boolean; cause?: unknown; status?: number; reason?: string; sqlstate?: string } = {}) {
    super(`${target}: ${message}`, opts);
    this.target = target;
    this.transient = opts.transient ?? false;
    this.status = opts.status;
    this.reason = opts.reason;
    this.sqlstate = opts.sqlstate;
  }
}

/** The run may no longer write: its lock was lost (renewal failed, expired or taken). See LockLostError. */
export class FencedError extends SystemPromptError {}

/** Another apply holds the lock, or a saved plan no longer matches the live state. */
export class ConflictError extends SystemPromptError {}

/** The user declined, or confirmation was needed and could not be asked. */
export class AbortedError extends SystemPromptError {}
