/**
 * API Gateway's token buckets as the local runtime applies them
 * (local/throttle.ts), on a clock the test moves: a bucket starts full at
 * its burst, refills at its rate, and never holds more than its burst; a
 * stage gives each route its own bucket from the route's settings or the
 * stage's default, and every request also takes from the account's bucket.
 */
import { describe, expect, test } from 'vitest';
import { StageThrottle, TokenBucket } from '../../local/throttle.ts';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const takeAll = (bucket: { take(): boolean }, tries: number): number => Array.from({ length: tries }, () => bucket.take()).filter(Boolean).length;

describe('a token bucket', () => {
  test('lets the burst through at once, then the rate', () => {
    const c = clock();
    const bucket = new TokenBucket({ rateLimit: 10, burstLimit: 5 }, c.now);
    expect(takeAll(bucket, 20)).toBe(5);
    c.advance(500); // half a second at 10 a second: 5 tokens
    expect(takeAll(bucket, 20)).toBe(5);
    c.advance(99);
    expect(bucket.take()).toBe(false);
    c.advance(1);
    expect(bucket.take()).toBe(true);
  });

  test('never holds more than its burst, however long it was idle', () => {
    const c = clock();
    const bucket = new TokenBucket({ rateLimit: 100, burstLimit: 3 }, c.now);
    c.advance(60_000);
    expect(takeAll(bucket, 10)).toBe(3);
  });
});

describe('a stage', () => {
  const stage = { name: '$default', defaultThrottle: { rateLimit: 1, burstLimit: 2 }, routeThrottles: new Map([['POST /k', { rateLimit: 1, burstLimit: 5 }]]) };

  test('gives every route a bucket of its own: its RouteSettings, else the default', () => {
    const c = clock();
    const throttle = new StageThrottle(stage, undefined, c.now);
    expect(takeAll({ take: () => throttle.admit('GET /a') }, 10)).toBe(2);
    expect(takeAll({ take: () => throttle.admit('GET /b') }, 10)).toBe(2);
    expect(takeAll({ take: () => throttle.admit('POST /k') }, 10)).toBe(5);
  });

  test('takes every admitted request from the account\'s bucket too, which all stages share', () => {
    const c = clock();
    const account = new TokenBucket({ rateLimit: 1, burstLimit: 3 }, c.now);
    const http = new StageThrottle(stage, account, c.now);
    const ws = new StageThrottle({ ...stage, routeThrottles: new Map() }, account, c.now);
    expect(http.admit('GET /a')).toBe(true);
    expect(ws.admit('$connect')).toBe(true);
    expect(ws.admit('ping')).toBe(true);
    expect(http.admit('GET /b')).toBe(false);
  });

  test('without throttle settings, only the account limits', () => {
    const c = clock();
    const throttle = new StageThrottle({ name: 'live', defaultThrottle: undefined, routeThrottles: new Map() }, new TokenBucket({ rateLimit: 1, burstLimit: 4 }, c.now), c.now);
    expect(takeAll({ take: () => throttle.admit('ping') }, 10)).toBe(4);
  });
});
