/**
 * Retry delays. The client counts failures in a row and asks for the delay
 * before the next attempt; the count starts again at 1 after any success.
 */
export interface Backoff {
  /** Milliseconds to wait before attempt `attempt` (1 = the first retry). */
  delay(attempt: number): number;
}

/** A Backoff, or just its delay function. */
export type BackoffOption = Backoff | ((attempt: number) => number);

export interface ExponentialBackoffOptions {
  /** Delay before the first retry. @default 200 */
  initialMs?: number;
  /** Upper bound of the delay. @default 1500 */
  maxMs?: number;
  /** Growth per attempt. @default 2 */
  factor?: number;
  /**
   * Share of the delay that is random: the delay is drawn from
   * `[d * (1 - jitter), d]`. Jitter keeps a fleet that lost the server at
   * the same moment from coming back at the same moment. @default 0.5
   */
  jitter?: number;
  /** Source of randomness, for tests. @default Math.random */
  random?: () => number;
}

/**
 * Exponential backoff with jitter. The defaults (0.2 s doubling to a 1.5 s
 * cap) bring a client back within two seconds of the network returning (the
 * next attempt plus a resync); a fleet of many thousands should raise `maxMs`
 * to spread its reconnections further.
 */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): Backoff {
  const { initialMs = 200, maxMs = 1500, factor = 2, jitter = 0.5, random = Math.random } = options;
  return {
    delay(attempt: number): number {
      const exponent = Math.max(0, attempt - 1);
      const ceiling = Math.min(maxMs, initialMs * factor ** exponent);
      return Math.round(ceiling * (1 - jitter * random()));
    },
  };
}

export function toBackoff(option: BackoffOption | undefined): Backoff {
  if (option === undefined) return exponentialBackoff();
  if (typeof option === 'function') return { delay: option };
  return option;
}
