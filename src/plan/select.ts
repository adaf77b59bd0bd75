import type { DesiredState } from '../compile/desired.js';
import { resourceKey, TARGETS, type TargetName } from '../model/resource.js';

/**
 * The desired state limited to some targets (`--target`). Resources that depend on an excluded
 * target's resources are left out too (the OIDC Secret needs Keycloak's client secrets).
 */
export function selectTargets(desired: DesiredState, targets: readonly TargetName[]): DesiredState {
  const keep = new Set(targets);
  // All of them (the default): nothing to leave out, and no copy of every resource.
  if (TARGETS.every((t) => keep.has(t))) return desired;
  const kept = new Set<string>();
  const ignored: string[] = [...(desired.ignored ?? [])];
  const resources = desired.resources.filter((r) => {
    if (!keep.has(r.target)) return false;
    if (r.dependsOn.some((d) => !keep.has(d.slice(0, d.indexOf(':')) as TargetName))) {
      ignored.push(resourceKey(r));
      return false;
    }
    kept.add(resourceKey(r));
    return true;
  });
  return {
    ...desired,
    resources: resources.map((r) => ({ ...r, dependsOn: r.dependsOn.filter((d) => kept.has(d) || keep.has(d.slice(0, d.indexOf(':')) as TargetName)) })),
    ...(ignored.length ? { ignored } : {}),
  };
}
