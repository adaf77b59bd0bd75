import v8 from 'node:v8';

let tuned = false;

/**
 * Turns V8's allocation-site pretenuring off for this process: the gateway's. V8 moves an object
 * literal's allocation site to the old generation once it sees most of a scavenge's sample of its
 * objects survive; a proxy's request-scoped objects (the access-log entry, the body's chunks, the
 * handler's state) can look that way when a scavenge lands while many requests are in flight, and
 * from then on every request's objects are made in the old generation and die there, so mark-compact
 * collections come every few seconds. In bench/gateway that state set in some runs and not others:
 * with it, the gateway's GC pauses added up to 0.9 s in 10 s at saturation, the longest 13–16 ms,
 * and its p99 overhead at a quarter of that rate was +4 to +11 ms; with pretenuring off, 0.16 s,
 * the longest 3–7 ms, and +1.8 to +1.9 ms. Called before the server starts; once per process.
 */
export function tuneHeapForRequests(): void {
  if (tuned) return;
  tuned = true;
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
}
