/**
 * Bounded concurrency, defined once: the fan-out posts to subscribers with
 * it, and the bench opens connections and registers nodes with it.
 */

/** Runs `fn` over `items` with at most `limit` calls in flight; the results keep the order of `items`. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  });
  await Promise.all(workers);
  return results;
}
