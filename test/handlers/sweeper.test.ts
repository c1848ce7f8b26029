/**
 * The sweeper's schedule and what the hot paths cost, on DynamoDB Local.
 *
 * A keepalive never writes the expiry index, so the sweeper learns renewed
 * deadlines by reading clusters: on schedule (the earliest deadline it saw),
 * when a registration or a lease cut announces an earlier one, and in a full
 * sweep every minute. Time is injected (`deps.now`), so each case steps the
 * clock to just before and just after a deadline instead of sleeping.
 * Capacity units are DynamoDB's own figures (`ReturnConsumedCapacity: INDEXES`).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapacityMeter } from '../../bench/capacity.ts';
import { createDocumentClient } from '../../functions/core/aws.ts';
import { connect, disconnect } from '../../functions/core/connections.ts';
import type { Deps } from '../../functions/core/deps.ts';
import { getNode, keepalive, register } from '../../functions/core/registry.ts';
import { FULL_SWEEP_EVERY_MS, SLOW_REQUEST_MS, newSweeperState, sweep, type SweeperState } from '../../functions/core/sweeper.ts';
import { createTestTable, type TestTable } from '../support/table.ts';

let table: TestTable;
let deps: Deps;
let meter: CapacityMeter;
/** The injected clock. */
let clock = Date.now();

beforeAll(async () => {
  table = await createTestTable({ DISCONNECT_GRACE_SECONDS: '2', SWEEPER_AMNESTY_SECONDS: '86400' });
  const db = createDocumentClient(table.config);
  meter = new CapacityMeter().attach(db);
  deps = { db, config: table.config, now: () => clock };
});

afterAll(() => deps.db.destroy());

const cluster = () => `c-${randomUUID().slice(0, 8)}`;
const status = async (c: string, n: string) => (await getNode(deps, c, n)).status;

/**
 * Moves the clock two hours on, past every lease an earlier case left behind
 * (the next full sweep marks those DOWN), so each case sees only its own deadlines.
 */
const freshHour = () => (clock += 2 * 3_600_000);

/** Sweeps 1 ms before a deadline `ms` from now (the node stays UP) and 1 ms after it (DOWN with `reason`). */
async function downRightAfter(state: SweeperState, c: string, node: string, ms: number, reason: string): Promise<void> {
  clock += ms - 1;
  await sweep(deps, state);
  expect(await status(c, node)).toBe('UP');
  clock += 2;
  await sweep(deps, state);
  expect(await getNode(deps, c, node)).toMatchObject({ status: 'DOWN', downReason: reason });
}

/** A sweeper that has just read everything, as a long-running one has. */
async function settledSweeper(): Promise<SweeperState> {
  const state = newSweeperState();
  await sweep(deps, state);
  return state;
}

describe('what the hot paths write (DynamoDB ConsumedCapacity)', () => {
  it('a keepalive is one write unit and writes no index entry', async () => {
    const c = cluster();
    await register(deps, c, 'n1', { leaseSeconds: 30 });
    meter.take();
    for (let i = 0; i < 5; i++) await keepalive(deps, c, 'n1');
    const used = meter.take();
    expect(used).toMatchObject({ requests: 5, tableWrites: 5, indexWrites: 0 });
  });

  it('binding a node renews its lease for one write unit; the lease cut announces its deadline (an index write)', async () => {
    const c = cluster();
    await register(deps, c, 'n1', { leaseSeconds: 30 });
    meter.take();
    const conn = `conn-${randomUUID()}`;
    await connect(deps, conn, { clusterId: c, nodeId: 'n1' });
    // The renewal, the connection record, the subscription record and the subscriptions version: one unit each, no index entry.
    expect(meter.take()).toMatchObject({ tableWrites: 4, indexWrites: 0 });
    await disconnect(deps, conn);
    const cut = meter.take();
    expect(cut.indexWrites).toBe(2); // the index entry moves: a delete and a put
  });
});

