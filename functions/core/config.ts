/**
 * Configuration, read once from the environment at cold start.
 *
 * Every setting that changes detection behaviour lives here, with the name of
 * its environment variable and the range it may take, once: `readConfig`
 * reads the environment, `toEnvironment` writes it (the CDK stack for each
 * function, the local runtime for its handlers), and both check a value with
 * the same rule and the same message. A missing required variable fails fast
 * with a message naming it.
 */
import { DEFAULT_LEASE_SECONDS, LEASE_MAX_SECONDS, LEASE_MIN_SECONDS } from '@roster/contract';

export interface Config {
  /** The single DynamoDB table. */
  tableName: string;
  /** Endpoint override for DynamoDB (DynamoDB Local, LocalStack). */
  dynamodbEndpoint: string | undefined;
  /** Lease used when a register request names none. @default 60 (the contract's DEFAULT_LEASE_SECONDS, which says why) */
  defaultLeaseSeconds: number;
  /** Lease left to a node whose bound WebSocket connection dropped. @default 2 */
  disconnectGraceSeconds: number;
  /** How often the sweeper looks for expired nodes (sub-minute; 0.05..60). @default 1 */
  sweepIntervalSeconds: number;
  /** How long DOWN records stay readable (`?status=all`) before TTL may delete them. @default 86400 */
  downRetentionSeconds: number;
  /** Partitions of the expiry index (the announced deadlines the sweeper queries each sweep). @default 4 */
  sweepShards: number;
  /**
   * If the sweeper has not completed a sweep for this long, the next sweep grants
   * expired nodes one more lease instead of declaring them down (self-preservation).
   * @default 120
   */
  sweeperAmnestySeconds: number;
  /**
   * Whether a sweeper process's first sweep grants amnesty (when the table has
   * a heartbeat). The local runtime sets it: there the sweeper and the API are
   * one process, so a sweeper that starts means the API was down until now.
   * On AWS they are not, and a cold start says nothing about the API.
   * @default false
   */
  sweeperAmnestyOnStart: boolean;
  /**
   * Self-preservation by renewal threshold: when more than this percentage of
   * the UP nodes of a cluster (or of the deployment, over the clusters not
   * held on their own) lapse within one lease without their bound connection
   * dropping — and at least `selfPreservationMinNodes` of them — the sweeper
   * holds their downs and extends their leases
   * (functions/core/self-preservation.ts). 100 turns it off. Eureka's renewal
   * threshold is 85% of the expected renewals: more than 15% missing.
   * @default 15
   */
  selfPreservationPercent: number;
  /**
   * The fewest lapses that make a mass lapse: at least 2, so that one node's
   * lapse is always declared; at 3, two silent lapses in a 3-node cluster are
   * declared, three are held.
   * @default 3
   */
  selfPreservationMinNodes: number;
  /**
   * The longest a cluster or the deployment holds lapses: past it, nodes that
   * still do not renew are declared down even if the threshold is still
   * crossed. It bounds how long a real mass failure of silent nodes goes
   * unreported. 0 turns holding off.
   * @default 120
   */
  selfPreservationMaxSeconds: number;
  /** How long one sweeper invocation keeps sweeping (Lambda loops inside one invocation). @default 0 (one sweep) */
  sweepLoopSeconds: number;
  /**
   * Posts to `@connections` one fan-out invocation makes per second, all its
   * pages together (each page gets its share). Every post counts against the
   * account's API Gateway request quota in the region (10,000 a second by
   * default, burst 5,000, shared by every API of the account), and a region
   * whose default quota is 2,500 needs it lowered
   * (docs/how-it-works/fanout-sizing.md).
   *
   * Why 6,000: a cluster's events are posted one after another (one stream
   * shard), so the rate bounds how many events a cluster can announce.
   * `roster capacity --nodes 10000 --clusters 1 --subscribers 10000`: an
   * event to 20,000 subscribers takes 2.9 s and the shard is busy 67% of the
   * time (at 5,000, 3.5 s and 82%); the account's quota while it posts, with
   * the fleet's own requests, at 66%.
   * @default 6000
   */
  fanoutPostsPerSecond: number;
  /** `@connections` endpoint of the WebSocket API (https://{api}.execute-api.{region}.amazonaws.com/{stage}). */
  websocketCallbackUrl: string | undefined;
  /** The function that delivers one page of a large fan-out; without it the fan-out delivers every page itself. */
  fanoutPageFunction: string | undefined;
  /** Endpoint override for Lambda's Invoke API (the local runtime's). */
  lambdaEndpoint: string | undefined;
}

