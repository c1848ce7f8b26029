/**
 * Alarms and one dashboard for the information center itself: an operator
 * should learn that Roster is unhealthy before a wrong NODE_DOWN reaches a
 * cluster. Every alarm notifies one SNS topic (ALARM and OK): the stack's
 * own, or one given with `-c alarmTopicArn=`. Custom metrics come from
 * functions/core/metrics.ts (embedded metric format, namespace `Roster`,
 * dimension `service=roster`).
 *
 * Each alarm is named `{stackName}-{id}`, so the alarms of two stacks in one
 * account are told apart, and the topic's policy can name exactly the alarms
 * that may publish to it.
 */
import { Aws, Duration, Stack, Validations } from 'aws-cdk-lib';
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
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic, type ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS, METRICS_NAMESPACE, METRICS_SERVICE_DIMENSION, requestLabels, REQUESTS_METRIC, type MetricName } from '../functions/core/metrics.ts';

export interface ObservabilityProps {
  httpApi: HttpApi;
  webSocketApi: WebSocketApi;
  webSocketStage: WebSocketStage;
  /** The functions behind the WebSocket routes: their failures are the WebSocket API's server errors. */
  webSocketFunctions: readonly IFunction[];
  fanout: IFunction;
  sweeper: IFunction;
  fanoutFailures: IQueue;
  /** Where ALARM and OK notifications go. @default a topic of this stack (subscribe to it after deploying) */
  alarmTopic?: ITopic;
  /** Stream iterator age that counts as "the fan-out is falling behind". @default 60 seconds */
  iteratorAgeThreshold?: Duration;
}

/** The service principal CloudWatch alarms publish to SNS as. */
export const CLOUDWATCH_ALARMS_PRINCIPAL = 'cloudwatch.amazonaws.com';

/** Powertools Metrics adds `service` to every metric; labelled metrics add their label. */
const SERVICE = METRICS_SERVICE_DIMENSION;

