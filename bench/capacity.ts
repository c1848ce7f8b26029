/**
 * DynamoDB's own account of what an operation costs: a meter that asks every
 * request for `ReturnConsumedCapacity: INDEXES` and adds up the capacity
 * units DynamoDB reports, for the table and for each index. DynamoDB Local
 * reports them too (per index included), by the rules DynamoDB bills by; the
 * bench (`capacity` scenario) and the tests measure with it, and `roster cost`
 * prices the figures it measured (bench/units.ts).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../functions/core/aws.ts';
import { mapLimit } from '../functions/core/concurrency.ts';
import { readConfig } from '../functions/core/config.ts';
import { connect, disconnect } from '../functions/core/subscriptions.ts';
import type { Deps } from '../functions/core/deps.ts';
import { deregister, keepalive, register } from '../functions/core/registry.ts';
import { newSweeperState, sweep } from '../functions/core/sweeper.ts';
import type { Progress, RosterTarget } from './scenario.ts';

/** Capacity units consumed, split into reads and writes, for the table and its indexes. */
export interface Capacity {
  /** Requests metered. */
  requests: number;
  tableReads: number;
  tableWrites: number;
  indexReads: number;
  indexWrites: number;
}

const READS = new Set(['GetItemCommand', 'GetCommand', 'QueryCommand', 'ScanCommand', 'BatchGetItemCommand', 'BatchGetCommand']);
const zero = (): Capacity => ({ requests: 0, tableReads: 0, tableWrites: 0, indexReads: 0, indexWrites: 0 });

export class CapacityMeter {
  private current = zero();

  /** Meters every request `client` sends from now on. */
  attach(client: DynamoDBDocumentClient): this {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { ReturnConsumedCapacity?: string };
        input.ReturnConsumedCapacity = 'INDEXES';
        const out = await next(args);
        const consumed = (out.output as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] }).ConsumedCapacity;
        this.add(READS.has(context.commandName ?? '') ? 'read' : 'write', consumed);
        return out;
      },
      { step: 'initialize', name: 'rosterCapacityMeter', override: true },
    );
    return this;
  }

  private add(kind: 'read' | 'write', consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void {
    this.current.requests++;
    for (const c of consumed === undefined ? [] : Array.isArray(consumed) ? consumed : [consumed]) {
      // With INDEXES, `Table` is the table's share and each index has its own; without it, only the total.
      const table = c.Table?.CapacityUnits ?? (c.GlobalSecondaryIndexes ? 0 : (c.CapacityUnits ?? 0));
      const indexes = Object.values(c.GlobalSecondaryIndexes ?? {}).reduce((sum, i) => sum + (i.CapacityUnits ?? 0), 0);
      if (kind === 'read') {
        this.current.tableReads += table;
        this.current.indexReads += indexes;
      } else {
        this.current.tableWrites += table;
        this.current.indexWrites += indexes;
      }
    }
  }

  /** What was consumed since the last `take()` (or since attaching), and starts counting afresh. */
  take(): Capacity {
    const taken = this.current;
    this.current = zero();
    return taken;
  }
}

/** Write units per operation: (table + index writes) / operations. */
export const writesPer = (c: Capacity, operations: number): number => (c.tableWrites + c.indexWrites) / Math.max(1, operations);
/** Read units per operation. */
export const readsPer = (c: Capacity, operations: number): number => (c.tableReads + c.indexReads) / Math.max(1, operations);

// ─── The `capacity` scenario ────────────────────────────────────────────────

export interface OperationUnits {
  /** Operations measured. */
  count: number;
  /** Write units per operation, table and index together. */
  writeUnits: number;
  /** Of which for the expiry index. */
  indexWriteUnits: number;
  /** Read units per operation (the reads the operation itself makes). */
  readUnits: number;
}

export interface SweepLoad {
  nodes: number;
  clusters: number;
  leaseSeconds: number;
  keepaliveSeconds: number;
  durationSeconds: number;
  sweeps: number;
  /** Read units the sweeper consumed per second (table and index). */
  readUnitsPerSecond: number;
  /** Cluster reads per second, and per cluster per second. */
  clusterReadsPerSecond: number;
  /** Write units per keepalive over the same run. */
  keepaliveWriteUnits: number;
  keepalives: number;
  /** Keepalives refused (a lease that lapsed under load); a refused conditional write still costs its unit. */
  keepaliveFailures: number;
}

export interface FullSweep {
  /** Nodes registered for this measurement, and their clusters. */
  nodes: number;
  clusters: number;
  /** What the full sweep read: every cluster of the table (earlier scenarios' too), their node items. */
  clustersRead: number;
  itemsRead: number;
  readUnits: number;
  /** Read units per node item read. */
  readUnitsPerItem: number;
  durationMs: number;
}

export interface CapacityResult {
  operations: Record<'registerNew' | 'keepalive' | 'reRegisterChanged' | 'deregister' | 'connectBound' | 'disconnectBound', OperationUnits>;
  sweepLoad: SweepLoad;
  fullSweeps: FullSweep[];
}

