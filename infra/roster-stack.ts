/**
 * The Roster stack: one DynamoDB table, an HTTP API and a WebSocket API with
 * one function per route, the stream fan-out, and the sweeper.
 *
 * Everything that has a single definition in `functions/core/` is imported
 * from there, never restated: the table shape, the route tables, the stream
 * filter and the configuration bounds.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
  WebSocketApi,
  WebSocketStage,
  type ThrottleSettings,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType, WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration, WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, BillingMode, ProjectionType, StreamViewType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { FilterCriteria, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { CONFIG_DEFAULTS, readConfig } from '../functions/core/config.ts';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES, WS_ROUTES, WS_ROUTE_SELECTION } from '../functions/core/routes.ts';
import { FANOUT_FILTER_PATTERNS } from '../functions/core/stream-filter.ts';
import { TABLE_SHAPE } from '../functions/core/table.ts';
import { CONSOLE_FUNCTION_PROPS, CONSOLE_HANDLER } from './console.ts';
import { RosterFunction, type RosterFunctionProps, type RuntimeEnvironment } from './function.ts';
import { RosterObservability } from './observability.ts';
import { FANOUT_TABLE_ACCESS, HTTP_TABLE_ACCESS, SWEEPER_TABLE_ACCESS, WS_TABLE_ACCESS } from './table-access.ts';

/** Failure detection, as `functions/core/config.ts` reads it, with its defaults. */
export interface DetectionSettings {
  /** Lease of a node that registers without naming one. @default 15 */
  readonly defaultLeaseSeconds?: number;
  /** Lease left to a node whose bound WebSocket connection dropped. @default 2 */
  readonly disconnectGraceSeconds?: number;
  /** Time between two sweeps inside one sweeper invocation (sub-minute; 0.05..60). @default 1 */
  readonly sweepIntervalSeconds?: number;
  /** How long DOWN records stay readable (`?status=all`) before TTL may remove them. @default 86400 */
  readonly downRetentionSeconds?: number;
  /** Partitions of the expiry index (each sweep queries every one). @default 4 */
  readonly sweepShards?: number;
  /** A sweeper gap longer than this makes the next sweep an amnesty sweep (self-preservation). @default 120 */
  readonly sweeperAmnestySeconds?: number;
}

export const DETECTION_DEFAULTS: Required<DetectionSettings> = {
  defaultLeaseSeconds: CONFIG_DEFAULTS.defaultLeaseSeconds,
  disconnectGraceSeconds: CONFIG_DEFAULTS.disconnectGraceSeconds,
  sweepIntervalSeconds: CONFIG_DEFAULTS.sweepIntervalSeconds,
  downRetentionSeconds: CONFIG_DEFAULTS.downRetentionSeconds,
  sweepShards: CONFIG_DEFAULTS.sweepShards,
  sweeperAmnestySeconds: CONFIG_DEFAULTS.sweeperAmnestySeconds,
};

