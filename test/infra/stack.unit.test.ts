/**
 * The synthesized Roster template: table, APIs, fan-out, sweeper, grants,
 * outputs, settings and cdk-nag. One synthesis of the default stack is shared
 * by the file; a few tests synthesize a variant (no bundling: about a second each).
 */
import { Validations } from 'aws-cdk-lib';
import { CfnRoute } from 'aws-cdk-lib/aws-apigatewayv2';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../functions/core/config.ts';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES, WS_ROUTES, WS_ROUTE_SELECTION } from '../../functions/core/routes.ts';
import { FANOUT_FILTER_PATTERNS, matchesFilter } from '../../functions/core/stream-filter.ts';
import { createTableInput, TABLE_SHAPE } from '../../functions/core/table.ts';
import type { RosterFunction, TableAccess } from '../../infra/function.ts';
import { addPolicyValidation, buildRoster } from '../../infra/roster-app.ts';
import { DETECTION_DEFAULTS, FANOUT_MEMORY_MB } from '../../infra/roster-stack.ts';
import { FANOUT_TABLE_ACCESS, HTTP_TABLE_ACCESS, SWEEPER_TABLE_ACCESS, WS_TABLE_ACCESS } from '../../infra/table-access.ts';
import {
  actionsOf,
  removeAssemblies,
  resourcesOf,
  resourcesOfType,
  rosterApp,
  statementsOfRole,
  synthRoster,
  type Statement,
  type Synthesized,
  type TemplateResource,
} from './support.ts';

let s: Synthesized;
// Without Control Tower's controls: cfn-guard costs tens of seconds per synth on a loaded 2-core box (twice here:
// this synth and Annotations.fromStack's), and control-tower.test.ts runs them on this same default stack.
beforeAll(() => {
  s = synthRoster();
});
afterAll(removeAssemblies);

const props = (r: TemplateResource): Record<string, unknown> => r.Properties ?? {};
const fnById = (id: string): RosterFunction => {
  const fn = s.stack.functions.get(id);
  if (!fn) throw new Error(`no function ${id}`);
  return fn;
};
const fnResource = (fn: RosterFunction): TemplateResource => {
  const r = s.json.Resources[s.logicalId(fn)];
  if (!r) throw new Error(`no resource for ${fn.node.path}`);
  return r;
};
const envOf = (fn: RosterFunction): Record<string, unknown> =>
  ((props(fnResource(fn)).Environment as { Variables: Record<string, unknown> }).Variables);
const statementsOf = (fn: RosterFunction): Statement[] => statementsOfRole(s.json, s.logicalId(fn.executionRole));
const dynamoStatements = (fn: RosterFunction): Statement[] =>
  statementsOf(fn).filter((st) => actionsOf(st).some((a) => a.startsWith('dynamodb:')));
const dynamoActions = (fn: RosterFunction): string[] => [...new Set(dynamoStatements(fn).flatMap(actionsOf))].sort();
const tableArn = (): unknown => ({ 'Fn::GetAtt': [s.logicalId(s.stack.table), 'Arn'] });
const pascal = (name: string): string =>
  name
    .replace(/^\$/, '')
    .split(/[^A-Za-z0-9]+/)
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');

describe('table', () => {
  it('has the shape of TABLE_SHAPE, identical to the table the local runtime creates', () => {
    const [[, table]] = resourcesOfType(s.json, 'AWS::DynamoDB::Table') as [[string, TemplateResource]];
    const local = createTableInput('ignored');
    const byName = (a: { AttributeName?: string }, b: { AttributeName?: string }) => String(a.AttributeName).localeCompare(String(b.AttributeName));
    expect(props(table).KeySchema).toEqual(local.KeySchema);
    expect([...(props(table).AttributeDefinitions as { AttributeName: string }[])].sort(byName)).toEqual(
      [...(local.AttributeDefinitions ?? [])].sort(byName),
    );
    expect(props(table).GlobalSecondaryIndexes).toEqual(local.GlobalSecondaryIndexes);
    expect(props(table).BillingMode).toBe('PAY_PER_REQUEST');
  });

  it('keeps a TTL attribute, a NEW_AND_OLD_IMAGES stream and point-in-time recovery', () => {
    s.template.hasResourceProperties('AWS::DynamoDB::Table', {
      TimeToLiveSpecification: { AttributeName: TABLE_SHAPE.ttlAttribute, Enabled: true },
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });

  it('has the sparse expiry index of announced deadlines, projecting nothing a keepalive changes', () => {
    s.template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byExpiry',
          KeySchema: [
            { AttributeName: 'sweepPk', KeyType: 'HASH' },
            { AttributeName: 'sweepAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['clusterId', 'nodeId'] },
        },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: 'sweepPk', AttributeType: 'S' },
        { AttributeName: 'sweepAt', AttributeType: 'N' },
      ]),
    });
  });

  it('is retained on stack deletion by default, and destroyable by context', () => {
    s.template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    synthRoster({ removalPolicy: 'destroy' }).template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
  });
});

