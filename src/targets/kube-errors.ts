import { ConflictError, TargetError } from '../errors.js';
import { isTransient } from './retry.js';

/** Kubernetes failures as TargetErrors, with the status code and the API server's message (never a request body). */
export function kubeError(what: string, e: unknown): unknown {
  if (e instanceof TargetError || e instanceof ConflictError) return e;
  const err = e as { code?: number; body?: unknown; message?: string };
  if (typeof err?.code === 'number') {
    let msg = '';
    let reason: string | undefined;
    try {
      const b = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: string; reason?: string } | undefined;
      msg = b?.message ?? '';
      reason = b?.reason;
    } catch {
      msg = '';
    }
    return new TargetError('kubernetes', `${what} failed (${err.code}): ${msg || 'no message'}`, {
      transient: isTransient(e),
      status: err.code,
      ...(reason ? { reason } : {}),
      ...(err.code === 401 || err.code === 403 ? { hint: 'check KUBECONFIG and --context: the credentials lack the rights to do this' } : {}),
      cause: e,
    });
  }
  if (isTransient(e)) return new TargetError('kubernetes', `${what}: cannot reach the API server (${(e as Error).message})`, { transient: true, cause: e, hint: 'is the cluster running? `systemprompt dev status`' });
  return e;
}
