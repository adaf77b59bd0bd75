import type { ReconcileResult } from '../reconcile/reconcile.js';
import type { CustomResource } from './resources.js';

export interface Condition {
  type: 'Ready' | 'Reconciling' | 'Stalled';
  status: 'True' | 'False' | 'Unknown';
  observedGeneration: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface TenantStatus {
  observedGeneration: number;
  conditions: Condition[];
  realm?: string;
  namespace?: string;
  database?: string;
  lastError?: string;
}

/**
 * A Tenant's status after a reconcile, in kstatus terms: Ready when everything of the tenant is
 * applied; Stalled when a person must act (an object in the way, a configuration that does not
 * validate, a deletion waiting for allowDestroy); Reconciling False once the round is over.
 * Undefined when the status would not change (so an idle operator writes nothing).
 */
export function tenantStatus(
  cr: CustomResource,
  r: { tenant: string; outcome: ReconcileResult | undefined; failure: string | undefined; names: { realm: string; namespace: string; database: string } | undefined; now: Date },
): TenantStatus | undefined {
  const generation = cr.metadata.generation ?? 0;
  const mine = <T extends { tenant?: string | undefined }>(xs: T[]): T[] => xs.filter((x) => x.tenant === r.tenant);
  const failed = r.outcome ? r.outcome.result.failed.filter((f) => f.change.tenant === r.tenant) : [];
  const conflicts = r.outcome ? mine(r.outcome.plan.conflicts) : [];
  const skipped = r.outcome?.result.stopped;
  let ready: [Condition['status'], string, string];
  let stalled: [Condition['status'], string, string] = ['False', 'Progressing', ''];
  if (r.failure) {
    ready = ['False', 'ReconcileFailed', r.failure];
    stalled = /does not validate/.test(r.failure) ? ['True', 'InvalidConfiguration', r.failure] : stalled;
  } else if (conflicts.length) {
    const msg = conflicts.map((c) => `${c.target} ${c.kind} ${c.name} ${c.reason}`).join('; ');
    ready = ['False', 'Conflict', msg];
    stalled = ['True', 'Conflict', msg];
  } else if (failed.length) {
    ready = ['False', 'ApplyFailed', failed.map((f) => `${f.change.kind} ${f.change.name}: ${f.error}`).join('; ')];
  } else if (skipped) {
    ready = ['False', 'Interrupted', skipped];
  } else {
    ready = ['True', 'Reconciled', 'realm, namespace and database are as the spec says'];
  }
  const previous = (type: Condition['type']): Condition | undefined => ((cr.status?.conditions as Condition[] | undefined) ?? []).find((c) => c.type === type);
  const cond = (type: Condition['type'], [status, reason, message]: [Condition['status'], string, string]): Condition => {
    const prev = previous(type);
    return { type, status, observedGeneration: generation, lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : r.now.toISOString().replace(/\.\d{3}Z$/, 'Z'), reason, message: message.slice(0, 2000) };
  };
  const status: TenantStatus = {
    observedGeneration: generation,
    conditions: [cond('Ready', ready), cond('Reconciling', ['False', 'Done', '']), cond('Stalled', stalled)],
    ...(r.names ?? {}),
    ...(ready[0] === 'True' ? {} : { lastError: ready[2].slice(0, 2000) }),
  };
  return sameStatus(cr.status as TenantStatus | undefined, status) ? undefined : status;
}

function sameStatus(a: TenantStatus | undefined, b: TenantStatus): boolean {
  if (!a || a.observedGeneration !== b.observedGeneration || a.realm !== b.realm || a.namespace !== b.namespace || a.database !== b.database || a.lastError !== b.lastError) return false;
  const key = (c: Condition): string => `${c.type}|${c.status}|${c.reason}|${c.message}|${c.observedGeneration}`;
  return (a.conditions ?? []).map(key).sort().join('\n') === b.conditions.map(key).sort().join('\n');
}
