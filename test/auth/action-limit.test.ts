/**
 * The per-connection action limit in the core (functions/core/action-limit.ts),
 * on DynamoDB Local with an injected clock: exactly ACTION_LIMIT.actions
 * actions per window, also when they race each other, a fresh count in the
 * next window, and nothing written for a refused action.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { ACTION_LIMIT, takeAction } from '../../functions/core/action-limit.ts';
import { connect, subscribe, unsubscribe } from '../../functions/core/subscriptions.ts';
import type { Deps } from '../../functions/core/deps.ts';
import { ThrottledError, ValidationError } from '../../functions/core/errors.ts';
import { createTestTable, type TestTable } from '../support/table.ts';

let table: TestTable;
beforeAll(async () => {
  table = await createTestTable();
});

const WINDOW_MS = ACTION_LIMIT.windowSeconds * 1000;
/** Deps whose clock stands at `at` (ms) — inside one window, whatever the real time. */
const at = (ms: number): Deps => ({ ...table.deps, now: () => ms });
const windowStart = (n: number): number => n * WINDOW_MS;

async function outcomes(promises: Promise<void>[]): Promise<{ ok: number; throttled: number }> {
  const settled = await Promise.allSettled(promises);
  for (const s of settled) if (s.status === 'rejected' && !(s.reason instanceof ThrottledError)) throw s.reason;
  return { ok: settled.filter((s) => s.status === 'fulfilled').length, throttled: settled.filter((s) => s.status === 'rejected').length };
}

describe('takeAction', () => {
  test(`allows exactly ${ACTION_LIMIT.actions} actions per window, even when ${ACTION_LIMIT.actions + 20} race, and counts afresh in the next window`, async () => {
    const deps = at(windowStart(1000) + 5);
    await connect(deps, 'race', {});
    const first = await outcomes(Array.from({ length: ACTION_LIMIT.actions + 20 }, () => takeAction(deps, 'race')));
    expect(first).toEqual({ ok: ACTION_LIMIT.actions, throttled: 20 });
    // Later in the same window: still refused.
    await expect(takeAction(at(windowStart(1000) + WINDOW_MS - 1), 'race')).rejects.toBeInstanceOf(ThrottledError);
    // The next window: a fresh count, again exactly the limit under a race.
    const next = await outcomes(Array.from({ length: ACTION_LIMIT.actions + 5 }, () => takeAction(at(windowStart(1001)), 'race')));
    expect(next).toEqual({ ok: ACTION_LIMIT.actions, throttled: 5 });
  });

  test('a throttled subscribe writes nothing; an unknown connection is a validation error', async () => {
    const deps = at(windowStart(2000));
    await connect(deps, 'busy', {});
    for (let i = 0; i < ACTION_LIMIT.actions; i++) await (i % 2 === 0 ? subscribe(deps, 'busy', 'c1') : unsubscribe(deps, 'busy', 'c1'));
    const before = await table.snapshot();
    await expect(subscribe(deps, 'busy', 'c2')).rejects.toBeInstanceOf(ThrottledError);
    await expect(unsubscribe(deps, 'busy', 'c1')).rejects.toBeInstanceOf(ThrottledError);
    expect(await table.snapshot()).toEqual(before);
    await expect(takeAction(deps, 'nobody')).rejects.toBeInstanceOf(ValidationError);
  });
});