export function unitsOf(c: Capacity, count: number): OperationUnits {
  const round = (x: number) => Number(x.toFixed(3));
  return { count, writeUnits: round(writesPer(c, count)), indexWriteUnits: round(c.indexWrites / Math.max(1, count)), readUnits: round(readsPer(c, count)) };
}

const tag = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Runs `op` over `items` (32 in flight) and returns what they consumed per item. */
async function measure<T>(meter: CapacityMeter, items: readonly T[], op: (item: T) => Promise<unknown>): Promise<OperationUnits> {
  meter.take();
  await mapLimit(items, 32, op);
  return unitsOf(meter.take(), items.length);
}

/** Write and read units of each hot operation, from DynamoDB's ConsumedCapacity, through the core functions the handlers call. */
async function operationUnits(deps: Deps, meter: CapacityMeter, count: number): Promise<CapacityResult['operations']> {
  const c = tag('cap');
  const nodes = Array.from({ length: count }, (_, i) => `n${i}`);
  const registerNew = await measure(meter, nodes, (n) => register(deps, c, n, { leaseSeconds: 3600 }));
  const keepalives = [...nodes, ...nodes, ...nodes];
  const keepaliveUnits = await measure(meter, keepalives, (n) => keepalive(deps, c, n));
  const reRegisterChanged = await measure(meter, nodes, (n) => register(deps, c, n, { leaseSeconds: 3600, metadata: { v: '2' } }));
  const conns = nodes.map((n) => ({ n, id: tag('conn') }));
  const connectBound = await measure(meter, conns, ({ n, id }) => connect(deps, id, { clusterId: c, nodeId: n }));
  const disconnectBound = await measure(meter, conns, ({ id }) => disconnect(deps, id));
  const deregisterUnits = await measure(meter, nodes, (n) => deregister(deps, c, n));
  return { registerNew, keepalive: keepaliveUnits, reRegisterChanged, deregister: deregisterUnits, connectBound, disconnectBound };
}

/** Registers `clusters` × `perCluster` nodes with a long lease; returns their cluster ids. */
async function populate(deps: Deps, clusters: number, perCluster: number, leaseSeconds: number, progress: Progress): Promise<void> {
  progress(`capacity: registering ${clusters * perCluster} nodes in ${clusters} cluster${clusters === 1 ? '' : 's'}`);
  await mapLimit(fleet(clusters, perCluster), 32, ({ clusterId, nodeId }) => register(deps, clusterId, nodeId, { leaseSeconds }));
}

/** Node ids of `clusters` clusters of `perCluster` nodes, under a fresh prefix. */
function fleet(clusters: number, perCluster: number): { clusterId: string; nodeId: string }[] {
  const prefix = tag('sw');
  return Array.from({ length: clusters * perCluster }, (_, i) => ({ clusterId: `${prefix}-${Math.floor(i / perCluster)}`, nodeId: `n${i % perCluster}` }));
}

/**
 * A fleet that keeps alive the way the SDK does until `deadline`: each node
 * registers at its own phase within the first interval, then keeps alive
 * every `keepaliveSeconds`, and registers again after a refusal (a lease that
 * lapsed while the machine was slow). Registrations go through `setup`, so
 * the `nodes` meter sees keepalives only.
 */
async function keepFleetAlive(clients: Metered, nodes: { clusterId: string; nodeId: string }[], keepaliveSeconds: number, deadline: number): Promise<{ keepalives: number; refused: number }> {
  const counts = { keepalives: 0, refused: 0 };
  const registered = new Set<number>();
  const tick = (keepaliveSeconds * 1000) / nodes.length;
  const started = performance.now();
  const sent: Promise<void>[] = [];
  const lease = { leaseSeconds: keepaliveSeconds * 3 };
  for (let i = 0; performance.now() < deadline; i++) {
    const slot = i % nodes.length;
    const { clusterId, nodeId } = nodes[slot] as { clusterId: string; nodeId: string };
    if (!registered.has(slot)) {
      registered.add(slot);
      sent.push(register(clients.setup.deps, clusterId, nodeId, lease).then(() => undefined));
    } else {
      sent.push(
        keepalive(clients.nodes.deps, clusterId, nodeId).then(
          () => void counts.keepalives++,
          async () => {
            counts.refused++;
            await register(clients.setup.deps, clusterId, nodeId, lease);
          },
        ),
      );
    }
    await sleep(Math.max(0, tick * (i + 1) - (performance.now() - started)));
  }
  await Promise.all(sent);
  return counts;
}

/**
 * The sweeper's steady-state cost: 1,000 nodes keep alive every
 * `keepaliveSeconds` (lease three times that) while a sweeper of its own (the
 * core `sweep`, beside the runtime's) sweeps every second. Measured after one
 * keepalive interval and the sweeper's first full sweep, for less than a
 * minute, so between two full sweeps (their share is measured on its own).
 */
