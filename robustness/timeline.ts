/**
 * What the checker knows of a run, rebuilt from its history: every client
 * process with its life (spawned, ready, crashed, hung, stopped), its
 * network faults and connection drops, every acknowledged lease renewal of
 * every node incarnation, and the windows in which the information center
 * was out or degraded.
 *
 * On that it defines when a node incarnation is *protected* — when no one
 * may report it DOWN — precisely (docs/measured/robustness.md, "No false DOWN"):
 *
 * - strictly protected at t: its process runs (not crashed, hung, stopped
 *   or cut off since its last renewal), an acknowledged renewal (register
 *   200/201, keepalive 200) was sent at t0 and answered by t with
 *   t < t0 + lease, no newer incarnation of the node has registered, and
 *   its connection has not been down for the grace period (connection-bound
 *   liveness: a node whose bound connection is gone for longer than the grace
 *   is down by design);
 * - protected through an outage of the information center at t: strictly
 *   protected when an outage (store paused or killed, runtime killed) began,
 *   and healthy since (running, not hung, not cut off), while the outage
 *   lasts and for a recovery allowance after it (lease + the sweeper's
 *   amnesty period + 2 sweeps + 3 s).
 */
import { AMNESTY_PERIOD_MS } from '../functions/core/sweeper.ts';
import type { ActionRecord, ClientRecord, HistoryRecord, LoadRecord, NodeSnap, RequestRecord, ServerRecord } from './history.ts';

export type Interval = readonly [number, number];

export interface Settings {
  graceMs: number;
  sweepMs: number;
  /** Event delivery allowance: stream poll, fan-out, WebSocket. */
  deliveryMs: number;
  refreshMs: number;
}

export interface Renewal {
  t0: number;
  t1: number;
}

export interface Proc {
  id: string;
  slot: string;
  /** Node id, for a node process. */
  node?: string;
  inc?: number;
  leaseMs: number;
  spawnAt: number;
  readyAt?: number;
  /** Crashed (SIGKILL), or killed by the harness. */
  deadAt?: number;
  /** A graceful stop was asked for (it deregisters). */
  leaveAt?: number;
  hangs: [number, number][];
  /** Acknowledged renewals, in answer order. */
  renewals: Renewal[];
  /** Deregistrations it sent (time sent). */
  deregs: number[];
  /** Connection drops: [dropped, reopened or Infinity]. */
  drops: [number, number][];
  caches: Extract<ClientRecord, { k: 'cache' }>[];
  events: Extract<ClientRecord, { k: 'ev' }>[];
}

export const inside = (t: number, [a, b]: Interval): boolean => t >= a && t <= b;
export const overlaps = ([a, b]: Interval, [c, d]: Interval): boolean => a <= d && c <= b;

/** Closes open intervals at `end`. */
function close(intervals: [number, number][], end: number): [number, number][] {
  return intervals.map(([a, b]) => [a, Number.isFinite(b) ? b : end]);
}

/** The windows an operation opens and a later one closes, per target. */
class Windows {
  readonly closed: [number, number][] = [];
  private readonly open = new Map<string, number>();
  start(key: string, t: number): void {
    if (!this.open.has(key)) this.open.set(key, t);
  }
  end(key: string, t: number): void {
    const from = this.open.get(key);
    if (from === undefined) return;
    this.open.delete(key);
    this.closed.push([from, t]);
  }
  finish(t: number): [number, number][] {
    for (const key of [...this.open.keys()]) this.end(key, t);
    return this.closed.sort((a, b) => a[0] - b[0]);
  }
}

export class Timeline {
  readonly procs = new Map<string, Proc>();
  /** Node id → its processes, oldest first. */
  readonly byNode = new Map<string, Proc[]>();
  /** Client network cuts per slot. */
  readonly cuts = new Map<string, [number, number][]>();
  /** Any network fault (cut or delay) per slot. */
  readonly netFaults = new Map<string, [number, number][]>();
  /** The store unreachable: paused, or killed until it answered again. */
  storeDown: [number, number][] = [];
  /** The runtime killed until it was ready again. */
  runtimeDown: [number, number][] = [];
  /** Outages: store or runtime out. */
  outages: [number, number][] = [];
  /** The sweeper stalled (no sweep starts). */
  readonly sweeperStalls: [number, number][] = [];
  /** Outages (with the sweeper's amnesty period after each), stalled sweeper or poller, failing posts. */
  degraded: [number, number][] = [];
  requests: RequestRecord[] = [];
  /** The information center's own event-producing writes (and amnesty leases), in stream order. */
  server: ServerRecord[] = [];
  /** The machine's load average over the run. */
  load: LoadRecord[] = [];
  /** When the active phase ended and every fault was healed (the quiet period's start). */
  healedAt = Infinity;
  endAt = 0;
  readonly actions: ActionRecord[] = [];

