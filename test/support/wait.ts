/**
 * Waiting in tests, one way each:
 *
 * - `eventually` for something that will happen: it polls `check` until it
 *   passes and fails at the deadline with what was awaited and the last
 *   error. A deadline is several times the documented bound of what is
 *   awaited, so a busy machine does not fail the test; a passing test does
 *   not wait for it.
 * - `sleep` only where the behaviour *is* time passing (a lease running out)
 *   or to see that nothing happens meanwhile; each such wait says in a
 *   comment which setting its length comes from. Waiting for an event with
 *   `sleep` is a bug: use `eventually`.
 */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How often `eventually` checks. */
const POLL_INTERVAL_MS = 50;

/**
 * Resolves with what `check` returned once it passes: returns without
 * throwing, and returns anything but `false` (so both a condition, `() =>
 * seen.length === 3`, and an assertion, `() => expect(x).toBe(1)`, work).
 * Rejects after `timeoutMs` with `what` (a function is called then, to show
 * the state at the deadline) and the last error.
 */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs: number, what?: string | (() => string)): Promise<Exclude<T, false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      const value = await check();
      if (value !== false) return value as Exclude<T, false>;
    } catch (err) {
      failure = err;
    }
    if (Date.now() > deadline) {
      const described = typeof what === 'function' ? what() : (what ?? 'the condition');
      const reason = failure instanceof Error ? `: ${failure.message}` : '';
      throw new Error(`not within ${timeoutMs} ms: ${described}${reason}`, { cause: failure });
    }
    await sleep(POLL_INTERVAL_MS);
  }
}
