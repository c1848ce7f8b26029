/**
 * A TCP proxy for fault injection, in the spirit of etcd3's test proxy: it
 * sits between a client and the server and can cut, freeze, delay and
 * restore the network. `roster robustness` puts one in front of every client
 * process; the tests use it for single faults.
 *
 * - `cut()`: every connection is reset and new ones are refused at once — a
 *   network that is down and says so.
 * - `freeze()`: connections stay open but nothing flows, and new ones hang —
 *   a silent partition, which only a missing PONG or a timeout reveals.
 * - `delay(ms)`: everything still flows, in order, `ms` late in each
 *   direction — a slow or congested path.
 * - `restore()`: back to forwarding at once.
 *
 * It listens on 127.0.0.1 only and forwards only to a loopback port, and it
 * holds at most `maxConnections` connections; it is a test tool, never a relay.
 */
import { connect, createServer, type Socket } from 'node:net';

export type ProxyMode = 'open' | 'cut' | 'frozen' | 'delayed';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /** Connections currently held. */
  readonly connections: number;
  /** `url` with its host and port replaced by the proxy's: `via(runtime.wsUrl)`. */
  via(url: string): string;
  cut(): void;
  freeze(): void;
  /** Holds every chunk (and the end of each stream) `ms` before passing it on. */
  delay(ms: number): void;
  restore(): void;
  close(): Promise<void>;
}

export interface ProxyOptions {
  /** The loopback port to forward to. */
  targetPort: number;
  /** @default 512 */
  maxConnections?: number;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Delivers what a delay still holds at once (on restore). */
  flush: (() => void)[];
}

interface State {
  mode: ProxyMode;
  delayMs: number;
  pairs: Set<Pair>;
}

function drop(state: State, pair: Pair, reset: boolean): void {
  state.pairs.delete(pair);
  for (const socket of [pair.client, pair.upstream]) {
    if (reset && !socket.destroyed) socket.resetAndDestroy();
    else socket.destroy();
  }
}

/**
 * Copies a → b with backpressure; a frozen proxy stays paused. While
 * delayed, chunks wait in a queue (in order) until they are due; the end
 * of the stream waits behind them. Returns what delivers the queue at once.
 */
function forward(state: State, a: Socket, b: Socket): () => void {
  const queue: { due: number; chunk: Buffer | 'end' }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const pass = (chunk: Buffer | 'end') => {
    if (b.destroyed) return;
    if (chunk === 'end') b.end();
    else if (!b.write(chunk)) a.pause();
  };
  const drain = (all: boolean) => {
    clearTimeout(timer);
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && (all || (queue[0]?.due ?? 0) <= now)) pass((queue.shift() as { chunk: Buffer | 'end' }).chunk);
    const next = queue[0];
    if (next) timer = setTimeout(() => drain(false), Math.max(0, next.due - Date.now()));
  };
  const take = (chunk: Buffer | 'end') => {
    if (state.delayMs === 0 && queue.length === 0) return pass(chunk);
    queue.push({ due: Date.now() + state.delayMs, chunk });
    timer ??= setTimeout(() => drain(false), state.delayMs);
  };
  a.on('data', (chunk: Buffer) => take(chunk));
  b.on('drain', () => {
    if (state.mode === 'open' || state.mode === 'delayed') a.resume();
  });
  a.on('end', () => take('end'));
  a.on('close', () => clearTimeout(timer));
  return () => drain(true);
}

function accept(state: State, targetPort: number, maxConnections: number, client: Socket): void {
  if (state.mode === 'cut' || state.pairs.size >= maxConnections) {
    client.resetAndDestroy();
    return;
  }
  const upstream = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
  const pair: Pair = { client, upstream, flush: [] };
  state.pairs.add(pair);
  for (const socket of [client, upstream]) {
    socket.on('error', () => drop(state, pair, true));
    socket.on('close', () => drop(state, pair, false));
  }
  pair.flush.push(forward(state, client, upstream), forward(state, upstream, client));
  if (state.mode === 'frozen') {
    client.pause();
    upstream.pause();
  }
}

export async function startProxy(options: ProxyOptions): Promise<TcpProxy> {
  const { targetPort, maxConnections = 512 } = options;
  if (!Number.isInteger(targetPort) || targetPort <= 0 || targetPort > 65535) throw new Error(`bad target port ${targetPort}`);
  const state: State = { mode: 'open', delayMs: 0, pairs: new Set() };
  const server = createServer({ allowHalfOpen: true }, (client) => accept(state, targetPort, maxConnections, client));
  server.maxConnections = maxConnections + 16; // beyond this the kernel-level accept is refused outright

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy did not get a TCP port');
  const port = address.port;
  const setFlow = (flowing: boolean) => {
    for (const { client, upstream } of state.pairs) {
      if (flowing) {
        client.resume();
        upstream.resume();
      } else {
        client.pause();
        upstream.pause();
      }
    }
  };

  return {
    port,
    get mode() {
      return state.mode;
    },
    get connections() {
      return state.pairs.size;
    },
    via(url: string): string {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      const text = u.toString();
      // URL adds a "/" to a bare origin; keep the caller's spelling.
      return url.endsWith('/') ? text : text.replace(/\/$/, '');
    },
    cut() {
      state.mode = 'cut';
      state.delayMs = 0;
      for (const pair of [...state.pairs]) drop(state, pair, true);
    },
    freeze() {
      state.mode = 'frozen';
      setFlow(false);
    },
    delay(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`bad delay ${ms}`);
      state.mode = 'delayed';
      state.delayMs = ms;
      setFlow(true);
    },
    restore() {
      state.mode = 'open';
      state.delayMs = 0;
      for (const { flush } of state.pairs) for (const f of flush) f();
      setFlow(true);
    },
    async close() {
      state.mode = 'cut';
      for (const pair of [...state.pairs]) drop(state, pair, true);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
