/**
 * API Gateway's throttling, as the local runtime applies it: a token bucket
 * per route of each stage, sized from the stage's `DefaultRouteSettings` or
 * the route's own `RouteSettings` (rate = tokens added per second, burst =
 * the bucket's size), and one bucket for the account's regional quota that
 * every API and every `@connections` call shares.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-protect.html
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
 * A refused request costs nothing and is answered 429 by the caller.
 */
import type { StageSpec, ThrottleSpec } from './template/deployment.ts';

/** API Gateway's account-level throttle quota per Region: 10,000 requests per second, burst 5,000 (limits.html, "API Gateway account-level quotas, per Region"). */
export const ACCOUNT_THROTTLE: ThrottleSpec = { rateLimit: 10_000, burstLimit: 5_000 };

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly spec: ThrottleSpec,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = spec.burstLimit;
    this.last = now();
  }

  /** Takes a token if there is one. */
  take(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.spec.burstLimit, this.tokens + ((now - this.last) / 1000) * this.spec.rateLimit);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** No bucket: a stage or route without throttle settings is limited by the account's quota only. */
const UNLIMITED = { take: () => true };

export type Bucket = Pick<TokenBucket, 'take'>;

/** The buckets of one stage, by route key, each taking from the account's bucket too. */
export class StageThrottle {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly stage: StageSpec | undefined,
    private readonly account: Bucket = UNLIMITED,
    private readonly now?: () => number,
  ) {}

  /** Whether a request on `routeKey` may pass now. The route's bucket is asked first: a request it refuses costs the account nothing. */
  admit(routeKey: string): boolean {
    let bucket = this.buckets.get(routeKey);
    if (!bucket) {
      const spec = this.stage?.routeThrottles.get(routeKey) ?? this.stage?.defaultThrottle;
      bucket = spec ? new TokenBucket(spec, this.now) : UNLIMITED;
      this.buckets.set(routeKey, bucket);
    }
    return bucket.take() && this.account.take();
  }
}

/** API Gateway's own answer to a throttled HTTP API request. */
export const THROTTLED_BODY = JSON.stringify({ message: 'Too Many Requests' });