describe('functions', () => {
  it('are exactly one per HTTP route handler, the HTTP $default, one per WebSocket route, the fan-out and its page function, the sweeper and the two authorizers', () => {
    const handlers = new Set([...HTTP_ROUTES.map((r) => r.handler), HTTP_DEFAULT_HANDLER]);
    expect(resourcesOfType(s.json, 'AWS::Lambda::Function')).toHaveLength(handlers.size + WS_ROUTES.length + 5);
  });

  it('all run nodejs22.x on arm64 with an explicit log group kept for a year', () => {
    const functions = resourcesOfType(s.json, 'AWS::Lambda::Function');
    for (const [id, fn] of functions) {
      expect(props(fn).Runtime, id).toBe('nodejs22.x');
      expect(props(fn).Architectures, id).toEqual(['arm64']);
      expect(props(fn).Handler, id).toBe('index.handler');
      const logGroupRef = (props(fn).LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(props(s.json.Resources[logGroupRef] as TemplateResource).RetentionInDays, id).toBe(365);
    }
  });

  it('use no AWS-managed policy (no AWSLambdaBasicExecutionRole) and may write only to their own log group', () => {
    for (const fn of s.stack.functions.values()) {
      expect(props(s.json.Resources[s.logicalId(fn.executionRole)] as TemplateResource).ManagedPolicyArns, fn.node.id).toBeUndefined();
      const logStatements = statementsOf(fn).filter((st) => actionsOf(st).some((a) => a.startsWith('logs:')));
      expect(logStatements.flatMap(resourcesOf), fn.node.id).toEqual([{ 'Fn::GetAtt': [s.logicalId(fn.logGroup), 'Arn'] }]);
    }
  });

  it('share one environment of detection settings, equal to the core defaults', () => {
    const core = readConfig({ TABLE_NAME: 'x' });
    expect(DETECTION_DEFAULTS).toEqual({
      defaultLeaseSeconds: core.defaultLeaseSeconds,
      disconnectGraceSeconds: core.disconnectGraceSeconds,
      sweepIntervalSeconds: core.sweepIntervalSeconds,
      downRetentionSeconds: core.downRetentionSeconds,
      sweepShards: core.sweepShards,
      sweeperAmnestySeconds: core.sweeperAmnestySeconds,
      selfPreservationPercent: core.selfPreservationPercent,
      selfPreservationMinNodes: core.selfPreservationMinNodes,
      selfPreservationMaxSeconds: core.selfPreservationMaxSeconds,
      fanoutPostsPerSecond: core.fanoutPostsPerSecond,
    });
    for (const fn of s.stack.functions.values()) {
      expect(envOf(fn), fn.node.id).toMatchObject({
        POWERTOOLS_SERVICE_NAME: 'roster',
        DEFAULT_LEASE_SECONDS: '60',
        DISCONNECT_GRACE_SECONDS: '2',
        SWEEP_INTERVAL_SECONDS: '1',
        DOWN_RETENTION_SECONDS: '86400',
        SWEEP_SHARDS: '4',
        SWEEPER_AMNESTY_SECONDS: '120',
        SELF_PRESERVATION_PERCENT: '15',
        SELF_PRESERVATION_MIN_NODES: '3',
        SELF_PRESERVATION_MAX_SECONDS: '120',
      });
    }
  });
});

describe('names', () => {
  it('describe the stack and both APIs with the glossary\'s words: Roster and the information center, never a registry', () => {
    const apis = resourcesOfType(s.json, 'AWS::ApiGatewayV2::Api').map(([, r]) => String(props(r).Description));
    expect(s.stack.templateOptions.description).toBe('Roster: serverless information center for cluster membership and node health');
    expect(apis.sort()).toEqual(['Roster HTTP API (v1): the information center for cluster membership and node health', 'Roster membership events']);
    for (const description of [s.stack.templateOptions.description, ...apis]) expect(description).not.toMatch(/registry/i);
  });

  it('name both APIs after the stack ({stackName}-http, {stackName}-ws), so two stacks in one account are told apart in the console', () => {
    const names = (x: Synthesized) => resourcesOfType(x.json, 'AWS::ApiGatewayV2::Api').map(([, r]) => `${String(props(r).ProtocolType)} ${String(props(r).Name)}`).sort();
    expect(names(s)).toEqual(['HTTP Roster-http', 'WEBSOCKET Roster-ws']);
    expect(names(synthRoster({ stackName: 'Roster-test-1' }))).toEqual(['HTTP Roster-test-1-http', 'WEBSOCKET Roster-test-1-ws']);
  });
});

describe('HTTP API', () => {
  const httpRoutes = () =>
    resourcesOfType(s.json, 'AWS::ApiGatewayV2::Route').filter(
      ([, r]) => JSON.stringify(props(r).ApiId) === JSON.stringify({ Ref: s.logicalId(s.stack.http.api) }),
    );
  /** The logical id of the function behind a route: route → integration → function ARN. */
  const functionBehind = (route: TemplateResource): string => {
    const target = JSON.stringify(props(route).Target);
    const integrationId = /"Ref":"([^"]+)"/.exec(target)?.[1] ?? '';
    const uri = props(s.json.Resources[integrationId] as TemplateResource).IntegrationUri as { 'Fn::GetAtt': [string, string] };
    return uri['Fn::GetAtt'][0];
  };

  it('has one route per HTTP_ROUTES entry plus $default, each served by its own handler', () => {
    const routes = httpRoutes();
    const keys = routes.map(([, r]) => props(r).RouteKey).sort();
    expect(keys).toEqual([...HTTP_ROUTES.map((r) => `${r.method} ${r.path}`), '$default'].sort());
    for (const [, route] of routes) {
      const key = String(props(route).RouteKey);
      const handler = key === '$default' ? HTTP_DEFAULT_HANDLER : HTTP_ROUTES.find((r) => `${r.method} ${r.path}` === key)?.handler;
      expect(functionBehind(route), key).toBe(s.logicalId(fnById(`HttpApi/${pascal(String(handler))}Handler`)));
    }
  });

  it('uses payload format 2.0 integrations', () => {
    for (const [, integration] of resourcesOfType(s.json, 'AWS::ApiGatewayV2::Integration').filter(
      ([, r]) => JSON.stringify(props(r).ApiId) === JSON.stringify({ Ref: s.logicalId(s.stack.http.api) }),
    )) {
      expect(props(integration)).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
    }
  });

  it('serves from an auto-deployed $default stage with throttling and access logs', () => {
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: s.logicalId(s.stack.http.api) },
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
      AccessLogSettings: { DestinationArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^HttpApiAccessLogs'), 'Arn'] }, Format: Match.anyValue() },
    });
  });

  it('never logs query strings (tokens) in access logs', () => {
    const logged = synthRoster({ webSocketAccessLogs: 'true' });
    for (const [, stage] of resourcesOfType(logged.json, 'AWS::ApiGatewayV2::Stage')) {
      const format = String((props(stage).AccessLogSettings as { Format: string }).Format);
      expect(JSON.parse(format)).toHaveProperty('requestId', '$context.requestId');
      expect(format).not.toMatch(/querystring|rawQueryString|\$context\.path|header/i);
    }
  });

  it('writes an access line with what an operator searches by and no more: every keepalive writes one, kept a year', () => {
    const stage = resourcesOfType(s.json, 'AWS::ApiGatewayV2::Stage').find(([, r]) => JSON.stringify(props(r).ApiId) === JSON.stringify({ Ref: s.logicalId(s.stack.http.api) }));
    const format = JSON.parse(String((props((stage as [string, TemplateResource])[1]).AccessLogSettings as { Format: string }).Format)) as Record<string, string>;
    expect(Object.keys(format).sort()).toEqual(['authorizerError', 'integrationError', 'ip', 'principal', 'requestId', 'responseLatency', 'routeKey', 'status']);
  });

  it("logs in JSON and keeps Lambda's own lines (START, REPORT: INFO) out by default; -c systemLogLevel brings them back, a bad one is refused", () => {
    const levels = (x: typeof s) =>
      resourcesOfType(x.json, 'AWS::Lambda::Function')
        .map(([, r]) => props(r).LoggingConfig as { LogFormat?: string; SystemLogLevel?: string; LogGroup?: unknown } | undefined)
        .filter((c) => c?.LogGroup !== undefined);
    expect(levels(s).length).toBeGreaterThanOrEqual(HTTP_ROUTES.length);
    for (const config of levels(s)) expect(config).toMatchObject({ LogFormat: 'JSON', SystemLogLevel: 'WARN' });
    for (const config of levels(synthRoster({ systemLogLevel: 'INFO' }))) expect(config).toMatchObject({ LogFormat: 'JSON', SystemLogLevel: 'INFO' });
    expect(() => synthRoster({ systemLogLevel: 'quiet' })).toThrow(/systemLogLevel="quiet" is invalid: expected INFO, DEBUG, WARN/);
  });

  it('takes throttling from context', () => {
    synthRoster({ httpRateLimit: '20', httpBurstLimit: '40' }).template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
    });
  });
});

