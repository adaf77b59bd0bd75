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

/** A target system (Keycloak, Kubernetes, PostgreSQL) refused or failed a request. */
export class TargetError extends SystemPromptError {
  readonly target: string;
  readonly transient: boolean;
  constructor(target: string, message: string, opts: { hint?: string; transient?: boolean; cause?: unknown } = {}) {
    super(`${target}: ${message}`, opts);
    this.target = target;
    this.transient = opts.transient ?? false;
  }
}

/** Another apply holds the lock, or a saved plan no longer matches the live state. */
export class ConflictError extends SystemPromptError {}

/** The user declined, or confirmation was needed and could not be asked. */
export class AbortedError extends SystemPromptError {}
