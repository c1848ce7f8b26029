/**
 * Configuration, read once from the environment at cold start.
 *
 * Every setting that changes detection behaviour lives here so that the CDK
 * stack, the local runtime and the tests all speak the same variable names.
 * A missing required variable fails fast with a message naming it.
 */

export interface Config {
  /** The single DynamoDB table. */
  tableName: string;
  /** Endpoint override for DynamoDB (DynamoDB Local, LocalStack). */
  dynamodbEndpoint: string | undefined;
  /** Lease used when a register request names none. @default 15 */
  defaultLeaseSeconds: number;
  /** Lease left to a node whose bound WebSocket connection dropped. @default 2 */
  disconnectGraceSeconds: number;
  /** How often the sweeper looks for expired nodes. @default 1 */
  sweepIntervalSeconds: number;
  /** How long DOWN records stay readable (`?status=all`) before TTL may delete them. @default 86400 */
  downRetentionSeconds: number;
  /** Partitions of the expiry index; bounds keepalive writes per index partition. @default 4 */
  sweepShards: number;
  /**
   * If the sweeper has not completed a sweep for this long, the next sweep grants
   * expired nodes one more lease instead of declaring them down (self-preservation).
   * @default 120
   */
  sweeperAmnestySeconds: number;
  /** How long one sweeper invocation keeps sweeping (Lambda loops inside one invocation). @default 0 (one sweep) */
  sweepLoopSeconds: number;
  /** `@connections` endpoint of the WebSocket API (https://{api}.execute-api.{region}.amazonaws.com/{stage}). */
  websocketCallbackUrl: string | undefined;
  /**
   * The function that delivers one page of a large fan-out (AWS); without it the
   * fan-out delivers every page itself (the local runtime).
   */
  fanoutPageFunction: string | undefined;
  /** Endpoint override for Lambda's Invoke API (the local runtime's). */
  lambdaEndpoint: string | undefined;
}

/** The defaults of every setting; the CDK stack and the local runtime take theirs from here. */
export const CONFIG_DEFAULTS = {
  defaultLeaseSeconds: 15,
  disconnectGraceSeconds: 2,
  sweepIntervalSeconds: 1,
  downRetentionSeconds: 86_400,
  sweepShards: 4,
  sweeperAmnestySeconds: 120,
  sweepLoopSeconds: 0,
} as const;

export const LEASE_MIN_SECONDS = 2;
export const LEASE_MAX_SECONDS = 3600;

function numberFromEnv(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  range: { min: number; max: number; whole?: boolean },
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  const { min, max, whole = true } = range;
  if (!Number.isFinite(value) || value < min || value > max || (whole && !Number.isInteger(value))) {
    const kind = whole ? 'a whole number' : 'a number';
    throw new Error(`Configuration error: ${name}=${raw} must be ${kind} between ${min} and ${max}`);
  }
  return value;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const tableName = env.TABLE_NAME;
  if (!tableName) throw new Error('Configuration error: TABLE_NAME is not set');
  return {
    tableName,
    dynamodbEndpoint: env.DYNAMODB_ENDPOINT || undefined,
    defaultLeaseSeconds: numberFromEnv(env, 'DEFAULT_LEASE_SECONDS', CONFIG_DEFAULTS.defaultLeaseSeconds, { min: LEASE_MIN_SECONDS, max: LEASE_MAX_SECONDS }),
    disconnectGraceSeconds: numberFromEnv(env, 'DISCONNECT_GRACE_SECONDS', CONFIG_DEFAULTS.disconnectGraceSeconds, { min: 0, max: LEASE_MAX_SECONDS, whole: false }),
    sweepIntervalSeconds: numberFromEnv(env, 'SWEEP_INTERVAL_SECONDS', CONFIG_DEFAULTS.sweepIntervalSeconds, { min: 0.05, max: 60, whole: false }),
    downRetentionSeconds: numberFromEnv(env, 'DOWN_RETENTION_SECONDS', CONFIG_DEFAULTS.downRetentionSeconds, { min: 60, max: 365 * 86_400 }),
    sweepShards: numberFromEnv(env, 'SWEEP_SHARDS', CONFIG_DEFAULTS.sweepShards, { min: 1, max: 64 }),
    sweeperAmnestySeconds: numberFromEnv(env, 'SWEEPER_AMNESTY_SECONDS', CONFIG_DEFAULTS.sweeperAmnestySeconds, { min: 1, max: 86_400, whole: false }),
    sweepLoopSeconds: numberFromEnv(env, 'SWEEP_LOOP_SECONDS', CONFIG_DEFAULTS.sweepLoopSeconds, { min: 0, max: 840, whole: false }),
    websocketCallbackUrl: env.WEBSOCKET_CALLBACK_URL || undefined,
    fanoutPageFunction: env.FANOUT_PAGE_FUNCTION || undefined,
    lambdaEndpoint: env.LAMBDA_ENDPOINT || undefined,
  };
}

let cached: Config | undefined;

/** The process-wide configuration, read on first use. */
export function config(): Config {
  cached ??= readConfig();
  return cached;
}