async function sweepLoad(clients: Metered, plan: CapacityPlan, progress: Progress): Promise<SweepLoad> {
  const { clusters, perCluster, keepaliveSeconds, durationMs } = plan.load;
  const nodes = fleet(clusters, perCluster);
  progress(`capacity: ${nodes.length} nodes in ${clusters} clusters keep alive every ${keepaliveSeconds} s while a metered sweeper sweeps every second, ${durationMs / 1000} s`);
  const warmMs = keepaliveSeconds * 1000;
  const fleetRun = keepFleetAlive(clients, nodes, keepaliveSeconds, performance.now() + warmMs + durationMs);
  await sleep(warmMs);
  const state = newSweeperState();
  await sweep(clients.sweeper.deps, state);
  clients.nodes.meter.take();
  clients.sweeper.meter.take();
  const started = performance.now();
  const deadline = started + durationMs;
  let clusterReads = 0;
  let sweeps = 0;
  while (performance.now() < deadline) {
    const t0 = performance.now();
    clusterReads += (await sweep(clients.sweeper.deps, state)).clustersRead;
    sweeps++;
    await sleep(Math.max(0, 1000 - (performance.now() - t0)));
  }
  const written = clients.nodes.meter.take();
  const swept = clients.sweeper.meter.take();
  const kept = await fleetRun;
  const seconds = durationMs / 1000;
  return {
    nodes: nodes.length,
    clusters,
    leaseSeconds: keepaliveSeconds * 3,
    keepaliveSeconds,
    durationSeconds: seconds,
    sweeps,
    readUnitsPerSecond: Number(((swept.tableReads + swept.indexReads) / seconds).toFixed(2)),
    clusterReadsPerSecond: Number((clusterReads / seconds).toFixed(2)),
    // Units over the keepalives the meter saw answered (a refused one throws before DynamoDB's figure is read).
    keepaliveWriteUnits: Number(writesPer(written, written.requests).toFixed(3)),
    keepalives: kept.keepalives,
    keepaliveFailures: kept.refused,
  };
}

/** One full sweep (every cluster read) over `clusters` × `perCluster` nodes: its read units and how long it took. */
async function fullSweep(clients: Metered, clusters: number, perCluster: number, progress: Progress): Promise<FullSweep> {
  await populate(clients.setup.deps, clusters, perCluster, 3600, progress);
  clients.sweeper.meter.take();
  const t0 = performance.now();
  const result = await sweep(clients.sweeper.deps, newSweeperState());
  const durationMs = Math.round(performance.now() - t0);
  const used = clients.sweeper.meter.take();
  progress(`capacity: a full sweep read ${result.clustersRead} clusters (${result.itemsRead} node items) in ${durationMs} ms`);
  const readUnits = used.tableReads + used.indexReads;
  return {
    nodes: clusters * perCluster,
    clusters,
    clustersRead: result.clustersRead,
    itemsRead: result.itemsRead,
    readUnits: Number(readUnits.toFixed(1)),
    readUnitsPerItem: Number((readUnits / Math.max(1, result.itemsRead)).toFixed(4)),
    durationMs,
  };
}

export interface CapacityPlan {
  operations: number;
  load: { clusters: number; perCluster: number; keepaliveSeconds: number; durationMs: number };
  fullSweeps: { clusters: number; perCluster: number }[];
}

/**
 * The `capacity` scenario: what each hot operation costs in DynamoDB units,
 * and what the sweeper costs, all from DynamoDB's ConsumedCapacity. Runs the
 * core functions in the bench process with a metered client against the
 * runtime's table (its own sweeper keeps running; the full sweeps' nodes are
 * left with an hour's lease, so run this scenario last).
 */
/** Core dependencies on a client of their own, with the meter of that client. */
interface Metered {
  /** Keepalives only, in the sweeper's load. */
  nodes: { deps: Deps; meter: CapacityMeter };
  sweeper: { deps: Deps; meter: CapacityMeter };
  /** Registrations that set a measurement up. */
  setup: { deps: Deps; meter: CapacityMeter };
}

export async function capacity(target: RosterTarget, plan: CapacityPlan, progress: Progress): Promise<CapacityResult> {
  const config = readConfig({ TABLE_NAME: target.tableName, DYNAMODB_ENDPOINT: target.dynamodbEndpoint });
  const metered = () => {
    const db = createDocumentClient(config);
    return { deps: { db, config, now: Date.now }, meter: new CapacityMeter().attach(db) };
  };
  const clients: Metered = { nodes: metered(), sweeper: metered(), setup: metered() };
  try {
    progress(`capacity: write units of register, keepalive, re-register, connect, disconnect, deregister (${plan.operations} each)`);
    const operations = await operationUnits(clients.nodes.deps, clients.nodes.meter, plan.operations);
    const load = await sweepLoad(clients, plan, progress);
    const fullSweeps: FullSweep[] = [];
    for (const size of plan.fullSweeps) fullSweeps.push(await fullSweep(clients, size.clusters, size.perCluster, progress));
    return { operations, sweepLoad: load, fullSweeps };
  } finally {
    for (const client of Object.values(clients)) client.deps.db.destroy();
  }
}
