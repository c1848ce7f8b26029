/**
 * The whole information center on one machine, running the stack's
 * synthesized template with the very handler modules Lambda runs:
 *
 * - the template: the CDK app's, synthesized with the runtime's settings as
 *   context (local/template/source.ts), or the one `--template` names; its
 *   functions, roles, routes, authorizers, throttles, event source mapping,
 *   schedule and table are what runs (local/template/deployment.ts);
 * - one HTTP server on 127.0.0.1 serving the HTTP API (`/v1/...`) and the
 *   WebSocket API (`/ws`), shaped like API Gateway's events and responses,
 *   with each stage's throttles and the account's quota (local/throttle.ts);
 * - every function in a scope of its own, with its role's credentials; every
 *   AWS call it makes is allowed or refused by IAM as its role's policies
 *   say (local/iam/);
 * - a `@connections` endpoint for the fan-out on a second, loopback-only port;
 * - DynamoDB Local (or an existing endpoint) with the template's table;
 * - a DynamoDB Streams poller behaving like the Lambda event source mapping;
 * - Lambda's Invoke API for every function, in forked processes (local/lambda-api.ts);
 * - Secrets Manager's GetSecretValue for the token secret, with `--auth`;
 * - the sweeper on a timer.
 *
 * A process may run several runtimes (tests, embedding): none of them
 * touches `process.env` or any other state of the process.
 */
import { localRegion } from '../functions/core/aws.ts';
import { BODY_LIMIT_BYTES } from '../functions/core/validation.ts';
import { localAuth } from './auth-secret.ts';
import { HttpAuthorizer, type ConnectAuthorizer } from './authorizers.ts';
import { Cleanups, startedTogether } from './cleanups.ts';
import { consoleEnvironment, prepareLocalConsole } from './console.ts';
import { RuntimeStartError } from './errors.ts';
import { FailureDestination } from './failure-destination.ts';
import { startFaultControl } from './faults.ts';
import { entryUrl, preloadHandlers, prepareFunctions, type LocalFunctions } from './functions.ts';
import { createHttpApi, type HttpRoute } from './http-api.ts';
import { accessKeyOf } from './iam/gate.ts';
import { startLambdaApi, type LambdaApi, type LocalFunction as InvocableFunction } from './lambda-api.ts';
import { createLog, type RuntimeLog } from './log.ts';
import { CallGuards, ConnectionsRelay, startManagementApi, type CallGuard, type CallRefusal, type ManagementApi } from './management-api.ts';
import { PrometheusSink, startSummary, type GatewayCount } from './metrics.ts';
import { resolveOptions, type ResolvedOptions, type RuntimeOptions } from './options.ts';
import { startPublicServer, type PublicServer } from './public-server.ts';
import { startSecretsManager } from './secrets-manager.ts';
import { startEngine, type Engine } from './engine.ts';
import { openStore, tableShapeOf } from './store.ts';
import type { StreamFailure } from './stream-poller.ts';
import { readDeployment, TemplateError, type ApiSpec, type Deployment } from './template/deployment.ts';
import { loadTemplate } from './template/source.ts';
import { ACCOUNT_THROTTLE, StageThrottle, TokenBucket, type Bucket } from './throttle.ts';
import { startTriggers } from './triggers.ts';
import { WebSocketApi, type WsRoute } from './websocket-api.ts';

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

/** The stack's name in the local ARNs (`-c stackName=`, else the app's default). */
const stackNameOf = (o: ResolvedOptions): string => (typeof o.context.stackName === 'string' ? o.context.stackName : 'Roster');

