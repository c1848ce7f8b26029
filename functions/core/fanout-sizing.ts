/**
 * The fan-out's sizing, in one dependency-free place: the core cuts
 * subscribers into pages of PAGE_SIZE, the stack gives the fan-out and its
 * page function FANOUT_MEMORY_MB, and `roster cost` prices both.
 * docs/how-it-works/fanout-sizing.md derives them from the measured CPU per post.
 */

/**
 * Subscribers per page. A cluster with more is cut into pages delivered in
 * parallel, each by its own invocation of the page function; one that fits
 * a page is delivered by the fan-out itself, saving the invocation.
 */
export const PAGE_SIZE = 500;

/**
 * Memory (and so CPU: Lambda gives one vCPU at 1,769 MB, in proportion below)
 * of the fan-out and of its page function. At the measured 57 µs a post one
 * page is 29 ms of CPU; 512 MB (0.29 vCPU) would post it in about 0.1 s. It
 * is 1,024 MB (0.58 vCPU, about 50 ms a page): posting GB-seconds do not
 * depend on the memory, so the faster page costs the same, and a cold start
 * takes half as long.
 */
export const FANOUT_MEMORY_MB = 1024;
