/**
 * What every Roster scenario of the bench is given: the local runtime to
 * measure (its addresses and processes, bench/run.ts starts it) and where to
 * report progress; and what each scenario derives from it alike — a cluster
 * id of its own, and a CPU meter over the runtime's processes.
 */
import { randomUUID } from 'node:crypto';
import { CpuMeter, ownCpu } from './fanout.ts';
import { cpuMicros, rssBytes, treeCpuMicros } from './procs.ts';

export interface RosterTarget {
  httpUrl: string;
  wsUrl: string;
  tableName: string;
  dynamodbEndpoint: string;
  /** The runtime's process (for RSS). */
  runtimePid: number;
  /** DynamoDB Local's process (for RSS). */
  dynamodbPid: number | undefined;
}

export type Progress = (line: string) => void;

/** An id no other scenario or run uses, such as `storm-1a2b3c4d`: each scenario works in a cluster (or etcd key prefix) of its own. */
export const uid = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

/** The bench's view of the runtime's processes, for CPU per message. */
export function rosterCpuMeter(target: RosterTarget): CpuMeter {
  const dynamodbPid = target.dynamodbPid;
  return new CpuMeter({
    // The runtime and its page-function processes (the fan-out's parallel pages).
    server: () => treeCpuMicros(target.runtimePid),
    store: dynamodbPid === undefined ? undefined : () => cpuMicros(dynamodbPid),
    clients: ownCpu,
  });
}

/** Bytes in MiB with one decimal; NaN when the process was not found. */
export const mib = (bytes: number | undefined): number => (bytes === undefined ? Number.NaN : Number((bytes / 1024 / 1024).toFixed(1)));

/** A process's resident memory over a run, in MiB: a leak shows as max and end well above start. */
export interface MemoryRange {
  start: number;
  max: number;
  end: number;
}

/** Resident memory of the runtime and of DynamoDB Local, sampled every second until `stop`. */
export function watchMemory(target: RosterTarget): { stop(): { runtime: MemoryRange; dynamodbLocal: MemoryRange } } {
  const read = () => ({ runtime: rssBytes(target.runtimePid), dynamodb: target.dynamodbPid === undefined ? undefined : rssBytes(target.dynamodbPid) });
  const start = read();
  const max = { runtime: 0, dynamodb: 0 };
  const sample = () => {
    const now = read();
    if (now.runtime !== undefined) max.runtime = Math.max(max.runtime, now.runtime);
    if (now.dynamodb !== undefined) max.dynamodb = Math.max(max.dynamodb, now.dynamodb);
    return now;
  };
  const sampler = setInterval(sample, 1000);
  return {
    stop() {
      clearInterval(sampler);
      const end = sample();
      return {
        runtime: { start: mib(start.runtime), max: mib(max.runtime), end: mib(end.runtime) },
        dynamodbLocal: { start: mib(start.dynamodb), max: mib(max.dynamodb), end: mib(end.dynamodb) },
      };
    },
  };
}
