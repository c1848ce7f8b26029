/**
 * Runs a task every `intervalMs`, measured from the start of one run to the
 * start of the next (a slow run delays the next one, never overlaps it), the
 * way the sweeper Lambda paces its loop.
 */
import type { RuntimeLog } from './log.ts';

export interface Ticker {
  stop(): Promise<void>;
}

export function startTicker(name: string, intervalMs: number, task: () => Promise<unknown>, log: RuntimeLog): Ticker {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = async () => {
    const started = Date.now();
    running = task().then(
      () => undefined,
      (err: unknown) => {
        if (!stopped) log.warn(`${name} failed`, { error: err as Error });
      },
    );
    await running;
    running = undefined;
    if (!stopped) timer = setTimeout(tick, Math.max(0, started + intervalMs - Date.now()));
  };
  timer = setTimeout(tick, 0);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
