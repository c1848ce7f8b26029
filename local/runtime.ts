/**
 * The whole information center on one machine, with the very handler modules
 * Lambda runs:
 *
 * - one HTTP server on 127.0.0.1 serving the HTTP API (`/v1/...`) and the
 *   WebSocket API (`/ws`), shaped like API Gateway's events and responses;
 * - a `@connections` endpoint for the fan-out on a second, loopback-only port;
 * - DynamoDB Local (or an existing endpoint) with the table from `createTableInput`;
 * - a DynamoDB Streams poller behaving like the Lambda event source mapping;
 * - the sweeper on a timer.
 *
 * The handlers read their configuration from `process.env` at first use, as
 * on a Lambda cold start, so one process runs one runtime.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { resolve as resolvePath, join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBBatchResponse } from 'aws-lambda';
import { localOverrides } from '../functions/core/aws.ts';
import { CONFIG_DEFAULTS, toEnvironment, type Config } from '../functions/core/config.ts';
import { FANOUT_FILTER_PATTERNS } from '../functions/core/stream-filter.ts';
import { TABLE_SHAPE, createTableInput } from '../functions/core/table.ts';
import { BODY_LIMIT_BYTES } from '../functions/core/validation.ts';
import { signToken } from '../functions/core/auth.ts';
import { useTokenSecret } from '../functions/core/token-secret.ts';
import { ensureSecretFile, generateSecret, secretFileIn } from './auth-secret.ts';
import { HttpAuthorizer } from './authorizers.ts';
import { startDynamoDbLocal } from './dynamodb-local.ts';
import { invokeHandler, loadHandlers, type HandlerSet } from './handlers.ts';
import { consoleEnvironment, prepareLocalConsole } from './console.ts';
import { createHttpApi } from './http-api.ts';
import { PrometheusSink, summaryLine } from './metrics.ts';
import { setMetricsSink } from '../functions/core/metrics.ts';
import { logger } from '../functions/core/log.ts';
import { gatewayId } from './ids.ts';
import { createLog, type RuntimeLog } from './log.ts';
import { FANOUT_PAGE_FUNCTION, pageFunctionUrl } from './handlers.ts';
import { startLambdaApi } from './lambda-api.ts';
import { startManagementApi, type ManagementApi } from './management-api.ts';
import { StreamPoller, sdkStreamsApi, type StreamFailure } from './stream-poller.ts';
import { startTicker } from './timer.ts';
import { WebSocketApi } from './websocket-api.ts';

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

/** Lifetime of the admin token `--auth` prints. */
export const ADMIN_TOKEN_TTL_SECONDS = 24 * 3600;

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
}

export interface Runtime {
  httpUrl: string;
  wsUrl: string;
  port: number;
  tableName: string;
  dynamodbEndpoint: string;
  /** The local `@connections` endpoint (loopback only). */
  callbackUrl: string;
  /** With `auth`: a token for role `admin`, cluster `*`, valid for `ADMIN_TOKEN_TTL_SECONDS`. */
  adminToken: string | undefined;
  /** Stream records discarded after their retries, most recent last (also in `{dataDir}/stream-failures.jsonl`). */
  streamFailures(): StreamFailure[];
  /** Stops everything this runtime started; idempotent. */
  stop(): Promise<void>;
  /**
   * Resolves if the runtime stops by itself because a part it cannot work
   * without failed (the DynamoDB Local it started exited); it has then stopped.
   */
  failed: Promise<Error>;
}

/** A start-up failure whose message is meant for the user as is (no stack trace). */
export class RuntimeStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RuntimeStartError';
  }
}

export class PortInUseError extends RuntimeStartError {
  constructor(port: number) {
    super(`port ${port} on 127.0.0.1 is already in use (is another Roster running?); choose another with --port, or --port 0 for a free one`);
    this.name = 'PortInUseError';
  }
}

const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
const MAX_KEPT_FAILURES = 100;
const FANOUT_TIMEOUT_MS = 60_000;
const SWEEPER_TIMEOUT_MS = 60_000;

