import { LiveSession } from '../../commands/session.js';
import { UsageError } from '../../errors.js';
import { TARGETS, type TargetName } from '../../model/resource.js';
import type { Io } from '../io.js';

/** `--target kubernetes,postgres` -> the selected targets (all by default). */
export function parseTargets(list: string | undefined): TargetName[] {
  if (!list) return [...TARGETS];
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!TARGETS.includes(n as TargetName)) throw new UsageError(`unknown target ${JSON.stringify(n)}`, { hint: `targets: ${TARGETS.join(', ')}` });
  }
  return names as TargetName[];
}

export function liveSession(io: Io, opts: { target?: string | undefined; context?: string | undefined; debug?: boolean | undefined }): LiveSession {
  return new LiveSession(io.env, parseTargets(opts.target), {
    context: opts.context,
    debug: opts.debug ? (line) => io.err(`debug: ${line}\n`) : undefined,
  });
}
