/**
 * Plain WebSocket subscribers for the bench: each records when every
 * membership event arrived, keyed by type and node, so a scenario can ask
 * "when did all N subscribers have NODE_DOWN for n3?". A subscriber opened
 * with `batch` asks for batched messages (`&batch=true`) and unpacks them
 * (`{"type":"EVENTS","events":[…]}`, docs/running-nodes/wire-batching.md).
 * Below the class, what the scenarios do with a group of them: open, wait
 * on every one, close.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { mapLimit } from '../functions/core/concurrency.ts';

export interface Arrival {
  /** performance.now() at arrival. */
  at: number;
  /** Date.now() at arrival. */
  wallAt: number;
  revision: number;
  reason?: string;
}

interface WireEvent {
  type?: unknown;
  revision?: unknown;
  reason?: unknown;
  node?: { nodeId?: unknown };
}

export class Subscriber {
  /** First arrival per `${type}/${nodeId}`. */
  readonly arrivals = new Map<string, Arrival>();
  /** Every event received, in order (type/nodeId/revision). */
  readonly received: { type: string; nodeId: string; revision: number }[] = [];
  /** WebSocket messages that carried events (a batched message counts once). */
  messages = 0;
  /** With `logMessages`: each such message, when it came (epoch ms) and how many events it carried. */
  readonly messageLog: { wallAt: number; events: number }[] = [];
  private readonly listeners = new Set<(key: string) => void>();

  private constructor(
    readonly ws: WebSocket,
    private readonly keepAll: boolean,
    private readonly logMessages: boolean,
  ) {
    ws.on('message', (data) => {
      let message: WireEvent & { events?: unknown };
      try {
        message = JSON.parse(data.toString()) as WireEvent & { events?: unknown };
      } catch {
        return;
      }
      const events = message.type === 'EVENTS' && Array.isArray(message.events) ? (message.events as WireEvent[]) : [message];
      const at = performance.now();
      const wallAt = Date.now();
      let carried = 0;
      for (const event of events) {
        if (typeof event.type !== 'string' || !event.type.startsWith('NODE_') || typeof event.node?.nodeId !== 'string') continue;
        carried++;
        this.record(event.type, event.node.nodeId, event, at, wallAt);
      }
      if (carried > 0) {
        this.messages++;
        if (this.logMessages) this.messageLog.push({ wallAt, events: carried });
      }
    });
    ws.on('error', () => undefined);
  }

  private record(type: string, nodeId: string, event: WireEvent, at: number, wallAt: number): void {
    const key = `${type}/${nodeId}`;
    const revision = Number(event.revision);
    if (this.keepAll) this.received.push({ type, nodeId, revision });
    if (this.arrivals.has(key)) return;
    this.arrivals.set(key, { at, wallAt, revision, ...(typeof event.reason === 'string' ? { reason: event.reason } : {}) });
    for (const listener of this.listeners) listener(key);
  }

  /** Opens `{wsUrl}?clusterId=…` (with `batch`, `&batch=true`); `keepAll` also records every event in `received`, `logMessages` every message in `messageLog`. */
  static open(wsUrl: string, clusterId: string, options: { keepAll?: boolean; batch?: boolean; logMessages?: boolean; timeoutMs?: number } = {}): Promise<Subscriber> {
    const query = `clusterId=${encodeURIComponent(clusterId)}${options.batch ? '&batch=true' : ''}`;
    const ws = new WebSocket(`${wsUrl}?${query}`, { handshakeTimeout: options.timeoutMs ?? 30_000 });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Subscriber(ws, options.keepAll ?? false, options.logMessages ?? false)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket refused: HTTP ${res.statusCode}`)));
    });
  }

  /** Resolves with the arrival of `type` for `nodeId`, or undefined after `timeoutMs`. */
  waitFor(type: string, nodeId: string, timeoutMs: number): Promise<Arrival | undefined> {
    const key = `${type}/${nodeId}`;
    const seen = this.arrivals.get(key);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const listener = (k: string) => {
        if (k !== key) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(this.arrivals.get(key));
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        resolve(undefined);
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  /**
   * Whether each node's events (in `received`, so with `keepAll`) first
   * arrived in increasing revision order. A repeat of an event already seen
   * (delivery is at least once) is not a break of order.
   */
  inNodeOrder(): boolean {
    const seen = new Set<string>();
    const highest = new Map<string, number>();
    for (const { nodeId, revision } of this.received) {
      const key = `${nodeId}@${revision}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if ((highest.get(nodeId) ?? -Infinity) > revision) return false;
      highest.set(nodeId, revision);
    }
    return true;
  }

  count(type: string): number {
    let n = 0;
    for (const key of this.arrivals.keys()) if (key.startsWith(`${type}/`)) n++;
    return n;
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 2000);
      this.ws.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      this.ws.close();
    });
  }
}

/** Opens `count` subscribers to `clusterId`, `parallel` handshakes at a time; `batch` opts every one in to batched messages. */
export async function openSubscribers(wsUrl: string, clusterId: string, count: number, options: { parallel?: number; batch?: boolean; keepAll?: boolean } = {}): Promise<Subscriber[]> {
  const opened: Subscriber[] = [];
  try {
    await mapLimit(Array.from({ length: count }), options.parallel ?? 25, async () => {
      opened.push(await Subscriber.open(wsUrl, clusterId, { batch: options.batch, keepAll: options.keepAll }));
    });
  } catch (err) {
    await closeAll(opened);
    throw err;
  }
  return opened;
}

export async function closeAll(subscribers: Subscriber[]): Promise<void> {
  await mapLimit(subscribers.splice(0), 100, (s) => s.close());
}

/** Arrival times (performance.now()) of `type` for `nodeId` at every subscriber; undefined where it never arrived. */
export async function arrivalsAt(subscribers: readonly Subscriber[], type: string, nodeId: string, timeoutMs: number): Promise<(number | undefined)[]> {
  return (await Promise.all(subscribers.map((s) => s.waitFor(type, nodeId, timeoutMs)))).map((a) => a?.at);
}