function check(condition: boolean, message: string): void {
  if (!condition) throw new RuntimeStartError(message);
}

type Resolved = Required<Omit<RuntimeOptions, 'dataDir' | 'dynamodbEndpoint' | 'log' | 'authSecretFile'>> &
  Pick<RuntimeOptions, 'dataDir' | 'dynamodbEndpoint' | 'authSecretFile'>;

export function resolveOptions(options: RuntimeOptions): Resolved {
  const o = {
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
  if (o.dynamodbEndpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(o.dynamodbEndpoint);
    } catch {
      url = undefined;
    }
    check(url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:'), `DynamoDB endpoint must be an http(s) URL, not ${o.dynamodbEndpoint}`);
  }
  return o;
}

let started = false;

/**
 * Gives the authorizers (in this process) the signing secret — from the
 * secret file, or generated for this run — and returns an admin token signed with it.
 */
async function useLocalTokenSecret(o: Resolved): Promise<string> {
  const file = o.authSecretFile ?? (o.dataDir ? secretFileIn(o.dataDir) : undefined);
  let secret: string;
  try {
    secret = file ? (await ensureSecretFile(file)).secret : generateSecret();
  } catch (err) {
    throw new RuntimeStartError((err as Error).message, { cause: err });
  }
  useTokenSecret(secret);
  return signToken(secret, { cluster: '*', role: 'admin', sub: 'local-admin', ttlSeconds: ADMIN_TOKEN_TTL_SECONDS });
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new PortInUseError(port));
      else if (err.code === 'EACCES') reject(new RuntimeStartError(`not allowed to listen on port ${port} of 127.0.0.1; choose another with --port`));
      else reject(err);
    };
    server.once('error', onError);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const force = setTimeout(() => server.closeAllConnections(), graceMs).unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** The settings the handlers get from this runtime's options. */
function handlerSettings(o: Resolved): Partial<Config> {
  return {
    sweepIntervalSeconds: o.sweepIntervalSeconds,
    disconnectGraceSeconds: o.disconnectGraceSeconds,
    defaultLeaseSeconds: o.defaultLeaseSeconds,
    // The runtime's timer is the schedule: each invocation sweeps once.
    sweepLoopSeconds: 0,
  };
}

/** The environment the handlers read (functions/core/config.ts), set before their first invocation. */
export function handlerEnvironment(o: Resolved, dynamodbEndpoint: string, callbackUrl: string): Record<string, string> {
  return {
    ...toEnvironment({ ...handlerSettings(o), tableName: o.tableName, dynamodbEndpoint, websocketCallbackUrl: callbackUrl }),
    // On AWS the handlers always require tokens (the default); locally only with --auth.
    ROSTER_AUTH: o.auth ? 'required' : 'off',
  };
}

/**
 * Lambda puts a region and credentials into every function's environment; the
 * local runtime does the same when the developer has none, so the handlers'
 * SDK clients (DynamoDB, the `@connections` client) work without an AWS profile.
 * Real credentials, if present, are kept: they only sign requests to loopback.
 */
function lambdaLikeAwsEnvironment(): void {
  process.env.AWS_REGION ||= process.env.AWS_DEFAULT_REGION || 'us-east-1';
  if (!process.env.AWS_ACCESS_KEY_ID) {
    process.env.AWS_ACCESS_KEY_ID = 'local';
    process.env.AWS_SECRET_ACCESS_KEY = 'local';
    delete process.env.AWS_SESSION_TOKEN;
  }
}

async function describeTable(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return undefined;
    throw err;
  }
}

