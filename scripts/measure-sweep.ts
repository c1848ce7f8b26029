/**
 * Measures one sweep that declares a storm down: a cluster of `--nodes`
 * nodes (default 10,000) of which `--due` (default 1,000) stop renewing at
 * once, swept by a sweeper that has read the cluster before (as a running
 * one has). Runs on DynamoDB Local, started here (Java 17+), through the
 * core's own `sweep` with an injected clock: no runtime, no HTTP. The
 * cluster is loaded fast: two nodes registered through the core, the others
 * copies of their items.
 *
 *   node --conditions=@roster/source --import tsx scripts/measure-sweep.ts [--nodes 10000] [--due 1000] [--runs 3] [--no-holds]
 *
 * For each run it prints the wall time of the sweep that declares the due
 * nodes (its read of the cluster included), of a sweep of the same cluster
 * with nothing due (the read alone), the writes of the cluster's revision
 * counter (`META`) and the revisions the downs took, and this process's CPU
 * time per DOWN write (what bounds a sweeper with a small share of a vCPU:
 * `roster capacity`'s storm rows). The due nodes are 10% of the cluster: under the renewal
 * threshold's 15%, so they are declared, not held; with `--no-holds` (the
 * threshold off) any share is declared: `--nodes 1001 --due 1000` measures
 * 1,000 downs with little to read.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LIST_PAGE_MAX, type NodeList } from '@roster/contract';
import { createDocumentClient, localOverrides } from '../functions/core/aws.ts';
import { mapLimit } from '../functions/core/concurrency.ts';
import { readConfig } from '../functions/core/config.ts';
import type { Deps } from '../functions/core/deps.ts';
import { META_SK, nodeItemKey, sweepPartition, type NodeItem } from '../functions/core/model.ts';
import { listNodes, register, reserveRevisions } from '../functions/core/registry.ts';
import { newSweeperState, sweep } from '../functions/core/sweeper.ts';
import { decodeCursor } from '../functions/core/list-page.ts';
import { createTableInput } from '../functions/core/table.ts';
import { startDynamoDbLocal } from '../local/dynamodb-local.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '10000' }, due: { type: 'string', default: '1000' }, runs: { type: 'string', default: '3' }, 'no-holds': { type: 'boolean', default: false } } });
const nodes = Number(values.nodes);
const due = Number(values.due);
const runs = Number(values.runs);
if (!(due > 0 && due <= nodes && runs > 0)) throw new Error('--due must be between 1 and --nodes, --runs at least 1');

const LEASE_S = 10;
const LONG_LEASE_S = 3600;

const ddb = await startDynamoDbLocal();
try {
  for (let run = 1; run <= runs; run++) {
    const tableName = `measure-sweep-${randomUUID().slice(0, 8)}`;
    const raw = new DynamoDBClient(localOverrides(ddb.endpoint));
    await raw.send(new CreateTableCommand(createTableInput(tableName)));
    raw.destroy();
    // --no-holds: the renewal threshold off, so that a storm of more than 15% of the cluster is declared, not held.
    const holds = values['no-holds'] ? { SELF_PRESERVATION_MAX_SECONDS: '0' } : {};
    const config = readConfig({ TABLE_NAME: tableName, DYNAMODB_ENDPOINT: ddb.endpoint, SWEEPER_AMNESTY_SECONDS: '86400', ...holds });
    const db = createDocumentClient(config);
    let clock = Date.now();
    let counterWrites = 0;
    const send = db.send.bind(db) as (command: never) => Promise<unknown>;
    const counting = async (command: never): Promise<unknown> => {
      const c = command as unknown;
      if (c instanceof UpdateCommand && c.input.Key?.sk === META_SK) counterWrites++;
      return send(command);
    };
    const deps: Deps = { db: Object.create(db, { send: { value: counting } }) as Deps['db'], config, now: () => clock };
    const cluster = 'storm';
    // The due nodes get a short lease; the others one that outlasts the run. One node of each is registered
    // through the core, the rest are copies of its item (BatchWriteItem): the same items, in seconds.
    for (const [id, leaseSeconds] of [['node-00000', LEASE_S], [`node-${String(nodes - 1).padStart(5, '0')}`, LONG_LEASE_S]] as const) {
      await register(deps, cluster, id, { leaseSeconds });
    }
    const model = async (id: string) => (await db.send(new GetCommand({ TableName: tableName, Key: nodeItemKey(cluster, id), ConsistentRead: true }))).Item as NodeItem;
    const [short, long] = [await model('node-00000'), await model(`node-${String(nodes - 1).padStart(5, '0')}`)];
    const copies = Array.from({ length: nodes - 2 }, (_, k) => {
      const i = k + 1;
      const nodeId = `node-${String(i).padStart(5, '0')}`;
      const from = i < due ? short : long;
      return { ...from, ...nodeItemKey(cluster, nodeId), nodeId, revision: 2 + i, sweepPk: sweepPartition(cluster, nodeId, config.sweepShards) };
    });
    const chunks = Array.from({ length: Math.ceil(copies.length / 25) }, (_, k) => copies.slice(k * 25, k * 25 + 25));
    await mapLimit(chunks, 16, async (chunk) => {
      let requests: Record<string, unknown>[] | undefined = chunk.map((Item) => ({ PutRequest: { Item } }));
      while (requests && requests.length > 0) {
        const out = await db.send(new BatchWriteCommand({ RequestItems: { [tableName]: requests } }));
        requests = out.UnprocessedItems?.[tableName] as Record<string, unknown>[] | undefined;
      }
    });
    await reserveRevisions(deps, cluster, nodes, new Date(clock).toISOString()); // the revisions the copies carry
    const state = newSweeperState();
    await sweep(deps, state); // the first, full sweep: the sweeper now knows the cluster's earliest deadline

    // The read alone: a full sweep a minute on, nothing due yet.
    clock += 1000;
    state.lastFullSweepAt = clock - 60_000;
    let t0 = performance.now();
    let cpu0 = process.cpuUsage();
    const idle = await sweep(deps, state);
    const readMs = performance.now() - t0;
    const readCpu = process.cpuUsage(cpu0);

    // The storm: the due nodes' leases ran out; the cluster is read at that deadline and the downs written.
    const before = (await listNodes(deps, cluster)) as { revision: number };
    clock += LEASE_S * 1000;
    counterWrites = 0;
    t0 = performance.now();
    cpu0 = process.cpuUsage();
    const storm = await sweep(deps, state);
    const stormMs = performance.now() - t0;
    const stormCpu = process.cpuUsage(cpu0);
    const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
    // This process's CPU for the downs alone: the storm sweep's, less a sweep that only reads the cluster.
    const cpuPerWriteUs = ((cpuMs(stormCpu) - cpuMs(readCpu)) * 1000) / Math.max(1, storm.down);
    // The healthy list, every page of it (a page holds at most LIST_PAGE_MAX nodes).
    const after = (await listNodes(deps, cluster, { limit: LIST_PAGE_MAX })) as NodeList;
    for (let page = after; page.next !== undefined; ) {
      page = (await listNodes(deps, cluster, { limit: LIST_PAGE_MAX, cursor: decodeCursor(page.next, cluster, false) })) as NodeList;
      after.nodes.push(...page.nodes);
    }
    console.log(
      `run ${run}: ${storm.down} downs in ${Math.round(stormMs)} ms (the cluster's read of ${storm.itemsRead} items included; ` +
        `a sweep reading it with nothing due: ${Math.round(readMs)} ms, ${idle.itemsRead} items); ` +
        `held ${storm.held}, raced ${storm.raced}; META writes ${counterWrites}; revisions ${before.revision + 1}..${after.revision}; ${after.nodes.length} UP left; ` +
        `this process's CPU: ${Math.round(cpuMs(stormCpu))} ms for the storm sweep, ${Math.round(cpuMs(readCpu))} ms for the read alone, ${Math.round(cpuPerWriteUs)} µs a DOWN write`,
    );
    db.destroy();
  }
} finally {
  await ddb.stop();
}
