/**
 * Builds the Roster app from CDK context (`cdk.json` or `-c key=value`), so
 * that `infra/app.ts` and the tests assemble exactly the same thing.
 *
 * Context keys (all optional; unset means the stack's documented default):
 *
 * | key | stack property |
 * |---|---|
 * | `defaultLeaseSeconds`, `disconnectGraceSeconds`, `sweepIntervalSeconds`, `downRetentionSeconds`, `sweepShards`, `sweeperAmnestySeconds` | the detection settings of the same name |
 * | `httpRateLimit`, `httpBurstLimit` | `httpThrottle` |
 * | `wsRateLimit`, `wsBurstLimit` | `webSocketThrottle` |
 * | `removalPolicy` (`retain` or `destroy`) | `removalPolicy` |
 * | `logRetentionDays` (a CloudWatch Logs retention, e.g. `7`, `30`, `365`) | `logRetention` |
 * | `sweeperReservedConcurrency` (a number, or `none`) | `sweeperReservedConcurrency` |
 * | `createApiGatewayLogsRole` (`true` or `false`) | `createApiGatewayLogsRole` |
 * | `alarmTopicArn` (an SNS topic ARN) | `alarmTopicArn` |
 * | `authCacheSeconds` (0..3600; 0 turns the HTTP authorizer's cache off) | `authorizerCacheTtl` |
 */
import { Duration, RemovalPolicy, Validations, type App } from 'aws-cdk-lib';
import type { ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Node } from 'constructs';
import { RosterStack, type DetectionSettings, type RosterStackProps } from './roster-stack.ts';

/** The stack's name, and so the top-level key of `cdk-outputs.json`. */
export const STACK_NAME = 'Roster';

const DETECTION_KEYS = [
  'defaultLeaseSeconds',
  'disconnectGraceSeconds',
  'sweepIntervalSeconds',
  'downRetentionSeconds',
  'sweepShards',
  'sweeperAmnestySeconds',
] as const satisfies readonly (keyof DetectionSettings)[];

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

/** Stack properties from context. Only keys that are set appear, so the stack's defaults apply to the rest. */
export function stackPropsFromContext(node: Node): RosterStackProps {
  const props: { -readonly [K in keyof RosterStackProps]: RosterStackProps[K] } = {};
  for (const key of DETECTION_KEYS) {
    const value = numberFrom(node, key);
    if (value !== undefined) props[key] = value;
  }
  const httpThrottle = throttleFrom(node, 'httpRateLimit', 'httpBurstLimit');
  if (httpThrottle) props.httpThrottle = httpThrottle;
  const webSocketThrottle = throttleFrom(node, 'wsRateLimit', 'wsBurstLimit');
  if (webSocketThrottle) props.webSocketThrottle = webSocketThrottle;
  const removalPolicy = removalPolicyFrom(node);
  if (removalPolicy) props.removalPolicy = removalPolicy;
  const logRetention = logRetentionFrom(node);
  if (logRetention !== undefined) props.logRetention = logRetention;
  const reserved: unknown = node.tryGetContext('sweeperReservedConcurrency');
  if (reserved === 'none') props.sweeperReservedConcurrency = undefined;
  else if (reserved !== undefined) props.sweeperReservedConcurrency = numberFrom(node, 'sweeperReservedConcurrency');
  const createRole = booleanFrom(node, 'createApiGatewayLogsRole');
  if (createRole !== undefined) props.createApiGatewayLogsRole = createRole;
  const authCache = numberFrom(node, 'authCacheSeconds');
  if (authCache !== undefined) {
    if (!Number.isInteger(authCache) || authCache < 0 || authCache > 3600) throw contextError('authCacheSeconds', authCache, 'a whole number of seconds from 0 to 3600');
    props.authorizerCacheTtl = Duration.seconds(authCache);
  }
  const alarmTopicArn: unknown = node.tryGetContext('alarmTopicArn');
  if (alarmTopicArn !== undefined) {
    if (typeof alarmTopicArn !== 'string' || !alarmTopicArn.startsWith('arn:')) throw new Error(`Context alarmTopicArn=${String(alarmTopicArn)} must be an SNS topic ARN`);
    props.alarmTopicArn = alarmTopicArn;
  }
  return props;
}

/**
 * Adds the Roster stack to `app` and runs cdk-nag's AwsSolutions pack on it
 * at synth: any finding that is not acknowledged (with its reason, in the
 * stack) fails the synth. The stack is environment-agnostic — no account or
 * region lookups — so synth needs no credentials.
 */
export function addRoster(app: App, props: RosterStackProps = {}): RosterStack {
  const stack = new RosterStack(app, STACK_NAME, {
    description: 'Roster: serverless membership and health registry',
    ...stackPropsFromContext(app.node),
    ...props,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
