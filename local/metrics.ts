/**
 * The local runtime's metrics: the core's catalogue (functions/core/metrics.ts)
 * as a Prometheus registry (prom-client), served at `GET /metrics` on loopback,
 * and a one-line summary for `--verbose`.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { METRICS, type CounterName, type Labels, type MetricName, type MetricsSink, type ObservationName } from '../functions/core/metrics.ts';

/** Prometheus name of a catalogue metric: `roster_keepalive_failures_total`, `roster_sweep_duration_ms`. */
export function prometheusName(name: MetricName): string {
  const snake = name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
  return METRICS[name].kind === 'counter' ? `roster_${snake}_total` : `roster_${snake}_ms`;
}

/** Which of API Gateway's faces a request came through. */
export type GatewayApi = 'http' | 'websocket' | 'connections';

/**
 * API Gateway's own count of what it served, as its `Count` metric per API and
 * route would show it on AWS: every HTTP request, every WebSocket `$connect`,
 * message and `$disconnect`, every `@connections` call, by route key and the
 * status it got (429s from the throttles included). Not in the core's
 * catalogue: no handler sees a throttled request or a post.
 */
export type GatewayCount = (api: GatewayApi, route: string, status: number) => void;

/** Prometheus name of the gateway's counter. */
export const GATEWAY_REQUESTS = 'roster_gateway_requests_total';

/** Latency buckets in milliseconds: from a fast local call to a slow sweep. */
const BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export class PrometheusSink implements MetricsSink {
  readonly registry = new Registry();
  private readonly counters = new Map<MetricName, Counter>();
  private readonly histograms = new Map<MetricName, Histogram>();
  private readonly gateway = new Counter({
    name: GATEWAY_REQUESTS,
    help: 'Requests API Gateway served, by API (http, websocket, connections), route key and status',
    labelNames: ['api', 'route', 'status'],
    registers: [this.registry],
  });
  /** Counts one request the gateway served (`GatewayCount`). */
  readonly countRequest: GatewayCount = (api, route, status) => this.gateway.inc({ api, route, status: String(status) });

  constructor() {
    for (const [name, spec] of Object.entries(METRICS) as [MetricName, (typeof METRICS)[MetricName]][]) {
      const common = { name: prometheusName(name), help: spec.help, labelNames: [...spec.labels], registers: [this.registry] };
      if (spec.kind === 'counter') this.counters.set(name, new Counter(common));
      else this.histograms.set(name, new Histogram({ ...common, buckets: BUCKETS_MS }));
    }
  }

  count(name: CounterName, value: number, labels: Labels): void {
    this.counters.get(name)?.inc(labels, value);
  }

  observe(name: ObservationName, value: number, labels: Labels): void {
    this.histograms.get(name)?.observe(labels, value);
  }

  flush(): void {
    // Prometheus pulls; nothing to push.
  }

  /** The exposition text for `GET /metrics`. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Totals of every counter (all labels summed), for the `--verbose` summary line. */
  async totals(): Promise<Partial<Record<CounterName, number>>> {
    const totals: Partial<Record<CounterName, number>> = {};
    for (const [name, counter] of this.counters) {
      const { values } = await counter.get();
      totals[name as CounterName] = values.reduce((sum, v) => sum + v.value, 0);
    }
    return totals;
  }
}

/** One line for the `--verbose` minute summary: the counters that moved since the last one. */
export function summaryLine(now: Partial<Record<CounterName, number>>, before: Partial<Record<CounterName, number>>): string {
  const parts = Object.entries(now)
    .map(([name, value]) => [name, (value ?? 0) - (before[name as CounterName] ?? 0)] as const)
    .filter(([, delta]) => delta > 0)
    .map(([name, delta]) => `${name}=${delta}`);
  return `metrics (last minute): ${parts.length > 0 ? parts.join(' ') : 'no activity'}`;
}

/** How often `--verbose` prints the summary line. */
const SUMMARY_INTERVAL_MS = 60_000;

/**
 * One line a minute on stdout (`--verbose`): what moved, for someone watching
 * a terminal rather than a dashboard. Returns the function that stops it.
 */
export async function startSummary(sink: PrometheusSink, write: (line: string) => void): Promise<() => void> {
  let before = await sink.totals();
  const timer = setInterval(() => {
    void sink.totals().then((now) => {
      write(summaryLine(now, before));
      before = now;
    });
  }, SUMMARY_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
