/**
 * The local runtime's options: their defaults and their checks.
 *
 * What the deployment is made of comes from the stack's template: the
 * runtime's settings that are stack settings (lease, grace, sweep interval,
 * the authorizer's cache) become CDK context for the synthesized template
 * (`contextOf`), exactly as `cdk deploy -c key=value` would pass them; the
 * handlers' ranges are checked once more here by functions/core/config.ts
 * (`toEnvironment`), so a bad value fails before anything starts.
 */
import { resolve as resolvePath } from 'node:path';
import { CONFIG_DEFAULTS, toEnvironment, type Config } from '../functions/core/config.ts';
import { RuntimeStartError } from './errors.ts';
import type { RuntimeLog } from './log.ts';
import type { Engine } from './engine.ts';
import type { CdkContext } from './template/source.ts';

export const DEFAULTS = {
  port: 4000,
  tableName: 'roster',
  sweepIntervalSeconds: CONFIG_DEFAULTS.sweepIntervalSeconds,
  disconnectGraceSeconds: CONFIG_DEFAULTS.disconnectGraceSeconds,
  defaultLeaseSeconds: CONFIG_DEFAULTS.defaultLeaseSeconds,
  // Lambda's rate: each shard four times a second (local/stream-poller.ts).
  pollIntervalMs: 250,
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
  /**
   * A synthesized template to run (`cdk synth` writes `cdk.out/<stack>.template.json`).
   * @default the template of this repository's CDK app, with the settings below as context
   */
  templateFile?: string;
  /** More CDK context for the app's template (`-c key=value`), e.g. `{ httpRateLimit: '2000', httpBurstLimit: '4000' }`. */
  context?: CdkContext;
  /** Context `sweepIntervalSeconds`. @default the stack's (1) */
  sweepIntervalSeconds?: number;
  /** Context `disconnectGraceSeconds`. @default the stack's (2) */
  disconnectGraceSeconds?: number;
  /** Context `defaultLeaseSeconds`. @default the stack's (60) */
  defaultLeaseSeconds?: number;
  /** Wait between polls of an idle stream shard (Lambda: 250). @default 250 */
  pollIntervalMs?: number;
  /** Evaluate every AWS call of every function against its role in the template. @default true */
  iam?: boolean;
  /** Append every evaluated call (function, action, resource, decision) to this file, one JSON line each. */
  iamLogFile?: string;
  /** Apply the stages' throttles and the account's API Gateway quota. @default true */
  throttle?: boolean;
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
  /** Context `authCacheSeconds`: seconds the HTTP authorizer's results are cached; 0 also drops its identity source. @default the stack's (300) */
  authCacheTtlSeconds?: number;
  /** Accept fault injection on a loopback control endpoint (local/faults.ts); for robustness runs only. @default false */
  faultInjection?: boolean;
  /** A DynamoDB Local already starting (`roster serve` starts it before it loads the runtime); the runtime stops it. @default started by the runtime */
  engine?: Promise<Engine>;
}

type Optional = 'engine' | 'dataDir' | 'dynamodbEndpoint' | 'log' | 'authSecretFile' | 'templateFile' | 'iamLogFile' | 'context' | 'sweepIntervalSeconds' | 'disconnectGraceSeconds' | 'defaultLeaseSeconds' | 'authCacheTtlSeconds';
export type ResolvedOptions = Required<Omit<RuntimeOptions, Optional>> & Pick<RuntimeOptions, Exclude<Optional, 'log' | 'context' | 'engine'>> & { context: CdkContext };

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

