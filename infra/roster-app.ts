/**
 * Builds the Roster app from CDK context (`cdk.json` or `-c key=value`), so
 * that `infra/app.ts` and the tests assemble exactly the same thing, and
 * registers the policy validation every synth runs: cdk-nag's AwsSolutions
 * pack and AWS Control Tower's proactive controls (infra/control-tower.ts).
 *
 * Context keys (all optional; unset means the stack's documented default):
 *
 * | key | stack property |
 * |---|---|
 * | `defaultLeaseSeconds`, `disconnectGraceSeconds`, `sweepIntervalSeconds`, `downRetentionSeconds`, `sweepShards`, `sweeperAmnestySeconds`, `selfPreservationPercent`, `selfPreservationMinNodes`, `selfPreservationMaxSeconds`, `fanoutPostsPerSecond` | the settings of the same name |
 * | `expectedNodes` (a whole number; default 100000) | `expectedNodes`: each hot route's throttle and the table's pre-warmed writes (infra/deployment-size.ts) |
 * | `httpRateLimit`, `httpBurstLimit` | `httpThrottle`: every HTTP route, instead of the derived throttles |
 * | `wsRateLimit`, `wsBurstLimit` | `webSocketThrottle`: every WebSocket route, instead of the derived throttles |
 * | `removalPolicy` (`retain` or `destroy`) | `removalPolicy` |
 * | `logRetentionDays` (a CloudWatch Logs retention, e.g. `30`, `365`) | `logRetention` |
 * | `systemLogLevel` (`WARN`, `INFO` or `DEBUG`; default `WARN`) | `systemLogLevel`: `INFO` brings back Lambda's START and REPORT lines |
 * | `kmsKeyArn` (a KMS key ARN) | `kmsKeyArn` |
 * | `sweeperReservedConcurrency` (a whole number, or `none`) | `sweeperReservedConcurrency` |
 * | `webSocketAccessLogs`, `createApiGatewayLogsRole` (`true` or `false`) | `webSocketAccessLogs` |
 * | `alarmTopicArn` (an SNS topic ARN) | `alarmTopicArn` |
 * | `authCacheSeconds` (0..3600; 0 turns the HTTP authorizer's cache off) | `authorizerCacheTtl` |
 * | `stackName` | the stack's name (default `Roster`) |
 */
import { Duration, RemovalPolicy, Validations, type App } from 'aws-cdk-lib';
import type { ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import { SystemLogLevel } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Node } from 'constructs';
import { controlTowerValidator } from './control-tower.ts';
import type { DetectionSettings } from './function.ts';
import { DETECTION_DEFAULTS, RosterStack, type RosterStackProps } from './roster-stack.ts';
import type { WebSocketAccessLogs } from './websocket-api.ts';

/** The stack's name, and so the top-level key of `cdk-outputs.json`. */
export const STACK_NAME = 'Roster';

const DETECTION_KEYS = Object.keys(DETECTION_DEFAULTS) as (keyof DetectionSettings)[];

function contextError(key: string, raw: unknown, expected: string): Error {
  return new Error(`Context value ${key}=${JSON.stringify(raw)} is invalid: expected ${expected}`);
}

/** A number from context; `-c key=2` arrives as the string "2", `cdk.json` may hold a number. */
function numberFrom(node: Node, key: string): number | undefined {
  const raw: unknown = node.tryGetContext(key);
  if (raw === undefined) return undefined;
  const value = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(value)) throw contextError(key, raw, 'a number');
  return value;
}

function booleanFrom(node: Node, key: string): boolean | undefined {
  const raw: unknown = node.tryGetContext(key);
  if (raw === undefined) return undefined;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw contextError(key, raw, 'true or false');
}

function throttleFrom(node: Node, rateKey: string, burstKey: string): ThrottleSettings | undefined {
  const rateLimit = numberFrom(node, rateKey);
  const burstLimit = numberFrom(node, burstKey);
  if (rateLimit === undefined && burstLimit === undefined) return undefined;
  if (rateLimit === undefined || burstLimit === undefined) {
    throw new Error(`Context values ${rateKey} and ${burstKey} go together: set both or neither`);
  }
  return { rateLimit, burstLimit };
}

function systemLogLevelFrom(node: Node): SystemLogLevel | undefined {
  const raw: unknown = node.tryGetContext('systemLogLevel');
  if (raw === undefined) return undefined;
  const level = Object.values(SystemLogLevel).find((l) => l === raw);
  if (level === undefined) throw contextError('systemLogLevel', raw, Object.values(SystemLogLevel).join(', '));
  return level;
}

function expectedNodesFrom(node: Node): number | undefined {
  const value = numberFrom(node, 'expectedNodes');
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw contextError('expectedNodes', value, 'a whole number of at least 1');
  return value;
}

function removalPolicyFrom(node: Node): RemovalPolicy | undefined {
  const raw: unknown = node.tryGetContext('removalPolicy');
  if (raw === undefined) return undefined;
  if (raw === 'retain') return RemovalPolicy.RETAIN;
  if (raw === 'destroy') return RemovalPolicy.DESTROY;
  throw contextError('removalPolicy', raw, '"retain" or "destroy"');
}

