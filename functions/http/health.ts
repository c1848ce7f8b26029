import { defaultDeps } from '../core/deps.ts';
import { httpHandler, json } from '../core/http-handler.ts';
import { lastSweepAt } from '../core/sweeper.ts';

/**
 * GET /v1/health — the information center itself: 200 when the store answers,
 * with how long ago the sweeper last completed (a stalled sweeper means slow detection).
 */
export const handler = httpHandler('health', async () => {
  const deps = defaultDeps();
  const last = await lastSweepAt(deps);
  const now = deps.now();
  return json(200, {
    status: 'ok',
    time: new Date(now).toISOString(),
    sweeper: last === undefined ? { lastSweepAt: null } : { lastSweepAt: new Date(last).toISOString(), lagSeconds: (now - last) / 1000 },
  });
});
