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
  RequestLatency: { kind: 'observation', unit: 'Milliseconds', labels: [], help: 'Time spent in the handler per request' },
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
  /** Called at the end of each invocation: write out what was buffered. */
  flush(): void;
}

/** Embedded metric format through Powertools; one document per flush, dimensions per series. */
export class EmfSink implements MetricsSink {
  private readonly emf = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE_DIMENSION.service });
  private pending = false;

  private add(name: MetricName, value: number, labels: Labels): void {
    const unit = METRICS[name].unit === 'Count' ? MetricUnit.Count : MetricUnit.Milliseconds;
    if (Object.keys(labels).length === 0) {
      this.emf.addMetric(name, unit, value);
      this.pending = true;
      return;
    }
    // A labelled series needs its own dimension set: single metrics are written at once.
    const single = this.emf.singleMetric();
    for (const [key, label] of Object.entries(labels)) single.addDimension(key, label);
    single.addMetric(name, unit, value);
  }

  count(name: CounterName, value: number, labels: Labels): void {
    this.add(name, value, labels);
  }

  observe(name: ObservationName, value: number, labels: Labels): void {
    this.add(name, value, labels);
  }

  flush(): void {
    if (!this.pending) return;
    this.pending = false;
    this.emf.publishStoredMetrics();
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
  flush(): void {
    sink().flush();
  },
};

/** `2xx`, `4xx`, `5xx` — status classes keep the series few. */
export const statusClass = (status: number): string => `${Math.floor(status / 100)}xx`;

/** The counter of every request the HTTP and WebSocket wrappers answer (functions/core/observe.ts). */
export const REQUESTS_METRIC = 'Requests' satisfies CounterName;

/** The labels of one `Requests` count: its status class. The WebSocket 5xx alarm watches `requestLabels(500)`. */
export const requestLabels = (status: number): Labels => ({ [METRICS[REQUESTS_METRIC].labels[0]]: statusClass(status) });
