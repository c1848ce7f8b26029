/**
 * The Roster stack, composed the way the architecture reads:
 *
 *   clients ──HTTP──▶ RosterHttpApi ─┐                 ┌─▶ RosterFanout ──@connections──▶ subscribers
 *   clients ──wss───▶ RosterWebSocketApi ─▶ RosterTable ─stream─┘
 *   EventBridge ──every minute──▶ RosterSweeper ─▶ RosterTable
 *   RosterObservability: alarms (to an SNS topic) and a dashboard over all of them
 *
 * Each construct holds its functions and grants; everything with a single
 * definition in `functions/core/` (table shape, route tables, stream filter,
 * settings and their bounds) is imported from there, never restated.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import { Key, type IKey } from 'aws-cdk-lib/aws-kms';
import { SystemLogLevel } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { CONFIG_DEFAULTS, type Settings } from '../functions/core/config.ts';
import { applyControlTowerFixes } from './control-tower.ts';
import { DEFAULT_EXPECTED_NODES, deriveFromSize } from './deployment-size.ts';
import { RosterFanout } from './fanout.ts';
import { RosterFunction, type DetectionSettings, type FunctionDefaults } from './function.ts';
import { RosterHttpApi } from './http-api.ts';
import { RosterObservability } from './observability.ts';
import { RosterSweeper } from './sweeper.ts';
import { RosterTable } from './table.ts';
import { RosterTokenSecret } from './token-secret.ts';
import { RosterWebSocketApi, type WebSocketAccessLogs } from './websocket-api.ts';

export { FANOUT_MEMORY_MB } from './fanout.ts';
export { SWEEP_LOOP_SECONDS, SWEEPER_SCHEDULE } from './sweeper.ts';
export { WEBSOCKET_STAGE_NAME } from './websocket-api.ts';

/** The detection settings with their defaults (`functions/core/config.ts` documents each); the sweeper's loop is its own. */
export const DETECTION_DEFAULTS: DetectionSettings = detectionSettingsOf(CONFIG_DEFAULTS);

function detectionSettingsOf({ sweepLoopSeconds: _loop, ...detection }: Settings): DetectionSettings {
  return detection;
}

export interface RosterStackProps extends StackProps, Partial<DetectionSettings> {
  /**
   * The nodes (and watchers) the deployment is built for: the throttle of
   * each route the SDK calls at its own rhythm (keepalive, list, register,
   * ping, `$connect`) and the table's pre-warmed writes follow from it
   * (infra/deployment-size.ts has the rule).
   * @default 100000
   */
  readonly expectedNodes?: number;
  /**
   * Steady-state requests per second and burst of every route of the HTTP
   * API stage, instead of the throttles derived from `expectedNodes`.
   * @default per route from `expectedNodes`; 500 / 1,000 for the routes the SDK does not call at its own rhythm
   */
  readonly httpThrottle?: ThrottleSettings;
  /** Messages per second and burst of every route of the WebSocket stage (`$connect` included), instead of the derived ones. @default per route from `expectedNodes` */
  readonly webSocketThrottle?: ThrottleSettings;
  /**
   * How long API Gateway caches the HTTP authorizer's result per `Authorization`
   * header value (0 to 1 h). With caching, a request without the header is
   * answered by API Gateway itself (`401 {"message":"Unauthorized"}`), before
   * the authorizer. `Duration.seconds(0)` turns caching off and drops the
   * identity source: every request then gets the contract's JSON, at the price
   * of one authorizer invocation per request. See docs/operating/access-control.md.
   * @default Duration.minutes(5)
   */
  readonly authorizerCacheTtl?: Duration;
  /**
   * What `cdk destroy` does with the table, the token secret and the log groups.
   * @default RemovalPolicy.RETAIN — membership data and logs outlive an accidental destroy.
   */
  readonly removalPolicy?: RemovalPolicy;
  /** Retention of function and access logs. @default RetentionDays.ONE_YEAR (what Control Tower's CT.CLOUDWATCH.PR.2 asks) */
  readonly logRetention?: RetentionDays;
  /** Which of Lambda's own lines (START, REPORT at INFO) the functions log (see `FunctionDefaults.systemLogLevel`). @default SystemLogLevel.WARN */
  readonly systemLogLevel?: SystemLogLevel;
  /** Customer-managed KMS key (ARN) for the table, the token secret and the log groups. @default AWS managed keys */
  readonly kmsKeyArn?: string;
  /** Reserved concurrency of the sweeper (see `RosterSweeperProps`). @default none */
  readonly sweeperReservedConcurrency?: number;
  /** WebSocket access logging and API Gateway's account-level logging role (see `WebSocketAccessLogs`). @default 'none' */
  readonly webSocketAccessLogs?: WebSocketAccessLogs;
  /** SNS topic that receives the alarms' ALARM and OK notifications. @default a topic of this stack (output `AlarmTopicArn`) */
  readonly alarmTopicArn?: string;
  /** Stream iterator age at which the fan-out counts as falling behind. @default 60 seconds */
  readonly iteratorAgeAlarmThreshold?: Duration;
}

