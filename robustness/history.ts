/**
 * The history of a robustness run: one JSON object per line, in the order
 * the harness learnt of it. Every record has `t` (epoch ms, this machine's
 * clock: the harness, the runtime and the client processes share it) and
 * `k` (its kind). Client records also carry `c`, the client process they
 * came from (`n2.3`: the third process of node slot n2; `w0.1`: watcher w0).
 *
 * The first line (`k: "run"`) holds the seed, the options and the whole
 * schedule, so a failed run can be replayed: `roster robustness --seed N`
 * with the same options runs the same schedule again.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';

/** A node as a record shows it (`Node` of the wire contract, trimmed to what the checker uses). */
export interface NodeSnap {
  id: string;
  st: 'UP' | 'DOWN';
  rev: number;
  inc: number;
  /** expiresAt, epoch ms. */
  exp: number;
  why?: string;
  /** Metadata as sorted JSON; absent when empty. */
  meta?: string;
}

/** An HTTP request a client (or the harness) made, with its answer. */
export interface RequestRecord {
  k: 'req';
  t: number;
  c: string;
  /** When the request was sent; `t` is when its answer (body included) arrived. */
  t0: number;
  m: string;
  /** Path and query. */
  p: string;
  /** HTTP status, or what failed: NETWORK, TIMEOUT, ABORTED. */
  st: number | 'NETWORK' | 'TIMEOUT' | 'ABORTED';
  /** The node in a register or keepalive answer. */
  n?: NodeSnap;
  /** A list answer: its revision and nodes. */
  list?: { rev: number; nodes: NodeSnap[] };
  /** An error answer: its code, and whether the body had the contract's shape. */
  err?: { code: string; contract: boolean };
}

export type ClientRecord =
  | RequestRecord
  /** The SDK's `registered`, `updated` or `down`. */
  | { k: 'ev'; t: number; c: string; type: 'registered' | 'updated' | 'down'; src: 'event' | 'sync' | 'resync'; n: NodeSnap; reason?: string }
  /** The SDK's `change`: the whole cached healthy list. */
  | { k: 'cache'; t: number; c: string; rev: number; nodes: NodeSnap[] }
  /** `connected` / `disconnected`. */
  | { k: 'conn'; t: number; c: string; up: boolean; bound?: boolean; reason?: string }
  | { k: 'sync'; t: number; c: string; reason: string; rev: number; size: number; reset: boolean }
  | { k: 'kaf'; t: number; c: string; code: string; n: number }
  | { k: 'lost'; t: number; c: string; reason: string }
  | { k: 'warn'; t: number; c: string; msg: string }
  /** The client process's own milestones: `ready` (start() resolved), `startFailed`, `stopped`. */
  | { k: 'proc'; t: number; c: string; what: 'ready' | 'startFailed' | 'stopped'; detail?: string };

/** What the harness did to a client process or a part of the information center. */
export interface ActionRecord {
  k: 'act';
  t: number;
  /** The schedule step's operation, or the harness's own (spawn, exit, heal, quiet, end). */
  op: string;
  /** The client process (`n2.3`) or part (`store`, `runtime`, `sweeper`, …) acted on. */
  on: string;
  /** Node id and incarnation of a node process. */
  node?: string;
  inc?: number;
  /** Fault durations, delays. */
  ms?: number;
  /** Why an action could not be carried out. */
  skipped?: string;
  detail?: string;
}

/** An event-producing write of the information center, read from the table's stream (observer.ts). */
export interface ServerRecord {
  k: 'srv';
  t: number;
  /** The event's own time (`changedAt`). */
  at: number;
  /** An event, or EXTENDED: the sweeper's amnesty gave the node one more lease (a revision, no event). */
  type: 'NODE_REGISTERED' | 'NODE_UPDATED' | 'NODE_DOWN' | 'EXTENDED';
  n: NodeSnap;
  reason?: string;
}

export interface RunRecord {
  k: 'run';
  t: number;
  seed: number;
  options: Record<string, unknown>;
  schedule: unknown[];
}

/** The machine's 1-minute load average, sampled every few seconds: the evidence when timing bounds slip. */
export interface LoadRecord {
  k: 'load';
  t: number;
  avg1: number;
}

export type HistoryRecord = ClientRecord | ActionRecord | ServerRecord | LoadRecord | RunRecord;

/** Appends records to memory and, optionally, to a JSON-lines file. */
export class History {
  readonly records: HistoryRecord[] = [];
  private readonly out: WriteStream | undefined;

  constructor(readonly file?: string) {
    this.out = file === undefined ? undefined : createWriteStream(file, { flags: 'w' });
  }

  add(record: HistoryRecord): void {
    this.records.push(record);
    this.out?.write(`${JSON.stringify(record)}\n`);
  }

  act(op: string, on: string, extra: Omit<ActionRecord, 'k' | 't' | 'op' | 'on'> = {}): ActionRecord {
    const record: ActionRecord = { k: 'act', t: Date.now(), op, on, ...extra };
    this.add(record);
    return record;
  }

  async close(): Promise<void> {
    if (!this.out) return;
    this.out.end();
    await once(this.out, 'close');
  }
}

/** Reads a history file back (for `--check FILE`). */
export function parseHistory(text: string): HistoryRecord[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as HistoryRecord);
}
