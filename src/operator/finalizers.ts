import type { CustomResource } from './resources.js';

/**
 * The finalizer the operator puts on each Tenant: deleting the resource then waits until the
 * tenant's realm and namespace are gone (its database per deletion_policy: retained by default).
 */
export const TENANT_FINALIZER = 'systemprompt.io/cleanup';

const finalizersOf = (cr: CustomResource): string[] => ((cr.metadata as { finalizers?: string[] }).finalizers ?? []).slice();

/** The finalizers with ours added, or undefined when it is there already (or the object is going). */
export function addedFinalizer(cr: CustomResource): string[] | undefined {
  const f = finalizersOf(cr);
  if (cr.metadata.deletionTimestamp || f.includes(TENANT_FINALIZER)) return undefined;
  return [...f, TENANT_FINALIZER];
}

/** The finalizers without ours, or undefined when it is not there. */
export function removedFinalizer(cr: CustomResource): string[] | undefined {
  const f = finalizersOf(cr);
  return f.includes(TENANT_FINALIZER) ? f.filter((x) => x !== TENANT_FINALIZER) : undefined;
}

/** A merge patch setting the finalizers, refused (409) if the object changed since it was read. */
export function finalizersPatch(cr: CustomResource, finalizers: string[]): Record<string, unknown> {
  return { metadata: { finalizers, ...(cr.metadata.resourceVersion ? { resourceVersion: cr.metadata.resourceVersion } : {}) } };
}