/** The contract's lease bounds (contract/index.ts). */
export { LEASE_MAX_SECONDS, LEASE_MIN_SECONDS };

interface NumberRule {
  readonly variable: string;
  readonly fallback: number;
  readonly min: number;
  readonly max: number;
  /** Whole numbers only. */
  readonly whole: boolean;
}

/** The numeric settings: their variables, defaults and ranges. The one place each is written down. */
const NUMBER_RULES = {
  defaultLeaseSeconds: { variable: 'DEFAULT_LEASE_SECONDS', fallback: DEFAULT_LEASE_SECONDS, min: LEASE_MIN_SECONDS, max: LEASE_MAX_SECONDS, whole: true },
  disconnectGraceSeconds: { variable: 'DISCONNECT_GRACE_SECONDS', fallback: 2, min: 0, max: LEASE_MAX_SECONDS, whole: false },
  sweepIntervalSeconds: { variable: 'SWEEP_INTERVAL_SECONDS', fallback: 1, min: 0.05, max: 60, whole: false },
  downRetentionSeconds: { variable: 'DOWN_RETENTION_SECONDS', fallback: 86_400, min: 60, max: 365 * 86_400, whole: true },
  sweepShards: { variable: 'SWEEP_SHARDS', fallback: 4, min: 1, max: 64, whole: true },
  sweeperAmnestySeconds: { variable: 'SWEEPER_AMNESTY_SECONDS', fallback: 120, min: 1, max: 86_400, whole: false },
  selfPreservationPercent: { variable: 'SELF_PRESERVATION_PERCENT', fallback: 15, min: 0, max: 100, whole: false },
  selfPreservationMinNodes: { variable: 'SELF_PRESERVATION_MIN_NODES', fallback: 3, min: 2, max: 1_000_000, whole: true },
  selfPreservationMaxSeconds: { variable: 'SELF_PRESERVATION_MAX_SECONDS', fallback: 120, min: 0, max: 86_400, whole: false },
  // Lambda's longest timeout is 900 s; the sweeper needs headroom after its loop.
  sweepLoopSeconds: { variable: 'SWEEP_LOOP_SECONDS', fallback: 0, min: 0, max: 840, whole: false },
  // 60% of the default account quota (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html): see Config.
  fanoutPostsPerSecond: { variable: 'FANOUT_POSTS_PER_SECOND', fallback: 6000, min: 1, max: 1_000_000, whole: true },
} as const satisfies Record<string, NumberRule>;

/** The tunable settings: every numeric part of `Config`. */
export type SettingName = keyof typeof NUMBER_RULES;
export type Settings = Pick<Config, SettingName>;

/** The switches (true or false). */
const BOOLEAN_VARIABLES = {
  sweeperAmnestyOnStart: 'SWEEPER_AMNESTY_ON_START',
} as const;

/** Where each resource setting lives in the environment. */
const STRING_VARIABLES = {
  tableName: 'TABLE_NAME',
  dynamodbEndpoint: 'DYNAMODB_ENDPOINT',
  websocketCallbackUrl: 'WEBSOCKET_CALLBACK_URL',
  fanoutPageFunction: 'FANOUT_PAGE_FUNCTION',
  lambdaEndpoint: 'LAMBDA_ENDPOINT',
} as const satisfies Record<Exclude<keyof Config, SettingName | keyof typeof BOOLEAN_VARIABLES>, string>;

