/**
 * What every Roster scenario of the bench is given: the local runtime to
 * measure (its addresses and processes, bench/run.ts starts it) and where to
 * report progress; and what each scenario derives from it alike — a cluster
 * id of its own, and a CPU meter over the runtime's processes.
 */
import { randomUUID } from 'node:crypto';
import { CpuMeter, ownCpu } from './fanout.ts';
import { cpuMicros, treeCpuMicros } from './procs.ts';

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