  constructor(
    records: readonly HistoryRecord[],
    readonly settings: Settings,
  ) {
    const store = new Windows();
    const runtime = new Windows();
    const soft = new Windows();
    const cut = new Map<string, Windows>();
    const net = new Map<string, Windows>();
    for (const r of records) {
      this.endAt = Math.max(this.endAt, r.t);
      if (r.k === 'act') {
        this.actions.push(r);
        this.action(r, store, runtime, soft, cut, net);
      } else if (r.k === 'srv') this.server.push(r);
      else if (r.k === 'load') this.load.push(r);
      else if (r.k !== 'run') this.clientRecord(r);
    }
    this.storeDown = store.finish(this.endAt);
    this.runtimeDown = runtime.finish(this.endAt);
    this.outages = [...this.storeDown, ...this.runtimeDown].sort((a, b) => a[0] - b[0]);
    // After an outage the sweeper grants amnesty for a while: detection waits for it too.
    const amnesty = this.outages.map(([a, b]): [number, number] => [a, b + AMNESTY_PERIOD_MS + settings.sweepMs]);
    this.degraded = [...amnesty, ...soft.finish(this.endAt)].sort((a, b) => a[0] - b[0]);
    for (const [slot, w] of cut) this.cuts.set(slot, w.finish(this.endAt));
    for (const [slot, w] of net) this.netFaults.set(slot, w.finish(this.endAt));
    for (const proc of this.procs.values()) {
      proc.hangs = close(proc.hangs, this.endAt);
      proc.drops = close(proc.drops, this.endAt);
    }
  }

  private action(r: ActionRecord, store: Windows, runtime: Windows, soft: Windows, cut: Map<string, Windows>, net: Map<string, Windows>): void {
    if (r.skipped) return;
    const proc = this.procs.get(r.on);
    switch (r.op) {
      case 'spawn': {
        const p: Proc = { id: r.on, slot: r.on.split('.')[0] ?? r.on, node: r.node, inc: r.inc, leaseMs: r.ms ?? 0, spawnAt: r.t, hangs: [], renewals: [], deregs: [], drops: [], caches: [], events: [] };
        this.procs.set(r.on, p);
        if (r.node !== undefined) this.byNode.set(r.node, [...(this.byNode.get(r.node) ?? []), p]);
        return;
      }
      case 'crash':
      case 'kill':
        if (proc) proc.deadAt ??= r.t;
        return;
      case 'hang':
        proc?.hangs.push([r.t, Infinity]);
        return;
      case 'resume': {
        const last = proc?.hangs.at(-1);
        if (last && !Number.isFinite(last[1])) last[1] = r.t;
        return;
      }
      case 'leave':
        if (proc) proc.leaveAt ??= r.t;
        return;
      case 'cut':
      case 'delay': {
        const w = (r.op === 'cut' ? cut : net).get(r.on) ?? new Windows();
        (r.op === 'cut' ? cut : net).set(r.on, w);
        w.start(r.on, r.t);
        if (r.op === 'cut') {
          const n = net.get(r.on) ?? new Windows();
          net.set(r.on, n);
          n.start(r.on, r.t);
        }
        return;
      }
      case 'restore':
        cut.get(r.on)?.end(r.on, r.t);
        net.get(r.on)?.end(r.on, r.t);
        return;
      case 'store-pause':
      case 'store-kill':
        return store.start('store', r.t);
      case 'store-resume':
      case 'store-up':
        return store.end('store', r.t);
      case 'runtime-kill':
        return runtime.start('runtime', r.t);
      case 'runtime-up':
        return runtime.end('runtime', r.t);
      case 'sweeper-stall':
        this.sweeperStalls.push([r.t, r.t + (r.ms ?? 0)]);
        soft.closed.push([r.t, r.t + (r.ms ?? 0)]);
        return;
      case 'posts-fail':
      case 'poller-stall':
        soft.closed.push([r.t, r.t + (r.ms ?? 0)]);
        return;
      case 'heal':
        this.healedAt = r.t;
        return;
    }
  }