describe('WebSocket API', () => {
  const wsRoutes = () =>
    resourcesOfType(s.json, 'AWS::ApiGatewayV2::Route').filter(
      ([, r]) => JSON.stringify(props(r).ApiId) === JSON.stringify({ Ref: s.logicalId(s.stack.webSocket.api) }),
    );

  it('selects routes by the action field and has one route per WS_ROUTES entry', () => {
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'WEBSOCKET', RouteSelectionExpression: WS_ROUTE_SELECTION });
    expect(wsRoutes().map(([, r]) => props(r).RouteKey).sort()).toEqual(WS_ROUTES.map((r) => r.routeKey).sort());
  });

  it('returns the handler body to the client for subscribe, unsubscribe, ping and $default only', () => {
    const routeKeyById = new Map(wsRoutes().map(([id, r]) => [id, String(props(r).RouteKey)]));
    const withResponse = resourcesOfType(s.json, 'AWS::ApiGatewayV2::RouteResponse').map(([, r]) =>
      routeKeyById.get((props(r).RouteId as { Ref: string }).Ref),
    );
    expect(withResponse.sort()).toEqual(['$default', 'ping', 'subscribe', 'unsubscribe']);
    for (const [, route] of wsRoutes()) {
      const responds = withResponse.includes(String(props(route).RouteKey));
      expect(props(route).RouteResponseSelectionExpression, String(props(route).RouteKey)).toBe(responds ? '$default' : undefined);
    }
  });

  const liveStage = (x: Synthesized): [string, TemplateResource] =>
    resourcesOfType(x.json, 'AWS::ApiGatewayV2::Stage').find(([, r]) => props(r).StageName === 'live') as [string, TemplateResource];

  it('is served from the auto-deployed "live" stage with throttling, and leaves the account logging setting alone by default', () => {
    const [, stage] = liveStage(s);
    expect(props(stage)).toMatchObject({
      ApiId: { Ref: s.logicalId(s.stack.webSocket.api) },
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
    });
    // Access logs of a WebSocket stage need the account-wide CloudWatch role; the default neither sets it nor needs it.
    expect(props(stage).AccessLogSettings).toBeUndefined();
    expect(resourcesOfType(s.json, 'AWS::ApiGateway::Account')).toHaveLength(0);
    expect(resourcesOfType(s.json, 'AWS::IAM::Role').filter(([id]) => id.includes('ApiGatewayLogsRole'))).toHaveLength(0);
  });

  it('logs access with the account\'s existing role when told one is set (webSocketAccessLogs=true)', () => {
    const other = synthRoster({ webSocketAccessLogs: 'true' });
    expect(props(liveStage(other)[1]).AccessLogSettings).toMatchObject({ DestinationArn: { 'Fn::GetAtt': [expect.stringMatching(/^WebSocketApiAccessLogs/), 'Arn'] } });
    expect(resourcesOfType(other.json, 'AWS::ApiGateway::Account')).toHaveLength(0);
  });

  it('creates and sets the account logging role only when asked (createApiGatewayLogsRole=true), retained on destroy', () => {
    const other = synthRoster({ createApiGatewayLogsRole: 'true' });
    const [stageId, stage] = liveStage(other);
    expect(props(stage).AccessLogSettings).toBeDefined();
    const [[accountId, account]] = resourcesOfType(other.json, 'AWS::ApiGateway::Account') as [[string, TemplateResource]];
    expect([stage.DependsOn].flat(), stageId).toContain(accountId);
    expect(account.DeletionPolicy).toBe('Retain');
    expect(() => synthRoster({ createApiGatewayLogsRole: 'true', webSocketAccessLogs: 'false' })).toThrow(/contradict/);
  });
});

