/**
 * Operational metrics, defined once.
 *
 * `METRICS` is the catalogue: every metric's name, kind, unit, labels and
 * meaning. The core records through the `metrics` facade; where the numbers
 * go depends on where the code runs:
 * - on Lambda, CloudWatch embedded metric format (Powertools Metrics): one
 *   JSON document per flush on stdout, which CloudWatch turns into metrics
 *   without any API call;
 * - in the local runtime, a Prometheus registry it serves at `GET /metrics`
 *   (each runtime passes its own sink in its scope: functions/core/scope.ts);
 * - anywhere else (tests, tools), nowhere.
 * The CDK stack builds its alarms and dashboard from the same catalogue.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { perScope } from './scope.ts';

export type MetricKind = 'counter' | 'observation';

export interface MetricSpec {
  kind: MetricKind;
  unit: 'Count' | 'Milliseconds';
  /** Label (CloudWatch dimension) names; at most one, so each series is cheap. */
  labels: readonly string[];
  help: string;
}

export const METRICS = {
  Registrations: { kind: 'counter', unit: 'Count', labels: ['event'], help: 'Successful registrations, by the event they produced (NODE_REGISTERED, NODE_UPDATED, none)' },
  Keepalives: { kind: 'counter', unit: 'Count', labels: [], help: 'Successful keepalives' },
  KeepaliveFailures: { kind: 'counter', unit: 'Count', labels: ['code'], help: 'Refused keepalives, by error code' },
  NodesDown: { kind: 'counter', unit: 'Count', labels: ['reason'], help: 'Nodes marked DOWN, by reason (expired, disconnected, deregistered)' },
  LeasesExtended: { kind: 'counter', unit: 'Count', labels: [], help: 'Expired nodes given one more lease by self-preservation' },
  NodesHeld: { kind: 'counter', unit: 'Count', labels: [], help: 'Lapsed nodes held by the renewal threshold (a mass lapse): extended, not declared down' },
  EventsFannedOut: { kind: 'counter', unit: 'Count', labels: [], help: 'Event messages delivered to WebSocket subscribers' },
  FanoutFailures: { kind: 'counter', unit: 'Count', labels: [], help: 'Stream records reported as batch item failures (retried)' },
  GoneConnections: { kind: 'counter', unit: 'Count', labels: [], help: 'Subscribers that answered 410 Gone (removed, unless still connecting)' },
  PostsThrottled: { kind: 'counter', unit: 'Count', labels: [], help: 'Posts to @connections answered 429 (the account request quota), each retried after a backoff' },
  StreamBatchAge: { kind: 'observation', unit: 'Milliseconds', labels: [], help: 'Age of the oldest record of each fan-out batch (iterator age)' },
  SweepDuration: { kind: 'observation', unit: 'Milliseconds', labels: [], help: 'Duration of each completed sweep' },
  NodesSwept: { kind: 'counter', unit: 'Count', labels: [], help: 'Expired nodes the sweeper acted on (marked DOWN or extended)' },
  ClustersRemoved: { kind: 'counter', unit: 'Count', labels: [], help: 'Clusters with no node left that the sweeper removed from the cluster list' },
  AuthorizerDenials: { kind: 'counter', unit: 'Count', labels: ['code'], help: 'Requests denied by authorization, by error code' },
  Requests: { kind: 'counter', unit: 'Count', labels: ['status'], help: 'HTTP and WebSocket requests, by status class (2xx, 4xx, 5xx)' },
  RequestLatency: { kind: 'observation', unit: 'Milliseconds', labels: [], help: 'Time spent in the handler per request (not observed for routine successes: a keepalive or ping answered 200, a list answered 304)' },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;
export type CounterName = { [K in MetricName]: (typeof METRICS)[K]['kind'] extends 'counter' ? K : never }[MetricName];
export type ObservationName = Exclude<MetricName, CounterName>;
export type Labels = Record<string, string>;

/** CloudWatch namespace of every Roster metric. */
export const METRICS_NAMESPACE = 'Roster';

/**
 * The dimension every Roster metric carries on CloudWatch: Powertools Metrics
 * writes its `serviceName` as the dimension `service`. Alarms name it too, so
 * it is written once, here.
 */
export const METRICS_SERVICE_DIMENSION = { service: 'roster' } as const;

export interface MetricsSink {
  count(name: CounterName, value: number, labels: Labels): void;
  observe(name: ObservationName, value: number, labels: Labels): void;
  /**
   * Called at the end of each invocation: write out what was buffered. A
   * `routine` invocation (functions/core/observe.ts `isRoutine`) lets a sink
   * that writes per invocation hold its counts for a later one.
   */
  flush(options?: { routine?: boolean }): void;
}

/**
 * How long the EMF sink may hold the counts of routine invocations. A
 * keepalive is one every 20 s from every node; one metric document per
 * keepalive (two, with `Requests` by status) would be 131 million documents a
 * month for 1,000 nodes, as many bytes as the rest of their logs together, and
 * kept a year (docs/operating/cost.md). Held for a minute they are one or two
 * documents a minute per warm environment, each with the sum.
 */
export const ROUTINE_PUBLISH_EVERY_MS = 60_000;

interface Series {
  name: MetricName;
  labels: Labels;
  values: number[];
}

/**
 * Embedded metric format through Powertools: one document per dimension set
 * and publish. Counters are summed until published; a series with labels gets
 * its own document (its own dimension set).
 *
 * Published at the end of every invocation, except a routine one, whose
 * counts wait until `ROUTINE_PUBLISH_EVERY_MS` has passed since the last
 * publish, or until an invocation that is not routine. What an environment
 * held when Lambda retires it is lost: at most a minute of its routine counts
 * (`Keepalives`, `Requests` with status 2xx); API Gateway's own `Count` per
 * API is exact. The documents carry the time they are written, so held counts
 * land up to a minute late.
 */
export class EmfSink implements MetricsSink {
  private readonly emf = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE_DIMENSION.service });
  private readonly held = new Map<string, Series>();
  private lastPublish: number;

  constructor(private readonly now: () => number = Date.now) {
    this.lastPublish = now();
  }

  private hold(name: MetricName, value: number, labels: Labels): void {
    const key = JSON.stringify([name, Object.entries(labels).sort()]);
    const series = this.held.get(key) ?? { name, labels, values: [] };
    if (METRICS[name].kind === 'counter') series.values = [(series.values[0] ?? 0) + value];
    else series.values.push(value);
    this.held.set(key, series);
  }

  count(name: CounterName, value: number, labels: Labels): void {
    this.hold(name, value, labels);
  }

  observe(name: ObservationName, value: number, labels: Labels): void {
    this.hold(name, value, labels);
  }

  flush(options: { routine?: boolean } = {}): void {
    if (this.held.size === 0) return;
    if (options.routine && this.now() - this.lastPublish < ROUTINE_PUBLISH_EVERY_MS) return;
    let stored = false;
    for (const { name, labels, values } of this.held.values()) {
      const unit = METRICS[name].unit === 'Count' ? MetricUnit.Count : MetricUnit.Milliseconds;
      if (Object.keys(labels).length === 0) {
        for (const value of values) this.emf.addMetric(name, unit, value);
        stored = true;
        continue;
      }
      // A labelled series needs its own dimension set: a document of its own.
      const single = this.emf.singleMetric();
      for (const [key, label] of Object.entries(labels)) single.addDimension(key, label);
      for (const value of values) single.addMetric(name, unit, value);
    }
    this.held.clear();
    this.lastPublish = this.now();
    if (stored) this.emf.publishStoredMetrics();
  }
}

