/**
 * The alarms and the dashboard, on the synthesized template: each alarm
 * watches the metric it is about, and the optional SNS topic receives them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Match } from 'aws-cdk-lib/assertions';
import { METRICS, METRICS_NAMESPACE } from '../../functions/core/metrics.ts';
import { removeAssemblies, resourcesOfType, synthRoster, type TemplateResource } from './support.ts';

const s = synthRoster();
afterAll(removeAssemblies);

type AlarmProps = Record<string, unknown> & { AlarmDescription: string; Metrics?: { Id: string; Expression?: string; MetricStat?: { Metric: { MetricName: string; Namespace: string; Dimensions?: { Name: string }[] }; Stat: string } }[] };

const alarms = (): [string, AlarmProps][] =>
  resourcesOfType(s.json, 'AWS::CloudWatch::Alarm').map(([id, r]: [string, TemplateResource]) => [id, r.Properties as AlarmProps]);
const alarm = (fragment: string): AlarmProps => {
  const found = alarms().filter(([id]) => id.includes(fragment));
  expect(found, fragment).toHaveLength(1);
  return (found[0] as [string, AlarmProps])[1];
};

describe('alarms', () => {
  it('exist for exactly the six conditions an operator must hear about', () => {
    const ids = alarms().map(([id]) => id.replace(/^Observability/, '').replace(/[0-9A-F]{8}$/, ''));
    expect(ids.sort()).toEqual(['FanoutErrors', 'FanoutFailureQueueNotEmpty', 'HttpApi5xx', 'StreamIteratorAge', 'SweeperNotRunning', 'WebSocketApi5xx']);
  });

  it('fire when the on-failure queue holds a message', () => {
    expect(alarm('FanoutFailureQueueNotEmpty')).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [s.logicalId(s.stack.fanoutFailures), 'QueueName'] } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
    });
  });

  it('fire on fan-out function errors plus records reported for retry', () => {
    const a = alarm('FanoutErrors');
    expect(a.Metrics?.find((m) => m.Expression)?.Expression).toBe('errors + failures');
    const names = a.Metrics?.flatMap((m) => (m.MetricStat ? [`${m.MetricStat.Metric.Namespace}/${m.MetricStat.Metric.MetricName}`] : []));
    expect(names?.sort()).toEqual(['AWS/Lambda/Errors', `${METRICS_NAMESPACE}/FanoutFailures`]);
  });

  it('fire when the fan-out falls a minute behind the stream', () => {
    expect(alarm('StreamIteratorAge')).toMatchObject({
      MetricName: 'IteratorAge',
      Namespace: 'AWS/Lambda',
      Statistic: 'Maximum',
      Threshold: 60_000,
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: s.logicalId(s.stack.fanout) } }],
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

  it('fire on 5xx of the HTTP API and on errors of the WebSocket API', () => {
    expect(alarm('HttpApi5xx')).toMatchObject({ MetricName: '5xx', Namespace: 'AWS/ApiGateway', Threshold: 0 });
    const ws = alarm('WebSocketApi5xx');
    const names = ws.Metrics?.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : []));
    expect(names?.sort()).toEqual(['ExecutionError', 'IntegrationError']);
  });

  it('have no actions unless an SNS topic is given; with one, every alarm notifies it on ALARM and OK', () => {
    for (const [, a] of alarms()) expect(a.AlarmActions).toBeUndefined();
    const topicArn = 'arn:aws:sns:us-east-1:123456789012:roster-alarms';
    const withTopic = synthRoster({ alarmTopicArn: topicArn });
    const all = resourcesOfType(withTopic.json, 'AWS::CloudWatch::Alarm');
    expect(all).toHaveLength(6);
    for (const [, a] of all) expect(a.Properties).toMatchObject({ AlarmActions: [topicArn], OKActions: [topicArn] });
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