describe('stream fan-out', () => {
  const mapping = (): Record<string, unknown> => {
    const [[, esm]] = resourcesOfType(s.json, 'AWS::Lambda::EventSourceMapping') as [[string, TemplateResource]];
    return props(esm);
  };

  it('runs the fan-out and its page function with the memory sized from the measured CPU per post (docs/how-it-works/fanout-sizing.md)', () => {
    for (const fn of [s.stack.fanout.function, s.stack.fanout.pages]) {
      const found = resourcesOfType(s.json, 'AWS::Lambda::Function').find(([id]) => id === s.logicalId(fn));
      expect(found?.[1].Properties?.MemorySize, fn.node.id).toBe(FANOUT_MEMORY_MB);
    }
  });

  it('may invoke the page function, which it knows by FANOUT_PAGE_FUNCTION, and no other function', () => {
    const pagesArn = { 'Fn::GetAtt': [s.logicalId(s.stack.fanout.pages), 'Arn'] };
    expect(envOf(s.stack.fanout.function).FANOUT_PAGE_FUNCTION).toEqual({ Ref: s.logicalId(s.stack.fanout.pages) });
    const invoke = statementsOf(s.stack.fanout.function).filter((st) => actionsOf(st).includes('lambda:InvokeFunction'));
    expect(invoke.flatMap(resourcesOf)).toEqual([pagesArn, { 'Fn::Join': ['', [pagesArn, ':*']] }]);
    for (const fn of s.stack.functions.values()) {
      if (fn === s.stack.fanout.function) continue;
      expect(statementsOf(fn).flatMap(actionsOf).filter((a) => a.startsWith('lambda:')), fn.node.id).toEqual([]);
    }
  });

  it('filters with exactly the shared FANOUT_FILTER_PATTERNS', () => {
    expect(mapping().FilterCriteria).toEqual({ Filters: FANOUT_FILTER_PATTERNS.map((p) => ({ Pattern: JSON.stringify(p) })) });
  });

  it('drops keepalive and other event-less records with the synthesized filter', () => {
    const patterns = (mapping().FilterCriteria as { Filters: { Pattern: string }[] }).Filters.map((f) => JSON.parse(f.Pattern));
    const node = { pk: { S: 'C#c1' }, sk: { S: 'N#n1' }, status: { S: 'UP' }, expiresAt: { N: '1' } };
    const record = (eventName: string, newImage: Record<string, unknown> | undefined) => ({
      eventName,
      dynamodb: newImage ? { NewImage: newImage } : {},
    });
    expect(matchesFilter(patterns, record('MODIFY', node))).toBe(false); // keepalive: REMOVE ev
    expect(matchesFilter(patterns, record('MODIFY', { pk: { S: 'C#c1' }, sk: { S: 'META' }, revision: { N: '7' } }))).toBe(false);
    expect(matchesFilter(patterns, record('REMOVE', undefined))).toBe(false); // TTL garbage collection
    expect(matchesFilter(patterns, record('INSERT', { ...node, ev: { S: 'NODE_REGISTERED' } }))).toBe(true);
    expect(matchesFilter(patterns, record('MODIFY', { ...node, ev: { S: 'NODE_DOWN' } }))).toBe(true);
  });

  it('reads the table stream from LATEST, at once, in order, with bounded retries, bisection and partial batch failures', () => {
    expect(mapping()).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': [s.logicalId(s.stack.table), 'StreamArn'] },
      FunctionName: { Ref: s.logicalId(s.stack.fanout.function) },
      StartingPosition: 'LATEST',
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 0,
      ParallelizationFactor: 1,
      MaximumRetryAttempts: 5,
      MaximumRecordAgeInSeconds: 900,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('sends what it finally cannot deliver to an encrypted, TLS-only SQS queue', () => {
    const queueId = s.logicalId(s.stack.fanout.failures);
    expect(mapping().DestinationConfig).toEqual({ OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } });
    expect(props(s.json.Resources[queueId] as TemplateResource)).toMatchObject({ SqsManagedSseEnabled: true });
    s.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('knows the stage callback URL', () => {
    expect(envOf(s.stack.fanout.function).WEBSOCKET_CALLBACK_URL).toEqual({
      'Fn::Join': [
        '',
        [
          'https://',
          { Ref: s.logicalId(s.stack.webSocket.api) },
          '.execute-api.',
          { Ref: 'AWS::Region' },
          '.',
          { Ref: 'AWS::URLSuffix' },
          '/live',
        ],
      ],
    });
  });
});

describe('sweeper', () => {
  it('is started every minute by EventBridge, without retries of a superseded tick', () => {
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [s.logicalId(s.stack.sweeper.function), 'Arn'] }, RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 0 }) })],
    });
    s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: s.logicalId(s.stack.sweeper.function) },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
  });

  it('sweeps for the whole minute inside one invocation, with headroom', () => {
    expect(props(fnResource(s.stack.sweeper.function))).toMatchObject({ Timeout: 90, MemorySize: 128 });
    expect(envOf(s.stack.sweeper.function)).toMatchObject({ SWEEP_LOOP_SECONDS: '60', SWEEP_INTERVAL_SECONDS: '1' });
    // Every other function sweeps once per call if ever (the core default), never in a loop.
    for (const fn of s.stack.functions.values()) {
      if (fn !== s.stack.sweeper.function) expect(envOf(fn).SWEEP_LOOP_SECONDS, fn.node.id).toBeUndefined();
    }
  });

  it('reserves no concurrency by default (a new account has 10, the least it must keep unreserved), and reserves on request', () => {
    for (const [id, fn] of resourcesOfType(s.json, 'AWS::Lambda::Function')) expect(props(fn).ReservedConcurrentExecutions, id).toBeUndefined();
    const reserved = synthRoster({ sweeperReservedConcurrency: '2' });
    expect(props(reserved.json.Resources[reserved.logicalId(reserved.stack.sweeper.function)] as TemplateResource).ReservedConcurrentExecutions).toBe(2);
    const none = synthRoster({ sweeperReservedConcurrency: 'none' });
    expect(props(none.json.Resources[none.logicalId(none.stack.sweeper.function)] as TemplateResource).ReservedConcurrentExecutions).toBeUndefined();
    expect(() => synthRoster({ sweeperReservedConcurrency: '0' })).toThrow(/sweeperReservedConcurrency/);
  });
});