function logRetentionFrom(node: Node): RetentionDays | undefined {
  const days = numberFrom(node, 'logRetentionDays');
  if (days === undefined) return undefined;
  const valid = Object.values(RetentionDays).filter((v): v is RetentionDays => typeof v === 'number');
  if (!valid.includes(days)) throw contextError('logRetentionDays', days, `one of ${valid.join(', ')}`);
  return days;
}

/** `-c key=arn:aws:<service>:…`: a string ARN of the service, else a clear error. */
function arnFrom(node: Node, key: string, service: string): string | undefined {
  const raw: unknown = node.tryGetContext(key);
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !new RegExp(`^arn:aws[a-z-]*:${service}:`).test(raw)) throw contextError(key, raw, `an ${service} ARN (arn:aws:${service}:…)`);
  return raw;
}

function webSocketAccessLogsFrom(node: Node): WebSocketAccessLogs | undefined {
  const logs = booleanFrom(node, 'webSocketAccessLogs');
  const createRole = booleanFrom(node, 'createApiGatewayLogsRole');
  if (createRole && logs === false) throw new Error('Context values createApiGatewayLogsRole=true and webSocketAccessLogs=false contradict each other: the role is only for access logs');
  if (createRole) return 'createAccountRole';
  if (logs === undefined && createRole === undefined) return undefined;
  return logs ? 'accountRoleExists' : 'none';
}

function reservedConcurrencyFrom(node: Node): number | undefined {
  if (node.tryGetContext('sweeperReservedConcurrency') === 'none') return undefined;
  const value = numberFrom(node, 'sweeperReservedConcurrency');
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw contextError('sweeperReservedConcurrency', value, 'a whole number of at least 1, or none');
  return value;
}

function authorizerCacheTtlFrom(node: Node): Duration | undefined {
  const seconds = numberFrom(node, 'authCacheSeconds');
  if (seconds === undefined) return undefined;
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 3600) throw contextError('authCacheSeconds', seconds, 'a whole number of seconds from 0 to 3600');
  return Duration.seconds(seconds);
}

/** `-c stackName=` deploys a second, independent copy (what `npm run test:aws` does); CloudFormation's rule for stack names. */
function stackNameFrom(node: Node): string {
  const raw: unknown = node.tryGetContext('stackName');
  if (raw === undefined) return STACK_NAME;
  if (typeof raw !== 'string' || !/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(raw)) throw contextError('stackName', raw, 'a letter, then up to 127 letters, digits or hyphens');
  return raw;
}

/** Stack properties from context. Only keys that are set appear, so the stack's defaults apply to the rest. */
export function stackPropsFromContext(node: Node): RosterStackProps {
  const props: { -readonly [K in keyof RosterStackProps]: RosterStackProps[K] } = {};
  for (const key of DETECTION_KEYS) {
    const value = numberFrom(node, key);
    if (value !== undefined) props[key] = value;
  }
  const found: Partial<RosterStackProps> = {
    expectedNodes: expectedNodesFrom(node),
    httpThrottle: throttleFrom(node, 'httpRateLimit', 'httpBurstLimit'),
    webSocketThrottle: throttleFrom(node, 'wsRateLimit', 'wsBurstLimit'),
    removalPolicy: removalPolicyFrom(node),
    logRetention: logRetentionFrom(node),
    systemLogLevel: systemLogLevelFrom(node),
    kmsKeyArn: arnFrom(node, 'kmsKeyArn', 'kms'),
    sweeperReservedConcurrency: reservedConcurrencyFrom(node),
    webSocketAccessLogs: webSocketAccessLogsFrom(node),
    authorizerCacheTtl: authorizerCacheTtlFrom(node),
    alarmTopicArn: arnFrom(node, 'alarmTopicArn', 'sns'),
  };
  for (const [key, value] of Object.entries(found)) if (value !== undefined) Object.assign(props, { [key]: value });
  return props;
}

/**
 * Adds the Roster stack to `app`, with the policy validation `cdk synth`
 * runs: cdk-nag's AwsSolutions pack and Control Tower's proactive controls.
 * A finding that is not acknowledged (with its reason, at the resource) or
 * a control not disabled (with its reason, in infra/control-tower.ts) fails
 * the synth. The stack is environment-agnostic — no account or region
 * lookups — so synth needs no credentials.
 */
export function addRoster(app: App, props: RosterStackProps = {}): RosterStack {
  const stack = buildRoster(app, props);
  addPolicyValidation(app, stack);
  return stack;
}

/** The stack alone, from context and `props` (which win). */
export function buildRoster(app: App, props: RosterStackProps = {}): RosterStack {
  return new RosterStack(app, stackNameFrom(app.node), {
    description: 'Roster: serverless information center for cluster membership and node health',
    ...stackPropsFromContext(app.node),
    ...props,
  });
}

/**
 * The validation plugins of `addRoster`. Control Tower's controls cost a few
 * seconds of cfn-guard per synth; tests that synthesize many variants of
 * the stack for other reasons may leave them out (`controlTower: false`).
 */
export function addPolicyValidation(app: App, stack: RosterStack, checks: { controlTower?: boolean } = {}): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  if (checks.controlTower ?? true) {
    Validations.of(app).addPlugins(controlTowerValidator({ customerManagedKey: stack.encryptionKey !== undefined, logRetentionDays: stack.logRetention }));
  }
}
