/**
 * API Gateway's Lambda authorizers, as the local runtime runs them: the very
 * authorizer modules (`functions/auth/*`), invoked with API Gateway-shaped
 * authorizer events, their results handled the way API Gateway handles them.
 *
 * HTTP API (REQUEST authorizer, payload 2.0, simple responses):
 * - identity source `$request.header.Authorization`: a request without the
 *   header (or with an empty one) is answered `401 {"message":"Unauthorized"}`
 *   without invoking the authorizer; with `cacheTtlSeconds` 0 there is no
 *   identity source and the authorizer sees every request;
 * - results are cached per identity source value for `cacheTtlSeconds`;
 * - `isAuthorized: false` → `403 {"message":"Forbidden"}`; a failing
 *   authorizer → `500 {"message":"Internal Server Error"}` (not cached);
 * - the context reaches the handler as `requestContext.authorizer.lambda`.
 *
 * WebSocket API (`$connect` REQUEST authorizer, identity source
 * `route.request.querystring.token`, no caching on WebSocket APIs):
 * - no `token` → 401 without invoking it; the error `Unauthorized` → 401; a
 *   policy that does not allow the route → 403; any other failure → 500;
 * - the context and `principalId` reach `$connect` and every later event of
 *   the connection as `requestContext.authorizer`, every context value
 *   stringified (`1` → `"1"`, `true` → `"true"`); an object or array in the
 *   context is a configuration error → 500. Unlike the HTTP API, which keeps
 *   JSON types (see `stringifiedContext`).
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { runUnsafeSimulation } from '@cloud-copilot/iam-simulate';
import { invokeHandler, type LambdaHandler } from './handlers.ts';

/** API Gateway's timeout for an authorizer invocation (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html: 10 seconds). */
const AUTHORIZER_TIMEOUT_MS = 10_000;
/** Bounds the cache's memory, whatever a client sends. */
const MAX_CACHED_RESULTS = 10_000;

/** What API Gateway itself answers (not the contract's body: these come before any of Roster's code). */
export interface GatewayReply {
  statusCode: number;
  body: string;
}

export const GATEWAY_UNAUTHORIZED: GatewayReply = { statusCode: 401, body: JSON.stringify({ message: 'Unauthorized' }) };
export const GATEWAY_FORBIDDEN: GatewayReply = { statusCode: 403, body: JSON.stringify({ message: 'Forbidden' }) };
export const GATEWAY_ERROR: GatewayReply = { statusCode: 500, body: JSON.stringify({ message: 'Internal Server Error' }) };

export type AuthorizerOutcome = { kind: 'allow'; context: Record<string, unknown> } | { kind: 'refuse'; reply: GatewayReply };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface HttpAuthorizerOptions {
  handler: LambdaHandler;
  /** The function's name, for the invocation's context. @default 'http-authorizer' */
  functionName?: string;
  /** Seconds a result is cached per identity source value (`AuthorizerResultTtlInSeconds`); 0 disables caching. */
  cacheTtlSeconds: number;
  /**
   * The authorizer's `IdentitySource` (`$request.header.Authorization`,
   * `$request.querystring.token`): a request missing any of them is 401
   * without invoking the authorizer. @default ['$request.header.Authorization'] when cached, else none
   */
  identitySource?: readonly string[];
  /** The Region in the `routeArn` the authorizer gets. @default 'us-east-1' */
  region?: string;
  now?: () => number;
}

/** The value of one identity source of an HTTP API request, as API Gateway reads it. */
function identityValue(event: APIGatewayProxyEventV2, source: string): string | undefined {
  const header = /^\$request\.header\.(.+)$/.exec(source)?.[1];
  if (header) return event.headers[header.toLowerCase()];
  const query = /^\$request\.querystring\.(.+)$/.exec(source)?.[1];
  if (query) return event.queryStringParameters?.[query];
  return undefined;
}

export class HttpAuthorizer {
  private readonly cache = new Map<string, { outcome: AuthorizerOutcome; until: number }>();
  private readonly now: () => number;

