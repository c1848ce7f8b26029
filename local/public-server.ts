/**
 * The runtime's one public port on 127.0.0.1: the HTTP API and, on `/ws`, the
 * WebSocket API, as API Gateway serves them on their own domains.
 *
 * It listens first, before anything else starts, so that a taken port fails
 * at once; requests that arrive before the APIs are attached wait for them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { PortInUseError, RuntimeStartError } from './errors.ts';
import type { WebSocketApi } from './websocket-api.ts';

/** How long `close` lets requests under way finish before it cuts their connections. */
const CLOSE_GRACE_MS = 2000;
const REQUEST_TIMEOUT_MS = 60_000;

export interface PublicApis {
  http: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  ws: Pick<WebSocketApi, 'handleUpgrade'>;
}

export interface PublicServer {
  port: number;
  /** Starts serving: the requests that waited, and every one after. */
  serve(apis: PublicApis): void;
  /** Stops taking connections and resolves once the open ones are done (cut after a grace). */
  close(): Promise<void>;
}

/** What API Gateway answers a request it cannot parse; no Roster code sees it. */
function refuseMalformed(socket: Duplex): void {
  const body = JSON.stringify({ error: { code: 'VALIDATION_FAILED', message: 'malformed HTTP request' } });
  if (socket.writable) {
    socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
  }
  socket.destroy();
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new PortInUseError(port));
      else if (err.code === 'EACCES') reject(new RuntimeStartError(`not allowed to listen on port ${port} of 127.0.0.1; choose another with --port`));
      else reject(err);
    };
    server.once('error', onError);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const force = setTimeout(() => server.closeAllConnections(), graceMs).unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

export async function startPublicServer(port: number): Promise<PublicServer> {
  let attach!: (apis: PublicApis) => void;
  const attached = new Promise<PublicApis>((resolve) => (attach = resolve));
  const server = createServer((req, res) => {
    void attached.then((apis) => apis.http(req, res));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    void attached.then((apis) => apis.ws.handleUpgrade(req, socket, head));
  });
  server.on('clientError', (_err, socket: Duplex) => refuseMalformed(socket));
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  const bound = await listen(server, port);
  let closing: Promise<void> | undefined;
  return {
    port: bound,
    serve: attach,
    close: () => (closing ??= closeServer(server, CLOSE_GRACE_MS)),
  };
}
