/**
 * Alarms and one dashboard for the information center itself: an operator
 * should learn that Roster is unhealthy before a wrong NODE_DOWN reaches a
 * cluster. Custom metrics come from functions/core/metrics.ts (embedded metric
 * format, namespace `Roster`, dimension `service=roster`).
 */
import { Duration } from 'aws-cdk-lib';
import type { HttpApi, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS, METRICS_NAMESPACE, type MetricName } from '../functions/core/metrics.ts';

export interface ObservabilityProps {
  httpApi: HttpApi;
  webSocketApi: WebSocketApi;
  webSocketStage: WebSocketStage;
  fanout: IFunction;
  sweeper: IFunction;
  fanoutFailures: IQueue;
  /** Alarm (and OK) notifications go here when given. */
  alarmTopic?: ITopic;
  /** Stream iterator age that counts as "the fan-out is falling behind". @default 60 seconds */
  iteratorAgeThreshold?: Duration;
}

/** Powertools Metrics adds `service` to every metric; labelled metrics add their label. */
const SERVICE = { service: 'roster' };

export function rosterMetric(name: MetricName, options: { statistic?: string; period?: Duration; label?: string; dimensions?: Record<string, string> } = {}): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: { ...SERVICE, ...options.dimensions },
    statistic: options.statistic ?? (METRICS[name].kind === 'counter' ? 'Sum' : 'p99'),
    period: options.period ?? Duration.minutes(1),
    label: options.label,
  });
}

/** Every series of a labelled metric, whatever its label values. */
function searchAll(name: MetricName, label: string, statistic: string): MathExpression {
  return new MathExpression({
    expression: `SEARCH('{${METRICS_NAMESPACE},${label},service} MetricName="${name}"', '${statistic}', 60)`,
    usingMetrics: {},
    label: name,
    period: Duration.minutes(1),
  });
}

export class RosterObservability extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const minute = Duration.minutes(1);
    const alarm = (alarmId: string, description: string, metric: IMetric, extra: { threshold?: number; evaluationPeriods?: number; comparison?: ComparisonOperator; missing?: TreatMissingData } = {}) => {
      const created = new Alarm(this, alarmId, {
        alarmDescription: description,
        metric,
        threshold: extra.threshold ?? 0,
        evaluationPeriods: extra.evaluationPeriods ?? 1,
        comparisonOperator: extra.comparison ?? ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: extra.missing ?? TreatMissingData.NOT_BREACHING,
      });
      if (props.alarmTopic) {
        created.addAlarmAction(new SnsAction(props.alarmTopic));
        created.addOkAction(new SnsAction(props.alarmTopic));
      }
      this.alarms.push(created);
      return created;
    };

    alarm(
      'FanoutFailureQueueNotEmpty',
      'Membership events could not be delivered after all retries and were sent to the on-failure queue. Subscribers recover by resyncing, but inspect the queue.',
      props.fanoutFailures.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }),
    );
    alarm(
      'FanoutErrors',
      'The stream fan-out failed (function errors or records reported for retry): events reach subscribers late.',
      new MathExpression({
        expression: 'errors + failures',
        usingMetrics: {
          errors: props.fanout.metricErrors({ period: minute, statistic: 'Sum' }),
          failures: rosterMetric('FanoutFailures'),
        },
        label: 'fan-out errors',
        period: minute,
      }),
    );
    const iteratorAge = props.iteratorAgeThreshold ?? Duration.seconds(60);
    alarm(
      'StreamIteratorAge',
      `The fan-out is more than ${iteratorAge.toSeconds()} s behind the table's stream: events are late.`,
      props.fanout.metric('IteratorAge', { period: minute, statistic: 'Maximum' }),
      { threshold: iteratorAge.toMilliseconds() },
    );
    alarm(
      'SweeperNotRunning',
      'No sweep completed for two minutes: expired nodes are not being declared DOWN.',
      rosterMetric('SweepDuration', { statistic: 'SampleCount' }),
      { threshold: 1, evaluationPeriods: 2, comparison: ComparisonOperator.LESS_THAN_THRESHOLD, missing: TreatMissingData.BREACHING },
    );
    alarm('HttpApi5xx', 'The HTTP API answered 5xx: an internal error or an integration failure.', props.httpApi.metricServerError({ period: minute, statistic: 'Sum' }));
    alarm(
      'WebSocketApi5xx',
      'The WebSocket API had execution or integration errors.',
      new MathExpression({
        expression: 'execution + integration',
        usingMetrics: {
          execution: this.webSocketMetric(props, 'ExecutionError'),
          integration: this.webSocketMetric(props, 'IntegrationError'),
        },
        label: 'WebSocket errors',
        period: minute,
      }),
    );

    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'Roster alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      new SingleValueWidget({
        title: 'Last hour',
        width: 24,
        metrics: [
          rosterMetric('Registrations', { period: Duration.hours(1), label: 'registrations' }),
          rosterMetric('Keepalives', { period: Duration.hours(1), label: 'keepalives' }),
          rosterMetric('EventsFannedOut', { period: Duration.hours(1), label: 'events delivered' }),
          rosterMetric('GoneConnections', { period: Duration.hours(1), label: '410 clean-ups' }),
          rosterMetric('NodesSwept', { period: Duration.hours(1), label: 'nodes swept' }),
        ],
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Keepalives and failures', width: 12, left: [rosterMetric('Keepalives')], right: [searchAll('KeepaliveFailures', 'code', 'Sum')] }),
      new GraphWidget({ title: 'Nodes down, by reason', width: 12, left: [searchAll('NodesDown', 'reason', 'Sum')], right: [rosterMetric('LeasesExtended')] }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Fan-out',
        width: 12,
        left: [rosterMetric('EventsFannedOut'), rosterMetric('FanoutFailures'), rosterMetric('GoneConnections')],
        right: [rosterMetric('StreamBatchAge', { statistic: 'Maximum' }), props.fanout.metric('IteratorAge', { statistic: 'Maximum', period: minute })],
      }),
      new GraphWidget({
        title: 'Sweeper',
        width: 12,
        left: [rosterMetric('SweepDuration', { statistic: 'p99' }), rosterMetric('SweepDuration', { statistic: 'Maximum' })],
        right: [rosterMetric('SweepDuration', { statistic: 'SampleCount', label: 'sweeps' }), rosterMetric('NodesSwept')],
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'HTTP API',
        width: 12,
        left: [props.httpApi.metricCount({ period: minute }), props.httpApi.metricClientError({ period: minute }), props.httpApi.metricServerError({ period: minute })],
        right: [props.httpApi.metricLatency({ period: minute, statistic: 'p99' })],
      }),
      new GraphWidget({
        title: 'WebSocket API and authorization',
        width: 12,
        left: [this.webSocketMetric(props, 'ConnectCount'), this.webSocketMetric(props, 'MessageCount')],
        right: [searchAll('AuthorizerDenials', 'code', 'Sum')],
      }),
    );
  }

  private webSocketMetric(props: ObservabilityProps, name: string): Metric {
    return new Metric({
      namespace: 'AWS/ApiGateway',
      metricName: name,
      dimensionsMap: { ApiId: props.webSocketApi.apiId, Stage: props.webSocketStage.stageName },
      statistic: 'Sum',
      period: Duration.minutes(1),
    });
  }
}