const SETTING_NAMES = Object.keys(NUMBER_RULES) as SettingName[];

/** The defaults of every setting; the CDK stack and the local runtime take theirs from here. */
export const CONFIG_DEFAULTS: Readonly<Settings> = Object.fromEntries(SETTING_NAMES.map((name) => [name, NUMBER_RULES[name].fallback])) as unknown as Settings;

/** The environment variable of a setting, e.g. `SWEEP_INTERVAL_SECONDS` for `sweepIntervalSeconds`. */
export const variableOf = (name: SettingName): string => NUMBER_RULES[name].variable;

/**
 * Checks one setting against its range. `shown` is how the value was
 * written (the environment's string); the message is the same whether the
 * value came from the environment, from CDK context or from the local runtime.
 */
function checked(name: SettingName, value: number, shown: string = String(value)): number {
  const { variable, min, max, whole } = NUMBER_RULES[name];
  if (!Number.isFinite(value) || value < min || value > max || (whole && !Number.isInteger(value))) {
    throw new Error(`Configuration error: ${variable}=${shown} must be ${whole ? 'a whole number' : 'a number'} between ${min} and ${max}`);
  }
  return value;
}

function booleanFromEnv(env: NodeJS.ProcessEnv, variable: string): boolean {
  const raw = env[variable];
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new Error(`Configuration error: ${variable}=${raw} must be true or false`);
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const tableName = env[STRING_VARIABLES.tableName];
  if (!tableName) throw new Error(`Configuration error: ${STRING_VARIABLES.tableName} is not set`);
  const settings = {} as Record<SettingName, number>;
  for (const name of SETTING_NAMES) {
    const raw = env[NUMBER_RULES[name].variable];
    settings[name] = raw === undefined || raw === '' ? NUMBER_RULES[name].fallback : checked(name, Number(raw), raw);
  }
  return {
    tableName,
    dynamodbEndpoint: env[STRING_VARIABLES.dynamodbEndpoint] || undefined,
    ...settings,
    sweeperAmnestyOnStart: booleanFromEnv(env, BOOLEAN_VARIABLES.sweeperAmnestyOnStart),
    websocketCallbackUrl: env[STRING_VARIABLES.websocketCallbackUrl] || undefined,
    fanoutPageFunction: env[STRING_VARIABLES.fanoutPageFunction] || undefined,
    lambdaEndpoint: env[STRING_VARIABLES.lambdaEndpoint] || undefined,
  };
}

/**
 * The environment that `readConfig` reads back as `config`: the inverse of
 * `readConfig`, so `readConfig(toEnvironment(c))` equals `c`. Only the keys
 * given are written (a function that uses no table gets no `TABLE_NAME`; one
 * that is not the sweeper gets no `SWEEP_LOOP_SECONDS`), and every value is
 * checked first, with `readConfig`'s own message: a setting out of range
 * fails `cdk synth` and the local runtime's start, never a cold start.
 */
export function toEnvironment(config: Partial<Config>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of SETTING_NAMES) {
    const value = config[name];
    if (value !== undefined) env[NUMBER_RULES[name].variable] = String(checked(name, value));
  }
  for (const [key, variable] of Object.entries(BOOLEAN_VARIABLES) as [keyof typeof BOOLEAN_VARIABLES, string][]) {
    const value = config[key];
    if (value !== undefined) env[variable] = String(value);
  }
  for (const [key, variable] of Object.entries(STRING_VARIABLES) as [keyof typeof STRING_VARIABLES, string][]) {
    const value = config[key];
    if (value === undefined) continue;
    if (value === '') throw new Error(`Configuration error: ${variable} must not be empty`);
    env[variable] = value;
  }
  return env;
}

