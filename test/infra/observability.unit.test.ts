/**
 * The alarms and the dashboard, on the synthesized template: each alarm
 * watches the metric it is about, and an SNS topic (the stack's own, or one
 * given by ARN) receives every one of them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Match } from 'aws-cdk-lib/assertions';
import { METRICS, METRICS_NAMESPACE, METRICS_SERVICE_DIMENSION, requestLabels, REQUESTS_METRIC } from '../../functions/core/metrics.ts';
import { removeAssemblies, resourcesOfType, synthRoster, type TemplateResource } from './support.ts';

const s = synthRoster();
afterAll(removeAssemblies);

type AlarmProps = Record<string, unknown> & {
  AlarmName: string;
  AlarmDescription: string;
  Metrics?: { Id: string; Expression?: string; MetricStat?: { Metric: { MetricName: string; Namespace: string; Dimensions?: { Name: string; Value: unknown }[] }; Stat: string } }[];
};

const alarms = (): [string, AlarmProps][] =>
  resourcesOfType(s.json, 'AWS::CloudWatch::Alarm').map(([id, r]: [string, TemplateResource]) => [id, r.Properties as AlarmProps]);
const alarm = (fragment: string): AlarmProps => {
  const found = alarms().filter(([id]) => id.includes(fragment));
  expect(found, fragment).toHaveLength(1);
  return (found[0] as [string, AlarmProps])[1];
};

describe('alarms', () => {
  it('exist for exactly the seven conditions an operator must hear about', () => {
    const ids = alarms().map(([id]) => id.replace(/^Observability/, '').replace(/[0-9A-F]{8}$/, ''));
    expect(ids.sort()).toEqual(['FanoutErrors', 'FanoutFailureQueueNotEmpty', 'HttpApi5xx', 'SelfPreservationHolding', 'StreamIteratorAge', 'SweeperNotRunning', 'WebSocketApi5xx']);
  });

  it('are named after the stack, so two stacks in one account are told apart', () => {
    const names = (x: typeof s) => resourcesOfType(x.json, 'AWS::CloudWatch::Alarm').map(([, r]) => String(r.Properties?.AlarmName)).sort();
    expect(names(s)).toEqual(alarms().map(([id]) => `Roster-${id.replace(/^Observability/, '').replace(/[0-9A-F]{8}$/, '')}`).sort());
    const other = synthRoster({ stackName: 'Roster-test-1' });
    expect(names(other)).toEqual(names(s).map((n) => n.replace(/^Roster-/, 'Roster-test-1-')));
  });

  it('fire when the on-failure queue holds a message', () => {
    expect(alarm('FanoutFailureQueueNotEmpty')).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [s.logicalId(s.stack.fanout.failures), 'QueueName'] } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
    });
  });

  it('fire on fan-out function errors plus records reported for retry', () => {
    const a = alarm('FanoutErrors');
    // FanoutFailures has no data point while nothing fails: FILL keeps the sum from going missing.
    expect(a.Metrics?.find((m) => m.Expression)?.Expression).toBe('FILL(errors, 0) + FILL(failures, 0)');
    const names = a.Metrics?.flatMap((m) => (m.MetricStat ? [`${m.MetricStat.Metric.Namespace}/${m.MetricStat.Metric.MetricName}`] : []));
    expect(names?.sort()).toEqual(['AWS/Lambda/Errors', `${METRICS_NAMESPACE}/FanoutFailures`]);
  });

  it('fire when the fan-out falls a minute behind the stream', () => {
    expect(alarm('StreamIteratorAge')).toMatchObject({
      MetricName: 'IteratorAge',
      Namespace: 'AWS/Lambda',
      Statistic: 'Maximum',
      Threshold: 60_000,
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: s.logicalId(s.stack.fanout.function) } }],
    });
  });

  it('fire when no sweep was recorded for two minutes, missing data counting as not running', () => {
    expect(alarm('SweeperNotRunning')).toMatchObject({
      MetricName: 'SweepDuration',
      Namespace: METRICS_NAMESPACE,
      Statistic: 'SampleCount',
      Dimensions: [{ Name: 'service', Value: 'roster' }],
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      EvaluationPeriods: 2,
      Period: 60,
      TreatMissingData: 'breaching',
    });
    expect(METRICS.SweepDuration.kind).toBe('observation');
  });

  it('fire while the sweeper holds a mass lapse (self-preservation), and turn OK once no node is held', () => {
    expect(alarm('SelfPreservationHolding')).toMatchObject({
      MetricName: 'NodesHeld',
      Namespace: METRICS_NAMESPACE,
      Statistic: 'Sum',
      Dimensions: [{ Name: 'service', Value: 'roster' }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      Period: 60,
      TreatMissingData: 'notBreaching',
    });
    expect(METRICS.NodesHeld.kind).toBe('counter');
  });

  it('fire on 5xx of the HTTP API, and on server-side errors of the WebSocket API only — never on a client\'s 4xx', () => {
    expect(alarm('HttpApi5xx')).toMatchObject({ MetricName: '5xx', Namespace: 'AWS/ApiGateway', Threshold: 0 });
    const ws = alarm('WebSocketApi5xx');
    const stats = ws.Metrics?.flatMap((m) => (m.MetricStat ? [m.MetricStat] : [])) ?? [];
    // IntegrationError counts the functions' 4xx answers too (a refused token, an unknown action): not in the alarm.
    expect(stats.map((m) => `${m.Metric.Namespace}/${m.Metric.MetricName}`).sort()).toEqual([
      'AWS/ApiGateway/ExecutionError',
      ...Array<string>(s.stack.webSocket.handlers.size).fill('AWS/Lambda/Errors'),
      `${METRICS_NAMESPACE}/${REQUESTS_METRIC}`,
    ]);
    const functionsWatched = stats
      .filter((m) => m.Metric.MetricName === 'Errors')
      .map((m) => JSON.stringify((m.Metric.Dimensions as unknown as { Value: unknown }[])[0]?.Value));
    expect(functionsWatched.sort()).toEqual([...s.stack.webSocket.handlers.values()].map((fn) => JSON.stringify({ Ref: s.logicalId(fn) })).sort());
    const expression = ws.Metrics?.find((m) => m.Expression)?.Expression ?? '';
    expect(expression.split(' + ')).toHaveLength(stats.length);
    expect(expression.split(' + ').every((term) => /^FILL\(\w+, 0\)$/.test(term))).toBe(true);
  });

  it('fire on the 5xx a WebSocket handler answers itself: the series the request wrapper emits (test/observability/metrics.test.ts)', () => {
    const handled = alarm('WebSocketApi5xx').Metrics?.find((m) => m.MetricStat?.Metric.MetricName === REQUESTS_METRIC)?.MetricStat;
    // Namespace, name and dimensions as the handler writes them in EMF: the constants its wrapper uses.
    const dimensions = Object.entries({ ...METRICS_SERVICE_DIMENSION, ...requestLabels(500) }).map(([Name, Value]) => ({ Name, Value }));
    expect(handled?.Metric.Namespace).toBe(METRICS_NAMESPACE);
    expect([...(handled?.Metric.Dimensions ?? [])].sort((a, b) => a.Name.localeCompare(b.Name))).toEqual(dimensions.sort((a, b) => a.Name.localeCompare(b.Name)));
    expect(handled?.Stat).toBe('Sum');
  });

  it('notify the stack\'s own SNS topic on ALARM and OK by default, whose ARN is an output', () => {
    const [[topicId]] = resourcesOfType(s.json, 'AWS::SNS::Topic') as [[string, TemplateResource]];
    expect(alarms()).toHaveLength(7);
    for (const [, a] of alarms()) expect(a).toMatchObject({ AlarmActions: [{ Ref: topicId }], OKActions: [{ Ref: topicId }] });
    expect(s.json.Outputs?.AlarmTopicArn?.Value).toEqual({ Ref: topicId });
    // Only TLS publishers (cdk-nag SNS3).
    s.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('notify an existing topic instead, given its ARN (-c alarmTopicArn=), and create none', () => {
    const topicArn = 'arn:aws:sns:us-east-1:123456789012:roster-alarms';
    const withTopic = synthRoster({ alarmTopicArn: topicArn });
    expect(resourcesOfType(withTopic.json, 'AWS::SNS::Topic')).toHaveLength(0);
    const all = resourcesOfType(withTopic.json, 'AWS::CloudWatch::Alarm');
    expect(all).toHaveLength(7);
    for (const [, a] of all) expect(a.Properties).toMatchObject({ AlarmActions: [topicArn], OKActions: [topicArn] });
    expect(withTopic.json.Outputs?.AlarmTopicArn?.Value).toBe(topicArn);
    expect(() => synthRoster({ alarmTopicArn: 'roster-alarms' })).toThrow(/alarmTopicArn/);
  });
});

describe('dashboard', () => {
  it('is one dashboard showing the alarms and the headline metrics', () => {
    s.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const [[, dashboard]] = resourcesOfType(s.json, 'AWS::CloudWatch::Dashboard') as [[string, TemplateResource]];
    const body = JSON.stringify(dashboard.Properties?.DashboardBody);
    for (const name of ['Keepalives', 'KeepaliveFailures', 'NodesDown', 'EventsFannedOut', 'FanoutFailures', 'StreamBatchAge', 'SweepDuration', 'AuthorizerDenials']) {
      expect(body, name).toContain(name);
    }
    expect(body).toContain('alarm');
    s.template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: Match.anyValue() });
  });
});
