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

export async function startProxy(options: ProxyOptions): Promise<TcpProxy> {
  const { targetPort, maxConnections = 512 } = options;
  if (!Number.isInteger(targetPort) || targetPort <= 0 || targetPort > 65535) throw new Error(`bad target port ${targetPort}`);
  let mode: ProxyMode = 'open';
  let delayMs = 0;
  const pairs = new Set<Pair>();

  const drop = (pair: Pair, reset: boolean) => {
    pairs.delete(pair);
    for (const socket of [pair.client, pair.upstream]) {
      if (reset && !socket.destroyed) socket.resetAndDestroy();
      else socket.destroy();
    }
  };

  /**
   * Copies a → b with backpressure; a frozen proxy stays paused. While
   * delayed, chunks wait in a queue (in order) until they are due; the end
   * of the stream waits behind them.
   */
  const forward = (a: Socket, b: Socket): (() => void) => {
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
      if (delayMs === 0 && queue.length === 0) return pass(chunk);
      queue.push({ due: Date.now() + delayMs, chunk });
      timer ??= setTimeout(() => drain(false), delayMs);
    };
    a.on('data', (chunk: Buffer) => take(chunk));
    b.on('drain', () => {
      if (mode === 'open' || mode === 'delayed') a.resume();
    });
    a.on('end', () => take('end'));
    a.on('close', () => clearTimeout(timer));
    return () => drain(true);
  };

  const server = createServer({ allowHalfOpen: true }, (client) => {
    if (mode === 'cut' || pairs.size >= maxConnections) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
    const pair: Pair = { client, upstream, flush: [] };
    pairs.add(pair);
    for (const socket of [client, upstream]) {
      socket.on('error', () => drop(pair, true));
      socket.on('close', () => drop(pair, false));
    }
    pair.flush.push(forward(client, upstream), forward(upstream, client));
    if (mode === 'frozen') {
      client.pause();
      upstream.pause();
    }
  });
  server.maxConnections = maxConnections + 16; // beyond this the kernel-level accept is refused outright

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy did not get a TCP port');
  const port = address.port;

  return {
    port,
    get mode() {
      return mode;
    },
    get connections() {
      return pairs.size;
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
      mode = 'cut';
      delayMs = 0;
      for (const pair of [...pairs]) drop(pair, true);
    },
    freeze() {
      mode = 'frozen';
      for (const { client, upstream } of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    delay(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`bad delay ${ms}`);
      mode = 'delayed';
      delayMs = ms;
      for (const { client, upstream } of pairs) {
        client.resume();
        upstream.resume();
      }
    },
    restore() {
      mode = 'open';
      delayMs = 0;
      for (const { client, upstream, flush } of pairs) {
        for (const f of flush) f();
        client.resume();
        upstream.resume();
      }
    },
    async close() {
      mode = 'cut';
      for (const pair of [...pairs]) drop(pair, true);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
