/**
 * A deliberately small black-box client for the conformance suite: global
 * fetch for the HTTP API and `ws` for the WebSocket API. It knows the wire
 * contract (contract/openapi.json, contract/asyncapi.json,
 * docs/running-nodes/wire-protocol.md) and nothing of the implementation. Every answer and
 * every message it receives is checked against the contract documents
 * (documents.ts): an HTTP answer that does not match fails the request; a
 * WebSocket message that does not match fails the test it arrived in.
 */
import type { MembershipEvent, Node } from '@roster/contract';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { afterEach } from 'vitest';
import WebSocket from 'ws';
import { checkHttpAnswer, checkRefusalBody, checkServerMessage } from './documents.ts';
import { sleep } from '../support/wait.ts';

/** WebSocket messages that did not match the AsyncAPI document, since the last test ended. */
const violations: Error[] = [];
afterEach(() => {
  const found = violations.splice(0);
  if (found.length > 0) throw new Error(`${found.length} WebSocket message(s) broke the AsyncAPI document:\n${found.map((e) => e.message).join('\n')}`);
});

/** The wire shapes are the contract's; the suite knows them and nothing of the implementation. */
export type WireNode = Node;
export type WireEvent = MembershipEvent;

export type ServerMessage = WireEvent | { type: string; [key: string]: unknown };

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export const EVENT_TYPES = new Set(['NODE_REGISTERED', 'NODE_DOWN', 'NODE_UPDATED']);
export const isEvent = (m: ServerMessage): m is WireEvent => EVENT_TYPES.has(m.type);

/**
 * Against a deployment (ROSTER_OUTPUTS) auth is always on, so the suite sends
 * ROSTER_TOKEN — an admin token for every cluster — on every request and
 * WebSocket connect. The local runtime it starts itself runs without auth.
 */
export const TOKEN: string | undefined = process.env.ROSTER_OUTPUTS ? process.env.ROSTER_TOKEN || undefined : undefined;

