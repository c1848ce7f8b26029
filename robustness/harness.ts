/**
 * The harness of a robustness run: a slot per client (its fault proxy and
 * its process), the schedule's steps carried out on them and on the
 * information center, and the reads and waits that tell the phases apart
 * (every client ready; the schedule's end; a quiet, settled cluster).
 * run.ts drives a run with it; checker.ts judges the history it records.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Center } from './center.ts';
import type { History, HistoryRecord } from './history.ts';
import { ClientProcess } from './processes.ts';
import type { TcpProxy } from './proxy.ts';
import { recordingFetch } from './recording.ts';
import type { Step } from './schedule.ts';

const sleep = (ms: number) => sleepFor(Math.max(0, ms));

export interface Slot {
  id: string;
  proxy: TcpProxy;
  lease?: number;
  proc?: ClientProcess;
  /** Processes started in this slot so far. */
  spawned: number;
}

export class Harness {
  readonly slots = new Map<string, Slot>();
  private lastIncarnation = 0;
  private centerQueue: Promise<void> = Promise.resolve();
  private readonly zombies = new Set<ClientProcess>();
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    readonly history: History,
    readonly center: Center,
    readonly clusterId: string,
    readonly refreshMs: number,
    readonly log: (line: string) => void,
  ) {}

  /** Starts a new process in a slot: a new incarnation for a node. */
  spawn(slot: Slot): ClientProcess {
    slot.spawned++;
    const id = `${slot.id}.${slot.spawned}`;
    const node = slot.lease !== undefined;
    const inc = node ? (this.lastIncarnation = Math.max(Date.now(), this.lastIncarnation + 1)) : undefined;
    const proc = new ClientProcess(
      id,
      {
        httpUrl: slot.proxy.via(this.center.httpUrl),
        wsUrl: slot.proxy.via(this.center.wsUrl),
        clusterId: this.clusterId,
        refreshIntervalMs: this.refreshMs,
        ...(node ? { nodeId: slot.id, incarnation: inc, leaseSeconds: slot.lease, metadata: { slot: slot.id, v: 'v0' } } : {}),
      },
      (record) => this.history.add(record),
    );
    this.history.act('spawn', id, node ? { node: slot.id, inc, ms: (slot.lease ?? 0) * 1000 } : {});
    slot.proc = proc;
    return proc;
  }

  /** Runs a center step after the previous one finished: an outage's end needs its start done. */
  private centerStep(fn: () => Promise<void>): void {
    this.track((this.centerQueue = this.centerQueue.then(fn).catch((err: unknown) => this.log(`center step failed: ${String(err)}`))));
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  step(step: Step): void {
    const slot = step.target === undefined ? undefined : this.slots.get(step.target);
    const proc = slot?.proc;
    const skip = (why: string) => this.history.act(step.op, step.target ?? 'center', { skipped: why });
    switch (step.op) {
      case 'crash':
      case 'hang':
        if (!proc?.running || proc.hung) return void skip('not running');
        proc.signal(step.op === 'crash' ? 'SIGKILL' : 'SIGSTOP');
        this.history.act(step.op, proc.id);
        return;
      case 'resume':
        if (!proc?.hung) return void skip('not hung');
        proc.signal('SIGCONT');
        this.history.act('resume', proc.id);
        return;
      case 'restart':
      case 'join':
        return void this.restart(slot as Slot, skip);
      case 'leave':
        if (!proc?.running || proc.hung) return void skip('not running');
        this.history.act('leave', proc.id);
        this.track(proc.stop(15_000));
        return;
      case 'meta':
        if (!proc?.running || proc.hung) return void skip('not running');
        this.history.act('meta', proc.id, { detail: step.value });
        proc.command({ cmd: 'meta', metadata: { slot: slot?.id ?? '', v: step.value ?? 'v' } });
        return;
      case 'cut':
        slot?.proxy.cut();
        return void this.history.act('cut', step.target ?? '');
      case 'delay':
        slot?.proxy.delay(step.ms ?? 0);
        return void this.history.act('delay', step.target ?? '', { ms: step.ms });
      case 'restore':
        slot?.proxy.restore();
        return void this.history.act('restore', step.target ?? '');
      case 'posts-fail':
      case 'sweeper-stall':
      case 'poller-stall':
        // Faults of the runtime's parts end by themselves; they need not wait for an outage to finish.
        return this.track(this.centerOp(step));
      default:
        return this.centerStep(() => this.centerOp(step));
    }
  }

  private restart(slot: Slot, skip: (why: string) => void): void {
    const old = slot.proc;
    // A process still deregistering (the store may be out) is waited for: the new incarnation comes after it.
    if (old?.running && old.leaving) return this.track(old.exited.then(() => this.spawn(slot)));
    if (old?.running && !old.hung) return void skip('still running');
    if (old?.hung) {
      // A zombie: the new incarnation takes over while the old process hangs; it wakes a second later, is
      // told it was superseded (409), and is killed a lease after that.
      this.zombies.add(old);
      const lease = (slot.lease ?? 5) * 1000;
      this.track(
        sleep(1000).then(async () => {
          if (old.signal('SIGCONT')) this.history.act('resume', old.id);
          await sleep(lease);
          this.zombies.delete(old);
          if (old.running) this.history.act('kill', old.id);
          await old.kill();
        }),
      );
    }
    this.spawn(slot);
  }

  private async centerOp(step: Step): Promise<void> {
    const c = this.center;
    const act = (op: string, done: boolean) => this.history.act(op, op.split('-')[0] ?? op, done ? (step.ms ? { ms: step.ms } : {}) : { skipped: 'not applicable now' });
    switch (step.op) {
      case 'store-pause':
        return void act('store-pause', c.pauseStore());
      case 'store-resume':
        return void act('store-resume', c.resumeStore());
      case 'store-kill':
        act('store-kill', c.storeUp);
        await c.killStore();
        return;
      case 'store-restart':
        act('store-restart', true);
        await c.startStore();
        return void this.history.act('store-up', 'store');
      case 'runtime-kill':
        act('runtime-kill', c.runtimeUp);
        await c.killRuntime();
        return;
      case 'runtime-restart':
        act('runtime-restart', true);
        await c.startRuntime();
        return void this.history.act('runtime-up', 'runtime');
      case 'posts-fail':
        return void act('posts-fail', await c.fault('posts', step.ms ?? 0));
      case 'sweeper-stall':
        return void act('sweeper-stall', await c.fault('sweeper', step.ms ?? 0));
      case 'poller-stall':
        return void act('poller-stall', await c.fault('poller', step.ms ?? 0));
      default:
        return;
    }
  }

  /** Every fault undone: the proxies, hung processes, the store, the runtime, the runtime's parts. */
  async heal(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    for (const slot of this.slots.values()) {
      if (slot.proxy.mode !== 'open') {
        slot.proxy.restore();
        this.history.act('restore', slot.id);
      }
      if (slot.proc?.hung) {
        slot.proc.signal('SIGCONT');
        this.history.act('resume', slot.proc.id);
      }
    }
    const wasStoreUp = this.center.storeUp;
    const wasRuntimeUp = this.center.runtimeUp;
    await this.center.heal();
    if (!wasStoreUp) this.history.act('store-up', 'store');
    if (!wasRuntimeUp) this.history.act('runtime-up', 'runtime');
  }

  async stopAll(): Promise<void> {
    const procs = [...[...this.slots.values()].map((s) => s.proc), ...this.zombies].filter((p): p is ClientProcess => p !== undefined);
    await Promise.all(procs.map((p) => p.kill()));
    await Promise.all([...this.slots.values()].map((s) => s.proxy.close()));
  }
}