/** The answers with a server error the request wrappers (functions/core/observe.ts) count: `Requests` with `status=5xx`. */
export const HANDLER_5XX = { name: REQUESTS_METRIC, dimensions: requestLabels(500) } as const;

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
  /** Every alarm's ALARM and OK notifications go here. */
  readonly alarmTopic: ITopic;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    this.alarmTopic = props.alarmTopic ?? this.createAlarmTopic();
    this.createAlarms(props);
    // A topic given by ARN keeps its own policy, which this stack cannot change: docs/operating/deploy.md says what it must allow.
    if (this.alarmTopic instanceof Topic) this.allowAlarmsToPublish(this.alarmTopic);
    // After the alarms: the dashboard's first row shows their states.
    this.dashboard = this.createDashboard(props);
  }

  /** One alarm that notifies the topic on ALARM and OK; kept apart so every alarm is declared the same way. */
  private addAlarm(
    alarmId: string,
    description: string,
    metric: IMetric,
    extra: { threshold?: number; evaluationPeriods?: number; comparison?: ComparisonOperator; missing?: TreatMissingData } = {},
  ): Alarm {
    const created = new Alarm(this, alarmId, {
      alarmName: `${Stack.of(this).stackName}-${alarmId}`,
      alarmDescription: description,
      metric,
      threshold: extra.threshold ?? 0,
      evaluationPeriods: extra.evaluationPeriods ?? 1,
      comparisonOperator: extra.comparison ?? ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: extra.missing ?? TreatMissingData.NOT_BREACHING,
    });
    // An alarm nobody hears is no alarm (Control Tower's CT.CLOUDWATCH.PR.1 says so too).
    created.addAlarmAction(new SnsAction(this.alarmTopic));
    created.addOkAction(new SnsAction(this.alarmTopic));
    this.alarms.push(created);
    return created;
  }

  /** The alarms an operator is paged by: what they watch is the contract with the operator, the dashboard is not. */
  private createAlarms(props: ObservabilityProps): void {
    const minute = Duration.minutes(1);
    const alarm = this.addAlarm.bind(this);
    alarm(
      'FanoutFailureQueueNotEmpty',
      'Membership events could not be delivered after all retries and were sent to the on-failure queue. Subscribers recover by resyncing, but inspect the queue.',
      props.fanoutFailures.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }),
    );
    alarm(
      'FanoutErrors',
      'The stream fan-out failed (function errors or records reported for retry): events reach subscribers late.',
      new MathExpression({
        // FanoutFailures has no data point while nothing fails: without FILL the sum would be missing, not 0 + errors.
        expression: 'FILL(errors, 0) + FILL(failures, 0)',
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
    // API Gateway's 429s and a partition between the nodes and the information center reach no function: a held
    // mass lapse is how the sweeper sees them (functions/core/self-preservation.ts). OK once no node is held.
    alarm(
      'SelfPreservationHolding',
      'The sweeper is holding a mass lapse (self-preservation): many nodes stopped renewing at once and are kept UP, not declared ' +
        'DOWN, for at most selfPreservationMaxSeconds. Look for throttled keepalives (API Gateway 429s) or a network fault between the nodes and the stack.',
      rosterMetric('NodesHeld'),
    );
    alarm('HttpApi5xx', 'The HTTP API answered 5xx: an internal error or an integration failure.', props.httpApi.metricServerError({ period: minute, statistic: 'Sum' }));
    // API Gateway's IntegrationError counts the functions' 4xx answers too (every refused token, unknown action or
    // malformed message would page someone); a WebSocket API has no 5xx metric. Server-side failures are ExecutionError
    // ("errors that occurred when calling the integration"), the route functions' own errors, and the 5xx a handler
    // answers itself after catching an internal error (DynamoDB failing on subscribe): that raises neither of the
    // others, only the handlers' `Requests` count with `status=5xx`. That count has no API dimension, so a handled
    // 5xx of the HTTP API raises this alarm too, beside HttpApi5xx.
    const functionErrors = Object.fromEntries(props.webSocketFunctions.map((fn, i) => [`fn${i}`, fn.metricErrors({ period: minute, statistic: 'Sum' })]));
    alarm(
      'WebSocketApi5xx',
      'The WebSocket API could not call a route function, a route function failed (error, timeout, throttling), or a handler ' +
        'answered 5xx (Requests status=5xx, which counts the HTTP handlers too: with HttpApi5xx also in ALARM, look at the HTTP API first).',
      new MathExpression({
        expression: ['FILL(execution, 0)', 'FILL(handled, 0)', ...Object.keys(functionErrors).map((key) => `FILL(${key}, 0)`)].join(' + '),
        usingMetrics: {
          execution: this.webSocketMetric(props, 'ExecutionError'),
          handled: rosterMetric(HANDLER_5XX.name, { dimensions: HANDLER_5XX.dimensions }),
          ...functionErrors,
        },
        label: 'WebSocket server errors',
        period: minute,
      }),
    );
  }

  /** The dashboard: alarm states, then the last hour's totals, then one row per moving part. */
  private createDashboard(props: ObservabilityProps): Dashboard {
    const minute = Duration.minutes(1);
    const dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'Roster alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    dashboard.addWidgets(
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
    dashboard.addWidgets(
      new GraphWidget({ title: 'Keepalives and failures', width: 12, left: [rosterMetric('Keepalives')], right: [searchAll('KeepaliveFailures', 'code', 'Sum')] }),
      new GraphWidget({ title: 'Nodes down, by reason', width: 12, left: [searchAll('NodesDown', 'reason', 'Sum')], right: [rosterMetric('LeasesExtended')] }),
    );
    dashboard.addWidgets(
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
    dashboard.addWidgets(
      new GraphWidget({
        title: 'HTTP API',
        width: 12,
        left: [props.httpApi.metricCount({ period: minute }), props.httpApi.metricClientError({ period: minute }), props.httpApi.metricServerError({ period: minute })],
        right: [props.httpApi.metricLatency({ period: minute, statistic: 'p99' })],
      }),
      new GraphWidget({
        title: 'WebSocket API and authorization',
        width: 12,
        left: [this.webSocketMetric(props, 'ConnectCount'), this.webSocketMetric(props, 'MessageCount'), this.webSocketMetric(props, 'IntegrationError')],
        right: [searchAll('AuthorizerDenials', 'code', 'Sum'), rosterMetric(HANDLER_5XX.name, { dimensions: HANDLER_5XX.dimensions, label: 'handler 5xx (both APIs)' })],
      }),
    );
    return dashboard;
  }

  /** A topic for the alarms, for stacks deployed without `-c alarmTopicArn=`; its ARN is a stack output. */
  private createAlarmTopic(): Topic {
    // enforceSSL writes a topic policy, which replaces SNS's default one: its only statement is a Deny, so
    // allowAlarmsToPublish must add the Allow CloudWatch needs, or no alarm is ever delivered.
    const topic = new Topic(this, 'AlarmTopic', { displayName: 'Roster alarms', enforceSSL: true });
    Validations.of(topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'The topic carries alarm names and states, no membership data. CloudWatch can publish to an encrypted topic only with a ' +
        'customer-managed key whose policy lets cloudwatch.amazonaws.com use it; a key without that statement would drop every ' +
        'notification silently. Organisations that need it encrypted pass their own topic with -c alarmTopicArn=.',
    });
    return topic;
  }

  /**
   * CloudWatch publishes an alarm's notifications as the service principal
   * `cloudwatch.amazonaws.com`, which needs a topic policy that allows it
   * (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger). Only this
   * account's alarms of this stack, by ARN: `aws:SourceAccount` and `aws:SourceArn` keep another
   * account's alarm from using CloudWatch to publish here (the confused deputy).
   */
  private allowAlarmsToPublish(topic: Topic): void {
    topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowThisStacksAlarmsToPublish',
        principals: [new ServicePrincipal(CLOUDWATCH_ALARMS_PRINCIPAL)],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': this.alarms.map((a) => a.alarmArn) },
        },
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
