/**
 * The local runtime runs a function's invocations in turns: a flood of
 * requests (a whole cluster registering at once) comes back first come,
 * first served, instead of every invocation sharing the CPU until all are
 * late; and a function's timeout counts from when its invocation runs.
 */
import { afterEach, expect, test, vi } from 'vitest';
import { AbandonedInvocationError, InvocationTimeoutError, LOCAL_CONCURRENCY_PER_FUNCTION, invokeHandler, type LambdaHandler } from '../../local/handlers.ts';

afterEach(() => {
  vi.useRealTimers();
});

/** A handler whose invocations finish when the test says so. */
function heldHandler() {
  const started: number[] = [];
  const release = new Map<number, (value: string) => void>();
  const handler: LambdaHandler<{ n: number }, string> = (event) => {
    started.push(event.n);
    return new Promise((resolve) => release.set(event.n, resolve));
  };
  return { handler: handler as LambdaHandler, started, release: (n: number) => release.get(n)?.(`done ${n}`) };
}

const settle = () => vi.advanceTimersByTimeAsync(0);

test('invocations beyond the limit wait their turn, first come first served', async () => {
  vi.useFakeTimers();
  const { handler, started, release } = heldHandler();
  const total = LOCAL_CONCURRENCY_PER_FUNCTION + 3;
  const results = Array.from({ length: total }, (_, n) => invokeHandler(handler, { n }, 'register', 60_000));
  await settle();
  expect(started).toEqual(Array.from({ length: LOCAL_CONCURRENCY_PER_FUNCTION }, (_, n) => n));

  release(5);
  await settle();
  expect(started.at(-1)).toBe(LOCAL_CONCURRENCY_PER_FUNCTION);
  await expect(results[5]).resolves.toBe('done 5');

  for (let n = 0; n < total; n++) if (n !== 5) release(n);
  await settle();
  for (let n = 0; n < total; n++) if (n !== 5) release(n); // those that started after the first releases
  await settle();
  expect(started).toHaveLength(total);
  await expect(Promise.all(results)).resolves.toEqual(Array.from({ length: total }, (_, n) => `done ${n}`));
});

test("a function's timeout counts from when its invocation runs, not from the wait for its turn", async () => {
  vi.useFakeTimers();
  const { handler, started, release } = heldHandler();
  const results = Array.from({ length: LOCAL_CONCURRENCY_PER_FUNCTION + 1 }, (_, n) => invokeHandler(handler, { n }, 'register', 1000));
  for (const r of results) r.catch(() => undefined);
  await vi.advanceTimersByTimeAsync(900);
  for (let n = 0; n < LOCAL_CONCURRENCY_PER_FUNCTION; n++) release(n);
  await settle();
  const last = LOCAL_CONCURRENCY_PER_FUNCTION;
  expect(started.at(-1)).toBe(last);

  await vi.advanceTimersByTimeAsync(900); // 1,800 ms after it was asked for, 900 ms after it started
  release(last);
  await expect(results[last]).resolves.toBe(`done ${last}`);

  // And a running invocation past its timeout is refused as Lambda refuses it.
  const late = invokeHandler(handler, { n: 99 }, 'register', 1000);
  const outcome = expect(late).rejects.toBeInstanceOf(InvocationTimeoutError);
  await vi.advanceTimersByTimeAsync(1001);
  await outcome;
});

test('an invocation whose caller went away while it waited for its turn is not run, and the turn passes on', async () => {
  vi.useFakeTimers();
  const { handler, started, release } = heldHandler();
  const busy = Array.from({ length: LOCAL_CONCURRENCY_PER_FUNCTION }, (_, n) => invokeHandler(handler, { n }, 'register', 60_000));
  let callerGone = false;
  const abandoned = invokeHandler(handler, { n: 100 }, 'register', 60_000, () => callerGone);
  const outcome = expect(abandoned).rejects.toBeInstanceOf(AbandonedInvocationError);
  const next = invokeHandler(handler, { n: 101 }, 'register', 60_000, () => false);
  await settle();
  callerGone = true; // the client closed its connection while its request queued

  release(0);
  await settle();
  await outcome;
  expect(started).not.toContain(100);
  expect(started.at(-1)).toBe(101);
  release(101);
  await expect(next).resolves.toBe('done 101');
  for (let n = 1; n < LOCAL_CONCURRENCY_PER_FUNCTION; n++) release(n);
  await expect(Promise.all(busy.slice(1))).resolves.toHaveLength(LOCAL_CONCURRENCY_PER_FUNCTION - 1);
});