/** Creates the table from `createTableInput` if it is missing, and checks an existing one has what Roster needs. */
export async function ensureTable(client: DynamoDBClient, tableName: string, log: RuntimeLog): Promise<void> {
  let table = await describeTable(client, tableName);
  if (!table) {
    try {
      await client.send(new CreateTableCommand(createTableInput(tableName)));
      log.info(`created table ${tableName}`);
    } catch (err) {
      if ((err as Error).name !== 'ResourceInUseException') throw err;
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      table = await describeTable(client, tableName);
      if (table?.TableStatus === 'ACTIVE') break;
      if (Date.now() > deadline) throw new RuntimeStartError(`table ${tableName} did not become ACTIVE within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // TTL is garbage collection only; an engine without TTL support is fine.
    await client
      .send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: TABLE_SHAPE.ttlAttribute, Enabled: true } }))
      .catch((err: unknown) => log.debug('could not enable TTL (fine for a local engine)', { error: err as Error }));
  }
  const problems: string[] = [];
  if (!table.StreamSpecification?.StreamEnabled || !table.LatestStreamArn) problems.push(`a ${TABLE_SHAPE.streamViewType} stream`);
  else if (table.StreamSpecification.StreamViewType !== TABLE_SHAPE.streamViewType) problems.push(`a ${TABLE_SHAPE.streamViewType} stream (it has ${table.StreamSpecification.StreamViewType})`);
  const index = table.GlobalSecondaryIndexes?.find((i) => i.IndexName === TABLE_SHAPE.expiryIndex.name);
  if (!index) problems.push(`the ${TABLE_SHAPE.expiryIndex.name} index`);
  // A table from before the index was keyed by the announced deadline (sweepAt) cannot be swept.
  else if (!index.KeySchema?.some((k) => k.KeyType === 'RANGE' && k.AttributeName === TABLE_SHAPE.expiryIndex.sortKey)) {
    problems.push(`the ${TABLE_SHAPE.expiryIndex.name} index sorted by ${TABLE_SHAPE.expiryIndex.sortKey}`);
  }
  if (problems.length > 0) {
    throw new RuntimeStartError(`table ${tableName} exists but lacks ${problems.join(' and ')}; delete it or choose another with --table`);
  }
}

/** A failure sink: `{dataDir}/stream-failures.jsonl` when persisting, and always the last few in memory. */
function failureSink(dataDir: string | undefined, log: RuntimeLog) {
  const kept: StreamFailure[] = [];
  const file = dataDir ? join(dataDir, 'stream-failures.jsonl') : undefined;
  return {
    kept,
    async write(failure: StreamFailure) {
      kept.push(failure);
      if (kept.length > MAX_KEPT_FAILURES) kept.shift();
      if (file) await appendFile(file, `${JSON.stringify(failure)}\n`);
      else log.warn('discarded stream record kept in memory (start with --data-dir to keep them in a file)', { sequenceNumber: failure.DDBStreamBatchInfo.startSequenceNumber });
    },
  };
}

const scheduledEvent = () => ({
  version: '0',
  id: gatewayId(),
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '000000000000',
  time: new Date().toISOString(),
  region: process.env.AWS_REGION,
  resources: [],
  detail: {},
});

/** Starts the runtime; resolves once it serves requests and every record written from now on will be delivered. */
export async function startRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const o = resolveOptions(options);
  if (started) {
    throw new RuntimeStartError('a process runs one local runtime: the handlers read their configuration from process.env at first use');
  }
  started = true;
  const log = options.log ?? createLog({ verbose: o.verbose });
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        log.debug('clean-up step failed', { error: err as Error });
      }
    }
  };

  try {
    // Powertools' logger reads its level when the handler modules are imported.
    process.env.POWERTOOLS_LOG_LEVEL = o.verbose ? 'INFO' : 'WARN';
    // …and the shared logger may already exist (the runtime's own modules import the core): set it too.
    logger.setLogLevel(o.verbose ? 'INFO' : 'WARN');
    // The handlers' metrics go to a Prometheus registry served at GET /metrics (on Lambda: EMF).
    const metricsSink = new PrometheusSink();
    if (o.metrics) setMetricsSink(metricsSink);
    lambdaLikeAwsEnvironment();
    // The web console builds while everything else starts (a fraction of DynamoDB Local's start-up).
    const consoleBuild = prepareLocalConsole(log);
    cleanups.push(async () => (await consoleBuild)?.remove());

    // The public port first: a taken port fails at once, before anything was started.
    // Filled in once the handler modules are loaded; nothing is served before `ready`.
    const apis: { http?: (req: IncomingMessage, res: ServerResponse) => Promise<void>; ws?: WebSocketApi } = {};
    let open!: () => void;
    const ready = new Promise<void>((resolve) => (open = resolve));
    const server = createServer((req, res) => {
      void ready.then(() => apis.http?.(req, res));
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      void ready.then(() => apis.ws?.handleUpgrade(req, socket, head));
    });
    server.on('clientError', (_err, socket: Duplex) => {
      const body = JSON.stringify({ error: { code: 'VALIDATION_FAILED', message: 'malformed HTTP request' } });
      if (socket.writable) {
        socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      }
      socket.destroy();
    });
    server.requestTimeout = 60_000;
    const port = await listen(server, o.port);
    cleanups.push(() => closeServer(server, 2000));

    // DynamoDB, the handler modules and the @connections endpoint, in parallel.
    let dynamodbChild: ChildProcess | undefined;
    const killOnExit = () => {
      if (dynamodbChild && dynamodbChild.exitCode === null && dynamodbChild.signalCode === null) dynamodbChild.kill('SIGKILL');
    };
    const [dynamodbResult, handlersResult, managementResult] = await Promise.allSettled([
      (async () => {
        if (o.dynamodbEndpoint) return { endpoint: o.dynamodbEndpoint, stop: async () => {} };
        if (o.dataDir) await mkdir(o.dataDir, { recursive: true });
        const ddb = await startDynamoDbLocal({ dataDir: o.dataDir });
        dynamodbChild = ddb.process;
        // A process that exits without stop() (an uncaught error, process.exit) must not leave Java behind.
        process.once('exit', killOnExit);
        return { endpoint: ddb.endpoint, stop: () => ddb.stop(), process: ddb.process };
      })(),
      loadHandlers(),
      startManagementApi(
        {
          post: (id, data) => apis.ws?.post(id, data) ?? Promise.resolve('gone'),
          info: (id) => apis.ws?.info(id),
          disconnect: (id) => apis.ws?.disconnect(id) ?? false,
        },
        log,
      ),
    ]);
    if (dynamodbResult.status === 'fulfilled') {
      const { stop } = dynamodbResult.value;
      cleanups.push(async () => {
        await stop();
        process.off('exit', killOnExit);
      });
    }
    let management: ManagementApi | undefined;
    if (managementResult.status === 'fulfilled') {
      management = managementResult.value;
      cleanups.push(() => management?.close());
    }
    if (dynamodbResult.status === 'rejected') throw dynamodbResult.reason;
    if (handlersResult.status === 'rejected') throw handlersResult.reason;
    if (managementResult.status === 'rejected') throw managementResult.reason;
    const loaded: HandlerSet = handlersResult.value;
    const endpoint = dynamodbResult.value.endpoint;
    const callbackUrl = (management as ManagementApi).url;

    Object.assign(process.env, handlerEnvironment(o, endpoint, callbackUrl));
    Object.assign(process.env, consoleEnvironment(port, await consoleBuild));
    // The fan-out hands the pages of a large cluster to the page function through Lambda's Invoke API, as on AWS.
    const lambda = await startLambdaApi({ [FANOUT_PAGE_FUNCTION]: { moduleUrl: pageFunctionUrl(), env: { ...(process.env as Record<string, string>) } } }, log);
    cleanups.push(() => lambda.close());
    Object.assign(process.env, toEnvironment({ fanoutPageFunction: FANOUT_PAGE_FUNCTION, lambdaEndpoint: lambda.url }));

    const dynamodb = new DynamoDBClient({ ...localOverrides(endpoint), maxAttempts: 3 });
    const streams = new DynamoDBStreamsClient({ ...localOverrides(endpoint), maxAttempts: 3 });
    cleanups.push(() => {
      dynamodb.destroy();
      streams.destroy();
    });
    try {
      await ensureTable(dynamodb, o.tableName, log);
    } catch (err) {
      if (err instanceof RuntimeStartError) throw err;
      throw new RuntimeStartError(`could not use DynamoDB at ${endpoint}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }

    const adminToken = o.auth ? await useLocalTokenSecret(o) : undefined;
    const authorizer = o.auth ? new HttpAuthorizer({ handler: loaded.authorizers.http, cacheTtlSeconds: o.authCacheTtlSeconds }) : undefined;
    apis.http = createHttpApi({ handlers: loaded.http, log, bodyLimitBytes: BODY_LIMIT_BYTES, apiId: 'local', authorizer, metrics: metricsSink });
    const ws = new WebSocketApi({ handlers: loaded.ws, log, apiId: 'local', stage: 'local', authorizer: o.auth ? loaded.authorizers.ws : undefined });
    apis.ws = ws;
    cleanups.push(() => ws.closeAll());

    const failures = failureSink(o.dataDir, log);
    const poller = new StreamPoller({
      tableName: o.tableName,
      api: sdkStreamsApi(dynamodb, streams),
      handler: async (event) => (await invokeHandler(loaded.fanout, event, 'fanout', FANOUT_TIMEOUT_MS)) as DynamoDBBatchResponse,
      filterPatterns: FANOUT_FILTER_PATTERNS,
      pollIntervalMs: o.pollIntervalMs,
      maxRetryAttempts: o.streamRetryAttempts,
      onFailure: (failure) => failures.write(failure),
      log,
    });
    await poller.start();
    cleanups.push(() => poller.stop());

    const sweeper = startTicker(
      'sweeper',
      o.sweepIntervalSeconds * 1000,
      // The handler logs the sweeps that changed something.
      () => invokeHandler(loaded.sweeper, scheduledEvent(), 'sweeper', SWEEPER_TIMEOUT_MS),
      log,
    );
    cleanups.push(() => sweeper.stop());

    if (o.verbose) {
      // One line a minute on stdout: what moved, for someone watching a terminal rather than a dashboard.
      let before = await metricsSink.totals();
      const summary = setInterval(() => {
        void metricsSink.totals().then((now) => {
          process.stdout.write(`${summaryLine(now, before)}\n`);
          before = now;
        });
      }, 60_000);
      summary.unref();
      cleanups.push(() => clearInterval(summary));
    }

    open();
    const httpUrl = `http://127.0.0.1:${port}`;
    let stopping: Promise<void> | undefined;
    let fail!: (err: Error) => void;
    const failed = new Promise<Error>((resolve) => (fail = resolve));
    const runtime: Runtime = {
      httpUrl,
      wsUrl: `ws://127.0.0.1:${port}/ws`,
      port,
      tableName: o.tableName,
      dynamodbEndpoint: endpoint,
      callbackUrl,
      adminToken,
      streamFailures: () => [...failures.kept],
      failed,
      stop() {
        stopping ??= (async () => {
          // Stop taking connections, close WebSockets (1001), stop the poller
          // and the sweeper, let requests under way finish, and stop DynamoDB Local last.
          const serverClosed = closeServer(server, 2000);
          await ws.closeAll();
          await Promise.all([poller.stop(), sweeper.stop()]);
          await serverClosed;
          await cleanup();
        })();
        return stopping;
      },
    };
    const child = 'process' in dynamodbResult.value ? dynamodbResult.value.process : undefined;
    child?.once('exit', (code, signal) => {
      if (stopping) return;
      const error = new RuntimeStartError(`DynamoDB Local exited unexpectedly (${signal ?? `code ${code}`}); Roster stopped`);
      log.error(error.message);
      void runtime.stop().then(() => fail(error));
    });
    return runtime;
  } catch (err) {
    await cleanup();
    throw err;
  }
}
