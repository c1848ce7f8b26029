import { setTimeout as sleep } from 'node:timers/promises';
import { defaultDeps } from '../core/deps.ts';
import { logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { perScope } from '../core/scope.ts';
import { newSweeperState, SLOW_REQUEST_MS, sweep } from '../core/sweeper.ts';

/** Kept between invocations of one execution environment (one per local runtime). */
const sweeperState = perScope(newSweeperState);

/**
 * Scheduled every minute by EventBridge (its floor), this invocation sweeps
 * every SWEEP_INTERVAL_SECONDS for SWEEP_LOOP_SECONDS, giving sub-minute
 * detection. A failed sweep is logged and retried at the next tick; the
 * failure is remembered so the first sweep after it is an amnesty sweep.
 */
export const handler = async (): Promise<{ sweeps: number; down: number; failures: number }> => {
  const deps = defaultDeps();
  const state = sweeperState();
  const { sweepIntervalSeconds, sweepLoopSeconds } = deps.config;
  const until = deps.now() + sweepLoopSeconds * 1000;
  const totals = { sweeps: 0, down: 0, failures: 0 };
  do {
    const tick = deps.now();
    try {
      const result = await sweep(deps, state);
      totals.sweeps++;
      totals.down += result.down;
      // An amnesty that extended leases means the information center was (or looked) unreachable: an operator wants to know.
      if (result.slowestRequestMs > SLOW_REQUEST_MS) logger.warn('the store answered slowly: the next sweeps grant amnesty', { ...result });
      // A held mass lapse is the information center's fault more likely than the nodes': throttling or the network.
      if (result.held > 0) logger.warn('self-preservation: a mass lapse is held (leases extended, not declared down); look for throttled keepalives or a network fault', { ...result });
      if (result.holdsExpired.length > 0) logger.warn('self-preservation: a hold ran out; lapsed nodes that did not renew are declared down', { ...result });
      if (result.amnesty && result.extended > 0) logger.warn('amnesty sweep: expired leases extended, not declared down', { ...result });
      else if (result.held === 0 && result.holdsExpired.length === 0 && (result.down > 0 || result.extended > 0 || result.raced > 0)) logger.info('sweep', { ...result });
    } catch (err) {
      totals.failures++;
      logger.error('sweep failed', { error: err as Error });
    }
    // Flushed per sweep, not per invocation: the "sweeper not running" alarm must see sweeps within the minute.
    metrics.flush();
    const wait = tick + sweepIntervalSeconds * 1000 - deps.now();
    if (deps.now() + Math.max(wait, 0) >= until) break;
    if (wait > 0) await sleep(wait);
  } while (deps.now() < until);
  return totals;
};
