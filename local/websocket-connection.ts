/**
 * One connection of the local WebSocket API, as the API keeps it from the
 * upgrade request to its close: its identity (what `GET @connections/{id}`
 * describes), its state, and what its events carry.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { gatewayId } from './ids.ts';

/** What `GET @connections/{id}` describes. */
export interface ConnectionInfo {
  connectedAt: number;
  lastActiveAt: number;
  sourceIp: string;
  userAgent: string;
}

export interface Connection extends ConnectionInfo {
  id: string;
  state: 'connecting' | 'open' | 'closed';
  domainName: string;
  ws?: WebSocket;
  /** Client messages, handled one at a time. */
  chain: Promise<void>;
  queued: number;
  /** The `$connect` authorizer's context and principalId, passed on with every event of the connection. */
  authorizer?: Record<string, unknown>;
  idleTimer?: NodeJS.Timeout;
  ageTimer?: NodeJS.Timeout;
}

/** A connection whose `$connect` is about to run. */
export function newConnection(req: IncomingMessage, now: number): Connection {
  return {
    id: gatewayId(),
    state: 'connecting',
    connectedAt: now,
    lastActiveAt: now,
    sourceIp: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
    userAgent: req.headers['user-agent'] ?? '',
    domainName: req.headers.host ?? '127.0.0.1',
    chain: Promise.resolve(),
    queued: 0,
  };
}

/** Activity: the idle timer looks at `lastActiveAt` when it fires (no timer work per message). */
export function touch(conn: Connection): void {
  conn.lastActiveAt = Date.now();
}
