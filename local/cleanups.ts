/**
 * Start-up in parts, any of which may fail: each part that started registers
 * how to stop it, and a failure (or `stop`) undoes them in reverse order.
 */
import type { RuntimeLog } from './log.ts';

export class Cleanups {
  private readonly steps: (() => Promise<void> | void)[] = [];

  constructor(private readonly log: RuntimeLog) {}

  add(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  /** `part`, once it has started, with `stop` registered for it. */
  async started<T>(part: Promise<T>, stop: (value: T) => Promise<void> | void): Promise<T> {
    const value = await part;
    this.add(() => stop(value));
    return value;
  }

  /** Runs every step, newest first; a failing step is logged and the others still run. */
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        this.log.debug('clean-up step failed', { error: err as Error });
      }
    }
  }
}

/**
 * Waits for parts started together. Unlike `Promise.all` it lets every part
 * finish starting before it throws the first failure, so that no part is
 * still starting (and unstoppable) while the clean-up runs.
 */
export async function startedTogether<T extends readonly unknown[]>(parts: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(parts);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
  return (await Promise.all(parts)) as unknown as T;
}