export interface RosterStackProps extends StackProps, DetectionSettings {
  /** Steady-state requests per second and burst of the HTTP API stage. @default { rateLimit: 500, burstLimit: 1000 } */
  readonly httpThrottle?: ThrottleSettings;
  /** Messages per second and burst of the WebSocket stage (all routes, `$connect` included). @default { rateLimit: 500, burstLimit: 1000 } */
  readonly webSocketThrottle?: ThrottleSettings;
  /**
   * How long API Gateway caches the HTTP authorizer's result per `Authorization`
   * header value (0 to 1 h). With caching, a request without the header is
   * answered by API Gateway itself (`401 {"message":"Unauthorized"}`), before
   * the authorizer. `Duration.seconds(0)` turns caching off and drops the
   * identity source: every request then gets the contract's JSON, at the price
   * of one authorizer invocation per request. See the README, Access control.
   * @default Duration.minutes(5)
   */
  readonly authorizerCacheTtl?: Duration;
  /**
   * What `cdk destroy` does with the table and the log groups.
   * @default RemovalPolicy.RETAIN — membership data and logs outlive an accidental destroy.
   */
  readonly removalPolicy?: RemovalPolicy;
  /** Retention of function and access logs. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /**
   * Reserved concurrency of the sweeper: two invocations may overlap for a few
   * seconds at the minute boundary (their writes are conditional, so that is
   * harmless); more are never needed. `undefined` reserves none, for accounts
   * whose concurrency limit is too low to reserve any (new accounts have 10).
   * @default 2
   */
  readonly sweeperReservedConcurrency?: number;
  /**
   * WebSocket access logs need API Gateway's account-wide CloudWatch Logs role
   * (HTTP APIs do not). `true` creates that role and sets it for the account
   * and region (it is retained on destroy: other APIs may rely on it). `false`
   * relies on one being set already, e.g. by a landing zone.
   * @default true
   */
  readonly createApiGatewayLogsRole?: boolean;
  /** SNS topic that receives the alarms' ALARM and OK notifications. @default none (alarms only show on the dashboard) */
  readonly alarmTopicArn?: string;
  /** Stream iterator age at which the fan-out counts as falling behind. @default 60 seconds */
  readonly iteratorAgeAlarmThreshold?: Duration;
}

/** The WebSocket stage: clients connect to `wss://…/live`. */
export const WEBSOCKET_STAGE_NAME = 'live';
/** The sweeper is scheduled every minute (EventBridge's floor) and sweeps for that long inside one invocation. */
export const SWEEPER_SCHEDULE = Duration.minutes(1);
export const SWEEP_LOOP_SECONDS = SWEEPER_SCHEDULE.toSeconds();
/** Memory (and so CPU) of the fan-out function: one full vCPU. */
export const FANOUT_MEMORY_MB = 1769;
/** WebSocket routes whose handler's return body is sent back to the client. `$connect`/`$disconnect` have no client to answer. */
const WS_ROUTES_WITH_RESPONSE = new Set(['subscribe', 'unsubscribe', 'ping', '$default']);

const DEFAULT_THROTTLE: ThrottleSettings = { rateLimit: 500, burstLimit: 1000 };

