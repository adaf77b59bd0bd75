import { TargetError } from '../errors.js';
import { beforeWrite } from './failpoint.js';
import { countRequest, currentGuard } from './runscope.js';

/** Network failures and overload answers worth retrying. */
export function isTransient(e: unknown): boolean {
  if (e instanceof TargetError) return e.transient;
  const err = e as { code?: unknown; status?: unknown; response?: { status?: number }; cause?: { code?: unknown } };
  const code = typeof err?.code === 'string' ? err.code : typeof err?.cause?.code === 'string' ? err.cause.code : undefined;
  if (code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', '57P01', '57P03', '53300', '40001', '40P01'].includes(code)) return true;
  const status = typeof err?.code === 'number' ? err.code : typeof err?.status === 'number' ? err.status : err?.response?.status;
  return status === 429 || status === 502 || status === 503 || status === 504 || status === 500;
}

export interface RetryOptions {
  attempts?: number;
  baseMs?: number;
  maxMs?: number;
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
  /** Stops waiting between attempts: the signal's reason is thrown. */
  signal?: AbortSignal | undefined;
}

/** Run `fn`, retrying transient failures with exponential backoff and full jitter. */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const base = opts.baseMs ?? 200;
  const max = opts.maxMs ?? 5000;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !isTransient(e)) throw e;
      const delay = Math.round(Math.random() * Math.min(max, base * 2 ** (i - 1)));
      opts.onRetry?.(i, delay, e);
      await sleep(delay, opts.signal);
    }
  }
}

/** Wait `ms`, or until `signal` aborts (then its reason is thrown). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export type RequestKind = 'read' | 'write';

/**
 * How every target talks to its server: check the run making the request may still write (its
 * guard's fencing), count the request (in the target's totals and for that run), log it under
 * --debug (with the time and whether it reads or writes), retry transient failures, and turn any
 * failure into the target's error type.
 */
export function requestRunner(
  target: string,
  requests: { reads: number; writes: number },
  mapError: (what: string, e: unknown) => unknown,
  debug?: (line: string) => void,
  onError?: (e: unknown) => void,
): <T>(what: string, kind: RequestKind, fn: () => Promise<T>) => Promise<T> {
  return (what, kind, fn) =>
    withRetry(
      async () => {
        if (kind === 'write') {
          currentGuard()?.fence();
          beforeWrite(`${target} ${what}`);
        }
        requests[kind === 'read' ? 'reads' : 'writes']++;
        countRequest(target, kind);
        debug?.(`${new Date().toISOString()} ${target} ${kind} ${what}`);
        try {
          return await fn();
        } catch (e) {
          onError?.(e);
          throw mapError(what, e);
        }
      },
      { signal: currentGuard()?.signal },
    );
}