  constructor(private readonly options: HttpAuthorizerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Runs (or answers from the cache) the authorizer for a request about to reach a protected route. */
  async authorize(event: APIGatewayProxyEventV2, apiId: string): Promise<AuthorizerOutcome> {
    const { cacheTtlSeconds } = this.options;
    const sources = this.options.identitySource ?? (cacheTtlSeconds > 0 ? ['$request.header.Authorization'] : []);
    const identitySource = sources.map((source) => identityValue(event, source));
    if (identitySource.some((value) => value === undefined || value === '')) return { kind: 'refuse', reply: GATEWAY_UNAUTHORIZED };
    const key = identitySource.join('\0');
    if (cacheTtlSeconds > 0) {
      const hit = this.cache.get(key);
      if (hit && hit.until > this.now()) return hit.outcome;
      if (hit) this.cache.delete(key);
    }
    const { requestContext } = event;
    const authorizerEvent = {
      version: '2.0',
      type: 'REQUEST',
      routeArn: `arn:aws:execute-api:${this.options.region ?? 'us-east-1'}:000000000000:${apiId}/${requestContext.stage}/${requestContext.http.method}${event.rawPath}`,
      identitySource,
      routeKey: event.routeKey,
      rawPath: event.rawPath,
      rawQueryString: event.rawQueryString,
      cookies: event.cookies ?? [],
      headers: event.headers,
      queryStringParameters: event.queryStringParameters,
      requestContext,
      pathParameters: event.pathParameters,
      stageVariables: {},
    };
    let result: unknown;
    try {
      result = await invokeHandler(this.options.handler, authorizerEvent, this.options.functionName ?? 'http-authorizer', AUTHORIZER_TIMEOUT_MS);
    } catch {
      return { kind: 'refuse', reply: GATEWAY_ERROR };
    }
    let outcome: AuthorizerOutcome;
    if (!isRecord(result) || typeof result.isAuthorized !== 'boolean') outcome = { kind: 'refuse', reply: GATEWAY_ERROR };
    else if (!result.isAuthorized) outcome = { kind: 'refuse', reply: GATEWAY_FORBIDDEN };
    else outcome = { kind: 'allow', context: isRecord(result.context) ? result.context : {} };
    if (cacheTtlSeconds > 0 && !(outcome.kind === 'refuse' && outcome.reply === GATEWAY_ERROR)) {
      if (this.cache.size >= MAX_CACHED_RESULTS) {
        const oldest = this.cache.keys().next();
        if (!oldest.done) this.cache.delete(oldest.value);
      }
      this.cache.set(key, { outcome, until: this.now() + cacheTtlSeconds * 1000 });
    }
    return outcome;
  }
}

/**
 * Whether the policy an authorizer returned allows `execute-api:Invoke` on
 * `methodArn`, evaluated by the same IAM evaluator as the functions' calls
 * (local/iam/gate.ts). Without resource validation: a WebSocket route ARN
 * (`{api}/{stage}/$connect`) is not in the evaluator's execute-api formats.
 */
function policyAllows(policy: unknown, methodArn: string): boolean {
  if (!isRecord(policy) || !Array.isArray(policy.Statement)) return false;
  const account = methodArn.split(':')[4] ?? '000000000000';
  const result = runUnsafeSimulation(
    {
      request: { principal: `arn:aws:iam::${account}:user/websocket-client`, action: 'execute-api:Invoke', resource: { resource: methodArn, accountId: account }, contextVariables: {} },
      identityPolicies: [{ name: 'authorizer-policy', policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  return result === 'Allowed';
}

/**
 * The `$connect` authorizer. `event` is the `$connect` event (headers, query
 * string, request context); it becomes the authorizer's REQUEST event.
 */
export interface ConnectAuthorizer {
  handler: LambdaHandler;
  functionName: string;
  /** `route.request.querystring.token`, `route.request.header.X`: a `$connect` missing one is 401 without invoking the authorizer. */
  identitySource: readonly string[];
  region: string;
}

/** The value of one identity source of a `$connect` request. */
function connectIdentity(event: Record<string, unknown>, source: string): unknown {
  const query = /^route\.request\.querystring\.(.+)$/.exec(source)?.[1];
  if (query) return isRecord(event.queryStringParameters) ? event.queryStringParameters[query] : undefined;
  const header = /^route\.request\.header\.(.+)$/.exec(source)?.[1]?.toLowerCase();
  if (header && isRecord(event.headers)) return Object.entries(event.headers).find(([name]) => name.toLowerCase() === header)?.[1];
  return undefined;
}

export async function authorizeConnect(authorizer: ConnectAuthorizer, event: Record<string, unknown>, apiId: string, stage: string): Promise<AuthorizerOutcome> {
  for (const source of authorizer.identitySource) {
    const value = connectIdentity(event, source);
    if (typeof value !== 'string' || value === '') return { kind: 'refuse', reply: GATEWAY_UNAUTHORIZED };
  }
  const methodArn = `arn:aws:execute-api:${authorizer.region}:000000000000:${apiId}/${stage}/$connect`;
  let result: unknown;
  try {
    result = await invokeHandler(authorizer.handler, { ...event, type: 'REQUEST', methodArn, stageVariables: {} }, authorizer.functionName, AUTHORIZER_TIMEOUT_MS);
  } catch (err) {
    return { kind: 'refuse', reply: err instanceof Error && err.message === 'Unauthorized' ? GATEWAY_UNAUTHORIZED : GATEWAY_ERROR };
  }
  if (!isRecord(result) || typeof result.principalId !== 'string') return { kind: 'refuse', reply: GATEWAY_ERROR };
  if (!policyAllows(result.policyDocument, methodArn)) return { kind: 'refuse', reply: GATEWAY_FORBIDDEN };
  const context = stringifiedContext(result.context);
  if (!context) return { kind: 'refuse', reply: GATEWAY_ERROR };
  return { kind: 'allow', context: { ...context, principalId: result.principalId } };
}

/**
 * A WebSocket (or REST) authorizer's context as API Gateway hands it to the
 * integration: "The returned values are all stringified. Notice that you
 * cannot set a JSON object or array as a valid value of any key in the
 * context map." (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html).
 * Undefined when a value is not a string, number or boolean: API Gateway
 * then fails the request with 500 (an authorizer configuration error).
 */
export function stringifiedContext(context: unknown): Record<string, string> | undefined {
  if (context === undefined || context === null) return {};
  if (!isRecord(context)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(context)) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return undefined;
    out[key] = String(value);
  }
  return out;
}
