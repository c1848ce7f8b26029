/**
 * Fault injection for robustness runs (`roster robustness`): faults of the
 * information center's own parts that no outside process can cause on demand.
 *
 * - `sweeper`: stalled — no sweep starts until the stall ends (a sweeper
 *   Lambda that is throttled, or an EventBridge schedule that did not fire);
 * - `poller`: stalled — the stream poller holds its next batch instead of
 *   invoking the fan-out (an event source mapping that fell behind);
 * - `posts`: failing — every `@connections` post is answered 500 (API
 *   Gateway's management API failing), so the fan-out reports batch failures
 *   and the poller retries and, past its retries, discards.
 *
 * Off unless the runtime is started with `--fault-injection`, and never on by
 * default. Then a control endpoint listens on its own random port on
 * 127.0.0.1, refuses peers that are not loopback addresses, and takes:
 *
 *   PUT    /faults/{part}   {"forMs": 5000}   start (or extend) a fault; 204
 *   DELETE /faults/{part}                     end it now; 204
 *   GET    /faults                            {"sweeper": ms left or 0, ...}
 *
 * Every fault ends by itself after `forMs` (at most two minutes), so a
 * harness that dies cannot leave the runtime stalled.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { z } from 'zod';
import { BodyTooLargeError, readBody } from './http-api.ts';
import type { RuntimeLog } from './log.ts';
import { listenOnLoopback } from './loopback.ts';
import type { ConnectionsBackend } from './management-api.ts';

export const FAULT_PARTS = ['sweeper', 'poller', 'posts'] as const;
export type FaultPart = (typeof FAULT_PARTS)[number];

/** The longest fault one request may start. */
export const MAX_FAULT_MS = 120_000;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;
const PATH = /^\/faults(?:\/([a-z]+))?$/;
const startBody = z.object({ forMs: z.number().int().min(1).max(MAX_FAULT_MS) }).strict();

/** What a failing `@connections` post throws; the endpoint answers it with 500. */
export class InjectedFault extends Error {
  constructor(part: FaultPart) {
    super(`fault injected: ${part}`);
    this.name = 'InjectedFault';
  }
}

export class FaultInjector {
  private readonly until = new Map<FaultPart, number>();
  private readonly timers = new Map<FaultPart, NodeJS.Timeout>();
  private readonly waiters = new Map<FaultPart, Set<() => void>>();

  /** Whether `part` is faulted now. */
  active(part: FaultPart): boolean {
    return (this.until.get(part) ?? 0) > Date.now();
  }

  /** Milliseconds left of each fault (0: not faulted). */
  state(): Record<FaultPart, number> {
    const now = Date.now();
    return Object.fromEntries(FAULT_PARTS.map((p) => [p, Math.max(0, (this.until.get(p) ?? 0) - now)])) as Record<FaultPart, number>;
  }

  start(part: FaultPart, forMs: number): void {
    this.until.set(part, Date.now() + forMs);
    clearTimeout(this.timers.get(part));
    this.timers.set(part, setTimeout(() => this.end(part), forMs).unref());
  }

  end(part: FaultPart): void {
    this.until.delete(part);
    clearTimeout(this.timers.get(part));
    this.timers.delete(part);
    const waiting = this.waiters.get(part);
    this.waiters.delete(part);
    for (const resolve of waiting ?? []) resolve();
  }

  /** Resolves at once unless `part` is stalled, else when the stall ends. */
  gate(part: FaultPart): Promise<void> {
    if (!this.active(part)) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.waiters.get(part);
      if (!set) this.waiters.set(part, (set = new Set()));
      set.add(resolve);
    });
  }

  /** `backend` with its posts failing (the endpoint answers 500) while the `posts` fault lasts. */
  failingPosts(backend: ConnectionsBackend): ConnectionsBackend {
    return {
      post: (connectionId, data) => (this.active('posts') ? Promise.reject(new InjectedFault('posts')) : backend.post(connectionId, data)),
      info: (connectionId) => backend.info(connectionId),
      disconnect: (connectionId) => backend.disconnect(connectionId),
    };
  }

  /** Ends every fault (the runtime is stopping). */
  clear(): void {
    for (const part of FAULT_PARTS) this.end(part);
  }
}

function reply(res: ServerResponse, status: number, body?: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.statusCode = status;
  if (text) res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

async function handle(faults: FaultInjector, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!LOOPBACK.test(req.socket.remoteAddress ?? '')) {
    reply(res, 403, { error: 'loopback clients only' });
    req.socket.destroy();
    return;
  }
  const match = PATH.exec(req.url ?? '');
  const part = match?.[1] as FaultPart | undefined;
  const body = await readBody(req, 1024);
  if (!match || (part !== undefined && !FAULT_PARTS.includes(part))) return reply(res, 404, { error: `parts: ${FAULT_PARTS.join(', ')}` });
  if (req.method === 'GET' && part === undefined) return reply(res, 200, faults.state());
  if (part === undefined) return reply(res, 405, { error: 'GET /faults, PUT or DELETE /faults/{part}' });
  if (req.method === 'DELETE') {
    faults.end(part);
    return reply(res, 204);
  }
  if (req.method !== 'PUT') return reply(res, 405, { error: 'PUT or DELETE' });
  let parsed: z.infer<typeof startBody>;
  try {
    parsed = startBody.parse(JSON.parse(body.toString('utf8')));
  } catch {
    return reply(res, 400, { error: `body must be {"forMs": 1..${MAX_FAULT_MS}}` });
  }
  faults.start(part, parsed.forMs);
  reply(res, 204);
}

export interface FaultControl {
  injector: FaultInjector;
  /** The control endpoint, e.g. `http://127.0.0.1:40123`. */
  url: string;
  close(): Promise<void>;
}

/** Starts the control endpoint on a random loopback port. */
export async function startFaultControl(log: RuntimeLog): Promise<FaultControl> {
  const injector = new FaultInjector();
  const server = createServer((req, res) => {
    handle(injector, req, res).catch((err: unknown) => {
      if (err instanceof BodyTooLargeError) reply(res, 413, { error: 'body too large' });
      else {
        log.warn('fault control request failed', { error: err as Error });
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      }
    });
  });
  const listening = await listenOnLoopback(server);
  log.warn(`fault injection is ON (control endpoint ${listening.url}); for robustness runs only`);
  return {
    injector,
    url: listening.url,
    close: () => {
      injector.clear();
      return listening.close();
    },
  };
}
