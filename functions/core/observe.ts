/**
 * One structured log line and the request metrics per request, written the
 * same way by the HTTP and WebSocket wrappers.
 *
 * The line carries what an operator searches by — route, cluster, node,
 * outcome, latency, the API Gateway request id as correlation id and the
 * token's subject — and never a token, a header, a query string, a body or
 * a metadata value.
 */
import { RosterError } from './errors.ts';
import { logger } from './log.ts';
import { metrics, requestLabels, REQUESTS_METRIC } from './metrics.ts';
import { HTTP_ROUTES } from './routes.ts';
import { ID_PATTERN } from './validation.ts';

/** The routes every client calls at its own rhythm, by the route key the wrappers record. */
const RHYTHM_ROUTES: ReadonlySet<string> = new Set([...HTTP_ROUTES.filter((r) => r.handler === 'keepalive').map((r) => `${r.method} ${r.path}`), 'ping']);

/**
 * A success that happens at every client's own rhythm and tells an operator
 * nothing the counts do not: a keepalive or a ping answered 200, a list
 * answered 304 (unchanged). At the defaults they are 94% of all requests
 * (`roster cost --nodes 1000 --clusters 10`). Their request line is written
 * at DEBUG, not INFO, their latency is not observed (API Gateway's
 * `IntegrationLatency` has it), and their counts may wait for a later metric
 * document (`ROUTINE_PUBLISH_EVERY_MS`). The HTTP access log still has a line
 * for each; every refusal and every other request is logged as before.
 */
export function isRoutine(route: string, status: number): boolean {
  return status === 304 || (status === 200 && RHYTHM_ROUTES.has(route));
}

export interface RequestRecord {
  /** `PUT /v1/clusters/{clusterId}/nodes/{nodeId}`, `subscribe`, `$connect`… */
  route: string;
  requestId?: string;
  clusterId?: unknown;
  nodeId?: unknown;
  connectionId?: string;
  /** The token's subject, when auth is on and the token was valid. */
  principal?: string;
  status: number;
  /** The error code of a refused request. */
  code?: string;
  startedAt: number;
}

/** An id as it may appear in a log: a valid id, or a marker (a fuzzer's 10 KB of unicode stays out of the logs). */
const loggableId = (value: unknown): string | undefined =>
  value === undefined ? undefined : typeof value === 'string' && ID_PATTERN.test(value) ? value : '(invalid)';

/** The token subject an authorizer context carries, if any (never throws: this is for the log line). */
export function subjectOf(context: unknown): string | undefined {
  const sub: unknown = typeof context === 'object' && context !== null ? (context as { sub?: unknown }).sub : undefined;
  return typeof sub === 'string' ? sub : undefined;
}

/** The error code of what a handler threw, for the log line and the denial counter. */
export function codeOf(err: unknown): string {
  return err instanceof RosterError ? err.code : 'INTERNAL';
}

export function recordRequest(record: RequestRecord): void {
  const latencyMs = Date.now() - record.startedAt;
  const routine = isRoutine(record.route, record.status);
  metrics.count(REQUESTS_METRIC, requestLabels(record.status));
  if (!routine) metrics.observe('RequestLatency', latencyMs);
  if (record.code === 'UNAUTHORIZED' || record.code === 'FORBIDDEN') metrics.count('AuthorizerDenials', { code: record.code });
  (routine ? logger.debug : logger.info)('request', {
    route: record.route,
    correlation_id: record.requestId,
    cluster: loggableId(record.clusterId),
    node: loggableId(record.nodeId),
    connection: record.connectionId,
    principal: record.principal,
    status: record.status,
    outcome: record.code ?? 'OK',
    latencyMs,
  });
  metrics.flush({ routine });
}