describe('the schedule', () => {
  it('a sweep with nothing due reads no cluster; a renewed lease is learnt when the old deadline comes', async () => {
    freshHour();
    const c = cluster();
    await register(deps, c, 'n1', { leaseSeconds: 10 });
    const state = await settledSweeper();

    clock += 5_000;
    await keepalive(deps, c, 'n1'); // the deadline moves from +10 s to +15 s; the index is not told
    expect((await sweep(deps, state)).clustersRead).toBe(0);

    clock += 5_001; // past the old deadline: the cluster is read, the node is found renewed and stays UP
    const atOldDeadline = await sweep(deps, state);
    expect(atOldDeadline).toMatchObject({ down: 0 });
    expect(atOldDeadline.clustersRead).toBeGreaterThan(0);
    expect(await status(c, 'n1')).toBe('UP');

    clock += 5_000; // past the renewed deadline: DOWN
    expect((await sweep(deps, state)).down).toBeGreaterThanOrEqual(1);
    expect(await getNode(deps, c, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'expired' });
  });

  it('finds a node registered after the last full sweep by its announced deadline', async () => {
    freshHour();
    const state = await settledSweeper();
    const c = cluster();
    clock += 1_000;
    await register(deps, c, 'late', { leaseSeconds: 2 });
    await downRightAfter(state, c, 'late', 2_000, 'expired');
  });

  it('finds a lease cut by a dropped connection at the end of the grace, long before the old deadline', async () => {
    freshHour();
    const c = cluster();
    await register(deps, c, 'n1', { leaseSeconds: 600 });
    const conn = `conn-${randomUUID()}`;
    await connect(deps, conn, { clusterId: c, nodeId: 'n1' });
    const state = await settledSweeper();
    clock += 1_000;
    await disconnect(deps, conn); // grace 2 s
    await downRightAfter(state, c, 'n1', 2_000, 'disconnected');
  });

  it('reads every cluster again once a minute, whatever the schedule', async () => {
    freshHour();
    const c = cluster();
    await register(deps, c, 'n1', { leaseSeconds: 3600 });
    const state = await settledSweeper();
    clock += 1_000;
    expect((await sweep(deps, state)).full).toBe(false);
    clock += FULL_SWEEP_EVERY_MS;
    const full = await sweep(deps, state);
    expect(full.full).toBe(true);
    expect(full.clustersRead).toBeGreaterThan(0);
  });
});

describe('a store that does not answer (self-preservation)', () => {
  /** Deps whose clock moves `step` ms at every reading: each store request then takes about `step` ms. */
  const slowing = (step: number): Deps => ({ ...deps, now: () => (clock += step) });

  it('is a store request slower than 2 s: the sweeps after it extend leases that ran out', async () => {
    freshHour();
    const c = cluster();
    const state = await settledSweeper();
    await sweep(slowing(SLOW_REQUEST_MS + 500), state); // every request hung for 2.5 s, then answered
    await register(deps, c, 'n1', { leaseSeconds: 2 }); // a keepalive stuck in the outage lands late
    clock += 3_000; // and n1's lease runs out before it renews
    const after = await sweep(deps, state);
    expect(after).toMatchObject({ amnesty: true, down: 0 });
    expect(await status(c, 'n1')).toBe('UP');
  });

  it('turns the very sweep that met it into an amnesty: the nodes it finds due after the store answers are extended', async () => {
    freshHour();
    const c = cluster();
    await register(deps, c, 'n1', { leaseSeconds: 2 });
    const state = await settledSweeper();
    clock += 3_000; // n1's lease ran out while the store was not answering (its keepalives stuck)
    const met = await sweep(slowing(SLOW_REQUEST_MS + 500), state);
    expect(met).toMatchObject({ amnesty: true, down: 0 });
    expect(met.extended).toBeGreaterThanOrEqual(1);
    expect((await getNode(deps, c, 'n1')).downReason).toBeUndefined();
  });

  it('is not a long sweep of quick requests: a full sweep of a large table leaves the next sweeps free to declare nodes down', async () => {
    freshHour();
    const c = cluster();
    const state = newSweeperState();
    const long = await sweep(slowing(100), state); // a full sweep: every cluster the earlier cases made
    expect(long.durationMs).toBeGreaterThan(SLOW_REQUEST_MS);
    await register(deps, c, 'n1', { leaseSeconds: 2 });
    clock += 3_000;
    const after = await sweep(deps, state);
    expect(after).toMatchObject({ amnesty: false, down: 1 });
    expect(await status(c, 'n1')).toBe('DOWN');
  });

  it('gives a node whose bound connection dropped one more grace, not its whole lease, and then declares it down', async () => {
    freshHour();
    const c = cluster();
    await register(deps, c, 'n1', { leaseSeconds: 600 });
    const conn = `conn-${randomUUID()}`;
    await connect(deps, conn, { clusterId: c, nodeId: 'n1' });
    const state = await settledSweeper();
    await disconnect(deps, conn); // the lease is cut to the grace, 2 s
    state.sawStoreFailure = true; // what a sweep that met a failing store leaves behind
    clock += 2_001;
    expect(await sweep(deps, state)).toMatchObject({ amnesty: true, extended: 1 });
    const extended = await getNode(deps, c, 'n1');
    expect(extended.status).toBe('UP');
    expect(Date.parse(extended.expiresAt) - clock).toBe(2_000); // the grace again, not 600 s
    clock += 2_001; // the grace ran out, and so did the amnesty period (5 s)
    clock += 3_000;
    await sweep(deps, state);
    expect(await getNode(deps, c, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'disconnected' });
  });
});