const upKey = (nodes: readonly { id: string; st: string; inc: number; meta?: string }[]) =>
  nodes
    .filter((n) => n.st === 'UP')
    .map((n) => `${n.id}#${n.inc}${n.meta ?? ''}`)
    .sort()
    .join(',');

/**
 * Whether the server's list has not changed for `forMs` and every running
 * client's cache has equalled it for as long: nothing more will happen.
 */
export function settled(records: readonly HistoryRecord[], forMs: number): boolean {
  const now = Date.now();
  let truth: string | undefined;
  const caches = new Map<string, { key: string; t: number }>();
  const gone = new Set<string>();
  let since = 0;
  for (const r of records) {
    if (r.k === 'req' && r.c === 'harness' && r.list) {
      const key = upKey(r.list.nodes);
      if (key !== truth) since = r.t0;
      truth = key;
    } else if (r.k === 'cache') caches.set(r.c, { key: upKey(r.nodes), t: r.t });
    else if (r.k === 'act' && (r.op === 'crash' || r.op === 'kill' || r.op === 'leave')) gone.add(r.on);
  }
  if (truth === undefined || now - since < forMs) return false;
  return [...caches].every(([c, { key, t }]) => gone.has(c) || (key === truth && now - t >= forMs));
}

/** Waits until every given process has a confirmed list (its `ready` record). */
export async function allReady(history: History, procs: ClientProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ready = (p: ClientProcess) => history.records.some((r) => r.k === 'proc' && r.c === p.id && r.what === 'ready');
  while (!procs.every(ready)) {
    const dead = procs.find((p) => !p.running);
    if (dead) throw new Error(`client ${dead.id} exited before it was ready:\n${dead.errors()}`);
    if (Date.now() > deadline) throw new Error(`clients not ready within ${timeoutMs} ms: ${procs.filter((p) => !ready(p)).map((p) => p.id).join(', ')}`);
    await sleep(100);
  }
}

/** Reads the server's list (everything, DOWN included) as the harness, recorded like a client's request. */
export function harnessReader(history: History, center: Center, clusterId: string): () => Promise<void> {
  const read = recordingFetch(globalThis.fetch, (r) => history.add({ ...r, c: 'harness' }));
  return async () => {
    try {
      const res = await read(`${center.httpUrl}/v1/clusters/${clusterId}/nodes?status=all`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
    } catch {
      // Recorded; the information center may be out.
    }
  };
}

/** Reads the list every `everyMs` until `until` resolves (or `enough` says so after a read). */
export async function readLoop(read: () => Promise<void>, everyMs: number, until: Promise<void>, enough: () => boolean = () => false): Promise<void> {
  let done = false;
  void until.then(() => (done = true));
  while (!done && !enough()) {
    await read();
    await Promise.race([sleep(everyMs), until]);
  }
}

/** Carries out the schedule's steps at their offsets from now. */
export async function runSchedule(harness: Harness, steps: readonly Step[], durationMs: number, log: (line: string) => void): Promise<void> {
  const start = Date.now();
  for (const step of steps) {
    await sleep(start + step.at - Date.now());
    log(`+${(step.at / 1000).toFixed(1)}s ${step.op}${step.target ? ` ${step.target}` : ''}${step.ms ? ` ${step.ms} ms` : ''}`);
    harness.step(step);
  }
  await sleep(start + durationMs - Date.now());
}
