/**
 * Invokes a handler module (loaded by local/functions.ts, in its function's
 * scope) the way Lambda does: with a Lambda-like context, bounded by the
 * function's timeout.
 */
import type { Context } from 'aws-lambda';
import { Slots } from '../functions/core/concurrency.ts';
import { gatewayId } from './ids.ts';

export type LambdaHandler<E = unknown, R = unknown> = (event: E, context: Context) => Promise<R> | R;

/** A context shaped like Lambda's; the handlers do not rely on it, but third-party middleware might. */
export function lambdaContext(functionName: string, timeoutMs: number, requestId = gatewayId()): Context {
  const deadline = Date.now() + timeoutMs;
  const unsupported = () => {
    throw new Error('callback-style completion is not supported by the local runtime');
  };
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `roster-local-${functionName}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:roster-local-${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/roster-local-${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

export class InvocationTimeoutError extends Error {
  constructor(functionName: string, timeoutMs: number) {
    super(`${functionName} did not return within ${timeoutMs} ms`);
    this.name = 'InvocationTimeoutError';
  }
}

/**
 * Invocations of one function that run at once. Lambda runs each invocation
 * in an environment of its own, as many as its concurrency allows; here they
 * all share one process and one DynamoDB Local. Started all at once, a flood
 * of them (500 registrations) would share the CPU so evenly that every one
 * finished late, and past its timeout on a busy machine; in turns, the first
 * come back first and the rest wait, as requests do behind a cold start.
 * Eight: enough to overlap a handler's waits on DynamoDB Local (a few ms
 * against a few ms of CPU), few enough that CPU-heavy ones finish in time —
 * 32 reads of a 5,000-node list at once (~300 ms of CPU each) all outlived
 * their callers' 10 s timeout on this box, every retry with them
 * (docs/measured/bench.md, "At scale").
 */
export const LOCAL_CONCURRENCY_PER_FUNCTION = 8;

/** An invocation not run because the client that asked for it had gone while it waited for its turn. */
export class AbandonedInvocationError extends Error {
  constructor(functionName: string) {
    super(`${functionName}: the caller went away before the invocation's turn; not run`);
    this.name = 'AbandonedInvocationError';
  }
}

/** Per handler (one per function and runtime: several runtimes may share a process). */
const turns = new WeakMap<LambdaHandler, Slots>();

/**
 * Invokes a handler like Lambda would: with a context, bounded by a timeout
 * that starts when the invocation runs (a function's timeout does not count
 * the wait for its turn, as Lambda's does not count the wait for an
 * environment). A timed-out invocation keeps running in the background (this
 * is one process), but its result is ignored, as Lambda ignores a function
 * past its timeout. With `abandoned`, an invocation whose caller is gone by
 * its turn is not run (AbandonedInvocationError).
 */
export async function invokeHandler(
  handler: LambdaHandler,
  event: unknown,
  functionName: string,
  timeoutMs: number,
  abandoned?: () => boolean,
): Promise<unknown> {
  let slots = turns.get(handler);
  if (!slots) turns.set(handler, (slots = new Slots(LOCAL_CONCURRENCY_PER_FUNCTION)));
  return slots.run(async () => {
    // The turn is a local artifact (Lambda would have run it at once, in an environment of its own): work
    // whose caller has gone meanwhile is dropped, or an overloaded runtime spends its CPU on answers no one
    // reads while the retries of those callers queue behind them.
    if (abandoned?.()) throw new AbandonedInvocationError(functionName);
    const context = lambdaContext(functionName, timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new InvocationTimeoutError(functionName, timeoutMs)), timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([Promise.resolve().then(() => handler(event, context)), timeout]);
    } finally {
      clearTimeout(timer);
    }
  });
}
