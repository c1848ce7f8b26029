/**
 * How the fan-out hands a page to the page function: Lambda `Invoke`
 * (RequestResponse), so that it waits for the page's result and order and
 * retries stay with the stream.
 *
 * A throttled invocation is retried. Lambda answers 429
 * `TooManyRequestsException` when the account's (or the function's)
 * concurrency or request rate is exhausted
 * (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), which a
 * fan-out to many pages, beside the account's other functions, can meet.
 * Without a retry one throttled page failed the whole record, and the
 * record's retry posted to every page again. The retry waits out a backoff
 * with jitter (at least the `retryAfterSeconds` Lambda may suggest) until
 * the page's deadline; a page still throttled then is reported lost, and its
 * subscribers owed (fanout.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { DEFAULT_BUDGET_MS, type Page, type PageResult } from './fanout.ts';
import { logger } from './log.ts';
import { throttleBackoff } from './post-rate.ts';

/** Whether `err` is Lambda refusing an invocation for throttling (429 `TooManyRequestsException`). */
export function isInvokeThrottle(err: unknown): err is Error & { retryAfterSeconds?: string } {
  if (!(err instanceof Error)) return false;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return err.name === 'TooManyRequestsException' || status === 429;
}

/** A `dispatchPage` that invokes `functionName` with each page and returns its result. */
export function pageInvoker(lambda: LambdaClient, functionName: string): (page: Page) => Promise<PageResult> {
  return async (page) => {
    const payload = Buffer.from(JSON.stringify(page));
    const deadline = page.deadline ?? Date.now() + DEFAULT_BUDGET_MS;
    for (let throttles = 1; ; throttles++) {
      try {
        const out = await lambda.send(new InvokeCommand({ FunctionName: functionName, Payload: payload }));
        const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
        if (out.FunctionError) throw new Error(`page function failed (${out.FunctionError}): ${text.slice(0, 200)}`);
        return JSON.parse(text) as PageResult;
      } catch (err) {
        if (!isInvokeThrottle(err)) throw err;
        const suggested = Number(err.retryAfterSeconds ?? 0) * 1000;
        const wait = Math.max(Number.isFinite(suggested) ? suggested : 0, throttleBackoff(throttles));
        if (Date.now() + wait >= deadline) throw err;
        logger.info('page invocation throttled; retrying', { clusterId: page.clusterId, throttles, waitMs: Math.round(wait) });
        await sleep(wait);
      }
    }
  };
}
