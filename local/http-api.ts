/**
 * The HTTP API half of API Gateway: each request becomes an HTTP API payload
 * v2 event for the handler module `functions/core/routes.ts` assigns to it;
 * requests no route matches go to the `$default` (not-found) module, as on AWS.
 *
 * The request body is read with a cap and never buffered past it; an
 * oversized body is answered with the contract's 413 at once. Anything that
 * goes wrong here is answered with the contract's opaque 500: no stack trace
 * or internal detail ever reaches a client.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { PayloadTooLargeError, toErrorBody } from '../functions/core/errors.ts';
import { matchPath } from '../functions/core/routes.ts';
import type { HttpAuthorizer } from './authorizers.ts';
import { AbandonedInvocationError, invokeHandler, type LambdaHandler } from './handlers.ts';
import { gatewayId, gatewayTime } from './ids.ts';
import type { RuntimeLog } from './log.ts';
import type { GatewayCount } from './metrics.ts';
import { THROTTLED_BODY, type StageThrottle } from './throttle.ts';

/** After a 413, how much more of the oversized body is read (and dropped) so the client can see the answer. */
const DRAIN_LIMIT_BYTES = 1024 * 1024;

export const INTERNAL_ERROR_BODY = JSON.stringify(toErrorBody(new Error('internal')).body);

export class BodyTooLargeError extends Error {
  constructor() {
    super('request body too large');
    this.name = 'BodyTooLargeError';
  }
}

/** Reads a request body, failing with `BodyTooLargeError` as soon as it passes `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLargeError());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        finish(new BodyTooLargeError());
      } else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish());
    req.once('error', (err) => finish(err));
    // 'close' also follows every complete request: the error is made only when the body was cut short.
    req.once('close', () => {
      if (!settled) finish(new Error('the client closed the request before sending its body'));
    });
  });
}

export interface RequestTarget {
  rawPath: string;
  rawQueryString: string;
}

export function splitTarget(url: string | undefined): RequestTarget {
  const target = url ?? '/';
  const q = target.indexOf('?');
  return q < 0 ? { rawPath: target, rawQueryString: '' } : { rawPath: target.slice(0, q), rawQueryString: target.slice(q + 1) };
}

/** Query parameters as API Gateway v2 gives them: repeated names joined with commas; absent when there are none. */
export function queryParameters(rawQueryString: string): Record<string, string> | undefined {
  if (rawQueryString === '') return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(rawQueryString)) {
    out[key] = key in out ? `${out[key]},${value}` : value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

export const sourceIpOf = (req: IncomingMessage): string => (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');

export interface HttpEventInput {
  req: IncomingMessage;
  body: Buffer;
  routeKey: string;
  pathParameters?: Record<string, string>;
  requestId: string;
  now: number;
  apiId: string;
  /** @default '$default' */
  stage?: string;
}

/** The API Gateway HTTP API payload v2 event for a request. */
export function buildHttpEvent({ req, body, routeKey, pathParameters, requestId, now, apiId, stage = '$default' }: HttpEventInput): APIGatewayProxyEventV2 {
  const { rawPath, rawQueryString } = splitTarget(req.url);
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (values === undefined) continue;
    if (name === 'cookie') {
      cookies = values.flatMap((v) => v.split(';')).map((c) => c.trim()).filter((c) => c !== '');
      continue;
    }
    headers[name] = values.join(',');
  }
  const domainName = headers.host ?? '127.0.0.1';
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      accountId: '000000000000',
      apiId,
      domainName,
      domainPrefix: domainName.split('.')[0] ?? domainName,
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: sourceIpOf(req),
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey,
      stage,
      time: gatewayTime(now),
      timeEpoch: now,
    },
    isBase64Encoded: false,
  };
  if (cookies && cookies.length > 0) event.cookies = cookies;
  const query = queryParameters(rawQueryString);
  if (query) event.queryStringParameters = query;
  if (pathParameters && Object.keys(pathParameters).length > 0) event.pathParameters = pathParameters;
  if (body.length > 0) event.body = body.toString('utf8');
  return event;
}