describe('grants', () => {
  const expectAccess = (fn: RosterFunction, access: TableAccess | undefined) => {
    const expected = [
      ...(access?.actions ?? []).map((a) => `dynamodb:${a}`),
      ...((access?.queryIndexes ?? []).length > 0 ? ['dynamodb:Query'] : []),
    ];
    expect(dynamoActions(fn), fn.node.id).toEqual([...new Set(expected)].sort());
    expect(envOf(fn).TABLE_NAME, fn.node.id).toEqual(access ? { Ref: s.logicalId(s.stack.table) } : undefined);
  };

  it('give every HTTP and WebSocket handler exactly the table actions of its access map, and TABLE_NAME with them', () => {
    for (const route of HTTP_ROUTES) expectAccess(fnById(`HttpApi/${pascal(route.handler)}Handler`), HTTP_TABLE_ACCESS[route.handler]);
    expectAccess(fnById(`HttpApi/${pascal(HTTP_DEFAULT_HANDLER)}Handler`), undefined);
    for (const route of WS_ROUTES) expectAccess(fnById(`WebSocketApi/${pascal(route.handler)}Handler`), WS_TABLE_ACCESS[route.handler]);
  });

  it('give read-only handlers no write action, and health only GetItem', () => {
    for (const handler of ['get-node', 'list-nodes', 'list-clusters', 'health']) {
      const writes = dynamoActions(fnById(`HttpApi/${pascal(handler)}Handler`)).filter((a) => !/GetItem$|Query$/.test(a));
      expect(writes, handler).toEqual([]);
    }
    expect(dynamoActions(fnById('HttpApi/HealthHandler'))).toEqual(['dynamodb:GetItem']);
  });

  it('scope item actions to the base table: no function gets index/* or a dynamodb wildcard', () => {
    for (const fn of s.stack.functions.values()) {
      for (const st of dynamoStatements(fn)) {
        expect(actionsOf(st).filter((a) => a.includes('*')), fn.node.id).toEqual([]);
        expect(JSON.stringify(st.Resource), fn.node.id).not.toContain('index/*');
      }
    }
  });

  it('let the sweeper query the base table (the cluster list, a due cluster) and the expiry index, and no other index', () => {
    const statements = dynamoStatements(s.stack.sweeper.function);
    const query = statements.filter((st) => actionsOf(st).includes('dynamodb:Query'));
    expect(query.flatMap(resourcesOf).map((r) => JSON.stringify(r)).sort()).toEqual(
      [tableArn(), { 'Fn::Join': ['', [tableArn(), '/index/byExpiry']] }].map((r) => JSON.stringify(r)).sort(),
    );
    expectAccess(s.stack.sweeper.function, SWEEPER_TABLE_ACCESS);
  });

  it('let the fan-out read the stream, use the table as its access map says, and post to the live stage only', () => {
    const statements = statementsOf(s.stack.fanout.function);
    const stream = statements.filter((st) => actionsOf(st).some((a) => ['dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:DescribeStream'].includes(a)));
    expect(stream.flatMap(resourcesOf)).toEqual([{ 'Fn::GetAtt': [s.logicalId(s.stack.table), 'StreamArn'] }]);
    const item = statements.filter((st) => actionsOf(st).some((a) => /^dynamodb:(Query|GetItem|BatchWriteItem|UpdateItem)$/.test(a)));
    expect(item.flatMap(resourcesOf)).toEqual([tableArn()]);
    expect([...new Set(item.flatMap(actionsOf))].sort()).toEqual(FANOUT_TABLE_ACCESS.actions.map((a) => `dynamodb:${a}`).sort());

    const manage = statements.filter((st) => actionsOf(st).includes('execute-api:ManageConnections'));
    expect(manage).toHaveLength(1);
    expect(actionsOf(manage[0] as Statement)).toEqual(['execute-api:ManageConnections']);
    expect(resourcesOf(manage[0] as Statement)).toEqual([
      {
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':execute-api:',
            { Ref: 'AWS::Region' },
            ':',
            { Ref: 'AWS::AccountId' },
            ':',
            { Ref: s.logicalId(s.stack.webSocket.api) },
            '/live/*/@connections/*',
          ],
        ],
      },
    ]);
    const sqs = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('sqs:')));
    expect(sqs.flatMap(resourcesOf)).toEqual([{ 'Fn::GetAtt': [s.logicalId(s.stack.fanout.failures), 'Arn'] }]);
  });

  it('give no other function than the fan-out and its page function the management API', () => {
    for (const fn of s.stack.functions.values()) {
      if (fn === s.stack.fanout.function || fn === s.stack.fanout.pages) continue;
      expect(statementsOf(fn).flatMap(actionsOf).filter((a) => a.startsWith('execute-api:')), fn.node.id).toEqual([]);
      expect(envOf(fn).WEBSOCKET_CALLBACK_URL, fn.node.id).toBeUndefined();
    }
  });
});

