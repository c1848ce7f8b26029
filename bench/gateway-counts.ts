/**
 * API Gateway's own count of the requests it served, read from the local
 * runtime's `GET /metrics` (`roster_gateway_requests_total`, by API, route
 * key and status: local/metrics.ts). The bench takes two readings and the
 * difference is what a phase of a scenario cost, per route.
 */
import { GATEWAY_REQUESTS } from '../local/metrics.ts';

/** One series: which API, which route key, which status. */
export interface GatewaySeries {
  api: string;
  route: string;
  status: number;
  count: number;
}

/** A reading of every series. */
export type GatewayReading = GatewaySeries[];

const LINE = new RegExp(`^${GATEWAY_REQUESTS}\\{api="([^"]*)",route="([^"]*)",status="(\\d+)"\\} (\\S+)$`);

/** The gateway's series in Prometheus exposition text (prom-client prints labels in declaration order). */
export function parseGatewayCounts(text: string): GatewayReading {
  const series: GatewayReading = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (m) series.push({ api: m[1] as string, route: m[2] as string, status: Number(m[3]), count: Number(m[4]) });
  }
  return series;
}

export async function readGatewayCounts(httpUrl: string): Promise<GatewayReading> {
  const res = await fetch(`${httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return parseGatewayCounts(await res.text());
}

const keyOf = (s: Pick<GatewaySeries, 'api' | 'route' | 'status'>): string => `${s.api} ${s.route} ${s.status}`;

/** What moved from `before` to `after`, series by series (those that did not move are left out). */
export function gatewayDelta(after: GatewayReading, before: GatewayReading): GatewayReading {
  const was = new Map(before.map((s) => [keyOf(s), s.count]));
  return after.map((s) => ({ ...s, count: s.count - (was.get(keyOf(s)) ?? 0) })).filter((s) => s.count > 0);
}

/** The requests of `api` on routes `route` accepts, with a status `status` accepts (every status unless given). */
export function countOf(reading: GatewayReading, api: string, route: (key: string) => boolean, status: (code: number) => boolean = () => true): number {
  return reading.filter((s) => s.api === api && route(s.route) && status(s.status)).reduce((sum, s) => sum + s.count, 0);
}
