/**
 * The settings that follow the size a deployment declares (`-c expectedNodes=`,
 * default 100,000, the design's goal): the throttle of each route the SDK
 * calls at its own rhythm, and the table's pre-warmed write throughput.
 *
 * The rule, for every derived figure: the load the declared fleet makes at
 * the SDK's defaults (the contract's lease, refresh and ping intervals),
 * doubled — so the declared fleet uses half of it (`roster capacity` shows
 * 50%), and a fleet twice the declared size still fits — never below what a
 * small deployment needs (the former stage-wide 500 requests a second, burst
 * 1,000), never above API Gateway's account-level throttle: a route's limit
 * cannot exceed the account's
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html,
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-protect.html).
 * The routes' limits are each up to the account's; together they may exceed
 * it, since the account's bucket is shared by every API of the account in
 * the region — `roster capacity` holds the sum against it.
 *
 * Why per route. A keepalive every lease/3 from every node is 15 times the
 * list refreshes (every 300 s) at the defaults: one stage-wide figure would
 * either throttle keepalives or leave the other routes open to 20 times their
 * load (`RouteSettings`, keyed by route key, override `DefaultRouteSettings`).
 */
import { DEFAULT_PING_INTERVAL_SECONDS, DEFAULT_REFRESH_INTERVAL_SECONDS } from '@roster/contract';
import type { CfnStage, ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import type { IDependable } from 'constructs';
import { HTTP_ROUTES, type HttpRouteSpec } from '../functions/core/routes.ts';

/** A throttle with both figures set (CDK's `ThrottleSettings` leaves each optional). */
export interface Throttle extends ThrottleSettings {
  readonly rateLimit: number;
  readonly burstLimit: number;
}

/**
 * The size the stack is built for unless `-c expectedNodes=` says otherwise: one deployment's goal size
 * (docs/how-it-works/scale.md#the-defaults-at-the-goal-sizes).
 */
export const DEFAULT_EXPECTED_NODES = 100_000;

/**
 * API Gateway's account-level throttle in a commercial region such as
 * us-east-1 (10,000 requests a second, a bucket of 5,000), shared by every
 * API of the account and its `@connections` calls
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html);
 * bench/aws-limits.ts holds the same figures for the planner.
 */
export const API_GATEWAY_ACCOUNT_THROTTLE: Throttle = { rateLimit: 10_000, burstLimit: 5_000 };

/** The least any route gets: what every route had before throttles followed the size (a small fleet, a test, a burst of registrations). */
export const MIN_ROUTE_THROTTLE: Throttle = { rateLimit: 500, burstLimit: 1_000 };

/** A route's throttle is twice the declared fleet's load on it: the declared fleet at 50%. */
export const THROTTLE_HEADROOM = 2;

/**
 * How often an SDK client replaces its WebSocket connection at most, ahead of
 * API Gateway's 2-hour limit (the SDK's `maxConnectionAgeMs`, 100 minutes,
 * before its jitter), and syncs its list after it.
 */
const RECONNECT_EVERY_SECONDS = 6_000;
/**
 * A fleet whose leases lapsed together (an outage between the nodes and the
 * information center) registers again, each node on its own retry: the
 * register route and `$connect` admit the declared fleet within 5 minutes at
 * the throttle (10 minutes' worth, doubled).
 */
const RECOVERY_SECONDS = 600;

export interface DerivedSettings {
  /** `DefaultRouteSettings` of the HTTP stage, and `RouteSettings` of its routes the SDK calls at its own rhythm. */
  http: { default: Throttle; routes: Record<string, Throttle> };
  /** The same for the WebSocket stage (route keys `$connect`, `ping`, …). */
  webSocket: { default: Throttle; routes: Record<string, Throttle> };
  /** The table's `WarmThroughput` writes, when more than a new on-demand table serves at once (4,000); undefined otherwise. */
  warmWriteUnitsPerSecond: number | undefined;
}

/** A new on-demand table serves 4,000 write units a second at once (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html). */
export const NEW_TABLE_WARM_WRITES = 4_000;

/** A throttle for `load` requests a second: doubled, within the floor and the account's limit; its bucket one second of it. */
export function throttleFor(load: number): Throttle {
  const rateLimit = Math.min(API_GATEWAY_ACCOUNT_THROTTLE.rateLimit, Math.max(MIN_ROUTE_THROTTLE.rateLimit, Math.ceil(load * THROTTLE_HEADROOM)));
  const burstLimit = Math.min(API_GATEWAY_ACCOUNT_THROTTLE.burstLimit, Math.max(MIN_ROUTE_THROTTLE.burstLimit, rateLimit));
  return { rateLimit, burstLimit };
}

/**
 * Every registration takes its revision from its cluster's `META` item, one
 * write each, and one item takes at most 1,000 writes a second (DynamoDB's
 * per-partition limit: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html).
 * A cluster restarting at once registers as fast as the route admits in a
 * second, its bucket and a second of its rate: the two together stay at 65%
 * of the item's limit, so a storm is paced by 429s the SDK retries, not by
 * writes DynamoDB throttles (the planner's `storm:meta-item-writes`).
 */
export const REGISTER_FIRST_SECOND = 650;

/** The register route's throttle: the recovery rate, its bucket what is left of `REGISTER_FIRST_SECOND` (at least 100). */
export function registerThrottleFor(load: number): Throttle {
  const { rateLimit } = throttleFor(load);
  return { rateLimit, burstLimit: Math.max(100, REGISTER_FIRST_SECOND - rateLimit) };
}

const routeKeyOf = (handler: string): string => {
  const route: HttpRouteSpec | undefined = HTTP_ROUTES.find((r) => r.handler === handler);
  if (!route) throw new Error(`no HTTP route is served by ${handler}`);
  return `${route.method} ${route.path}`;
};

/**
 * What the stack derives from `expectedNodes` (nodes and watchers together:
 * a watcher refreshes and pings like a node) when the nodes keep the stack's
 * `leaseSeconds`.
 */
export function deriveFromSize(expectedNodes: number, leaseSeconds: number): DerivedSettings {
  if (!Number.isInteger(expectedNodes) || expectedNodes < 1) throw new Error(`expectedNodes must be a whole number of at least 1, not ${expectedNodes}`);
  const keepalives = (3 * expectedNodes) / leaseSeconds;
  const keepalive = throttleFor(keepalives);
  return {
    http: {
      default: MIN_ROUTE_THROTTLE,
      routes: {
        [routeKeyOf('keepalive')]: keepalive,
        [routeKeyOf('list-nodes')]: throttleFor(expectedNodes / DEFAULT_REFRESH_INTERVAL_SECONDS + expectedNodes / RECONNECT_EVERY_SECONDS),
        [routeKeyOf('register')]: registerThrottleFor(expectedNodes / RECOVERY_SECONDS),
      },
    },
    webSocket: {
      default: MIN_ROUTE_THROTTLE,
      routes: {
        ping: throttleFor(expectedNodes / DEFAULT_PING_INTERVAL_SECONDS),
        $connect: throttleFor(expectedNodes / RECOVERY_SECONDS),
      },
    },
    // Every keepalive the stage admits is one write unit (a node item under 1 KB): the table takes at once what the throttle lets through.
    warmWriteUnitsPerSecond: keepalive.rateLimit > NEW_TABLE_WARM_WRITES ? keepalive.rateLimit : undefined,
  };
}

/**
 * Gives the stage's routes in `throttles` their own `RouteSettings`. API
 * Gateway accepts settings only for routes that exist, so the stage waits
 * for `routes`.
 */
export function applyRouteThrottles(stage: CfnStage, throttles: Readonly<Record<string, ThrottleSettings>>, routes: IDependable[]): void {
  const entries = Object.entries(throttles);
  if (entries.length === 0) return;
  stage.routeSettings = Object.fromEntries(entries.map(([key, t]) => [key, { ThrottlingRateLimit: t.rateLimit, ThrottlingBurstLimit: t.burstLimit }]));
  for (const route of routes) stage.node.addDependency(route);
}