/** A unique id, so that cases never interfere, even against a shared deployment. */
export const uid = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 13)}`;


export class Api {
  constructor(readonly baseUrl: string) {}

  async request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const init: RequestInit = { method, headers: { ...(TOKEN ? { authorization: `Bearer ${TOKEN}` } : {}), ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${this.baseUrl}${path}`, init);
    const text = await res.text();
    checkHttpAnswer(method, path, res.status, res.headers.get('content-type'), text);
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }

  /**
   * A request whose path is sent exactly as given: fetch (like every URL
   * parser) resolves `.` and `..` segments, which is precisely what a test
   * of such ids must avoid.
   */
  async raw(method: string, path: string): Promise<Reply> {
    const url = new URL(this.baseUrl);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const prefix = url.pathname.replace(/\/+$/, '');
    const { status, headers, text } = await new Promise<{ status: number; headers: Headers; text: string }>((resolve, reject) => {
      const req = send(
        { method, host: url.hostname, port: url.port, path: prefix + path, headers: TOKEN ? { authorization: `Bearer ${TOKEN}` } : {} },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
            resolve({ status: res.statusCode ?? 0, headers: h, text: body });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
    checkHttpAnswer(method, path, status, headers.get('content-type'), text);
    return { status, headers, body: text === '' ? undefined : (JSON.parse(text) as unknown), text };
  }

  /**
   * A GET whose body comes back as the server sent it, never decoded (fetch
   * would undo a `Content-Encoding` on its own): for the compressed answers.
   * Checking it against the contract is the caller's, once it has decoded it.
   */
  async bytes(path: string, headers: Record<string, string>): Promise<{ status: number; headers: Headers; body: Buffer }> {
    const url = new URL(this.baseUrl);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const prefix = url.pathname.replace(/\/+$/, '');
    return new Promise((resolve, reject) => {
      const req = send(
        { method: 'GET', host: url.hostname, port: url.port, path: prefix + path, headers: { ...(TOKEN ? { authorization: `Bearer ${TOKEN}` } : {}), ...headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
            resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks) });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  register(clusterId: string, nodeId: string, body: { metadata?: Record<string, string>; leaseSeconds?: number; incarnation?: number } = {}) {
    return this.request<{ node: WireNode }>('PUT', `/v1/clusters/${clusterId}/nodes/${nodeId}`, body);
  }

  keepalive(clusterId: string, nodeId: string, body: { incarnation?: number } = {}) {
    return this.request<{ node: WireNode }>('POST', `/v1/clusters/${clusterId}/nodes/${nodeId}/keepalive`, body);
  }

  deregister(clusterId: string, nodeId: string) {
    return this.request('DELETE', `/v1/clusters/${clusterId}/nodes/${nodeId}`);
  }

  list(clusterId: string, all = false) {
    return this.request<{ clusterId: string; revision: number; nodes: WireNode[] }>('GET', `/v1/clusters/${clusterId}/nodes${all ? '?status=all' : ''}`);
  }

  get(clusterId: string, nodeId: string) {
    return this.request<{ node: WireNode }>('GET', `/v1/clusters/${clusterId}/nodes/${nodeId}`);
  }
}

export class ConnectRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`the WebSocket upgrade was refused with ${status}: ${body}`);
    this.name = 'ConnectRefused';
  }
}

/**
 * A WebSocket client that records every server message. The events of an
 * `EVENTS` batch (connections opened with `batch=true`) are recorded one by
 * one, as if they had come alone; `batches` counts the batches.
 */
export class Subscriber {
  readonly messages: ServerMessage[] = [];
  batches = 0;
  private readonly listeners = new Set<() => void>();
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as ServerMessage;
      try {
        checkServerMessage(message);
      } catch (err) {
        violations.push(err as Error);
      }
      if (message.type === 'EVENTS' && Array.isArray(message.events)) {
        this.batches++;
        this.messages.push(...(message.events as WireEvent[]));
      } else {
        this.messages.push(message);
      }
      for (const notify of [...this.listeners]) notify();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const notify of [...this.listeners]) notify();
    });
    ws.on('error', () => {});
  }

  /** Connects with `query` (e.g. `{ clusterId, nodeId }`); rejects with `ConnectRefused` when the upgrade is refused. */
  static open(wsUrl: string, query: Record<string, string> = {}, timeoutMs = 15_000): Promise<Subscriber> {
    const qs = new URLSearchParams({ ...(TOKEN ? { token: TOKEN } : {}), ...query }).toString();
    const ws = new WebSocket(qs ? `${wsUrl}?${qs}` : wsUrl);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`WebSocket connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          clearTimeout(timer);
          req.destroy();
          try {
            checkRefusalBody(body);
            reject(new ConnectRefused(res.statusCode ?? 0, body));
          } catch (err) {
            reject(err as Error);
          }
        });
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(new Subscriber(ws));
      });
    });
  }

  events(clusterId?: string): WireEvent[] {
    return this.messages.filter(isEvent).filter((e) => clusterId === undefined || e.clusterId === clusterId);
  }

  /** Resolves with the first recorded message (from index `from` on) that satisfies `predicate`. */
  async waitFor(predicate: (m: ServerMessage) => boolean, timeoutMs: number, what = 'a message', from = 0): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(predicate);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0 || this.closeCode !== undefined) {
        const seen = this.messages.map((m) => (isEvent(m) ? `${m.type}(${m.node.nodeId}, r${m.revision}${m.reason ? `, ${m.reason}` : ''})` : m.type));
        throw new Error(
          `${this.closeCode !== undefined ? `connection closed (${this.closeCode})` : `timed out after ${timeoutMs} ms`} waiting for ${what}; received: [${seen.join(', ')}]`,
        );
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.listeners.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.listeners.add(done);
      });
    }
  }

  waitForEvent(type: WireEvent['type'], nodeId: string, timeoutMs: number, extra: (e: WireEvent) => boolean = () => true): Promise<WireEvent> {
    return this.waitFor((m) => isEvent(m) && m.type === type && m.node.nodeId === nodeId && extra(m), timeoutMs, `${type} for ${nodeId}`) as Promise<WireEvent>;
  }

  /** Sends a client message and resolves with the next reply of `type` (or an ERROR). */
  async ask(message: Record<string, unknown>, type: string, timeoutMs = 10_000): Promise<ServerMessage> {
    const from = this.messages.length;
    this.ws.send(JSON.stringify(message));
    return this.waitFor((m) => m.type === type || m.type === 'ERROR', timeoutMs, `${type} reply`, from);
  }

  /** Closes with a close frame and waits for the close. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.close(1000);
    await Promise.race([closed, sleep(5000)]);
    this.ws.terminate();
  }

  /** Drops the TCP connection without a close frame, as a crashed process would. */
  crash(): void {
    this.ws.terminate();
  }
}

