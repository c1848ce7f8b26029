/**
 * Loads the very handler modules Lambda runs (`functions/**`), by the names
 * `functions/core/routes.ts` gives them, binds them to one runtime's scope,
 * and invokes them with a Lambda-like context.
 *
 * The modules are shared by every runtime of the process (an import is
 * cached); what differs is the scope each runtime's invocations run in
 * (functions/core/scope.ts): its settings, clients, metrics and secret, read
 * at the first invocation exactly as on a Lambda cold start.
 */
import type { Context } from 'aws-lambda';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES, WS_ROUTES } from '../functions/core/routes.ts';
import type { Scope } from '../functions/core/scope.ts';
import { gatewayId } from './ids.ts';

export type LambdaHandler<E = unknown, R = unknown> = (event: E, context: Context) => Promise<R> | R;

export interface HandlerSet {
  /** `functions/http/{name}.ts` by name. */
  http: Map<string, LambdaHandler>;
  /** `functions/ws/{name}.ts` by route key (`$connect`, `subscribe`, ...). */
  ws: Map<string, LambdaHandler>;
  fanout: LambdaHandler;
  sweeper: LambdaHandler;
  /** `functions/auth/http-authorizer.ts` and `functions/auth/ws-authorizer.ts`. */
  authorizers: { http: LambdaHandler; ws: LambdaHandler };
}

const FUNCTIONS_DIR = new URL('../functions/', import.meta.url);

/** The fan-out's page function, which the local runtime runs behind its Lambda Invoke API (local/lambda-api.ts). */
export const FANOUT_PAGE_FUNCTION = 'roster-local-fanout-page';
export const pageFunctionUrl = (): string => new URL('stream/fanout-page.ts', FUNCTIONS_DIR).href;

async function load(relative: string): Promise<LambdaHandler> {
  const mod = (await import(new URL(`${relative}.ts`, FUNCTIONS_DIR).href)) as { handler?: unknown };
  if (typeof mod.handler !== 'function') throw new Error(`functions/${relative}.ts does not export a handler function`);
  return mod.handler as LambdaHandler;
}

export async function loadHandlers(): Promise<HandlerSet> {
  const httpNames = [...new Set([...HTTP_ROUTES.map((r) => r.handler), HTTP_DEFAULT_HANDLER])];
  const [http, ws, fanout, sweeper, httpAuthorizer, wsAuthorizer] = await Promise.all([
    Promise.all(httpNames.map(async (name) => [name, await load(`http/${name}`)] as const)),
    Promise.all(WS_ROUTES.map(async (route) => [route.routeKey, await load(`ws/${route.handler}`)] as const)),
    load('stream/fanout'),
    load('sweeper/sweeper'),
    load('auth/http-authorizer'),
    load('auth/ws-authorizer'),
  ]);
  return { http: new Map(http), ws: new Map(ws), fanout, sweeper, authorizers: { http: httpAuthorizer, ws: wsAuthorizer } };
}

/** The same handlers, each invocation run in `scope`: what one runtime invokes. */
export function bindHandlers(set: HandlerSet, scope: Scope): HandlerSet {
  const bind = (handler: LambdaHandler): LambdaHandler => scope.bind(handler);
  const bindAll = (map: Map<string, LambdaHandler>) => new Map([...map].map(([key, handler]) => [key, bind(handler)] as const));
  return {
    http: bindAll(set.http),
    ws: bindAll(set.ws),
    fanout: bind(set.fanout),
    sweeper: bind(set.sweeper),
    authorizers: { http: bind(set.authorizers.http), ws: bind(set.authorizers.ws) },
  };
}

/** A context shaped like Lambda's; the handlers do not rely on it, but third-party middleware might. */
export function lambdaContext(functionName: string, timeoutMs: number, requestId = gatewayId()): Context {
  const deadline = Date.now() + timeoutMs;
  const unsupported = () => {
    throw new Error('callback-style completion is not supported by the local runtime');
  };
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `roster-local-${functionName}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:roster-local-${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/roster-local-${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

export class InvocationTimeoutError extends Error {
  constructor(functionName: string, timeoutMs: number) {
    super(`${functionName} did not return within ${timeoutMs} ms`);
    this.name = 'InvocationTimeoutError';
  }
}

/**
 * Invokes a handler like Lambda would: with a context, bounded by a timeout.
 * A timed-out invocation keeps running in the background (this is one process),
 * but its result is ignored, as Lambda ignores a function past its timeout.
 */
export async function invokeHandler(
  handler: LambdaHandler,
  event: unknown,
  functionName: string,
  timeoutMs: number,
): Promise<unknown> {
  const context = lambdaContext(functionName, timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new InvocationTimeoutError(functionName, timeoutMs)), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([Promise.resolve().then(() => handler(event, context)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
