/**
 * The HTTP side of every handler: API Gateway HTTP API (payload v2) events
 * in, JSON responses out. `httpHandler` is the one place where errors become
 * responses; an unknown error is logged with its stack and answered with an
 * opaque 500.
 */
import { constants as zlib, gzipSync } from 'node:zlib';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { authRequired, checkAccess } from './auth.ts';
import { MethodNotAllowedError, toErrorBody } from './errors.ts';
import { logger } from './log.ts';
import { codeOf, recordRequest, subjectOf } from './observe.ts';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES, type RouteAccess } from './routes.ts';
import { parseId, parseJsonBody, refuseUnknownQuery } from './validation.ts';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

export function json(statusCode: number, body?: unknown, headers: Record<string, string> = {}): HttpResult {
  if (body === undefined) return { statusCode, headers: { 'cache-control': 'no-store', ...headers } };
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/** Bodies smaller than this go as they are: gzip would save less than its CPU costs and its header weighs. */
export const GZIP_MIN_BYTES = 8 * 1024;

/**
 * Whether an `Accept-Encoding` header (RFC 9110 §12.5.3) accepts gzip: named
 * (or as `x-gzip`) with a q-value above 0, or not named while `*` is.
 */
export function acceptsGzip(header: string | undefined): boolean {
  let star = 0;
  for (const part of (header ?? '').split(',')) {
    const [coding = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    if (coding === 'gzip' || coding === 'x-gzip') return weight > 0;
    if (coding === '*') star = weight;
  }
  return star > 0;
}

/**
 * The answer gzip-compressed when the request accepts gzip and the body is
 * large enough to gain. The HTTP API does not compress on its own (only REST
 * APIs have content encoding:
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-vs-rest.html);
 * a Lambda integration returns binary as base64 with `isBase64Encoded`, which
 * API Gateway decodes before it answers
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
 * Lambda's 6 MB response limit then applies to the base64 text: 4/3 of the
 * compressed bytes (list-page.ts keeps a list page well under it). The
 * fastest level: a list's JSON repeats its field names, which level 1 finds
 * as well as level 6, in a quarter of the time.
 */
export function negotiateEncoding(event: HttpEvent, result: HttpResult): HttpResult {
  const { body } = result;
  if (typeof body !== 'string' || Buffer.byteLength(body) < GZIP_MIN_BYTES || !acceptsGzip(event.headers?.['accept-encoding'])) return result;
  return {
    ...result,
    headers: { ...result.headers, 'content-encoding': 'gzip' },
    body: gzipSync(body, { level: zlib.Z_BEST_SPEED }).toString('base64'),
    isBase64Encoded: true,
  };
}

export function errorResponse(err: unknown, context: Record<string, unknown> = {}): HttpResult {
  const { statusCode, body, internal } = toErrorBody(err);
  if (internal) logger.error('request failed', { ...context, error: err as Error });
  const headers: Record<string, string> = {};
  if (err instanceof MethodNotAllowedError) headers.allow = err.allow.join(', ');
  if (statusCode === 429) headers['retry-after'] = '1';
  return json(statusCode, body, headers);
}

/** Who may call the handler module `name`, as `HTTP_ROUTES` declares it; the `$default` module is public (it only answers 404/405). */
export function accessOf(name: string): RouteAccess {
  if (name === HTTP_DEFAULT_HANDLER) return 'public';
  const declared = new Set(HTTP_ROUTES.filter((r) => r.handler === name).map((r) => r.access));
  const [access, ...others] = declared;
  if (!access || others.length > 0) throw new Error(`handler ${name} must serve routes of exactly one access level, not [${[...declared].join(', ')}]`);
  return access;
}

/**
 * The query parameters the handler module `name` takes, as `HTTP_ROUTES`
 * declares them; undefined for the `$default` module, whose 404/405 says more
 * than a 400 about the query would.
 */
export function queryParametersOf(name: string): readonly string[] | undefined {
  if (name === HTTP_DEFAULT_HANDLER) return undefined;
  const declared = new Set(HTTP_ROUTES.filter((r) => r.handler === name).map((r) => r.query.join('&')));
  if (declared.size !== 1) throw new Error(`handler ${name} must serve routes that take the same query parameters`);
  return HTTP_ROUTES.find((r) => r.handler === name)?.query;
}

/** What the HTTP API passes on from a Lambda authorizer (payload 2.0): `requestContext.authorizer.lambda`. */
function authorizerContextOf(event: HttpEvent): unknown {
  const authorizer: unknown = (event.requestContext as { authorizer?: unknown }).authorizer;
  return typeof authorizer === 'object' && authorizer !== null ? (authorizer as { lambda?: unknown }).lambda : undefined;
}

/**
 * Wraps a route's logic: first the access check of the route (401 who, 403
 * may they — before anything is read or written, so a denial changes
 * nothing), then the refusal of query parameters the route does not take
 * (400), then the logic; every thrown error becomes the contract's error
 * response.
 */
export function httpHandler(route: string, fn: (event: HttpEvent) => Promise<HttpResult>) {
  const access = accessOf(route);
  const query = queryParametersOf(route);
  return async (event: HttpEvent): Promise<HttpResult> => {
    const startedAt = Date.now();
    let result: HttpResult;
    let code: string | undefined;
    try {
      if (access !== 'public' && authRequired()) checkAccess(access, authorizerContextOf(event), event.pathParameters?.clusterId);
      // Every route alike, before its logic: a parameter it does not take is a 400 that changes nothing.
      if (query) refuseUnknownQuery(event.queryStringParameters, query);
      result = await fn(event);
    } catch (err) {
      code = codeOf(err);
      result = errorResponse(err, { route, path: event.rawPath.slice(0, 200) });
    }
    recordRequest({
      route: event.routeKey,
      requestId: event.requestContext.requestId,
      clusterId: event.pathParameters?.clusterId,
      nodeId: event.pathParameters?.nodeId,
      principal: subjectOf(authorizerContextOf(event)),
      status: result.statusCode ?? 200,
      code,
      startedAt,
    });
    return result;
  };
}

export function pathIds(event: HttpEvent): { clusterId: string; nodeId: string } {
  return {
    clusterId: parseId(event.pathParameters?.clusterId, 'clusterId'),
    nodeId: parseId(event.pathParameters?.nodeId, 'nodeId'),
  };
}

export function clusterIdOf(event: HttpEvent): string {
  return parseId(event.pathParameters?.clusterId, 'clusterId');
}

export function bodyOf(event: HttpEvent): unknown {
  return parseJsonBody(event.body, event.isBase64Encoded);
}
