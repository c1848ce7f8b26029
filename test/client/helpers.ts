/**
 * Helpers for the client tests: direct HTTP calls to the information center
 * (the "server's truth" the caches are compared with), an event recorder, and
 * `roster agent` child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { RosterClient, ClientEvent, ClientEventType, Node, NodeList } from '@roster/client';
import { REPO_ROOT } from '../support/runtime.ts';

export const uniqueCluster = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

async function call(method: string, url: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Registers a node straight through the HTTP API (not through any client under test). */
export async function registerDirect(
  httpUrl: string,
  clusterId: string,
  nodeId: string,
  body: { metadata?: Record<string, string>; leaseSeconds?: number; incarnation?: number } = {},
): Promise<Node> {
  const { status, json } = await call('PUT', `${httpUrl}/v1/clusters/${clusterId}/nodes/${nodeId}`, body);
  if (status !== 200 && status !== 201) throw new Error(`register ${nodeId}: HTTP ${status} ${JSON.stringify(json)}`);
  return (json as { node: Node }).node;
}

export async function deregisterDirect(httpUrl: string, clusterId: string, nodeId: string): Promise<void> {
  const { status } = await call('DELETE', `${httpUrl}/v1/clusters/${clusterId}/nodes/${nodeId}`);
  if (status !== 204) throw new Error(`deregister ${nodeId}: HTTP ${status}`);
}

export async function getNodeDirect(httpUrl: string, clusterId: string, nodeId: string): Promise<Node> {
  const { status, json } = await call('GET', `${httpUrl}/v1/clusters/${clusterId}/nodes/${nodeId}`);
  if (status !== 200) throw new Error(`get ${nodeId}: HTTP ${status}`);
  return (json as { node: Node }).node;
}

/** The server's healthy list. */
export async function serverList(httpUrl: string, clusterId: string): Promise<NodeList> {
  const { status, json } = await call('GET', `${httpUrl}/v1/clusters/${clusterId}/nodes`);
  if (status !== 200) throw new Error(`list: HTTP ${status}`);
  return json as NodeList;
}

export const ids = (nodes: readonly Node[]): string[] => nodes.map((n) => n.nodeId);

/** Node id and revision of each node: two lists with equal summaries hold the same states. */
export const summary = (nodes: readonly Node[]): string[] => nodes.map((n) => `${n.nodeId}@${n.revision}`);

/** Records every event of a client with the time it arrived. */
export function record(client: RosterClient): {
  all: { at: number; event: ClientEvent }[];
  of<T extends ClientEventType>(type: T): Extract<ClientEvent, { type: T }>[];
} {
  const all: { at: number; event: ClientEvent }[] = [];
  const types: ClientEventType[] = [
    'registered', 'updated', 'down', 'change', 'connected', 'disconnected', 'resynced', 'keepaliveFailed', 'keepaliveRecovered', 'lost', 'closed', 'warning',
  ];
  for (const type of types) client.on(type as 'warning', (event) => all.push({ at: Date.now(), event }));
  return {
    all,
    of: <T extends ClientEventType>(type: T) =>
      all.map((r) => r.event).filter((e): e is Extract<ClientEvent, { type: T }> => e.type === type),
  };
}

export interface AgentProcess {
  nodeId: string;
  child: ChildProcess;
  /** Node ids of the last `change` the agent printed (its cache), or undefined before the first. */
  view(): string[] | undefined;
  /** Every JSON event line the agent printed. */
  events(): Record<string, unknown>[];
  output(): string;
  exited: Promise<number | null>;
}

/** Starts `roster agent <cluster> <node> --json` as a real child process. */
export function startAgent(options: { httpUrl: string; wsUrl: string; clusterId: string; nodeId: string; args?: string[] }): AgentProcess {
  const child = spawn(
    process.execPath,
    [
      'bin/roster.js', 'agent', options.clusterId, options.nodeId, '--json',
      '--url', options.httpUrl, '--ws-url', options.wsUrl, ...(options.args ?? []),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const events: Record<string, unknown>[] = [];
  let output = '';
  let view: string[] | undefined;
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    output += `${line}\n`;
    try {
      const event = JSON.parse(line) as Record<string, unknown>;
      events.push(event);
      if (event.type === 'change') view = event.nodes as string[];
    } catch {
      // not an event line; kept in output()
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { nodeId: options.nodeId, child, view: () => view, events: () => events, output: () => output, exited };
}

export async function killAgent(agent: AgentProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
  if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill(signal);
  return agent.exited;
}
