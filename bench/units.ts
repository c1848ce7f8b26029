/**
 * What Roster's operations consume, as measured by `roster bench --scenarios
 * capacity` (DynamoDB's own ConsumedCapacity, on DynamoDB Local, which
 * applies DynamoDB's rules: 1 write unit per KB of item, and an index write
 * only when an index key or projected attribute changes) and by the fan-out
 * scenario (CPU time per post). `roster cost` prices these figures; `roster
 * cost --units bench.json` takes them from a report of your own instead.
 *
 * The items the bench writes carry no metadata (a node item is about 0.3 KB);
 * `roster cost --item-kb` scales the per-item figures for larger ones.
 */
import { readFile } from 'node:fs/promises';
import type { CapacityResult } from './capacity.ts';

export interface Units {
  /** Where the figures come from. */
  source: string;
  /** Write units per operation (item ≤ 1 KB), table and index together. */
  writes: {
    keepalive: number;
    registerNew: number;
    /** A registration that produces an event on an existing item (a restart's new incarnation). */
    reRegister: number;
    /** The sweeper's DOWN write (as a deregistration: revision, item, index entry removed). */
    markDown: number;
    connectBound: number;
    disconnectBound: number;
  };
  /** Read units one sweep spends per node of a cluster it reads (eventually consistent, whole pages). */
  sweepReadPerNode: number;
  /** CPU time of one PostToConnection on the poster's side (µs, one core of the dev box). */
  postCpuUs: number;
  /** CPU time of one DOWN on the sweeper's side, its share of a transaction of 100 (µs, one core of the dev box). */
  sweepCpuUsPerDown: number;
}

/**
 * Measured on 2026-11-30 on the dev box (2 cores, AMD EPYC, x86-64) with
 * `npx roster bench --json bench.json`, the box otherwise idle (the run of
 * 06:29 UTC, docs/measured/bench.md). Capacity units do not depend on the
 * load; CPU time depends on it less than wall time, and Lambda's arm64
 * cores are another CPU.
 */
export const MEASURED_UNITS: Units = {
  source: 'roster bench, 2026-11-30 06:29 UTC (DynamoDB Local ConsumedCapacity; CPU per post on one core of the dev box)',
  // A bound $connect: the renewal, the connection and subscription items, the subscriptions version; its
  // $disconnect: the lease cut (index entry moved), the two items deleted, the version.
  writes: { keepalive: 1, registerNew: 4, reRegister: 4, markDown: 3, connectBound: 4, disconnectBound: 6 },
  // The full sweep after 10,000 nodes in one cluster, per node item (docs/measured/hot-paths.md, the sweep's table).
  sweepReadPerNode: 0.038,
  // The fan-out's poster alone (docs/measured/bench.md, the figures; docs/how-it-works/fanout-sizing.md).
  postCpuUs: 57,
  // The storm sweep's CPU less a sweep that only reads the cluster, per DOWN (in transactions of 100): the
  // median of the idle-box runs in docs/measured/sweep.md (scripts/measure-sweep.ts).
  sweepCpuUsPerDown: 140,
};

/** The units of a `roster bench --json` report that ran the capacity scenario (and, for the CPU per post, the fan-out). */
export async function unitsFromReport(file: string): Promise<Units> {
  const report = JSON.parse(await readFile(file, 'utf8')) as { startedAt?: string; capacity?: CapacityResult; poster?: { cpuUsPerPost: number } };
  const c = report.capacity;
  if (!c) throw new Error(`${file} has no capacity section: run roster bench with --scenarios capacity`);
  const biggest = [...c.fullSweeps].sort((a, b) => b.nodes - a.nodes)[0];
  return {
    source: `${file} (roster bench, ${report.startedAt ?? 'undated'})`,
    writes: {
      keepalive: c.operations.keepalive.writeUnits,
      registerNew: c.operations.registerNew.writeUnits,
      reRegister: c.operations.reRegisterChanged.writeUnits,
      markDown: c.operations.deregister.writeUnits,
      connectBound: c.operations.connectBound.writeUnits,
      disconnectBound: c.operations.disconnectBound.writeUnits,
    },
    sweepReadPerNode: biggest ? biggest.readUnitsPerItem : MEASURED_UNITS.sweepReadPerNode,
    postCpuUs: report.poster?.cpuUsPerPost ?? MEASURED_UNITS.postCpuUs,
    // The bench does not measure it: scripts/measure-sweep.ts does.
    sweepCpuUsPerDown: MEASURED_UNITS.sweepCpuUsPerDown,
  };
}
