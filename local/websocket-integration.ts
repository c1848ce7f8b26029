/**
 * The local WebSocket API's Lambda integration: each route's function, the
 * `requestContext` every event carries, and what API Gateway reads from a
 * function's answer (its status, its body). It also counts the invocations
 * under way, so a shutdown can let them finish.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { invokeHandler, type LambdaHandler } from './handlers.ts';
import { gatewayId, gatewayTime } from './ids.ts';
import type { Connection } from './websocket-connection.ts';

/** One route of the WebSocket API, as the template defines it. */
export interface WsRoute {
  handler: LambdaHandler;
  /** The function's name, for the invocation's context. */
  functionName: string;
  /** API Gateway's wait for the integration (at most 29 s). */
  timeoutMs: number;
  /** Whether the route has a route response: only then is the integration's answer sent back to the client. */
  respond: boolean;
}

export type WsEventType = 'CONNECT' | 'MESSAGE' | 'DISCONNECT';

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function statusOf(result: unknown): number {
  if (isRecord(result) && typeof result.statusCode === 'number') return result.statusCode;
  // Lambda proxy integrations that return no status count as success.
  return 200;
}

export function bodyOf(result: unknown): string | undefined {
  if (isRecord(result)) return typeof result.body === 'string' ? result.body : undefined;
  return typeof result === 'string' ? result : undefined;
}

export class WsIntegration {
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly routes: Map<string, WsRoute>,
    private readonly api: { apiId: string; stage: string; integrationTimeoutMs: number },
  ) {}

  /** The custom route keys (those not starting with `$`), which a message's selection field may name. */
  customRoutes(): Set<string> {
    return new Set([...this.routes.keys()].filter((k) => !k.startsWith('$')));
  }

  /** Whether the route's answer goes back to the client (it has a route response). */
  responds(routeKey: string): boolean {
    return this.routes.get(routeKey)?.respond ?? false;
  }

  invoke(routeKey: string, event: unknown): Promise<unknown> {
    const route = this.routes.get(routeKey);
    if (!route) return Promise.reject(new Error(`no WebSocket route ${routeKey}`));
    return invokeHandler(route.handler, event, route.functionName, Math.min(route.timeoutMs, this.api.integrationTimeoutMs));
  }

  /** Counts `promise` as work under way until it settles. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    const done = () => this.inflight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Resolves once the work under way now has settled, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    await Promise.race([Promise.allSettled([...this.inflight]), sleep(timeoutMs, undefined, { ref: false })]);
  }

  requestContext(conn: Connection, routeKey: string, eventType: WsEventType, now: number) {
    const requestId = gatewayId();
    return {
      routeKey,
      eventType,
      extendedRequestId: requestId,
      requestTime: gatewayTime(now),
      messageDirection: 'IN',
      stage: this.api.stage,
      connectedAt: conn.connectedAt,
      requestTimeEpoch: now,
      identity: { sourceIp: conn.sourceIp, userAgent: conn.userAgent },
      requestId,
      domainName: conn.domainName,
      connectionId: conn.id,
      apiId: this.api.apiId,
      ...(conn.authorizer ? { authorizer: conn.authorizer } : {}),
    };
  }
}
