/**
 * Invokes a handler module (loaded by local/functions.ts, in its function's
 * scope) the way Lambda does: with a Lambda-like context, bounded by the
 * function's timeout.
 */
import type { Context } from 'aws-lambda';
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
 * Invokes a handler like Lambda would: with a context, bounded by a timeout.
 * A timed-out invocation keeps running in the background (this is one process),
 * but its result is ignored, as Lambda ignores a function past its timeout.
 */
export async function invokeHandler(
  handler: LambdaHandler,
  event: unknown,
  functionName: string,
  timeoutMs: number,
): Promise<unknown> {
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
}
