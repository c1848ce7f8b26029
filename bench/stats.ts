/** Summaries of timing samples. */

export interface Summary {
  /** Number of samples. */
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** The nearest-rank percentile of ascending `sorted` (p in 0..100); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

const round = (x: number, digits: number): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/**
 * p50, p99 (nearest rank: with fewer than 100 samples p99 is the maximum),
 * max and mean, rounded to `digits` decimals.
 */
export function summarize(samples: readonly number[], digits = 1): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.length === 0 ? Number.NaN : sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50), digits),
    p99: round(percentile(sorted, 99), digits),
    max: round(sorted.at(-1) ?? Number.NaN, digits),
    mean: round(mean, digits),
  };
}

/**
 * A fixed-size latency histogram for long runs (the soak sends hundreds of
 * thousands of requests): 0.1 ms buckets up to 10 s, then one overflow bucket
 * that keeps the true maximum. Percentiles are bucket upper bounds.
 */
export class Histogram {
  private static readonly RESOLUTION_MS = 0.1;
  private static readonly BUCKETS = 100_000;
  private readonly counts = new Uint32Array(Histogram.BUCKETS + 1);
  private total = 0;
  private sum = 0;
  private maximum = 0;

  record(ms: number): void {
    const bucket = Math.min(Histogram.BUCKETS, Math.floor(ms / Histogram.RESOLUTION_MS));
    this.counts[bucket] = (this.counts[bucket] ?? 0) + 1;
    this.total++;
    this.sum += ms;
    if (ms > this.maximum) this.maximum = ms;
  }

  get count(): number {
    return this.total;
  }

  private quantile(p: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return i === Histogram.BUCKETS ? this.maximum : Math.min(this.maximum, (i + 1) * Histogram.RESOLUTION_MS);
    }
    return this.maximum;
  }

  summary(digits = 1): Summary {
    return {
      n: this.total,
      p50: round(this.quantile(50), digits),
      p99: round(this.quantile(99), digits),
      max: round(this.total === 0 ? Number.NaN : this.maximum, digits),
      mean: round(this.total === 0 ? Number.NaN : this.sum / this.total, digits),
    };
  }
}
