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
import { InternalServerError, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mapLimit } from '../../functions/core/concurrency.ts';
import { NodeNotFoundError } from '../../functions/core/errors.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapacityMeter } from '../../bench/capacity.ts';
import { createDocumentClient } from '../../functions/core/aws.ts';
import { connect, disconnect } from '../../functions/core/subscriptions.ts';
import type { Deps } from '../../functions/core/deps.ts';
import { CLUSTERS_PK, META_SK, clusterPk, nodeSk } from '../../functions/core/model.ts';
import { deregister, getNode, keepalive, listClusters, listNodes, register } from '../../functions/core/registry.ts';
import { FULL_SWEEP_EVERY_MS, SLOW_REQUEST_MS, newSweeperState, sweep, type SweeperState } from '../../functions/core/sweeper.ts';
import { createTestTable, type TestTable } from '../support/table.ts';

let table: TestTable;
let deps: Deps;
let meter: CapacityMeter;
/** The injected clock. */
let clock = Date.now();

beforeAll(async () => {
  // These cases are about the schedule: the leftovers of earlier cases all lapse at each `freshHour`, which the
  // renewal threshold would hold as a mass lapse. Its own cases (below) run on tables of their own, with it on.
  table = await createTestTable({ DISCONNECT_GRACE_SECONDS: '2', SWEEPER_AMNESTY_SECONDS: '86400', SELF_PRESERVATION_MAX_SECONDS: '0' });
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

  it('reads an announced node alone, not its cluster: a renewed one moves the cluster\'s next read to its deadline, a silent lapse has the cluster read whole', async () => {
    freshHour();
    const c = cluster();
    await mapLimit(Array.from({ length: 40 }, (_, i) => `n${i}`), 8, (n) => register(deps, c, n, { leaseSeconds: 60 }));
    const state = await settledSweeper(); // the cluster is next due in 60 s
    clock += 1_000;
    await register(deps, c, 'renews', { leaseSeconds: 4 }); // announced at +4 s
    await register(deps, c, 'lapses', { leaseSeconds: 6 }); // announced at +6 s
    clock += 3_000;
    await keepalive(deps, c, 'renews'); // its deadline moves to +7 s; the index is not told

    clock += 1_001; // the announcement of `renews` is due: that one item is read, and it is UP
    const renewed = await sweep(deps, state);
    expect(renewed).toMatchObject({ clustersRead: 0, itemsRead: 1, down: 0 });
    expect(await status(c, 'renews')).toBe('UP');

    clock += 2_000; // `lapses` is due and lapsed silently: the renewal threshold counts it against the cluster's UP nodes
    const lapsed = await sweep(deps, state);
    expect(lapsed).toMatchObject({ clustersRead: 1, itemsRead: 42, down: 1 });
    expect(await getNode(deps, c, 'lapses')).toMatchObject({ status: 'DOWN', downReason: 'expired' });

    clock += 1_000; // past the renewed deadline that the alone read learnt: the cluster is read again, `renews` goes DOWN
    expect(await sweep(deps, state)).toMatchObject({ clustersRead: 1, down: 1 });
    expect(await getNode(deps, c, 'renews')).toMatchObject({ status: 'DOWN', downReason: 'expired' });
  });

  it('declares a lease cut from its node alone: the dropped connection\'s cluster is not read', async () => {
    freshHour();
    const c = cluster();
    await mapLimit(Array.from({ length: 20 }, (_, i) => `n${i}`), 8, (n) => register(deps, c, n, { leaseSeconds: 600 }));
    const conn = `conn-${randomUUID()}`;
    await connect(deps, conn, { clusterId: c, nodeId: 'n0' });
    const state = await settledSweeper();
    clock += 1_000;
    await disconnect(deps, conn); // grace 2 s
    clock += 2_001;
    expect(await sweep(deps, state)).toMatchObject({ clustersRead: 0, itemsRead: 1, down: 1 });
    expect(await getNode(deps, c, 'n0')).toMatchObject({ status: 'DOWN', downReason: 'disconnected' });
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

describe("a cluster's entry in the cluster list, written by registrations", () => {
  let own: TestTable;
  let d: Deps;
  beforeAll(async () => {
    own = await createTestTable({ SWEEPER_AMNESTY_SECONDS: '86400' }); // the default retention: a DOWN record is kept for hours
    d = own.deps;
  });

  /** `deps` that count the writes of `c`'s entry in the `CLUSTERS` partition. */
  function countingEntryWrites(c: string): { deps: Deps; writes: () => number } {
    let writes = 0;
    const send = d.db.send.bind(d.db) as (command: never) => Promise<unknown>;
    const counted = async (command: never): Promise<unknown> => {
      const cmd = command as unknown;
      if (cmd instanceof UpdateCommand && cmd.input.Key?.pk === CLUSTERS_PK && cmd.input.Key.sk === c) writes++;
      return send(command);
    };
    return { deps: { ...d, db: Object.create(d.db, { send: { value: counted } }) as Deps['db'] }, writes: () => writes };
  }
  const gen = async (c: string) => (await d.db.send(new GetCommand({ TableName: own.tableName, Key: { pk: CLUSTERS_PK, sk: c }, ConsistentRead: true }))).Item?.gen as number | undefined;

  it('is read, not written, by a storm of restarts: every restarting node\'s retained record kept the cluster listed', async () => {
    const c = cluster();
    const ids = Array.from({ length: 20 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    await mapLimit(ids, 8, (id) => register(d, c, id, {}));
    await mapLimit(ids, 8, (id) => deregister(d, c, id));
    const before = await gen(c);
    const { deps, writes } = countingEntryWrites(c);
    await mapLimit(ids, 8, (id) => register(deps, c, id, {}));
    expect(writes()).toBe(0);
    expect(await gen(c)).toBe(before);
    expect((await listClusters(d)).find((x) => x.clusterId === c)).toMatchObject({ up: 20 });
  });

  it('is written by the first registration of a node, and by a restart that finds it missing', async () => {
    const c = cluster();
    const first = countingEntryWrites(c);
    await register(first.deps, c, 'n1', {});
    expect(first.writes()).toBe(1);
    await deregister(d, c, 'n1');
    // An earlier attempt that failed between its node write and its cluster write left the cluster unlisted.
    await d.db.send(new DeleteCommand({ TableName: own.tableName, Key: { pk: CLUSTERS_PK, sk: c } }));
    const restart = countingEntryWrites(c);
    await register(restart.deps, c, 'n1', {});
    expect(restart.writes()).toBe(1);
    expect((await listClusters(d)).find((x) => x.clusterId === c)).toMatchObject({ up: 1 });
  });
});

/**
 * `deps` whose store requests that `match` wait for `before` first, and
 * report to `after` once answered: one of the real client's requests, held
 * so that another writer comes in between.
 */
function intercepting(
  deps: Deps,
  match: (command: unknown) => boolean,
  hooks: { before?: (command: unknown) => Promise<void>; after?: (command: unknown, written: boolean) => void },
): Deps {
  const send = deps.db.send.bind(deps.db) as (command: never) => Promise<unknown>;
  const held = async (command: never): Promise<unknown> => {
    if (!match(command)) return send(command);
    await hooks.before?.(command);
    let written = false;
    try {
      const out = await send(command);
      written = true;
      return out;
    } finally {
      hooks.after?.(command, written);
    }
  };
  return { ...deps, db: Object.create(deps.db, { send: { value: held } }) as Deps['db'] };
}

/** The nodes a DOWN or extension write of the sweeper is for (their keys): one UpdateItem, or a transaction of them. */
function sweeperWritesOf(command: unknown, c: string): string[] {
  const updates =
    command instanceof UpdateCommand ? [command.input] : command instanceof TransactWriteCommand ? (command.input.TransactItems ?? []).flatMap((item) => (item.Update ? [item.Update] : [])) : [];
  return updates.flatMap((update) => {
    const key = update.Key as { pk?: string; sk?: string } | undefined;
    const values = update.ExpressionAttributeValues ?? {};
    if (key?.pk !== clusterPk(c) || !String(key.sk).startsWith('N#') || !(':down' in values || ':rev' in values)) return [];
    return [String(key.sk).slice(2)];
  });
}

describe('a storm: due nodes settled at once', () => {
  let own: TestTable;
  let d: Deps;
  let t = Date.now();

  beforeAll(async () => {
    // Holds off: these cases are about the writes, and every node of them lapses at once.
    own = await createTestTable({ SWEEPER_AMNESTY_SECONDS: '86400', SELF_PRESERVATION_MAX_SECONDS: '0' });
    d = { ...own.deps, now: () => t };
  });

  it("declares every due node of a cluster down with one write of its revision counter: their revisions are the next ones, one each", async () => {
    const c = cluster();
    const ids = Array.from({ length: 120 }, (_, i) => `n${String(i).padStart(3, '0')}`);
    await mapLimit(ids, 16, (id) => register(d, c, id, { leaseSeconds: 10 }));
    const before = (await listNodes(d, c)) as { revision: number };
    expect(before.revision).toBe(120);
    t += 10_001;
    let counterWrites = 0;
    const counting = intercepting(d, (command) => command instanceof UpdateCommand && command.input.Key?.sk === META_SK, { before: async () => void counterWrites++ });
    const result = await sweep(counting, newSweeperState());
    expect(result).toMatchObject({ down: 120, raced: 0, held: 0 });
    expect(counterWrites).toBe(1);
    const after = (await listNodes(d, c, { all: true })) as { revision: number; nodes: { status: string; downReason?: string; revision: number }[] };
    expect(after.revision).toBe(240);
    expect(after.nodes.every((n) => n.status === 'DOWN' && n.downReason === 'expired')).toBe(true);
    expect(after.nodes.map((n) => n.revision).sort((a, b) => a - b)).toEqual(ids.map((_, i) => 121 + i));
  });

  it('lets a keepalive racing the concurrent DOWN writes win or lose cleanly: never renewed and declared down both', async () => {
    const c = cluster();
    const ids = Array.from({ length: 60 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    const registeredAt = t;
    await mapLimit(ids, 16, (id) => register(d, c, id, { leaseSeconds: 10 }));
    // Keepalives that reached the information center just before the lease ran out, and are answered as the sweeper writes.
    const inTime: Deps = { ...d, now: () => registeredAt + 9_999 };
    const first = ids.slice(0, 10); // its keepalive lands before the node's DOWN write
    const after = ids.slice(10, 20); // its keepalive lands after the DOWN write was answered
    const free = ids.slice(20, 30); // its keepalive runs alongside, in no set order
    const outcomes = new Map<string, Promise<'renewed' | 'refused'>>();
    const keepaliveOf = (id: string) => {
      let outcome = outcomes.get(id);
      if (!outcome) {
        outcome = keepalive(inTime, c, id).then(
          () => 'renewed' as const,
          (err: unknown) => {
            if (err instanceof NodeNotFoundError) return 'refused' as const;
            throw err;
          },
        );
        outcomes.set(id, outcome);
      }
      return outcome;
    };
    const ordered = intercepting(d, (command) => sweeperWritesOf(command, c).length > 0, {
      before: async (command) => {
        for (const id of sweeperWritesOf(command, c)) {
          if (first.includes(id)) await keepaliveOf(id);
          if (free.includes(id)) void keepaliveOf(id);
        }
      },
      // After a write that was answered and made: a transaction cancelled by another node's lost race wrote nothing.
      after: (command, written) => {
        if (written) for (const id of sweeperWritesOf(command, c)) if (after.includes(id)) void keepaliveOf(id);
      },
    });
    t = registeredAt + 10_001;
    const result = await sweep(ordered, newSweeperState());
    const seen = new Map(await Promise.all([...outcomes].map(async ([id, o]) => [id, await o] as const)));
    expect([...seen.keys()].sort()).toEqual([...first, ...after, ...free].sort());

    const nodes = new Map((await Promise.all(ids.map((id) => getNode(d, c, id)))).map((n) => [n.nodeId, n]));
    for (const id of ids) {
      const node = nodes.get(id);
      // Renewed and still UP, or refused (404) and DOWN: the keepalive and the sweeper never both win.
      if (seen.get(id) === 'renewed') expect(node, id).toMatchObject({ status: 'UP' });
      else expect(node, id).toMatchObject({ status: 'DOWN', downReason: 'expired' });
    }
    for (const id of first) expect(seen.get(id), id).toBe('renewed');
    for (const id of after) expect(seen.get(id), id).toBe('refused');
    const renewed = [...seen.values()].filter((o) => o === 'renewed').length;
    expect(result).toMatchObject({ down: 60 - renewed, raced: renewed });
    // The DOWN writes took distinct revisions of the sweep's one block; the lost races left theirs unused.
    const downRevisions = ids.filter((id) => nodes.get(id)?.status === 'DOWN').map((id) => nodes.get(id)?.revision as number);
    expect(new Set(downRevisions).size).toBe(downRevisions.length);
    expect(Math.min(...downRevisions)).toBeGreaterThan(60);
    expect(Math.max(...downRevisions)).toBeLessThanOrEqual(120);
  });

  /** Moves the clock an hour on and sweeps: what earlier cases left UP is declared down before the next case starts. */
  async function clearEarlierCases(): Promise<void> {
    t += 3_600_000;
    await sweep(d, newSweeperState());
  }

  /** A store that answers the sweeper's first transaction in `c` with `error` (given the nodes it would write) instead of writing it. */
  function failingFirstTransaction(c: string, error: (nodes: string[]) => Error, meanwhile?: () => Promise<unknown>): Deps {
    let failed = false;
    return intercepting(d, (command) => command instanceof TransactWriteCommand && sweeperWritesOf(command, c).length > 0, {
      before: async (command) => {
        if (failed) return;
        failed = true;
        await meanwhile?.();
        throw error(sweeperWritesOf(command, c));
      },
    });
  }

  it('sends a transaction cancelled by a conflict on one node again after a backoff: every due node is declared down', async () => {
    await clearEarlierCases();
    const c = cluster();
    const ids = Array.from({ length: 30 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    await mapLimit(ids, 16, (id) => register(d, c, id, { leaseSeconds: 10 }));
    t += 10_001;
    // DynamoDB's answer when another write of one of the items was in flight: that update `TransactionConflict`, the rest `None`.
    const conflict = (nodes: string[]) =>
      new TransactionCanceledException({
        $metadata: {},
        message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None, …]',
        CancellationReasons: nodes.map((_, i) => ({ Code: i === 0 ? 'TransactionConflict' : 'None' })),
      });
    const result = await sweep(failingFirstTransaction(c, conflict), newSweeperState());
    expect(result).toMatchObject({ down: 30, raced: 0 });
    const nodes = await Promise.all(ids.map((id) => getNode(d, c, id)));
    expect(nodes.every((n) => n.status === 'DOWN' && n.downReason === 'expired')).toBe(true);
  });

  it('fails the sweep when a transaction fails, with the other transactions written; the next sweep declares the rest', async () => {
    await clearEarlierCases();
    const c = cluster();
    const ids = Array.from({ length: 150 }, (_, i) => `n${String(i).padStart(3, '0')}`);
    await mapLimit(ids, 16, (id) => register(d, c, id, { leaseSeconds: 10 }));
    t += 10_001;
    let failed: string[] = [];
    const failing = failingFirstTransaction(c, (nodes) => {
      failed = nodes;
      return new InternalServerError({ $metadata: {}, message: 'Internal server error' });
    });
    await expect(sweep(failing, newSweeperState())).rejects.toThrow('Internal server error');
    // Declared: DOWN for a reason. Not written: a lapse, which reads DOWN without one.
    const reasons = new Map((await Promise.all(ids.map((id) => getNode(d, c, id)))).map((n) => [n.nodeId, n.downReason]));
    expect(failed.length).toBeGreaterThan(0);
    for (const id of ids) expect(reasons.get(id), id).toBe(failed.includes(id) ? undefined : 'expired');
    await sweep(d, newSweeperState());
    const after = await Promise.all(ids.map((id) => getNode(d, c, id)));
    expect(after.every((n) => n.status === 'DOWN' && n.downReason === 'expired')).toBe(true);
  });

  it('settles the nodes one write at a time when a cancellation gives no reasons', async () => {
    await clearEarlierCases();
    const c = cluster();
    const ids = Array.from({ length: 30 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    const registeredAt = t;
    await mapLimit(ids, 16, (id) => register(d, c, id, { leaseSeconds: 10 }));
    t += 10_001;
    const bare = () => new TransactionCanceledException({ $metadata: {}, message: 'Transaction cancelled' });
    // A keepalive that made it in time lands between the sweeper's read and its writes: n07's write fails its condition.
    const renewN07 = () => keepalive({ ...d, now: () => registeredAt + 9_999 }, c, 'n07');
    const result = await sweep(failingFirstTransaction(c, bare, renewN07), newSweeperState());
    expect(result).toMatchObject({ down: 29, raced: 1 });
    const nodes = new Map((await Promise.all(ids.map((id) => getNode(d, c, id)))).map((n) => [n.nodeId, n.status]));
    expect(nodes.get('n07')).toBe('UP');
    expect([...nodes.values()].filter((s) => s === 'DOWN')).toHaveLength(29);
  });
});

describe('self-preservation by renewal threshold (15% of the UP nodes and at least 3, within one lease)', () => {
  const LEASE_MS = 10_000;
  /** A table of its own per case: the deployment-wide count is then exactly the case's nodes. */
  async function setting(env: Record<string, string> = {}) {
    const own = await createTestTable({ SWEEPER_AMNESTY_SECONDS: '86400', DISCONNECT_GRACE_SECONDS: '2', ...env });
    let t = Date.now();
    const d: Deps = { ...own.deps, now: () => t };
    const state = newSweeperState();
    return {
      d,
      state,
      /** Moves the injected clock to `at` ms after `from`. */
      at: (from: number, ms: number) => (t = from + ms),
      now: () => t,
      /** Registers `n` nodes `{prefix}0…` with a 10 s lease and returns their ids. */
      nodes: async (c: string, n: number, prefix = 'n') => {
        const ids = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
        await mapLimit(ids, 16, (id) => register(d, c, id, { leaseSeconds: LEASE_MS / 1000 }));
        return ids;
      },
      keepAlive: (c: string, ids: readonly string[]) => mapLimit(ids, 16, (id) => keepalive(d, c, id)),
      statuses: async (c: string, ids: readonly string[]) => (await Promise.all(ids.map((id) => getNode(d, c, id)))).map((n) => n.status),
    };
  }

  it('holds a mass lapse: half of a cluster stops renewing at once, and none of it is declared down', async () => {
    const s = await setting();
    const c = cluster();
    const start = s.now();
    const ids = await s.nodes(c, 20);
    await sweep(s.d, s.state);
    s.at(start, 5_000);
    await s.keepAlive(c, ids.slice(0, 10)); // the other ten's keepalives stop arriving (throttled, or cut off)
    s.at(start, LEASE_MS + 1);
    const held = await sweep(s.d, s.state);
    expect(held).toMatchObject({ down: 0, held: 10, extended: 10 });
    expect(held.holding).toEqual([expect.objectContaining({ clusterId: c, scope: 'cluster', lapsed: 10, base: 20 })]);
    expect(await s.statuses(c, ids)).toEqual(ids.map(() => 'UP'));
    const list = (await listNodes(s.d, c)) as { nodes: unknown[] };
    expect(list.nodes).toHaveLength(20);
  });

  it('ends the hold once renewals resume: the held nodes that renew stay UP, the two that do not are declared down', async () => {
    const s = await setting();
    const c = cluster();
    const start = s.now();
    const ids = await s.nodes(c, 20);
    await sweep(s.d, s.state);
    s.at(start, 5_000);
    await s.keepAlive(c, ids.slice(0, 10));
    s.at(start, LEASE_MS + 1);
    expect(await sweep(s.d, s.state)).toMatchObject({ held: 10 });
    // The fault is over: eight of the ten held nodes renew within their extra lease; two are really gone.
    s.at(start, LEASE_MS + 4_000);
    await s.keepAlive(c, [...ids.slice(0, 10), ...ids.slice(10, 18)]);
    s.at(start, 2 * LEASE_MS + 2);
    const after = await sweep(s.d, s.state);
    expect(after).toMatchObject({ held: 0, down: 2 });
    expect(await s.statuses(c, ids)).toEqual(ids.map((_, i) => (i >= 18 ? 'DOWN' : 'UP')));
    expect(await getNode(s.d, c, ids[19] as string)).toMatchObject({ downReason: 'expired' });
  });

  it('ends a hold that is never relieved after selfPreservationMaxSeconds: nodes that never renew are declared down', async () => {
    const s = await setting({ SELF_PRESERVATION_MAX_SECONDS: '30' });
    const c = cluster();
    const start = s.now();
    const ids = await s.nodes(c, 10);
    await sweep(s.d, s.state);
    // Nobody renews: every lease they get runs out again, and is held again while the hold lasts (30 s from the first lapse).
    let at = LEASE_MS + 1;
    for (; at < LEASE_MS + 1 + 30_000; at += LEASE_MS) {
      s.at(start, at);
      expect(await sweep(s.d, s.state), `${at} ms`).toMatchObject({ held: 10, down: 0 });
    }
    s.at(start, at);
    const declared = await sweep(s.d, s.state);
    expect(declared).toMatchObject({ held: 0, down: 10, holdsExpired: [c] });
    expect(await s.statuses(c, ids)).toEqual(ids.map(() => 'DOWN'));
  });

  it("declares one node's lapse in a big cluster at lease + one sweep", async () => {
    const s = await setting();
    const c = cluster();
    const start = s.now();
    const ids = await s.nodes(c, 30);
    await sweep(s.d, s.state);
    s.at(start, 5_000);
    await s.keepAlive(c, ids.slice(1));
    s.at(start, LEASE_MS - 1);
    expect(await sweep(s.d, s.state)).toMatchObject({ down: 0 });
    s.at(start, LEASE_MS + 1);
    expect(await sweep(s.d, s.state)).toMatchObject({ down: 1, held: 0 });
    expect(await getNode(s.d, c, 'n0')).toMatchObject({ status: 'DOWN', downReason: 'expired' });
  });

  it('declares a small cluster\'s one failure: 3 nodes, one hangs or one crashes', async () => {
    const s = await setting();
    const hung = cluster();
    const crashed = cluster();
    const start = s.now();
    const hungIds = await s.nodes(hung, 3);
    const crashedIds = await s.nodes(crashed, 3);
    const conn = `conn-${randomUUID()}`;
    await connect(s.d, conn, { clusterId: crashed, nodeId: 'n0' });
    await sweep(s.d, s.state);
    s.at(start, 5_000);
    await s.keepAlive(hung, hungIds.slice(1));
    await s.keepAlive(crashed, crashedIds.slice(1));
    await disconnect(s.d, conn); // the crash: its socket closed, the lease is cut to the grace (2 s)
    s.at(start, 7_001);
    expect(await sweep(s.d, s.state)).toMatchObject({ down: 1 });
    expect(await getNode(s.d, crashed, 'n0')).toMatchObject({ status: 'DOWN', downReason: 'disconnected' });
    s.at(start, LEASE_MS + 1);
    expect(await sweep(s.d, s.state)).toMatchObject({ down: 1, held: 0 });
    expect(await getNode(s.d, hung, 'n0')).toMatchObject({ status: 'DOWN', downReason: 'expired' });
  });

  it('never holds a crash storm: nodes whose connections dropped are declared down, however many at once', async () => {
    const s = await setting();
    const c = cluster();
    const start = s.now();
    const ids = await s.nodes(c, 10);
    const conns = ids.map((id) => ({ id, conn: `conn-${randomUUID()}` }));
    for (const { id, conn } of conns) await connect(s.d, conn, { clusterId: c, nodeId: id });
    await sweep(s.d, s.state);
    s.at(start, 1_000);
    for (const { conn } of conns.slice(0, 8)) await disconnect(s.d, conn);
    s.at(start, 3_001);
    expect(await sweep(s.d, s.state)).toMatchObject({ down: 8, held: 0 });
    expect(await s.statuses(c, ids)).toEqual(ids.map((_, i) => (i < 8 ? 'DOWN' : 'UP')));
  });

  it('does not count a crash storm toward the threshold: two silent lapses right after it are declared', async () => {
    const s = await setting();
    const c = cluster();
    const start = s.now();
    const ids = await s.nodes(c, 20);
    const crashed = ids.slice(0, 8).map((id) => ({ id, conn: `conn-${randomUUID()}` }));
    for (const { id, conn } of crashed) await connect(s.d, conn, { clusterId: c, nodeId: id });
    await sweep(s.d, s.state);
    s.at(start, 5_000);
    await s.keepAlive(c, ids.slice(10)); // n8 and n9 go silent: fewer than 3; with the eight crashes counted, ten of twenty
    for (const { conn } of crashed) await disconnect(s.d, conn);
    s.at(start, 7_001);
    expect(await sweep(s.d, s.state)).toMatchObject({ down: 8, held: 0 });
    s.at(start, LEASE_MS + 1);
    expect(await sweep(s.d, s.state)).toMatchObject({ down: 2, held: 0 });
    expect(await s.statuses(c, ids)).toEqual(ids.map((_, i) => (i < 10 ? 'DOWN' : 'UP')));
  });

  it('declares a crash during a hold: the crashed node\'s socket closed, so it is not one of the lapses held', async () => {
    const s = await setting();
    const c = cluster();
    const start = s.now();
    const ids = await s.nodes(c, 20);
    const conns = ['n18', 'n19'].map((id) => ({ id, conn: `conn-${randomUUID()}` }));
    for (const { id, conn } of conns) await connect(s.d, conn, { clusterId: c, nodeId: id });
    await sweep(s.d, s.state);
    s.at(start, 5_000);
    await s.keepAlive(c, [...ids.slice(0, 10), 'n18', 'n19']); // n10…n17 go silent: 40% of the cluster
    s.at(start, LEASE_MS + 1);
    expect(await sweep(s.d, s.state)).toMatchObject({ held: 8, down: 0 });
    // While the eight are held, two nodes crash: their sockets close, their leases are cut to the grace (2 s).
    s.at(start, LEASE_MS + 2);
    for (const { conn } of conns) await disconnect(s.d, conn);
    s.at(start, LEASE_MS + 2_003);
    const during = await sweep(s.d, s.state);
    expect(during).toMatchObject({ down: 2, held: 0 });
    expect(during.holding).toEqual([]);
    for (const id of ['n18', 'n19']) expect(await getNode(s.d, c, id)).toMatchObject({ status: 'DOWN', downReason: 'disconnected' });
    expect(await s.statuses(c, ids.slice(10, 18))).toEqual(ids.slice(10, 18).map(() => 'UP'));
  });

  it('holds a lapse spread thinly over many small clusters (the deployment\'s count), and not one cluster\'s own mass lapse in the others', async () => {
    const s = await setting();
    const small = Array.from({ length: 10 }, () => cluster());
    const start = s.now();
    for (const c of small) await s.nodes(c, 3);
    await sweep(s.d, s.state);
    s.at(start, 5_000);
    for (const c of small) await s.keepAlive(c, ['n1', 'n2']); // n0 of every cluster goes silent: a third of the fleet
    s.at(start, LEASE_MS + 1);
    const held = await sweep(s.d, s.state);
    expect(held).toMatchObject({ held: 10, down: 0 });
    expect(held.holding.every((h) => h.scope === 'deployment' && h.lapsed === 10 && h.base === 30)).toBe(true);

    // Another deployment: one cluster lapses as a whole (held on its own count), a big one loses a single node.
    const t2 = await setting();
    const whole = cluster();
    const big = cluster();
    const start2 = t2.now();
    await t2.nodes(whole, 5);
    const bigIds = await t2.nodes(big, 20);
    await sweep(t2.d, t2.state);
    t2.at(start2, 5_000);
    await t2.keepAlive(big, bigIds.slice(1));
    t2.at(start2, LEASE_MS + 1);
    const result = await sweep(t2.d, t2.state);
    expect(result).toMatchObject({ held: 5, down: 1 });
    expect(result.holding).toEqual([expect.objectContaining({ clusterId: whole, scope: 'cluster' })]);
    expect(await getNode(t2.d, big, 'n0')).toMatchObject({ status: 'DOWN', downReason: 'expired' });
  });
});
