/**
 * The whole information center on one machine, with the very handler modules
 * Lambda runs:
 *
 * - one HTTP server on 127.0.0.1 serving the HTTP API (`/v1/...`) and the
 *   WebSocket API (`/ws`), shaped like API Gateway's events and responses;
 * - a `@connections` endpoint for the fan-out on a second, loopback-only port;
 * - DynamoDB Local (or an existing endpoint) with the table from `createTableInput`;
 * - a DynamoDB Streams poller behaving like the Lambda event source mapping;
 * - Lambda's Invoke API for the fan-out's page function, in forked processes (local/lambda-api.ts);
 * - the sweeper on a timer.
 *
 * A process may run several runtimes (tests, embedding): each runs its
 * handlers in a scope of its own (functions/core/scope.ts) holding its
 * settings, clients, metrics and token secret, and none of them touches
 * `process.env` or any other state of the process.
 */
import { toEnvironment } from '../functions/core/config.ts';
import { NO_METRICS } from '../functions/core/metrics.ts';
import { Scope } from '../functions/core/scope.ts';
import { BODY_LIMIT_BYTES } from '../functions/core/validation.ts';
import { localAuth } from './auth-secret.ts';
import { HttpAuthorizer } from './authorizers.ts';
import { Cleanups, startedTogether } from './cleanups.ts';
import { consoleEnvironment, prepareLocalConsole, type LocalConsole } from './console.ts';
import { RuntimeStartError } from './errors.ts';
import { FailureDestination } from './failure-destination.ts';
import { startFaultControl } from './faults.ts';
import { bindHandlers, FANOUT_PAGE_FUNCTION, loadHandlers, pageFunctionUrl, type HandlerSet } from './handlers.ts';
import { createHttpApi } from './http-api.ts';
import { startLambdaApi, type LambdaApi } from './lambda-api.ts';
import { createLog, type RuntimeLog } from './log.ts';
import { ConnectionsRelay, startManagementApi, type ManagementApi } from './management-api.ts';
import { PrometheusSink, startSummary } from './metrics.ts';
import { handlerSettings, resolveOptions, type ResolvedOptions, type RuntimeOptions } from './options.ts';
import { startPublicServer, type PublicServer } from './public-server.ts';
import { openStore, startEngine, type Engine } from './store.ts';
import type { StreamFailure } from './stream-poller.ts';
import { startTriggers } from './triggers.ts';
import { WebSocketApi } from './websocket-api.ts';

export { ADMIN_TOKEN_TTL_SECONDS } from './auth-secret.ts';
export { PortInUseError, RuntimeStartError } from './errors.ts';
export { DEFAULTS, resolveOptions, type RuntimeOptions } from './options.ts';

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
  /** With `faultInjection`: the fault control endpoint (loopback only). */
  faultsUrl: string | undefined;
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

/** The environment the handlers read (functions/core/config.ts), set before their first invocation. */
export function handlerEnvironment(o: ResolvedOptions, dynamodbEndpoint: string, callbackUrl: string): Record<string, string> {
  return {
    ...toEnvironment({ ...handlerSettings(o), tableName: o.tableName, dynamodbEndpoint, websocketCallbackUrl: callbackUrl }),
    // On AWS the handlers always require tokens (the default); locally only with --auth.
    ROSTER_AUTH: o.auth ? 'required' : 'off',
  };
}

interface ScopeParts {
  dynamodbEndpoint: string;
  callbackUrl: string;
  /** The local Lambda Invoke API serving the fan-out's page function. */
  lambdaUrl: string;
  port: number;
  console: LocalConsole | undefined;
  metrics: PrometheusSink;
  tokenSecret: string | undefined;
}

/** What a runtime's handlers see: everything a stack would give its functions, and nothing of the process. */
function handlerScope(o: ResolvedOptions, parts: ScopeParts): Scope {
  return new Scope({
    env: {
      ...handlerEnvironment(o, parts.dynamodbEndpoint, parts.callbackUrl),
      ...toEnvironment({ fanoutPageFunction: FANOUT_PAGE_FUNCTION, lambdaEndpoint: parts.lambdaUrl }),
      ...consoleEnvironment(parts.port, parts.console),
      POWERTOOLS_LOG_LEVEL: o.verbose ? 'INFO' : 'WARN',
      // A person reads this console: the handlers' lines in the runtime's own form, not JSON (functions/core/log.ts).
      ROSTER_LOG_FORMAT: 'text',
    },
    // The handlers' metrics go to a Prometheus registry served at GET /metrics (on Lambda: EMF).
    metrics: o.metrics ? parts.metrics : NO_METRICS,
    tokenSecret: parts.tokenSecret,
  });
}

/**
 * The fan-out's page function behind the local Lambda Invoke API: forked
 * execution environments with the environment the stack gives that function
 * (the handlers' settings, the table, the `@connections` endpoint).
 */
function startPageFunction(o: ResolvedOptions, dynamodbEndpoint: string, callbackUrl: string, log: RuntimeLog): Promise<LambdaApi> {
  const env = {
    ...handlerEnvironment(o, dynamodbEndpoint, callbackUrl),
    POWERTOOLS_LOG_LEVEL: o.verbose ? 'INFO' : 'WARN',
    ROSTER_LOG_FORMAT: 'text',
    ...(process.env.PATH ? { PATH: process.env.PATH } : {}),
  };
  return startLambdaApi({ [FANOUT_PAGE_FUNCTION]: { moduleUrl: pageFunctionUrl(), env } }, log);
}

