/**
 * The fan-out's pace: a token bucket over the posts of one page worker (or
 * of every page a fan-out delivers itself), and the backoff of a post that
 * API Gateway throttled.
 *
 * Why. Every `PostToConnection` counts against the account's API Gateway
 * request quota in the region: 10,000 requests a second with a token bucket
 * of 5,000 by default, shared by every HTTP, REST and WebSocket API of the
 * account and by the `@connections` callbacks
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
 * Unpaced, one event to 10,000 subscribers posts them in about 0.1 s: past
 * the bucket, API Gateway answers 429 (`LimitExceededException`) to the
 * fan-out and, worse, to every other request of the account meanwhile —
 * keepalives included. The fan-out therefore holds itself to a bucket of
 * `fanoutPostsPerSecond` (functions/core/config.ts) and half a second's
 * burst — half of API Gateway's bucket at the defaults — lending each page
 * it hands out an even share of the rate and of the burst it has left.
 */

import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A token bucket of `perSecond` posts a second holding up to `burst` posts
 * (as GCRA: one number, the time the next post is due at the steady pace):
 * in any window of T seconds at most `perSecond × T + burst` posts start.
 * The default burst is half a second's worth — the fan-out's share of API
 * Gateway's own bucket, whose capacity is half a second of its rate — so an
 * event to a few thousand subscribers goes out at once and a larger one is
 * paced.
 */
export class PostRate {
  private readonly interval: number;
  /** How far ahead of the steady pace a burst may run (ms). */
  private readonly window: number;
  /** When the next post would be due at the steady pace (epoch ms). */
  private due = 0;

  constructor(
    readonly perSecond: number,
    readonly burst: number = perSecond / 2,
  ) {
    if (!(perSecond > 0)) throw new Error(`a post rate must be positive, not ${perSecond}`);
    this.interval = 1000 / perSecond;
    this.window = (Math.max(1, burst) - 1) * this.interval;
  }

  /**
   * Waits for one post's turn. Resolves false, at once and taking nothing,
   * when that turn would come after `deadline` (epoch ms): the post is left
   * for the record's retry.
   */
  async take(deadline: number): Promise<boolean> {
    const now = Date.now();
    const due = Math.max(this.due, now);
    const start = due - this.window;
    if (start > deadline) return false;
    this.due = due + this.interval;
    if (start > now) await sleep(start - now);
    return true;
  }

  /** Posts that may start right now (at most the burst). */
  available(): number {
    const now = Date.now();
    const slack = now + this.window - Math.max(this.due, now);
    return slack < 0 ? 0 : Math.floor(slack / this.interval + 1e-9) + 1;
  }

  /** Counts `posts` as made now by others on this bucket's account: the page workers it lent them to. */
  charge(posts: number): void {
    this.due = Math.max(this.due, Date.now()) + posts * this.interval;
  }

  /** Empties the bucket: others on its account were posting at its full rate until now. */
  drain(): void {
    this.due = Math.max(this.due, Date.now() + this.window + this.interval);
  }
}

/** Backoff of a post answered 429: full jitter on a base doubling per throttle, capped (the SDK's standard retry curve, longer). */
export const THROTTLE_BACKOFF = { baseMs: 100, capMs: 3_000 } as const;

/** The wait before the `throttles`-th retry of one connection's post (1, 2, …). */
export function throttleBackoff(throttles: number, random: () => number = Math.random): number {
  return random() * Math.min(THROTTLE_BACKOFF.capMs, THROTTLE_BACKOFF.baseMs * 2 ** (throttles - 1));
}
