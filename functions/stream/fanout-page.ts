import { deliverPage, type Page, type PageResult } from '../core/fanout.ts';
import { metrics } from '../core/metrics.ts';
import { fanoutDeps } from './fanout.ts';

/**
 * The page function (AWS): delivers one page of a large fan-out, invoked by
 * the stream fan-out (RequestResponse) with the page's subscribers and
 * messages, so that the pages of one event are posted in parallel.
 * Locally the fan-out delivers its pages itself with the same `deliverPage`.
 */
export const handler = async (page: Page): Promise<PageResult> => {
  const result = await deliverPage(await fanoutDeps(), page);
  metrics.flush();
  return result;
};
