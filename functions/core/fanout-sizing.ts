/**
 * The fan-out's sizing, in one dependency-free place: the core cuts
 * subscribers into pages (`pageCount`), the stack gives the fan-out and its
 * page function FANOUT_MEMORY_MB, and `roster cost` prices both.
 * docs/how-it-works/fanout-sizing.md derives them from the measured CPU per post.
 */

/**
 * The smallest page. A cluster with more subscribers is cut into pages
 * delivered in parallel, each by its own invocation of the page function;
 * one that fits a page is delivered by the fan-out itself, saving the
 * invocation.
 */
export const PAGE_SIZE = 500;

/**
 * The most posts a second one page worker is given: a quarter of what its
 * vCPU share (FANOUT_MEMORY_MB) posts at the measured CPU per post
 * (docs/how-it-works/fanout-sizing.md has the figure and its command),
 * headroom for Lambda's other cores, TLS and the network's round trips.
 */
export const PAGE_POSTS_PER_SECOND = 2500;

/** The most subscribers one page carries: about 70 bytes each in its Invoke payload, far under Lambda's 6 MB. */
export const MAX_PAGE_SUBSCRIBERS = 20_000;

/**
 * How many pages an event to `subscribers` is cut into when the fan-out
 * posts at most `postsPerSecond`: one per PAGE_SIZE subscribers, but no more
 * than the rate needs — past that, more page workers would only wait out the
 * pacing, and Lambda bills the wait — and enough that none carries more than
 * MAX_PAGE_SUBSCRIBERS. At the default 5,000 posts a second: two pages.
 */
export function pageCount(subscribers: number, postsPerSecond: number): number {
  if (subscribers <= 0) return 0;
  const forRate = Math.max(1, Math.ceil(postsPerSecond / PAGE_POSTS_PER_SECOND));
  return Math.max(Math.ceil(subscribers / MAX_PAGE_SUBSCRIBERS), Math.min(Math.ceil(subscribers / PAGE_SIZE), forRate));
}

/**
 * Memory (and so CPU: Lambda gives one vCPU at 1,769 MB, in proportion below)
 * of the fan-out and of its page function: twice what would post a page in
 * about 0.1 s at the measured CPU per post (the arithmetic is in
 * docs/how-it-works/fanout-sizing.md). Posting GB-seconds do not depend on
 * the memory, so the faster page costs the same, and a cold start takes half
 * as long.
 */
export const FANOUT_MEMORY_MB = 1024;