/** With `--auth`: the signing secret and the admin token. */
async function startAuth(o: ResolvedOptions): Promise<{ secret: string; adminToken: string } | undefined> {
  if (!o.auth) return undefined;
  try {
    return await localAuth(o);
  } catch (err) {
    throw new RuntimeStartError((err as Error).message, { cause: err });
  }
}

/** The HTTP and WebSocket APIs in front of `handlers`, as API Gateway puts them, with the authorizers when auth is on. */
function gatewayApis(o: ResolvedOptions, handlers: HandlerSet, metrics: PrometheusSink, log: RuntimeLog) {
  const authorizer = o.auth ? new HttpAuthorizer({ handler: handlers.authorizers.http, cacheTtlSeconds: o.authCacheTtlSeconds }) : undefined;
  const http = createHttpApi({ handlers: handlers.http, log, bodyLimitBytes: BODY_LIMIT_BYTES, apiId: 'local', authorizer, metrics });
  const ws = new WebSocketApi({ handlers: handlers.ws, log, apiId: 'local', stage: 'local', authorizer: o.auth ? handlers.authorizers.ws : undefined });
  return { http, ws };
}

/** Starts the runtime; resolves once it serves requests and every record written from now on will be delivered. */
export async function startRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const o = resolveOptions(options);
  const log = options.log ?? createLog({ verbose: o.verbose });
  const cleanups = new Cleanups(log);
  try {
    return await start(o, log, cleanups);
  } catch (err) {
    await cleanups.run();
    throw err;
  }
}

async function start(o: ResolvedOptions, log: RuntimeLog, cleanups: Cleanups): Promise<Runtime> {
  // The web console builds while everything else starts (a fraction of DynamoDB Local's start-up).
  const consoleBuild = prepareLocalConsole(log);
  cleanups.add(async () => (await consoleBuild)?.remove());
  // The public port first: a taken port fails at once, before anything was started.
  const server = await cleanups.started(startPublicServer(o.port), (s) => s.close());
  // Robustness runs only: stalls and failures on demand (local/faults.ts); never on by default.
  const faults = o.faultInjection ? await cleanups.started(startFaultControl(log), (f) => f.close()) : undefined;
  const connections = new ConnectionsRelay();
  const [engine, loaded, management] = await startedTogether<[Engine, HandlerSet, ManagementApi]>([
    cleanups.started(startEngine({ endpoint: o.dynamodbEndpoint, dataDir: o.dataDir }), (e) => e.stop()),
    loadHandlers(),
    cleanups.started(startManagementApi(faults ? faults.injector.failingPosts(connections) : connections, log), (m) => m.close()),
  ]);
  const store = await cleanups.started(openStore(engine.endpoint, o.tableName, log), (s) => s.close());
  const auth = await startAuth(o);
  const lambda = await cleanups.started(startPageFunction(o, engine.endpoint, management.url, log), (l) => l.close());

  const metrics = new PrometheusSink();
  const scope = handlerScope(o, {
    dynamodbEndpoint: engine.endpoint,
    callbackUrl: management.url,
    lambdaUrl: lambda.url,
    port: server.port,
    console: await consoleBuild,
    metrics,
    tokenSecret: auth?.secret,
  });
  cleanups.add(() => scope.dispose());
  const handlers = bindHandlers(loaded, scope);
  const apis = gatewayApis(o, handlers, metrics, log);
  connections.attach(apis.ws);
  cleanups.add(() => apis.ws.closeAll());

  const failures = new FailureDestination(o.dataDir, log);
  const gate = faults ? (part: 'sweeper' | 'poller') => faults.injector.gate(part) : undefined;
  const triggers = await cleanups.started(startTriggers({ ...o, store, fanout: handlers.fanout, sweeper: handlers.sweeper, failures, log, gate }), (t) => t.stop());
  if (o.verbose) cleanups.add(await startSummary(metrics, (line) => process.stdout.write(`${line}\n`)));

  server.serve(apis);
  const stop = async () => {
    // Stop taking connections, close WebSockets (1001), stop the poller and the sweeper,
    // let requests under way finish, and stop DynamoDB Local last.
    faults?.injector.clear();
    const serverClosed = server.close();
    await apis.ws.closeAll();
    await triggers.stop();
    await serverClosed;
    await cleanups.run();
  };
  return runtimeOf(o, { server, engine, management, adminToken: auth?.adminToken, faultsUrl: faults?.url, failures, stop, log });
}

interface RuntimeParts {
  server: PublicServer;
  engine: Engine;
  management: ManagementApi;
  adminToken: string | undefined;
  faultsUrl: string | undefined;
  failures: FailureDestination;
  stop: () => Promise<void>;
  log: RuntimeLog;
}

function runtimeOf(o: ResolvedOptions, parts: RuntimeParts): Runtime {
  const { port } = parts.server;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= parts.stop());
  let fail!: (err: Error) => void;
  const failed = new Promise<Error>((resolve) => (fail = resolve));
  void parts.engine.exited.then(async (how) => {
    if (stopping) return;
    const error = new RuntimeStartError(`DynamoDB Local exited unexpectedly (${how}); the information center stopped`);
    parts.log.error(error.message);
    await stop();
    fail(error);
  });
  return {
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    port,
    tableName: o.tableName,
    dynamodbEndpoint: parts.engine.endpoint,
    callbackUrl: parts.management.url,
    adminToken: parts.adminToken,
    faultsUrl: parts.faultsUrl,
    streamFailures: () => parts.failures.recent(),
    stop,
    failed,
  };
}