/** Metrics that go nowhere (`roster serve --no-metrics`, tests, tools). */
export const NO_METRICS: MetricsSink = { count() {}, observe() {}, flush() {} };

/** The scope's sink: the one it was given, else EMF on Lambda, else none. */
const sink = perScope((scope) => scope.metrics ?? (scope.env.AWS_LAMBDA_FUNCTION_NAME ? new EmfSink() : NO_METRICS));

export const metrics = {
  count(name: CounterName, labels: Labels = {}, value = 1): void {
    sink().count(name, value, labels);
  },
  observe(name: ObservationName, value: number, labels: Labels = {}): void {
    sink().observe(name, value, labels);
  },
  /** The end of an invocation; a `routine` one (functions/core/observe.ts) may leave its counts for a later document. */
  flush(options: { routine?: boolean } = {}): void {
    sink().flush(options);
  },
};

/** `2xx`, `4xx`, `5xx` — status classes keep the series few. */
export const statusClass = (status: number): string => `${Math.floor(status / 100)}xx`;

/** The counter of every request the HTTP and WebSocket wrappers answer (functions/core/observe.ts). */
export const REQUESTS_METRIC = 'Requests' satisfies CounterName;

/** The labels of one `Requests` count: its status class. The WebSocket 5xx alarm watches `requestLabels(500)`. */
export const requestLabels = (status: number): Labels => ({ [METRICS[REQUESTS_METRIC].labels[0]]: statusClass(status) });