/** The stack settings among the options, as the CDK context keys of infra/roster-app.ts. */
export function contextOf(o: Pick<RuntimeOptions, 'sweepIntervalSeconds' | 'disconnectGraceSeconds' | 'defaultLeaseSeconds' | 'authCacheTtlSeconds' | 'context'>): CdkContext {
  const settings: Record<string, number | undefined> = {
    sweepIntervalSeconds: o.sweepIntervalSeconds,
    disconnectGraceSeconds: o.disconnectGraceSeconds,
    defaultLeaseSeconds: o.defaultLeaseSeconds,
    authCacheSeconds: o.authCacheTtlSeconds,
  };
  const set = Object.entries(settings).filter((e): e is [string, number] => e[1] !== undefined);
  return { ...o.context, ...Object.fromEntries(set) };
}

/** The handler settings among the options, checked with the handlers' own rule (functions/core/config.ts). */
function handlerSettings(o: RuntimeOptions): Partial<Config> {
  return { sweepIntervalSeconds: o.sweepIntervalSeconds, disconnectGraceSeconds: o.disconnectGraceSeconds, defaultLeaseSeconds: o.defaultLeaseSeconds };
}

/** The options with their defaults filled in; throws `RuntimeStartError` for one that cannot work. */
export function resolveOptions(options: RuntimeOptions): ResolvedOptions {
  const o: ResolvedOptions = {
    port: options.port ?? DEFAULTS.port,
    tableName: options.tableName ?? DEFAULTS.tableName,
    templateFile: options.templateFile === undefined ? undefined : resolvePath(options.templateFile),
    context: contextOf(options),
    sweepIntervalSeconds: options.sweepIntervalSeconds,
    disconnectGraceSeconds: options.disconnectGraceSeconds,
    defaultLeaseSeconds: options.defaultLeaseSeconds,
    pollIntervalMs: options.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    iam: options.iam ?? true,
    iamLogFile: options.iamLogFile === undefined ? undefined : resolvePath(options.iamLogFile),
    throttle: options.throttle ?? true,
    verbose: options.verbose ?? false,
    metrics: options.metrics ?? true,
    dataDir: options.dataDir === undefined ? undefined : resolvePath(options.dataDir),
    dynamodbEndpoint: options.dynamodbEndpoint,
    auth: options.auth ?? false,
    authSecretFile: options.authSecretFile === undefined ? undefined : resolvePath(options.authSecretFile),
    authCacheTtlSeconds: options.authCacheTtlSeconds,
    faultInjection: options.faultInjection ?? false,
  };
  check(Number.isInteger(o.port) && o.port >= 0 && o.port <= 65535, `port must be a whole number from 0 to 65535, not ${o.port}`);
  check(TABLE_NAME.test(o.tableName), 'table name must be 3-255 characters of A-Z a-z 0-9 _ . -');
  try {
    // The settings' one check (functions/core/config.ts), here so that a bad value fails before anything starts.
    toEnvironment(handlerSettings(options));
  } catch (err) {
    throw new RuntimeStartError((err as Error).message, { cause: err });
  }
  check(Number.isInteger(o.pollIntervalMs) && o.pollIntervalMs >= 10 && o.pollIntervalMs <= 60_000, 'poll interval must be 10 to 60000 ms');
  check(o.authCacheTtlSeconds === undefined || (Number.isInteger(o.authCacheTtlSeconds) && o.authCacheTtlSeconds >= 0 && o.authCacheTtlSeconds <= 3600), 'the authorizer cache TTL must be 0 to 3600 seconds');
  check(
    o.templateFile === undefined || Object.keys(o.context).length === 0,
    `a given template already holds its settings (${Object.keys(o.context).join(', ')}): pass them to cdk synth with -c instead`,
  );
  check(o.authSecretFile === undefined || o.auth, '--auth-secret-file needs --auth');
  check(!(o.dataDir && o.dynamodbEndpoint), '--data-dir and --dynamodb-endpoint exclude each other: the data directory belongs to the DynamoDB Local the runtime starts');
  check(o.dynamodbEndpoint === undefined || isHttpUrl(o.dynamodbEndpoint), `DynamoDB endpoint must be an http(s) URL, not ${o.dynamodbEndpoint}`);
  return o;
}
