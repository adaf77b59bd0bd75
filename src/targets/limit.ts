/**
 * `Promise.all(items.map(fn))` with at most `limit` calls of `fn` running at once: results in the
 * order of `items`. The first rejection rejects the whole (as Promise.all does); calls not yet
 * started then never start.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** How many realms (or namespaces) a target reads at once. */
export const READ_CONCURRENCY = 8;