  private clientRecord(r: ClientRecord): void {
    if (r.k === 'req') this.requests.push(r);
    const proc = this.procs.get(r.c);
    if (!proc) return;
    switch (r.k) {
      case 'req': {
        const ok = typeof r.st === 'number' && r.st >= 200 && r.st < 300;
        const isRenewal = (r.m === 'PUT' && /\/nodes\/[^/?]+$/.test(r.p)) || (r.m === 'POST' && r.p.endsWith('/keepalive'));
        if (ok && isRenewal && r.n?.inc === proc.inc) proc.renewals.push({ t0: r.t0, t1: r.t });
        if (r.m === 'DELETE') proc.deregs.push(r.t0);
        return;
      }
      case 'proc':
        if (r.what === 'ready') proc.readyAt ??= r.t;
        return;
      case 'conn':
        if (!r.up) proc.drops.push([r.t, Infinity]);
        else if (proc.drops.length > 0 && !Number.isFinite(proc.drops.at(-1)?.[1] ?? 0)) (proc.drops.at(-1) as [number, number])[1] = r.t;
        return;
      case 'cache':
        proc.caches.push(r);
        return;
      case 'ev':
        proc.events.push(r);
        return;
    }
  }

  /** The process of a node incarnation. */
  procOf(node: string, inc: number): Proc | undefined {
    return this.byNode.get(node)?.find((p) => p.inc === inc);
  }

  /** Whether the process runs normally at t: spawned, not dead, not hung, not asked to leave. */
  running(p: Proc, t: number): boolean {
    return t >= p.spawnAt && (p.deadAt === undefined || t < p.deadAt) && (p.leaveAt === undefined || t < p.leaveAt) && !p.hangs.some((h) => inside(t, h));
  }

  /** Whether anything of the node's own (hang, cut) happened in [a, b]. */
  private ownFault(p: Proc, a: number, b: number): boolean {
    if (p.hangs.some((h) => overlaps(h, [a, b]))) return true;
    return (this.cuts.get(p.slot) ?? []).some((c) => overlaps(c, [a, b]));
  }

  /** A newer incarnation of the node was acknowledged by t. */
  superseded(p: Proc, t: number): boolean {
    if (p.node === undefined) return false;
    return (this.byNode.get(p.node) ?? []).some((q) => (q.inc ?? 0) > (p.inc ?? 0) && q.renewals.some((r) => r.t1 <= t));
  }

  /** Strict protection (see the file comment). */
  protectedAt(p: Proc, t: number): boolean {
    if (!this.running(p, t) || this.superseded(p, t)) return false;
    let covered = false;
    for (let i = p.renewals.length - 1; i >= 0; i--) {
      const r = p.renewals[i] as Renewal;
      if (r.t1 > t) continue;
      covered = t < r.t0 + p.leaseMs - 50 && !this.ownFault(p, r.t0, t);
      break;
    }
    if (!covered) return false;
    const drop = p.drops.find(([a, b]) => a <= t && b >= t);
    return drop === undefined || t - drop[0] < this.settings.graceMs - 50;
  }

  /** Protection through an outage of the information center (see the file comment). */
  outageProtectedAt(p: Proc, t: number): boolean {
    if (!this.running(p, t) || this.superseded(p, t)) return false;
    const recovery = p.leaseMs + AMNESTY_PERIOD_MS + 2 * this.settings.sweepMs + 3000;
    return this.outages.some(
      ([a, b]) =>
        a <= t && t <= b + recovery && !this.unseenBySweeper([a, b]) && (this.protectedAt(p, a) || this.protectedAt(p, a - 1)) && !this.ownFault(p, a, t),
    );
  }

  /**
   * A store outage the sweeper was stalled through: it made no request that
   * could fail or hang, so no amnesty follows, and nodes that lapsed in it
   * and did not renew before its first sweep are declared down (seed 2006;
   * docs/measured/robustness.md, "No false DOWN"). A runtime outage is always
   * seen: the restarted sweeper's first sweep is an amnesty sweep.
   */
  private unseenBySweeper([a, b]: [number, number]): boolean {
    if (!this.storeDown.some(([c, d]) => c === a && d === b)) return false;
    const s = this.settings.sweepMs;
    return this.sweeperStalls.some(([s0, s1]) => s0 <= a + s && s1 >= b - s);
  }

  /** The 1-minute load average sampled last before t. */
  loadAt(t: number): number | undefined {
    let found: number | undefined;
    for (const l of this.load) {
      if (l.t > t) break;
      found = l.avg1;
    }
    return found;
  }

  /** The latest cache record of a process at or before t. */
  cacheAt(p: Proc, t: number): NodeSnap[] | undefined {
    let found: NodeSnap[] | undefined;
    for (const c of p.caches) {
      if (c.t > t) break;
      found = c.nodes;
    }
    return found;
  }
}