describe('outputs', () => {
  it('are the HTTP API URL (no trailing slash), the wss URL of the live stage and the table name', () => {
    const outputs = s.json.Outputs ?? {};
    expect(Object.keys(outputs).sort()).toEqual(['AlarmTopicArn', 'HttpApiUrl', 'TableName', 'TokenSecretArn', 'WebSocketUrl']);
    expect(outputs.TokenSecretArn?.Value).toEqual({ Ref: s.logicalId(s.stack.tokenSecret) });
    // ApiEndpoint is `https://{api-id}.execute-api.{region}.amazonaws.com`: the $default stage, no trailing slash.
    expect(outputs.HttpApiUrl?.Value).toEqual({ 'Fn::GetAtt': [s.logicalId(s.stack.http.api), 'ApiEndpoint'] });
    expect(outputs.WebSocketUrl?.Value).toEqual({
      'Fn::Join': ['', ['wss://', { Ref: s.logicalId(s.stack.webSocket.api) }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/live']],
    });
    expect(outputs.TableName?.Value).toEqual({ Ref: s.logicalId(s.stack.table) });
  });

  it('belong to a stack named Roster with no fixed account or region', () => {
    expect(s.stack.stackName).toBe('Roster');
    expect(s.stack.environment).toBe('aws://unknown-account/unknown-region');
  });
});

describe('settings', () => {
  const sweeperEnv = (x: Synthesized) =>
    (props(x.json.Resources[x.logicalId(x.stack.sweeper.function)] as TemplateResource).Environment as { Variables: Record<string, unknown> }).Variables;

  it('flow from context (strings, as `-c key=value` passes them) into every function', () => {
    const other = synthRoster({
      sweepIntervalSeconds: '0.5',
      disconnectGraceSeconds: '5',
      defaultLeaseSeconds: 30,
      downRetentionSeconds: '3600',
      sweepShards: '8',
      sweeperAmnestySeconds: '300',
      selfPreservationPercent: '25',
      selfPreservationMinNodes: '10',
      selfPreservationMaxSeconds: '0',
    });
    for (const fn of other.stack.functions.values()) {
      const env = (props(other.json.Resources[other.logicalId(fn)] as TemplateResource).Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env, fn.node.id).toMatchObject({
        SWEEP_INTERVAL_SECONDS: '0.5',
        DISCONNECT_GRACE_SECONDS: '5',
        DEFAULT_LEASE_SECONDS: '30',
        DOWN_RETENTION_SECONDS: '3600',
        SWEEP_SHARDS: '8',
        SWEEPER_AMNESTY_SECONDS: '300',
        SELF_PRESERVATION_PERCENT: '25',
        SELF_PRESERVATION_MIN_NODES: '10',
        SELF_PRESERVATION_MAX_SECONDS: '0',
      });
    }
  });

  it('flow from stack properties, which win over context', () => {
    const other = synthRoster({ sweepIntervalSeconds: '5' }, { sweepIntervalSeconds: 2, defaultLeaseSeconds: 60 });
    expect(sweeperEnv(other)).toMatchObject({ SWEEP_INTERVAL_SECONDS: '2', DEFAULT_LEASE_SECONDS: '60' });
  });

  it('are checked against the bounds the functions accept, at synth', () => {
    const build = (context: Record<string, unknown>) => () => synthRoster(context);
    expect(build({ sweepIntervalSeconds: '0.01' })).toThrow(/SWEEP_INTERVAL_SECONDS=0.01 must be a number between 0.05 and 60/);
    expect(build({ defaultLeaseSeconds: '1' })).toThrow(/DEFAULT_LEASE_SECONDS=1/);
    expect(build({ sweepShards: 'many' })).toThrow(/sweepShards="many" is invalid/);
    expect(build({ sweepShards: '1.5' })).toThrow(/SWEEP_SHARDS=1.5 must be a whole number between 1 and 64/);
    expect(build({ removalPolicy: 'snapshot' })).toThrow(/removalPolicy/);
    expect(build({ httpRateLimit: '10' })).toThrow(/httpRateLimit and httpBurstLimit go together/);
  });
});

describe('access control', () => {
  const routesOfApi = (apiId: string) =>
    resourcesOfType(s.json, 'AWS::ApiGatewayV2::Route').filter(([, r]) => JSON.stringify(props(r).ApiId) === JSON.stringify({ Ref: apiId }));
  const authorizers = (x: Synthesized = s) => resourcesOfType(x.json, 'AWS::ApiGatewayV2::Authorizer');
  const authorizerOf = (x: Synthesized, api: string): [string, TemplateResource] => {
    const found = authorizers(x).find(([, a]) => JSON.stringify(props(a).ApiId) === JSON.stringify({ Ref: api }));
    if (!found) throw new Error(`no authorizer for ${api}`);
    return found;
  };
  const functionArnIn = (uri: unknown): string => /"Fn::GetAtt":\["([^"]+)","Arn"\]/.exec(JSON.stringify(uri))?.[1] ?? '';

  it('puts every HTTP route that is not public behind the Lambda authorizer, and no other', () => {
    const [authorizerId] = authorizerOf(s, s.logicalId(s.stack.http.api));
    const routes = routesOfApi(s.logicalId(s.stack.http.api));
    expect(routes.length).toBe(HTTP_ROUTES.length + 1);
    for (const [, route] of routes) {
      const key = String(props(route).RouteKey);
      const access = key === '$default' ? 'public' : HTTP_ROUTES.find((r) => `${r.method} ${r.path}` === key)?.access;
      if (access === 'public') {
        expect(props(route).AuthorizationType ?? 'NONE', key).toBe('NONE');
        expect(props(route).AuthorizerId, key).toBeUndefined();
      } else {
        expect(props(route), key).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: authorizerId } });
      }
    }
    // Every protected access level is represented, so the loop above checked something.
    expect(new Set(HTTP_ROUTES.map((r) => r.access))).toEqual(new Set(['public', 'read', 'write', 'admin']));
  });

  it('caches the HTTP authorizer per Authorization header for 5 minutes, with simple responses (payload 2.0)', () => {
    const [, authorizer] = authorizerOf(s, s.logicalId(s.stack.http.api));
    expect(props(authorizer)).toMatchObject({
      AuthorizerType: 'REQUEST',
      IdentitySource: ['$request.header.Authorization'],
      AuthorizerResultTtlInSeconds: 300,
      EnableSimpleResponses: true,
      AuthorizerPayloadFormatVersion: '2.0',
    });
    expect(functionArnIn(props(authorizer).AuthorizerUri)).toBe(s.logicalId(s.stack.http.authorizer));
  });

  it('can turn the cache off (authCacheSeconds=0), and then has no identity source, so every request reaches the authorizer', () => {
    const other = synthRoster({ authCacheSeconds: '0' });
    const [, authorizer] = authorizerOf(other, other.logicalId(other.stack.http.api));
    expect(props(authorizer).AuthorizerResultTtlInSeconds).toBe(0);
    expect(props(authorizer).IdentitySource ?? []).toEqual([]);
    expect(() => synthRoster({ authCacheSeconds: '7200' })).toThrow(/authCacheSeconds/);
  });

  it('authorizes WebSocket connections on $connect by the token query parameter; API Gateway allows no other route one', () => {
    const api = s.logicalId(s.stack.webSocket.api);
    const [authorizerId, authorizer] = authorizerOf(s, api);
    expect(props(authorizer)).toMatchObject({ AuthorizerType: 'REQUEST', IdentitySource: ['route.request.querystring.token'] });
    expect(props(authorizer).AuthorizerResultTtlInSeconds).toBeUndefined();
    expect(functionArnIn(props(authorizer).AuthorizerUri)).toBe(s.logicalId(s.stack.webSocket.authorizer));
    for (const [, route] of routesOfApi(api)) {
      const key = String(props(route).RouteKey);
      if (key === '$connect') expect(props(route), key).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: authorizerId } });
      else expect(props(route).AuthorizationType ?? 'NONE', key).toBe('NONE');
    }
    expect(authorizers()).toHaveLength(2);
  });

  it('keeps the signing key in a generated Secrets Manager secret of 64 letters and digits', () => {
    expect(props(s.json.Resources[s.logicalId(s.stack.tokenSecret)] as TemplateResource)).toMatchObject({
      GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true, IncludeSpace: false },
    });
    expect(resourcesOfType(s.json, 'AWS::SecretsManager::Secret')).toHaveLength(1);
  });

  it('lets the two authorizers, and no other function, read the secret — and nothing else of Secrets Manager', () => {
    const readers: string[] = [];
    for (const fn of s.stack.functions.values()) {
      const statements = statementsOf(fn).filter((st) => actionsOf(st).some((a) => a.startsWith('secretsmanager:')));
      if (statements.length === 0) {
        expect(envOf(fn).TOKEN_SECRET_ARN, fn.node.id).toBeUndefined();
        continue;
      }
      readers.push(fn.node.path.replace(/^Roster\//, ''));
      expect(statements.flatMap(actionsOf).sort(), fn.node.id).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
      expect(statements.flatMap(resourcesOf), fn.node.id).toEqual([{ Ref: s.logicalId(s.stack.tokenSecret) }]);
      expect(envOf(fn).TOKEN_SECRET_ARN, fn.node.id).toEqual({ Ref: s.logicalId(s.stack.tokenSecret) });
    }
    expect(readers.sort()).toEqual(['HttpApi/Authorizer', 'WebSocketApi/Authorizer']);
    // No other principal (an API Gateway role, a policy on the secret) is granted anything on it.
    const statementsAnywhere = resourcesOfType(s.json, 'AWS::IAM::Policy').flatMap(
      ([, p]) => (p.Properties?.PolicyDocument as { Statement: Statement[] }).Statement,
    );
    expect(statementsAnywhere.filter((st) => actionsOf(st).some((a) => a.startsWith('secretsmanager:')))).toHaveLength(2);
    expect(resourcesOfType(s.json, 'AWS::SecretsManager::ResourcePolicy')).toHaveLength(0);
  });

  it('gives the authorizers no table and no management API', () => {
    for (const fn of [s.stack.http.authorizer, s.stack.webSocket.authorizer]) {
      expect(dynamoActions(fn), fn.node.id).toEqual([]);
      expect(envOf(fn).TABLE_NAME, fn.node.id).toBeUndefined();
    }
  });

  it('lets API Gateway invoke each authorizer only as that API\'s authorizer', () => {
    for (const fn of [s.stack.http.authorizer, s.stack.webSocket.authorizer]) {
      const permissions = resourcesOfType(s.json, 'AWS::Lambda::Permission').filter(
        ([, p]) => JSON.stringify(props(p).FunctionName).includes(s.logicalId(fn)),
      );
      expect(permissions, fn.node.id).toHaveLength(1);
      const [[, permission]] = permissions as [[string, TemplateResource]];
      expect(props(permission).Principal).toBe('apigateway.amazonaws.com');
      expect(JSON.stringify(props(permission).SourceArn), fn.node.id).toMatch(/\/authorizers\//);
    }
  });

  it('leaves every function at the secure default: none sets ROSTER_AUTH', () => {
    for (const fn of s.stack.functions.values()) expect(envOf(fn).ROSTER_AUTH, fn.node.id).toBeUndefined();
  });

  it('logs who called (the token subject) and authorizer errors in the HTTP access log, never a header', () => {
    const [, stage] = resourcesOfType(s.json, 'AWS::ApiGatewayV2::Stage').find(([, r]) => props(r).StageName === '$default') as [string, TemplateResource];
    const format = JSON.parse(String((props(stage).AccessLogSettings as { Format: string }).Format)) as Record<string, string>;
    expect(format).toMatchObject({ principal: '$context.authorizer.sub', authorizerError: '$context.authorizer.error' });
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('reports no finding that is not acknowledged', () => {
    const report = new AwsSolutionsChecks(s.app).validateScope(s.app);
    expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('acknowledges only specific findings on specific constructs, each with a written reason', () => {
    const acknowledged: { path: string; id: string; reason: string }[] = [];
    for (const construct of s.app.node.findAll()) {
      for (const entry of construct.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
          acknowledged.push({ path: construct.node.path, id: id.replace(/^annotation::/i, ''), reason });
        }
      }
    }
    // Nothing blanket: no acknowledgement on the app or the stack itself.
    expect(acknowledged.filter((a) => a.path === '' || a.path === 'Roster')).toEqual([]);
    for (const a of acknowledged) expect(a.reason.length, `${a.path} ${a.id}`).toBeGreaterThan(80);
    const ids = [...new Set(acknowledged.map((a) => a.id.replace(/\[.*$/, '')).filter((id) => id.startsWith('AwsSolutions-')))].sort();
    // APIG1 and SNS2: the WebSocket stage logs no access by default, and the alarm topic is not encrypted (reasons in the code).
    expect(ids).toEqual(['AwsSolutions-APIG1', 'AwsSolutions-APIG4', 'AwsSolutions-IAM5', 'AwsSolutions-L1', 'AwsSolutions-SMG4', 'AwsSolutions-SNS2', 'AwsSolutions-SQS3']);
    // APIG4 ("no authorization") only on routes that cannot or must not have an authorizer — never on a whole API:
    // the public HTTP routes, the HTTP $default, and the WebSocket routes after $connect (API Gateway authorizes $connect only).
    const routeOf = (path: string): string => {
      const construct = s.app.node.findAll().find((c) => c.node.path === path);
      const route = construct?.node.defaultChild;
      if (!(route instanceof CfnRoute)) throw new Error(`${path} acknowledges APIG4 but is not a route`);
      return `${path.startsWith('Roster/HttpApi/') ? 'http' : 'ws'} ${route.routeKey}`;
    };
    const apig4 = acknowledged.filter((a) => a.id === 'AwsSolutions-APIG4').map((a) => routeOf(a.path)).sort();
    const publicRoutes = HTTP_ROUTES.filter((r) => r.access === 'public').map((r) => `http ${r.method} ${r.path}`);
    const wsRoutes = WS_ROUTES.filter((r) => r.routeKey !== '$connect').map((r) => `ws ${r.routeKey}`);
    expect(apig4).toEqual([...publicRoutes, 'http $default', ...wsRoutes].sort());
    // IAM5 only for the fan-out grants that cannot be narrower.
    expect(acknowledged.filter((a) => a.id.startsWith('AwsSolutions-IAM5')).map((a) => `${a.path} ${a.id}`).sort()).toEqual([
      'Roster/Fanout/FunctionRole AwsSolutions-IAM5[Resource::*]',
      expect.stringMatching(/^Roster\/Fanout\/FunctionRole AwsSolutions-IAM5\[Resource::<FanoutPageFunction[0-9A-F]+\.Arn>:\*\]$/),
      expect.stringMatching(/^Roster\/Fanout\/FunctionRole AwsSolutions-IAM5\[Resource::arn:.*\/live\/\*\/@connections\/\*\]$/),
      expect.stringMatching(/^Roster\/Fanout\/PageFunctionRole AwsSolutions-IAM5\[Resource::arn:.*\/live\/\*\/@connections\/\*\]$/),
    ]);
  });

  it('finds, and fails the synth on, a finding nobody acknowledged', () => {
    const app = rosterApp();
    // The app's own checks, as addRoster adds them, less Control Tower's (control-tower.test.ts): cdk-nag's are the subject.
    const stack = buildRoster(app);
    addPolicyValidation(app, stack, { controlTower: false });
    stack.sweeper.function.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:*'], resources: [stack.table.tableArn] }));
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((v) => v.ruleName)).toEqual(['AwsSolutions-IAM5[Action::dynamodb:*]']);
    expect(() => app.synth()).toThrow(/AwsSolutions-IAM5/);
  });

  it('leaves CDK itself with no warnings or errors to report', () => {
    const annotations = Annotations.fromStack(s.stack);
    expect(annotations.findWarning('*', Match.anyValue())).toEqual([]);
    expect(annotations.findError('*', Match.anyValue())).toEqual([]);
  });
});

describe('the console function', () => {
  it('serves GET /console and GET / from one function with 128 MB, the WebSocket stage URL and no table', () => {
    const consoleRoutes = HTTP_ROUTES.filter((r) => r.handler === 'console');
    expect(consoleRoutes.map((r) => `${r.method} ${r.path}`).sort()).toEqual(['GET /', 'GET /console']);
    expect(consoleRoutes.every((r) => r.access === 'public')).toBe(true);
    const fn = fnById('HttpApi/ConsoleHandler');
    expect(props(fnResource(fn)).MemorySize).toBe(128);
    expect(envOf(fn).WEBSOCKET_URL).toEqual(s.stack.resolve(s.stack.webSocket.stage.url));
    expect(envOf(fn).TABLE_NAME).toBeUndefined();
    expect(dynamoActions(fn)).toEqual([]);
  });
});
