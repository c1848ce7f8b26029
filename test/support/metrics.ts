/** Reading Prometheus exposition text (`GET /metrics`) in tests. */

export type Samples = Map<string, number>;

/** `name{a="x",b="y"} 3` → key `name{a="x",b="y"}`; labels as Prometheus prints them (sorted by declaration). */
export function parseSamples(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** How much the sample `key` moved from `before` to `after` (a missing sample counts as 0). */
export const delta = (after: Samples, before: Samples, key: string): number => (after.get(key) ?? 0) - (before.get(key) ?? 0);