/** `MyHandler` from `my-handler` or `$connect`, for construct ids. */
const pascal = (name: string): string =>
  name
    .replace(/^\$/, '')
    .split(/[^A-Za-z0-9]+/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

export class RosterStack extends Stack {
  readonly table: Table;
  readonly httpApi: HttpApi;
  readonly webSocketApi: WebSocketApi;
  readonly webSocketStage: WebSocketStage;
  readonly fanout: RosterFunction;
  readonly sweeper: RosterFunction;
  readonly fanoutFailures: Queue;
  /** The token signing secret; only the two authorizers may read it. */
  readonly tokenSecret: Secret;
  readonly httpAuthorizer: RosterFunction;
  readonly webSocketAuthorizer: RosterFunction;
  readonly observability: RosterObservability;
  /** Every function, keyed by construct id. */
  readonly functions = new Map<string, RosterFunction>();

  constructor(scope: Construct, id: string, props: RosterStackProps = {}) {
    super(scope, id, props);
    const settings: RuntimeEnvironment = {
      defaultLeaseSeconds: props.defaultLeaseSeconds ?? DETECTION_DEFAULTS.defaultLeaseSeconds,
      disconnectGraceSeconds: props.disconnectGraceSeconds ?? DETECTION_DEFAULTS.disconnectGraceSeconds,
      sweepIntervalSeconds: props.sweepIntervalSeconds ?? DETECTION_DEFAULTS.sweepIntervalSeconds,
      downRetentionSeconds: props.downRetentionSeconds ?? DETECTION_DEFAULTS.downRetentionSeconds,
      sweepShards: props.sweepShards ?? DETECTION_DEFAULTS.sweepShards,
      sweeperAmnestySeconds: props.sweeperAmnestySeconds ?? DETECTION_DEFAULTS.sweeperAmnestySeconds,
    };
    validateSettings(settings);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;

    const functionDefaults = { settings, logRetention, logRemovalPolicy: removalPolicy };
    const addFunction = (fnId: string, fnProps: Omit<RosterFunctionProps, keyof typeof functionDefaults>): RosterFunction => {
      const fn = new RosterFunction(this, fnId, { ...functionDefaults, ...fnProps });
      this.functions.set(fnId, fn);
      return fn;
    };

    // ---- The table, from the one definition of its shape ----------------------------------
    const { partitionKey, sortKey, ttlAttribute, expiryIndex } = TABLE_SHAPE;
    this.table = new Table(this, 'Table', {
      partitionKey: { name: partitionKey, type: AttributeType.STRING },
      sortKey: { name: sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: ttlAttribute,
      stream: StreamViewType[TABLE_SHAPE.streamViewType],
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: expiryIndex.name,
      partitionKey: { name: expiryIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: expiryIndex.sortKey, type: AttributeType.NUMBER },
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: [...expiryIndex.nonKeyAttributes],
    });

    // ---- Access control: the signing secret and the two authorizers ------------------------
    this.tokenSecret = new Secret(this, 'TokenSecret', {
      description: 'Roster: the HMAC key (HS256) bearer tokens are signed with; `roster token create --outputs` reads it',
      // 64 letters and digits (~381 bits), used as raw key material: nothing to escape anywhere.
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy,
    });
    const authorizerCacheTtl = props.authorizerCacheTtl ?? Duration.minutes(5);
    if (authorizerCacheTtl.toSeconds() > 3600) throw new Error('authorizerCacheTtl must be at most one hour (API Gateway\'s limit)');
    this.httpAuthorizer = addFunction('HttpAuthorizer', {
      entry: 'functions/auth/http-authorizer.ts',
      description: 'Roster HTTP authorizer: verifies bearer tokens',
    });
    this.httpAuthorizer.useTokenSecret(this.tokenSecret);
    this.webSocketAuthorizer = addFunction('WsAuthorizer', {
      entry: 'functions/auth/ws-authorizer.ts',
      description: 'Roster WebSocket $connect authorizer: verifies the token query parameter',
    });
    this.webSocketAuthorizer.useTokenSecret(this.tokenSecret);
    const httpAuthorizer = new HttpLambdaAuthorizer('TokenAuthorizer', this.httpAuthorizer, {
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      // The cache key. Without caching there is no identity source, so a request without the header reaches the authorizer too.
      identitySource: authorizerCacheTtl.toSeconds() > 0 ? ['$request.header.Authorization'] : [],
      resultsCacheTtl: authorizerCacheTtl,
    });

    // ---- HTTP API: one route and one function per HTTP_ROUTES entry, plus $default --------
    const notFound = addFunction('HttpNotFound', {
      entry: `functions/http/${HTTP_DEFAULT_HANDLER}.ts`,
      description: 'Roster HTTP $default: JSON 404, or 405 with Allow',
    });
    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'Roster membership and health registry (v1)',
      // The stage is created below, with throttling and access logs.
      createDefaultStage: false,
      defaultIntegration: new HttpLambdaIntegration('NotFoundIntegration', notFound),
    });
    const integrations = new Map<string, HttpLambdaIntegration>();
    for (const route of HTTP_ROUTES) {
      let integration = integrations.get(route.handler);
      if (!integration) {
        const fnId = `Http${pascal(route.handler)}`;
        const fn = addFunction(fnId, {
          entry: `functions/http/${route.handler}.ts`,
          description: `Roster HTTP ${route.method} ${route.path}`,
          // The console's page is written next to its bundle (infra/console.ts).
          ...(route.handler === CONSOLE_HANDLER ? CONSOLE_FUNCTION_PROPS : {}),
        });
        const access = HTTP_TABLE_ACCESS[route.handler];
        if (access) fn.useTable(this.table, access);
        integration = new HttpLambdaIntegration(`${fnId}Integration`, fn);
        integrations.set(route.handler, integration);
      }
      const routes = this.httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration,
        // Every route that is not public goes through the authorizer; the handler then checks cluster and role.
        authorizer: route.access === 'public' ? undefined : httpAuthorizer,
      });
      if (route.access === 'public') {
        for (const r of routes) {
          Validations.of(r).acknowledge({
            id: 'AwsSolutions-APIG4',
            reason:
              `${route.method} ${route.path} is public by design (access 'public' in functions/core/routes.ts): it reads and ` +
              'writes no membership data, and health checks and the console page must load without a token.',
          });
        }
      }
    }
    const defaultRoute = this.httpApi.node.tryFindChild('DefaultRoute');
    if (!defaultRoute) throw new Error('the HTTP API has no $default route');
    Validations.of(defaultRoute).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'The $default route only answers requests no route matched, with a JSON 404 or 405; its function reads and writes ' +
        'nothing, so a token would protect nothing, and unauthenticated clients learn only what the README documents.',
    });
    const httpAccessLogs = new LogGroup(this, 'HttpAccessLogs', { retention: logRetention, removalPolicy });
    new HttpStage(this, 'HttpStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.httpThrottle ?? DEFAULT_THROTTLE,
      accessLogSettings: {
        destination: new LogGroupLogDestination(httpAccessLogs),
        // No query string and no headers: a token must never reach the logs.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            httpMethod: '$context.httpMethod',
            routeKey: '$context.routeKey',
            status: '$context.status',
            protocol: '$context.protocol',
            responseLength: '$context.responseLength',
            responseLatency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            // Who (the token's sub, never the token) and why an authorizer failed.
            principal: '$context.authorizer.sub',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });

    // ---- WebSocket API ----------------------------------------------------------------------
    this.webSocketApi = new WebSocketApi(this, 'WebSocketApi', {
      description: 'Roster membership events',
      routeSelectionExpression: WS_ROUTE_SELECTION,
    });
    for (const route of WS_ROUTES) {
      const fnId = `Ws${pascal(route.handler)}`;
      const fn = addFunction(fnId, {
        entry: `functions/ws/${route.handler}.ts`,
        description: `Roster WebSocket ${route.routeKey}`,
      });
      const access = WS_TABLE_ACCESS[route.handler];
      if (access) fn.useTable(this.table, access);
      const wsRoute = this.webSocketApi.addRoute(route.routeKey, {
        integration: new WebSocketLambdaIntegration(`${fnId}Integration`, fn),
        returnResponse: WS_ROUTES_WITH_RESPONSE.has(route.routeKey),
        // API Gateway authorizes a WebSocket connection once, on $connect; no other route can have an authorizer.
        authorizer:
          route.routeKey === '$connect'
            ? new WebSocketLambdaAuthorizer('ConnectAuthorizer', this.webSocketAuthorizer, { identitySource: ['route.request.querystring.token'] })
            : undefined,
      });
      if (route.routeKey !== '$connect') {
        Validations.of(wsRoute).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason:
            `API Gateway allows an authorizer on a WebSocket API's $connect route only; ${route.routeKey} runs on a connection ` +
            'that $connect already authorized, and its handler checks the cluster of each message against the token claims ' +
            'API Gateway passes on from $connect.',
        });
      }
    }
    const wsAccessLogs = new LogGroup(this, 'WebSocketAccessLogs', { retention: logRetention, removalPolicy });
    this.webSocketStage = new WebSocketStage(this, 'WebSocketStage', {
      webSocketApi: this.webSocketApi,
      stageName: WEBSOCKET_STAGE_NAME,
      autoDeploy: true,
      throttle: props.webSocketThrottle ?? DEFAULT_THROTTLE,
      accessLogSettings: {
        destination: new LogGroupLogDestination(wsAccessLogs),
        // The console's JSON preset for WebSocket APIs. No query string: `?token=` must never reach the logs.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            eventType: '$context.eventType',
            routeKey: '$context.routeKey',
            status: '$context.status',
            connectionId: '$context.connectionId',
          }),
        ),
      },
    });
    // The console page connects to the WebSocket API, whose URL exists only now.
    this.functions.get(`Http${pascal(CONSOLE_HANDLER)}`)?.addEnvironment('WEBSOCKET_URL', this.webSocketStage.url);
    if (props.createApiGatewayLogsRole ?? true) {
      this.webSocketStage.node.addDependency(this.apiGatewayLogsAccount());
    }

    // ---- Stream fan-out -----------------------------------------------------------------------
    this.fanoutFailures = new Queue(this, 'FanoutFailures', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The longest SQS allows: time to inspect what could not be delivered.
      retentionPeriod: Duration.days(14),
    });
    this.fanout = addFunction('Fanout', {
      entry: 'functions/stream/fanout.ts',
      description: 'Roster stream fan-out: membership events to WebSocket subscribers',
      // A batch posts each event to every subscriber of its cluster (64 posts in flight).
      timeout: Duration.seconds(60),
      // The fan-out is CPU-bound in the SDK: each PostToConnection costs ~0.4 ms of CPU (signing,
      // endpoint resolution, serde; measured on one core of the dev box, see README "Measured").
      // Lambda's CPU grows with memory (1,769 MB = one vCPU), so 1,000 subscribers need a full
      // vCPU to stay within ~0.5 s; at 256 MB the same batch would take seconds.
      memorySize: FANOUT_MEMORY_MB,
    });
    this.fanout.useTable(this.table, FANOUT_TABLE_ACCESS);
    this.fanout.useConnections(this.webSocketStage);
    this.fanout.addEventSource(
      new DynamoEventSource(this.table, {
        startingPosition: StartingPosition.LATEST,
        // The very patterns the local stream poller applies: keepalives never invoke the fan-out.
        filters: FANOUT_FILTER_PATTERNS.map((pattern) => FilterCriteria.filter(pattern)),
        batchSize: 100,
        // Latency is the point of the fan-out: never wait to fill a batch.
        maxBatchingWindow: Duration.seconds(0),
        // One batch per shard at a time keeps each cluster's events in stream (revision) order.
        parallelizationFactor: 1,
        reportBatchItemFailures: true,
        bisectBatchOnError: true,
        retryAttempts: 5,
        // An older record has been superseded by every client's periodic refresh (and its revision
        // gap check); retrying it longer would only hold the newer records of its shard back.
        maxRecordAge: Duration.minutes(15),
        onFailure: new SqsDlq(this.fanoutFailures),
      }),
    );
    Validations.of(this.fanout.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'dynamodb:ListStreams (added by the stream event source) lists the account\'s streams and takes no stream ARN, so ' +
        'it cannot be scoped to one resource; the stream read actions (DescribeStream, GetRecords, GetShardIterator) are ' +
        'scoped to this table\'s stream ARN.',
    });
    Validations.of(this.fanoutFailures).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter destination: the on-failure destination of the stream event source mapping ' +
        '(cdk-nag only recognises queue-to-queue redrive). A DLQ behind it would have nothing to catch.',
    });

    // ---- Sweeper: every minute, sweeping every sweepIntervalSeconds inside the invocation ----
    this.sweeper = addFunction('Sweeper', {
      entry: 'functions/sweeper/sweeper.ts',
      description: 'Roster sweeper: marks UP nodes past their lease DOWN',
      environment: { SWEEP_LOOP_SECONDS: String(SWEEP_LOOP_SECONDS) },
      // I/O bound and always on: the smallest size keeps its standing cost lowest (see the README).
      memorySize: 128,
      // The loop ends after SWEEP_LOOP_SECONDS; the rest is headroom for a slow last sweep.
      timeout: Duration.seconds(SWEEP_LOOP_SECONDS + 30),
      reservedConcurrentExecutions: 'sweeperReservedConcurrency' in props ? props.sweeperReservedConcurrency : 2,
    });
    this.sweeper.useTable(this.table, SWEEPER_TABLE_ACCESS);
    // A failed or late tick is superseded by the next one a minute later: never retry it.
    this.sweeper.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: SWEEPER_SCHEDULE });
    new Rule(this, 'SweeperSchedule', {
      description: 'Starts a Roster sweeper invocation every minute',
      schedule: Schedule.rate(SWEEPER_SCHEDULE),
      targets: [new LambdaFunction(this.sweeper, { retryAttempts: 0, maxEventAge: SWEEPER_SCHEDULE })],
    });

    // ---- Alarms and the dashboard: is the information center itself healthy? ----------------
    this.observability = new RosterObservability(this, 'Observability', {
      httpApi: this.httpApi,
      webSocketApi: this.webSocketApi,
      webSocketStage: this.webSocketStage,
      fanout: this.fanout,
      sweeper: this.sweeper,
      fanoutFailures: this.fanoutFailures,
      alarmTopic: props.alarmTopicArn ? Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) : undefined,
      iteratorAgeThreshold: props.iteratorAgeAlarmThreshold,
    });

    // ---- Outputs: the CLI and the conformance suite read these keys ---------------------------
    new CfnOutput(this, 'HttpApiUrl', {
      description: 'Base URL of the HTTP API (no trailing slash)',
      // The `$default` stage is served at the API's root.
      value: this.httpApi.apiEndpoint,
    });
    new CfnOutput(this, 'WebSocketUrl', { description: 'wss URL of the WebSocket stage', value: this.webSocketStage.url });
    new CfnOutput(this, 'TableName', { description: 'The DynamoDB table', value: this.table.tableName });
    new CfnOutput(this, 'TokenSecretArn', {
      description: 'The token signing secret (roster token create --outputs reads it with your AWS credentials)',
      value: this.tokenSecret.secretArn,
    });

    this.acknowledgeNagFindings();
  }

  /** API Gateway's account-level CloudWatch Logs role, which WebSocket (and REST) access logging needs. */
  private apiGatewayLogsAccount(): CfnAccount {
    const role = new Role(this, 'ApiGatewayLogsRole', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      description: 'API Gateway account-level role for pushing access logs to CloudWatch Logs',
      managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    // The account setting outlives this stack; deleting the role would break logging of other APIs.
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        'This is the policy AWS documents for API Gateway\'s account-level logging role; AWS maintains it as API Gateway\'s ' +
        'logging needs change. The role can only be assumed by apigateway.amazonaws.com.',
    });
    const account = new CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
    account.applyRemovalPolicy(RemovalPolicy.RETAIN);
    return account;
  }

  /** cdk-nag (AwsSolutions) findings that are deliberate, each with its reason. */
  private acknowledgeNagFindings(): void {
    Validations.of(this.tokenSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The secret is an HMAC signing key, not a credential of another system, so no rotation function has anything to ' +
        'update. Rotate it by putting a new value (`aws secretsmanager put-secret-value`): the authorizers re-read it ' +
        'within 5 minutes and accept the previous version too, so tokens signed before the rotation stay valid until ' +
        'the next one; new tokens are signed with the new value. See the README, Access control.',
    });
  }
}

/** Fails synth with the core's own message when a setting is out of the range the functions accept. */
function validateSettings(settings: RuntimeEnvironment): void {
  readConfig({
    TABLE_NAME: 'synth-check',
    DEFAULT_LEASE_SECONDS: String(settings.defaultLeaseSeconds),
    DISCONNECT_GRACE_SECONDS: String(settings.disconnectGraceSeconds),
    SWEEP_INTERVAL_SECONDS: String(settings.sweepIntervalSeconds),
    DOWN_RETENTION_SECONDS: String(settings.downRetentionSeconds),
    SWEEP_SHARDS: String(settings.sweepShards),
    SWEEPER_AMNESTY_SECONDS: String(settings.sweeperAmnestySeconds),
    SWEEP_LOOP_SECONDS: String(SWEEP_LOOP_SECONDS),
  });
}
