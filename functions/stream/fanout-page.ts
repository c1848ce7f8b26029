import { deliverPage, type Page, type PageResult } from '../core/fanout.ts';
import { metrics } from '../core/metrics.ts';
import { fanoutDeps } from './fanout.ts';

/**
 * The page function: delivers one page of a large fan-out, invoked by the
 * stream fan-out (RequestResponse) with the page's subscribers and messages,
 * so that the pages of one event are posted in parallel. The local runtime
 * serves the same Invoke call (local/lambda-api.ts) and runs this handler in
 * worker threads.
 */
export const handler = async (page: Page): Promise<PageResult> => {
  const result = await deliverPage(fanoutDeps(), page);
  metrics.flush();
  return result;
};
