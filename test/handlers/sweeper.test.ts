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
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapacityMeter } from '../../bench/capacity.ts';
import { createDocumentClient } from '../../functions/core/aws.ts';
import { connect, disconnect } from '../../functions/core/connections.ts';
import type { Deps } from '../../functions/core/deps.ts';
import { CLUSTERS_PK, clusterPk, nodeSk } from '../../functions/core/model.ts';
import { deregister, getNode, keepalive, listClusters, listNodes, register } from '../../functions/core/registry.ts';
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

describe('a cluster with no node left leaves the cluster list', () => {
  /** A table of its own, so what a full sweep reads is exactly what these cases left. */
  let own: TestTable;
  let d: Deps;
  let t = Date.now();
  const RETENTION_MS = 60_000;

  beforeAll(async () => {
    own = await createTestTable({ DOWN_RETENTION_SECONDS: String(RETENTION_MS / 1000), SWEEPER_AMNESTY_SECONDS: '86400' });
    d = { ...own.deps, now: () => t };
  });

  const listed = async () => (await listClusters(d)).map((c) => c.clusterId).sort();

  /**
   * `deps` whose store requests that `match` run `hooks.before` first and
   * `hooks.after` once answered: a request of the real client, held at a
   * chosen point so that another writer comes in between.
   */
  function holding(deps: Deps, match: (command: unknown) => boolean, hooks: { before?: () => Promise<void>; after?: (succeeded: boolean) => void }): Deps {
    const send = deps.db.send.bind(deps.db) as (command: never) => Promise<unknown>;
    const held = async (command: never): Promise<unknown> => {
      if (!match(command)) return send(command);
      await hooks.before?.();
      let succeeded = false;
      try {
        const out = await send(command);
        succeeded = true;
        return out;
      } finally {
        hooks.after?.(succeeded);
      }
    };
    return { ...deps, db: Object.create(deps.db, { send: { value: held } }) as Deps['db'] };
  }
  const isRemovalOf = (c: string) => (command: unknown) => command instanceof DeleteCommand && command.input.Key?.pk === CLUSTERS_PK && command.input.Key.sk === c;

  /** A cluster whose only node deregistered, with the clock past its retention and the next full sweep due. */
  async function emptied(): Promise<string> {
    const c = cluster();
    await register(d, c, 'n1', { leaseSeconds: 30 });
    await deregister(d, c, 'n1');
    t += RETENTION_MS + FULL_SWEEP_EVERY_MS + 1_000;
    return c;
  }

  it('is listed while a DOWN node is retained, leaves once the retention passed (and full sweeps stop reading it), and comes back with its next node', async () => {
    const c = cluster();
    await register(d, c, 'n1', { leaseSeconds: 30 });
    await deregister(d, c, 'n1');
    const state = newSweeperState();
    t += RETENTION_MS / 2; // the DOWN node is still retained: the cluster stays
    expect(await sweep(d, state)).toMatchObject({ full: true, clustersRead: 1, clustersRemoved: 0 });
    expect(await listed()).toEqual([c]);

    t += RETENTION_MS / 2 + FULL_SWEEP_EVERY_MS; // past the retention (TTL has not deleted the item: it never runs on time)
    expect(await sweep(d, state)).toMatchObject({ full: true, clustersRead: 1, clustersRemoved: 1 });
    expect(await listed()).toEqual([]);
    t += FULL_SWEEP_EVERY_MS;
    expect(await sweep(d, state)).toMatchObject({ full: true, clustersRead: 0 });

    await register(d, c, 'n2', {});
    expect(await listClusters(d)).toEqual([expect.objectContaining({ clusterId: c, up: 1 })]);
    // The revision goes on from where the cluster left it: a client that knew it sees no step back.
    expect(await listNodes(d, c)).toMatchObject({ revision: 3, nodes: [expect.objectContaining({ nodeId: 'n2', revision: 3 })] });
    t += FULL_SWEEP_EVERY_MS;
    expect(await sweep(d, state)).toMatchObject({ full: true, clustersRead: 1, clustersRemoved: 0 });
  });

  it('stays listed when a registration comes between the sweeper finding it empty and the removal', async () => {
    const c = await emptied();
    let removal: boolean | undefined;
    const racing = holding(d, isRemovalOf(c), { before: async () => void (await register(d, c, 'n2', {})), after: (succeeded) => (removal = succeeded) });
    expect(await sweep(racing, newSweeperState())).toMatchObject({ full: true });
    expect(removal).toBe(false); // the sweeper did try: it had found the cluster empty
    expect((await listClusters(d)).find((x) => x.clusterId === c)).toMatchObject({ up: 1 });
    // And the next full sweep reads it, as it must to see n2's lease run out.
    t += 31_000 + FULL_SWEEP_EVERY_MS;
    await sweep(d, newSweeperState());
    expect(await getNode(d, c, 'n2')).toMatchObject({ status: 'DOWN', downReason: 'expired' });
  });

  it('is listed again when the removal comes between a registration writing its node and listing the cluster', async () => {
    const c = await emptied();
    let removed = () => undefined as void;
    const removal = new Promise<void>((resolve) => (removed = resolve));
    let removalSucceeded: boolean | undefined;
    let reachedNodeWrite = () => undefined as void;
    const atNodeWrite = new Promise<void>((resolve) => (reachedNodeWrite = resolve));
    // The registration is held just before its node write until the sweeper has removed the cluster.
    const isNodeWrite = (command: unknown) => command instanceof PutCommand && command.input.Item?.pk === clusterPk(c) && command.input.Item.sk === nodeSk('n2');
    const registering = holding(d, isNodeWrite, {
      before: async () => {
        reachedNodeWrite();
        await removal;
      },
    });
    const registration = register(registering, c, 'n2', {});
    await atNodeWrite;
    const sweeper = holding(d, isRemovalOf(c), {
      after: (succeeded) => {
        removalSucceeded = succeeded;
        removed();
      },
    });
    await sweep(sweeper, newSweeperState()).finally(removed);
    expect(removalSucceeded).toBe(true); // it was empty when read: the node write had not happened
    await registration;
    expect((await listClusters(d)).find((x) => x.clusterId === c)).toMatchObject({ up: 1 });
  });

  it('keeps listing a cluster whose entry predates the listing count, and removes it once empty', async () => {
    const c = await emptied();
    // An entry as registrations wrote it before `gen` existed.
    await d.db.send(new UpdateCommand({ TableName: own.tableName, Key: { pk: CLUSTERS_PK, sk: c }, UpdateExpression: 'REMOVE gen' }));
    expect(await listed()).toContain(c);
    expect((await sweep(d, newSweeperState())).clustersRemoved).toBeGreaterThanOrEqual(1);
    expect(await listed()).not.toContain(c);
  });
});