export class RosterStack extends Stack {
  readonly table: RosterTable;
  readonly tokenSecret: RosterTokenSecret;
  readonly http: RosterHttpApi;
  readonly webSocket: RosterWebSocketApi;
  readonly fanout: RosterFanout;
  readonly sweeper: RosterSweeper;
  readonly observability: RosterObservability;
  /** Every function, keyed by its construct path below the stack (e.g. `HttpApi/RegisterHandler`). */
  readonly functions = new Map<string, RosterFunction>();
  /** The customer-managed key of the table, the token secret and the log groups, if one was given. */
  readonly encryptionKey: IKey | undefined;
  /** Retention of every log group, in days. */
  readonly logRetention: RetentionDays;

  constructor(scope: Construct, id: string, props: RosterStackProps = {}) {
    super(scope, id, props);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const key = props.kmsKeyArn === undefined ? undefined : Key.fromKeyArn(this, 'Key', props.kmsKeyArn);
    const functions = functionDefaults(props, removalPolicy, key);
    this.encryptionKey = key;
    this.logRetention = functions.logRetention;
    const derived = deriveFromSize(props.expectedNodes ?? DEFAULT_EXPECTED_NODES, functions.settings.defaultLeaseSeconds);

    this.table = new RosterTable(this, 'Table', { removalPolicy, encryptionKey: key, warmWriteUnitsPerSecond: derived.warmWriteUnitsPerSecond });
    this.tokenSecret = new RosterTokenSecret(this, 'TokenSecret', { removalPolicy, encryptionKey: key });
    const shared = { functions, table: this.table, tokenSecret: this.tokenSecret };
    this.http = new RosterHttpApi(this, 'HttpApi', {
      ...shared,
      // A throttle given by hand applies to every route; otherwise each hot route gets its own.
      throttle: props.httpThrottle ?? derived.http.default,
      routeThrottles: props.httpThrottle ? {} : derived.http.routes,
      authorizerCacheTtl: props.authorizerCacheTtl ?? Duration.minutes(5),
    });
    this.webSocket = new RosterWebSocketApi(this, 'WebSocketApi', {
      ...shared,
      throttle: props.webSocketThrottle ?? derived.webSocket.default,
      routeThrottles: props.webSocketThrottle ? {} : derived.webSocket.routes,
      accessLogs: props.webSocketAccessLogs ?? 'none',
    });
    this.http.useWebSocketUrl(this.webSocket.stage.url);
    this.fanout = new RosterFanout(this, 'Fanout', { functions, table: this.table, stage: this.webSocket.stage });
    this.sweeper = new RosterSweeper(this, 'Sweeper', { functions, table: this.table, reservedConcurrency: props.sweeperReservedConcurrency });
    this.observability = new RosterObservability(this, 'Observability', {
      httpApi: this.http.api,
      webSocketApi: this.webSocket.api,
      webSocketStage: this.webSocket.stage,
      webSocketFunctions: [...this.webSocket.handlers.values()],
      fanout: this.fanout.function,
      sweeper: this.sweeper.function,
      fanoutFailures: this.fanout.failures,
      alarmTopic: props.alarmTopicArn === undefined ? undefined : Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn),
      iteratorAgeThreshold: props.iteratorAgeAlarmThreshold,
    });
    for (const fn of this.node.findAll()) {
      if (fn instanceof RosterFunction) this.functions.set(fn.node.path.slice(this.node.path.length + 1), fn);
    }
    applyControlTowerFixes(this);
    this.addOutputs();
  }

  /** The CLI, the conformance suite and `npm run test:aws` read these keys. */
  private addOutputs(): void {
    new CfnOutput(this, 'HttpApiUrl', {
      description: 'Base URL of the HTTP API (no trailing slash)',
      // The `$default` stage is served at the API's root.
      value: this.http.api.apiEndpoint,
    });
    new CfnOutput(this, 'WebSocketUrl', { description: 'wss URL of the WebSocket stage', value: this.webSocket.stage.url });
    new CfnOutput(this, 'TableName', { description: 'The DynamoDB table', value: this.table.tableName });
    new CfnOutput(this, 'TokenSecretArn', {
      description: 'The token signing secret (roster token create --outputs reads it with your AWS credentials)',
      value: this.tokenSecret.secretArn,
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'The SNS topic every alarm notifies (subscribe an address or a pager to it)',
      value: this.observability.alarmTopic.topicArn,
    });
  }
}

function functionDefaults(props: RosterStackProps, logRemovalPolicy: RemovalPolicy, logEncryptionKey: IKey | undefined): FunctionDefaults {
  const settings = { ...DETECTION_DEFAULTS };
  for (const name of Object.keys(settings) as (keyof DetectionSettings)[]) settings[name] = props[name] ?? settings[name];
  return { settings, logRetention: props.logRetention ?? RetentionDays.ONE_YEAR, systemLogLevel: props.systemLogLevel ?? SystemLogLevel.WARN, logRemovalPolicy, logEncryptionKey };
}
