/**
 * The local runtime's options: their defaults and their checks. The handlers'
 * settings (lease, grace, sweep interval) are checked by
 * functions/core/config.ts (`toEnvironment`, the inverse of `readConfig`),
 * so a range is written down once.
 */
import { resolve as resolvePath } from 'node:path';
import { CONFIG_DEFAULTS, toEnvironment, type Config } from '../functions/core/config.ts';
import { RuntimeStartError } from './errors.ts';
import type { RuntimeLog } from './log.ts';

export const DEFAULTS = {
  port: 4000,
  tableName: 'roster',
  sweepIntervalSeconds: CONFIG_DEFAULTS.sweepIntervalSeconds,
  disconnectGraceSeconds: CONFIG_DEFAULTS.disconnectGraceSeconds,
  defaultLeaseSeconds: CONFIG_DEFAULTS.defaultLeaseSeconds,
  pollIntervalMs: 100,
  streamRetryAttempts: 3,
  authCacheTtlSeconds: 300,
} as const;

export interface RuntimeOptions {
  /** Port on 127.0.0.1; 0 picks a free one. @default 4000 */
  port?: number;
  /** Directory DynamoDB Local persists to (and where discarded stream records are written). @default in memory */
  dataDir?: string;
  /** Use this DynamoDB endpoint instead of starting DynamoDB Local. */
  dynamodbEndpoint?: string;
  /** @default 'roster' */
  tableName?: string;
  /** @default 1 */
  sweepIntervalSeconds?: number;
  /** @default 2 */
  disconnectGraceSeconds?: number;
  /** @default 15 */
  defaultLeaseSeconds?: number;
  /** Wait between polls of an idle stream shard (Lambda: 250). @default 100 */
  pollIntervalMs?: number;
  /** Retries of a failing stream record before it goes to the on-failure destination. @default 3 */
  streamRetryAttempts?: number;
  /** Log every request and the handlers' INFO lines. @default false */
  verbose?: boolean;
  /** Collect the handlers' metrics for GET /metrics. @default true */
  metrics?: boolean;
  /** Where the runtime's own log lines go. @default stderr */
  log?: RuntimeLog;
  /**
   * Require tokens, with the same authorizers as on AWS. The secret comes from
   * `authSecretFile`, else `{dataDir}/auth-secret`, else it is generated for this run.
   * @default false
   */
  auth?: boolean;
  /** File holding the token signing secret (created if missing). @default `{dataDir}/auth-secret` */
  authSecretFile?: string;
  /** Seconds the HTTP authorizer's results are cached, as on the stack; 0 also drops its identity source. @default 300 */
  authCacheTtlSeconds?: number;
  /** Accept fault injection on a loopback control endpoint (local/faults.ts); for robustness runs only. @default false */
  faultInjection?: boolean;
}

export type ResolvedOptions = Required<Omit<RuntimeOptions, 'dataDir' | 'dynamodbEndpoint' | 'log' | 'authSecretFile'>> &
  Pick<RuntimeOptions, 'dataDir' | 'dynamodbEndpoint' | 'authSecretFile'>;

const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

function check(condition: boolean, message: string): void {
  if (!condition) throw new RuntimeStartError(message);
}

function isHttpUrl(text: string): boolean {
  try {
    const { protocol } = new URL(text);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/** The settings the handlers get from a runtime's options. */
export function handlerSettings(o: ResolvedOptions): Partial<Config> {
  return {
    sweepIntervalSeconds: o.sweepIntervalSeconds,
    disconnectGraceSeconds: o.disconnectGraceSeconds,
    defaultLeaseSeconds: o.defaultLeaseSeconds,
    // The runtime's timer is the schedule: each invocation sweeps once.
    sweepLoopSeconds: 0,
    // The sweeper lives in this process with the API: when the runtime was down, nodes could not keep alive.
    sweeperAmnestyOnStart: true,
  };
}

/** The options with their defaults filled in; throws `RuntimeStartError` for one that cannot work. */
export function resolveOptions(options: RuntimeOptions): ResolvedOptions {
  const o: ResolvedOptions = {
    port: options.port ?? DEFAULTS.port,
    tableName: options.tableName ?? DEFAULTS.tableName,
    sweepIntervalSeconds: options.sweepIntervalSeconds ?? DEFAULTS.sweepIntervalSeconds,
    disconnectGraceSeconds: options.disconnectGraceSeconds ?? DEFAULTS.disconnectGraceSeconds,
    defaultLeaseSeconds: options.defaultLeaseSeconds ?? DEFAULTS.defaultLeaseSeconds,
    pollIntervalMs: options.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    streamRetryAttempts: options.streamRetryAttempts ?? DEFAULTS.streamRetryAttempts,
    verbose: options.verbose ?? false,
    metrics: options.metrics ?? true,
    dataDir: options.dataDir === undefined ? undefined : resolvePath(options.dataDir),
    dynamodbEndpoint: options.dynamodbEndpoint,
    auth: options.auth ?? false,
    authSecretFile: options.authSecretFile === undefined ? undefined : resolvePath(options.authSecretFile),
    authCacheTtlSeconds: options.authCacheTtlSeconds ?? DEFAULTS.authCacheTtlSeconds,
    faultInjection: options.faultInjection ?? false,
  };
  check(Number.isInteger(o.port) && o.port >= 0 && o.port <= 65535, `port must be a whole number from 0 to 65535, not ${o.port}`);
  check(TABLE_NAME.test(o.tableName), 'table name must be 3-255 characters of A-Z a-z 0-9 _ . -');
  try {
    // The settings' one check (functions/core/config.ts), here so that a bad value fails before anything starts.
    toEnvironment(handlerSettings(o));
  } catch (err) {
    throw new RuntimeStartError((err as Error).message, { cause: err });
  }
  check(Number.isInteger(o.pollIntervalMs) && o.pollIntervalMs >= 10 && o.pollIntervalMs <= 60_000, 'poll interval must be 10 to 60000 ms');
  check(Number.isInteger(o.streamRetryAttempts) && o.streamRetryAttempts >= 0 && o.streamRetryAttempts <= 10_000, 'stream retry attempts must be 0 to 10000');
  check(Number.isInteger(o.authCacheTtlSeconds) && o.authCacheTtlSeconds >= 0 && o.authCacheTtlSeconds <= 3600, 'the authorizer cache TTL must be 0 to 3600 seconds');
  check(o.authSecretFile === undefined || o.auth, '--auth-secret-file needs --auth');
  check(!(o.dataDir && o.dynamodbEndpoint), '--data-dir and --dynamodb-endpoint exclude each other: the data directory belongs to the DynamoDB Local the runtime starts');
  check(o.dynamodbEndpoint === undefined || isHttpUrl(o.dynamodbEndpoint), `DynamoDB endpoint must be an http(s) URL, not ${o.dynamodbEndpoint}`);
  return o;
}
