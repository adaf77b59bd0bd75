import { waitFor } from '../../src/dev/process.js';

/** Polls `check` until it holds (a readiness check, not a fixed wait); fails after `ms`, naming `what`. */
export function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<true> {
  return waitFor(async () => ((await check()) ? true : undefined), { timeoutMs: ms, intervalMs: 50, what, onTimeout: (w) => new Error(`${w}: not within ${ms} ms`) });
}