export interface HttpReply {
  statusCode: number;
  headers: Record<string, string>;
  cookies: string[];
  body: Buffer;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const internalErrorReply = (): HttpReply => ({
  statusCode: 500,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  cookies: [],
  body: Buffer.from(INTERNAL_ERROR_BODY),
});

/**
 * What API Gateway makes of a handler's return value (payload v2): a structured
 * result is used as is; anything else is a 200 with the value as JSON. A
 * malformed result is the integration's fault: 500.
 */
export function toReply(result: unknown): HttpReply {
  if (!isRecord(result) || !('statusCode' in result)) {
    const body = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, cookies: [], body: Buffer.from(body) };
  }
  const { statusCode, headers, cookies, body, isBase64Encoded } = result;
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) {
    throw new Error(`handler returned an invalid statusCode ${String(statusCode)}`);
  }
  const outHeaders: Record<string, string> = {};
  if (isRecord(headers)) {
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined && value !== null) outHeaders[name.toLowerCase()] = String(value);
    }
  }
  const outCookies = Array.isArray(cookies) ? cookies.map(String) : [];
  let bytes = Buffer.alloc(0);
  if (typeof body === 'string') bytes = isBase64Encoded === true ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8');
  else if (body !== undefined && body !== null) throw new Error('handler returned a non-string body');
  return { statusCode, headers: outHeaders, cookies: outCookies, body: bytes };
}

export function writeReply(res: ServerResponse, reply: HttpReply, requestId: string, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  try {
    res.statusCode = reply.statusCode;
    for (const [name, value] of Object.entries({ ...reply.headers, ...extraHeaders })) res.setHeader(name, value);
    if (reply.cookies.length > 0) res.setHeader('set-cookie', reply.cookies);
    res.setHeader('apigw-requestid', requestId);
    if (reply.statusCode !== 204 && reply.statusCode !== 304) res.setHeader('content-length', reply.body.length);
    res.end(reply.body);
  } catch {
    // A header the handler set was not valid HTTP: answer with the opaque 500 instead.
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const fallback = internalErrorReply();
    res.removeHeader('set-cookie');
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = 500;
    res.setHeader('content-type', fallback.headers['content-type'] ?? 'application/json');
    res.setHeader('apigw-requestid', requestId);
    res.setHeader('content-length', fallback.body.length);
    res.end(fallback.body);
  }
}

/** One route of the HTTP API, as the template defines it. */
export interface HttpRoute {
  /** `PUT /v1/clusters/{clusterId}/nodes/{nodeId}`, or `$default`. */
  routeKey: string;
  handler: LambdaHandler;
  /** The function's name, for the invocation's context. */
  functionName: string;
  /** API Gateway's wait for the integration (`TimeoutInMillis`, 30 s by default). */
  timeoutMs: number;
  /** The route's Lambda authorizer (`AuthorizationType: CUSTOM`), when auth is on. */
  authorizer?: HttpAuthorizer;
}

export interface HttpApiOptions {
  routes: HttpRoute[];
  log: RuntimeLog;
  bodyLimitBytes: number;
  apiId: string;
  /** The stage's name (`$default` serves at the API's root). @default '$default' */
  stage?: string;
  /** The stage's throttle (local/throttle.ts); a refused request is API Gateway's 429. @default none */
  throttle?: StageThrottle;
  /** Served at `GET /metrics` to loopback clients (Prometheus text); not a route of the API on AWS. */
  metrics?: { text(): Promise<string>; contentType: string };
  /** Counts each request by route key and status (local/metrics.ts). @default none */
  count?: GatewayCount;
}

const LOOPBACK_IPS = new Set(['127.0.0.1', '::1']);

/** Answers an oversized request with 413, reading (and dropping) a bounded tail so the client gets to read the answer. */
function refuseOversized(req: IncomingMessage, res: ServerResponse, limit: number, requestId: string): void {
  const body = Buffer.from(JSON.stringify(toErrorBody(new PayloadTooLargeError(limit)).body));
  writeReply(res, { statusCode: 413, headers: { 'content-type': 'application/json; charset=utf-8' }, cookies: [], body }, requestId, {
    connection: 'close',
  });
  let drained = 0;
  const stop = () => {
    req.socket.destroy();
  };
  const timer = setTimeout(stop, 2000);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMIT_BYTES) stop();
  });
  req.once('end', () => clearTimeout(timer));
  req.resume();
}

/**
 * The route a request selects, as API Gateway picks it: the method and every
 * path segment match (`{param}` one segment), `ANY`
 * matches every method, and the most specific route wins (fewer parameters);
 * else `$default`.
 */
