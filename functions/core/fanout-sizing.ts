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
 * of the fan-out and of its page function: enough that one page's posts take
 * about 0.1 s of CPU at the measured 95 µs a post (500 × 95 µs / 0.1 s =
 * 0.48 vCPU ≈ 840 MB), with room for a slower core: 1,024 MB (0.58 vCPU).
 */
export const FANOUT_MEMORY_MB = 1024;
