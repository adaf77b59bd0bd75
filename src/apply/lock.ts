import os from 'node:os';
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { ConflictError } from '../errors.js';

export const LOCK_NAMESPACE = 'kube-system';
export const LOCK_NAME = 'systemprompt-apply';
const LEASE_SECONDS = 60;

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits. */
function microTime(d: Date): never {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as never;
}

/**
 * Two applies cannot interleave: each holds a Kubernetes Lease while it writes, renewed while it
 * runs. A lease not renewed for 60 s (its holder died) may be taken over.
 */
/** A holder on this machine whose process is gone (killed mid-apply) holds nothing. */
export function holderIsDead(holder: string): boolean {
  const m = /^[^@]*@(\S+) pid (\d+)$/.exec(holder);
  if (!m || m[1] !== os.hostname()) return false;
  try {
    process.kill(Number(m[2]), 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export class ApplyLock {
  private timer: NodeJS.Timeout | undefined;
  private lease: V1Lease | undefined;
  readonly holder = `${os.userInfo().username}@${os.hostname()} pid ${process.pid}`;

  constructor(private readonly api: CoordinationV1Api) {}

  async acquire(): Promise<void> {
    const now = new Date();
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: LOCK_NAME, namespace: LOCK_NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'systemprompt' } },
      spec: { holderIdentity: this.holder, leaseDurationSeconds: LEASE_SECONDS, acquireTime: microTime(now), renewTime: microTime(now) },
    };
    try {
      this.lease = await this.api.createNamespacedLease({ namespace: LOCK_NAMESPACE, body });
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
      const current = await this.api.readNamespacedLease({ name: LOCK_NAME, namespace: LOCK_NAMESPACE });
      const renewed = current.spec?.renewTime ? new Date(current.spec.renewTime as unknown as string).getTime() : 0;
      const ttl = (current.spec?.leaseDurationSeconds ?? LEASE_SECONDS) * 1000;
      if (current.spec?.holderIdentity && renewed + ttl > Date.now() && !holderIsDead(current.spec.holderIdentity)) {
        throw new ConflictError(`another apply holds the lock: ${current.spec.holderIdentity}, since ${new Date(current.spec.acquireTime as unknown as string).toISOString()}`, {
          hint: `wait for it to finish; a lock whose holder died expires ${LEASE_SECONDS} s after its last renewal`,
        });
      }
      try {
        this.lease = await this.api.replaceNamespacedLease({
          name: LOCK_NAME,
          namespace: LOCK_NAMESPACE,
          body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion } },
        });
      } catch (e2) {
        if ((e2 as { code?: number }).code === 409) throw new ConflictError('another apply took the lock at the same moment', { hint: 'run apply again' });
        throw e2;
      }
    }
    this.timer = setInterval(() => void this.renew().catch(() => {}), (LEASE_SECONDS * 1000) / 3);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (!this.lease) return;
    this.lease = await this.api.replaceNamespacedLease({
      name: LOCK_NAME,
      namespace: LOCK_NAMESPACE,
      body: { ...this.lease, spec: { ...this.lease.spec, acquireTime: microTime(new Date(this.lease.spec?.acquireTime as unknown as string)), renewTime: microTime(new Date()) } },
    });
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!this.lease) return;
    try {
      await this.api.deleteNamespacedLease({ name: LOCK_NAME, namespace: LOCK_NAMESPACE });
    } catch {
      /* it expires on its own */
    }
    this.lease = undefined;
  }
}
