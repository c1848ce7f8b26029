/**
 * Message routing of the local WebSocket API: each client message is routed
 * by the route selection expression (`$request.body.action`), falling back
 * to `$default`, and the handler's `body` is sent back to the client (route
 * responses). Messages of one connection are handled one after another, in
 * arrival order.
 */
import { WebSocket, type RawData } from 'ws';
import { toErrorBody } from '../functions/core/errors.ts';
import { gatewayId } from './ids.ts';
import type { RuntimeLog } from './log.ts';
import type { GatewayCount } from './metrics.ts';
import { THROTTLED_BODY, type StageThrottle } from './throttle.ts';
import { touch, type Connection } from './websocket-connection.ts';
import { bodyOf, isRecord, statusOf, type WsIntegration } from './websocket-integration.ts';

/** Client messages queued on one connection before it is closed for flooding. */
const MAX_QUEUED_MESSAGES = 1000;

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);

/** The field of a client message that selects its route, from `$request.body.<field>`. */
function selectionPath(expression: string): string[] {
  const match = /^\$request\.body\.(.+)$/.exec(expression);
  if (!match?.[1]) throw new Error(`unsupported route selection expression ${expression}`);
  return match[1].split('.');
}

export class MessageRouter {
  private readonly selection: string[];
  private readonly customRoutes: Set<string>;

  constructor(
    private readonly integration: WsIntegration,
    routeSelectionExpression: string,
    private readonly log: RuntimeLog,
    private readonly throttle?: StageThrottle,
    /** Counts each message by its route key and status (local/metrics.ts). */
    private readonly count?: GatewayCount,
  ) {
    this.selection = selectionPath(routeSelectionExpression);
    this.customRoutes = integration.customRoutes();
  }

  /** The route a message selects: the value of the selection field if it names a custom route, else `$default`. */
  selectRoute(text: string): string {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return '$default';
    }
    for (const key of this.selection) value = isRecord(value) ? value[key] : undefined;
    return typeof value === 'string' && this.customRoutes.has(value) ? value : '$default';
  }

  /** A client message: queued behind the connection's earlier ones, then routed. */
  receive(conn: Connection, raw: RawData, isBinary: boolean): void {
    touch(conn);
    const data = toBuffer(raw);
    if (conn.queued >= MAX_QUEUED_MESSAGES) {
      conn.ws?.close(1008, 'too many messages in flight');
      return;
    }
    conn.queued++;
    const received = Date.now();
    conn.chain = conn.chain
      .then(async () => {
        try {
          await this.route(conn, data, isBinary, received);
        } finally {
          conn.queued--;
        }
      })
      .catch((err: unknown) => this.log.error('WebSocket message handling failed', { connectionId: conn.id, error: err as Error }));
  }

  private async route(conn: Connection, data: Buffer, isBinary: boolean, received: number): Promise<void> {
    const text = isBinary ? undefined : data.toString('utf8');
    const routeKey = text === undefined ? '$default' : this.selectRoute(text);
    const requestContext = { ...this.integration.requestContext(conn, routeKey, 'MESSAGE', received), messageId: gatewayId() };
    if (this.throttle && !this.throttle.admit(routeKey)) {
      // API Gateway's own error frame, as for its other errors: the message, the connection and the request.
      this.count?.('websocket', routeKey, 429);
      const frame = JSON.stringify({ ...(JSON.parse(THROTTLED_BODY) as object), connectionId: conn.id, requestId: requestContext.requestId });
      if (conn.ws?.readyState === WebSocket.OPEN) conn.ws.send(frame);
      return;
    }
    const event = {
      requestContext,
      body: text ?? data.toString('base64'),
      isBase64Encoded: text === undefined,
    };
    let body: string | undefined;
    try {
      const result = await this.integration.track(this.integration.invoke(routeKey, event));
      this.count?.('websocket', routeKey, statusOf(result));
      body = bodyOf(result);
    } catch (err) {
      this.count?.('websocket', routeKey, 500);
      this.log.error(`WebSocket route ${routeKey} failed inside the runtime`, { error: err as Error });
      body = JSON.stringify({ type: 'ERROR', ...toErrorBody(err).body });
    }
    if (this.integration.responds(routeKey) && body !== undefined && conn.ws?.readyState === WebSocket.OPEN) conn.ws.send(body);
  }
}