export function selectRoute(routes: readonly HttpRoute[], method: string, path: string): { route: HttpRoute; params?: Record<string, string> } | undefined {
  let best: { route: HttpRoute; params: Record<string, string>; score: number } | undefined;
  for (const route of routes) {
    const space = route.routeKey.indexOf(' ');
    if (space < 0) continue;
    const routeMethod = route.routeKey.slice(0, space);
    if (routeMethod !== method && routeMethod !== 'ANY') continue;
    const params = matchPath(route.routeKey.slice(space + 1), path);
    if (!params) continue;
    const score = Object.keys(params).length * 2 + (routeMethod === 'ANY' ? 1 : 0);
    if (!best || score < best.score) best = { route, params, score };
  }
  if (best) return { route: best.route, params: best.params };
  const fallback = routes.find((r) => r.routeKey === '$default');
  return fallback ? { route: fallback } : undefined;
}

const NOT_FOUND_BODY = JSON.stringify({ message: 'Not Found' });

/** The request listener of the HTTP API. */
export function createHttpApi(options: HttpApiOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { routes, log, bodyLimitBytes, apiId } = options;
  const stage = options.stage ?? '$default';
  return async (req, res) => {
    const requestId = gatewayId();
    const now = Date.now();
    // The route key a reply is counted under: none until a route is selected, as API Gateway's own 404.
    let routeKey = '$none';
    const reply = (r: HttpReply) => {
      options.count?.('http', routeKey, r.statusCode);
      writeReply(res, r, requestId);
    };
    try {
      if (options.metrics && req.method === 'GET' && splitTarget(req.url).rawPath === '/metrics') {
        const allowed = LOOPBACK_IPS.has(sourceIpOf(req));
        const text = allowed ? await options.metrics.text() : JSON.stringify({ error: { code: 'FORBIDDEN', message: '/metrics is served to loopback clients only' } });
        const contentType = allowed ? options.metrics.contentType : 'application/json; charset=utf-8';
        // Not a route of the API: not counted.
        writeReply(res, { statusCode: allowed ? 200 : 403, headers: { 'content-type': contentType }, cookies: [], body: Buffer.from(text) }, requestId);
        return;
      }
      const method = req.method ?? 'GET';
      const { rawPath } = splitTarget(req.url);
      const selected = selectRoute(routes, method, rawPath);
      if (!selected) {
        // No route and no $default: API Gateway's own 404.
        req.resume();
        reply({ statusCode: 404, headers: { 'content-type': 'application/json' }, cookies: [], body: Buffer.from(NOT_FOUND_BODY) });
        return;
      }
      const { route } = selected;
      routeKey = route.routeKey;
      if (options.throttle && !options.throttle.admit(route.routeKey)) {
        req.resume();
        log.debug(`${method} ${rawPath.slice(0, 200)} -> 429 (throttled)`, { route: route.routeKey });
        reply({ statusCode: 429, headers: { 'content-type': 'application/json' }, cookies: [], body: Buffer.from(THROTTLED_BODY) });
        return;
      }
      let body: Buffer;
      try {
        body = await readBody(req, bodyLimitBytes);
      } catch (err) {
        if (err instanceof BodyTooLargeError) {
          options.count?.('http', routeKey, 413);
          refuseOversized(req, res, bodyLimitBytes, requestId);
        } else res.destroy();
        return;
      }
      const event = buildHttpEvent({ req, body, routeKey: route.routeKey, pathParameters: selected.params, requestId, now, apiId, stage });
      if (route.authorizer) {
        const outcome = await route.authorizer.authorize(event, apiId);
        if (outcome.kind === 'refuse') {
          log.debug(`${method} ${rawPath.slice(0, 200)} -> ${outcome.reply.statusCode} (authorizer)`, { route: route.routeKey, ms: Date.now() - now });
          reply({ statusCode: outcome.reply.statusCode, headers: { 'content-type': 'application/json' }, cookies: [], body: Buffer.from(outcome.reply.body) });
          return;
        }
        // As on AWS (payload 2.0): the authorizer's context reaches the handler here.
        (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: outcome.context };
      }
      // A client that gave up while its request waited for a turn (its connection closed) is not served.
      const gone = () => req.socket.destroyed;
      let result: unknown;
      try {
        result = await invokeHandler(route.handler, event, route.functionName, route.timeoutMs, gone);
      } catch (err) {
        if (!(err instanceof AbandonedInvocationError)) throw err;
        log.debug(`${method} ${rawPath.slice(0, 200)}: the client went away before its turn; not invoked`, { route: route.routeKey });
        return;
      }
      const answer = toReply(result);
      log.debug(`${method} ${rawPath.slice(0, 200)} -> ${answer.statusCode}`, { route: route.routeKey, ms: Date.now() - now });
      reply(answer);
    } catch (err) {
      log.error('HTTP request failed inside the runtime; answered 500', { path: splitTarget(req.url).rawPath.slice(0, 200), error: err as Error });
      reply(internalErrorReply());
    }
  };
}