/** Reads the template (the given file, or the app's with the options as context) as the deployment to run. */
async function deploymentOf(o: ResolvedOptions, log: RuntimeLog): Promise<Deployment> {
  const started = performance.now();
  const loaded = await loadTemplate({ file: o.templateFile, context: o.context });
  log.debug(`template ${loaded.file} ${loaded.synthesized ? 'synthesized' : 'read'} in ${Math.round(performance.now() - started)} ms`);
  try {
    return readDeployment(loaded.template, { region: localRegion(), account: '000000000000', stackName: stackNameOf(o), partition: 'aws' }, o.tableName);
  } catch (err) {
    if (err instanceof TemplateError) throw new RuntimeStartError(`cannot run the template ${loaded.file}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The HTTP API's routes: each route key of the template, its function, and with auth on its authorizer. */
async function httpRoutes(api: ApiSpec, functions: LocalFunctions, o: ResolvedOptions, region: string): Promise<HttpRoute[]> {
  const authorizers = new Map<string, HttpAuthorizer>();
  const routes: HttpRoute[] = [];
  for (const route of api.routes.values()) {
    let authorizer: HttpAuthorizer | undefined;
    const a = route.authorizer;
    if (o.auth && a) {
      authorizer = authorizers.get(a.logicalId);
      if (!authorizer) {
        const name = functions.byId.get(a.functionId)?.spec.name;
        authorizer = new HttpAuthorizer({ handler: await functions.handler(a.functionId), functionName: name, cacheTtlSeconds: a.resultTtlSeconds, identitySource: a.identitySource, region });
        authorizers.set(a.logicalId, authorizer);
      }
    }
    const name = functions.byId.get(route.functionId)?.spec.name ?? route.functionId;
    routes.push({ routeKey: route.routeKey, handler: await functions.handler(route.functionId), functionName: name, timeoutMs: route.timeoutMs, authorizer });
  }
  return routes;
}

/** The WebSocket API's routes, and with auth on the `$connect` authorizer. */
async function wsRoutes(api: ApiSpec, functions: LocalFunctions, o: ResolvedOptions, region: string): Promise<{ routes: Map<string, WsRoute>; authorizer?: ConnectAuthorizer }> {
  const routes = new Map<string, WsRoute>();
  for (const route of api.routes.values()) {
    const name = functions.byId.get(route.functionId)?.spec.name ?? route.functionId;
    routes.set(route.routeKey, { handler: await functions.handler(route.functionId), functionName: name, timeoutMs: route.timeoutMs, respond: route.respond });
  }
  const a = api.routes.get('$connect')?.authorizer;
  if (!o.auth || !a) return { routes };
  const name = functions.byId.get(a.functionId)?.spec.name ?? a.functionId;
  return { routes, authorizer: { handler: await functions.handler(a.functionId), functionName: name, identitySource: a.identitySource, region } };
}

/** IAM and the account's throttle for `@connections` calls (the management API starts before the template is read). */
function connectionsGuard(deployment: Deployment, functions: LocalFunctions, account: Bucket): CallGuard {
  const { region } = deployment.placement;
  return {
    admit: () => account.take(),
    async authorize(req, method, stage, connectionId): Promise<CallRefusal | undefined> {
      const gate = functions.gate;
      if (!gate) return undefined;
      const principal = gate.principalOfKey(accessKeyOf(req.headers.authorization));
      const resource = `arn:aws:execute-api:${region}:${gate.account}:${deployment.webSocketApi.id}/${stage ?? deployment.webSocketApi.stage.name}/${method}/@connections/${connectionId}`;
      if (!principal) return { errorType: 'MissingAuthenticationTokenException', body: { message: 'Missing Authentication Token' } };
      const decision = await gate.check(principal, 'execute-api:ManageConnections', resource);
      return decision.allowed ? undefined : { errorType: 'AccessDeniedException', body: { Message: decision.message } };
    },
  };
}

/** The HTTP and WebSocket APIs of the template, with their routes, authorizers and stage throttles. */
async function gatewayApis(deployment: Deployment, functions: LocalFunctions, o: ResolvedOptions, parts: { account: Bucket; metrics: PrometheusSink; count: GatewayCount | undefined; log: RuntimeLog }) {
  const { region } = deployment.placement;
  const { httpApi: httpSpec, webSocketApi: wsSpec } = deployment;
  const http = createHttpApi({
    routes: await httpRoutes(httpSpec, functions, o, region),
    log: parts.log,
    bodyLimitBytes: BODY_LIMIT_BYTES,
    apiId: httpSpec.id,
    stage: httpSpec.stage.name,
    throttle: o.throttle ? new StageThrottle(httpSpec.stage, parts.account) : undefined,
    metrics: parts.metrics,
    count: parts.count,
  });
  const ws = new WebSocketApi({
    ...(await wsRoutes(wsSpec, functions, o, region)),
    routeSelectionExpression: wsSpec.routeSelectionExpression ?? '$request.body.action',
    log: parts.log,
    apiId: wsSpec.id,
    stage: wsSpec.stage.name,
    throttle: o.throttle ? new StageThrottle(wsSpec.stage, parts.account) : undefined,
    count: parts.count,
  });
  return { http, ws };
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

/** Starts the runtime; resolves once it serves requests and every record written from now on will be delivered. */
export async function startRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  let o: ResolvedOptions;
  try {
    o = resolveOptions(options);
  } catch (err) {
    await options.engine?.then((e) => e.stop(), () => undefined);
    throw err;
  }
  const log = options.log ?? createLog({ verbose: o.verbose });
  const cleanups = new Cleanups(log);
  try {
    return await start(o, log, cleanups, options.engine);
  } catch (err) {
    await cleanups.run();
    // An engine started by the caller that `start` never got to is stopped too.
    await options.engine?.then((e) => e.stop(), () => undefined);
    throw err;
  }
}

async function start(o: ResolvedOptions, log: RuntimeLog, cleanups: Cleanups, engineStarting?: Promise<Engine>): Promise<Runtime> {
  // The web console builds while everything else starts (a fraction of DynamoDB Local's start-up).
  const consoleBuild = prepareLocalConsole(log);
  cleanups.add(async () => (await consoleBuild)?.remove());
  // The public port first: a taken port fails at once, before anything was started.
  const server = await cleanups.started(startPublicServer(o.port), (s) => s.close());
  // Robustness runs only: stalls and failures on demand (local/faults.ts); never on by default.
  const faults = o.faultInjection ? await cleanups.started(startFaultControl(log), (f) => f.close()) : undefined;
  const connections = new ConnectionsRelay();
  const guards = new CallGuards();
  // The Lambda Invoke API starts before the functions know its URL: it serves them once they exist.
  const invocable = new Map<string, InvocableFunction>();
  // The template is read (or synthesized) while DynamoDB Local starts.
  const [engine, deployment, management, lambda] = await startedTogether<[Engine, Deployment, ManagementApi, LambdaApi]>([
    cleanups.started(engineStarting ?? startEngine({ endpoint: o.dynamodbEndpoint, dataDir: o.dataDir }), (e) => e.stop()),
    // Read (or synthesized), then its handler modules imported, while DynamoDB Local starts.
    deploymentOf(o, log).then(async (deployment) => {
      await preloadHandlers(deployment);
      return deployment;
    }),
    cleanups.started(startManagementApi(faults ? faults.injector.failingPosts(connections) : connections, log, guards), (m) => m.close()),
    cleanups.started(startLambdaApi(invocable, log), (l) => l.close()),
  ]);
  const store = await cleanups.started(openStore(engine.endpoint, tableShapeOf(deployment.table), log), (s) => s.close());
  const auth = await startAuth(o);
  const secretsManager =
    auth && deployment.secret ? await cleanups.started(startSecretsManager({ arn: deployment.secret.arn, value: auth.secret }, log), (sm) => sm.close()) : undefined;

  const metrics = new PrometheusSink();
  const functions = prepareFunctions(
    deployment,
    { dynamodb: engine.endpoint, callbackUrl: management.url, lambda: lambda.url, secretsManager: secretsManager?.url },
    {
      auth: o.auth,
      verbose: o.verbose,
      iam: o.iam,
      iamLogFile: o.iamLogFile,
      metrics: o.metrics ? metrics : undefined,
      extraEnvironment: { 'functions/http/console.ts': consoleEnvironment(server.port, await consoleBuild) },
    },
  );
  cleanups.add(() => functions.dispose());
  for (const fn of functions.byId.values()) {
    const env = { ...fn.env, ...(process.env.PATH ? { PATH: process.env.PATH } : {}) };
    invocable.set(fn.spec.name, { moduleUrl: entryUrl(fn.spec.entry), env, gate: fn.gate, timeoutMs: fn.spec.timeoutMs });
  }

  const account: Bucket = o.throttle ? new TokenBucket(ACCOUNT_THROTTLE) : { take: () => true };
  const count = o.metrics ? metrics.countRequest : undefined;
  guards.attach(connectionsGuard(deployment, functions, account), count);
  const { http, ws } = await gatewayApis(deployment, functions, o, { account, metrics, count, log });
  connections.attach(ws);
  cleanups.add(() => ws.closeAll());
  const region = deployment.placement.region;

  const failures = new FailureDestination(o.dataDir, log);
  const pause = faults ? (part: 'sweeper' | 'poller') => faults.injector.gate(part) : undefined;
  const fanout = functions.byId.get(deployment.streamMapping.functionId);
  const sweeper = functions.byId.get(deployment.schedule.functionId);
  if (!fanout || !sweeper) throw new RuntimeStartError('the template has no stream function or no scheduled function');
  const triggers = await cleanups.started(
    startTriggers({
      tableName: o.tableName,
      store,
      mapping: deployment.streamMapping,
      fanout: { spec: fanout.spec, principal: fanout.principal, handler: await functions.handler(fanout.spec.logicalId) },
      sweeper: { spec: sweeper.spec, handler: await functions.handler(sweeper.spec.logicalId) },
      region,
      pollIntervalMs: o.pollIntervalMs,
      failures,
      gate: functions.gate,
      log,
      pause,
    }),
    (t) => t.stop(),
  );
  if (o.verbose) cleanups.add(await startSummary(metrics, (line) => process.stdout.write(`${line}\n`)));

  server.serve({ http, ws });
  const stop = async () => {
    // Stop taking connections, close WebSockets (1001), stop the poller and the sweeper,
    // let requests under way finish, and stop DynamoDB Local last.
    faults?.injector.clear();
    const serverClosed = server.close();
    await ws.closeAll();
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
