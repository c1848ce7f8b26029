import type { Context } from 'aws-lambda';
import { deliverPage, type Page, type PageResult } from '../core/fanout.ts';
import { metrics } from '../core/metrics.ts';
import { fanoutDeps } from './fanout.ts';

/** Kept back from the page function's own timeout to return its result. */
const RETURN_RESERVE_MS = 1_000;

/**
 * The page function: delivers one page of a large fan-out, invoked by the
 * stream fan-out (RequestResponse) with the page's subscribers and messages,
 * so that the pages of one event are posted in parallel. It posts until the
 * fan-out's deadline or its own timeout, whichever comes first, and returns
 * what it could not deliver as owed. The local runtime serves the same Invoke
 * call (local/lambda-api.ts) and runs this handler in child processes.
 */
export const handler = async (page: Page, context?: Context): Promise<PageResult> => {
  const own = context ? Date.now() + context.getRemainingTimeInMillis() - RETURN_RESERVE_MS : Infinity;
  const deadline = Math.min(page.deadline ?? Infinity, own);
  const result = await deliverPage(fanoutDeps(), Number.isFinite(deadline) ? { ...page, deadline } : page);
  metrics.flush();
  return result;
};
