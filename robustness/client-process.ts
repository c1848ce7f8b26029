/**
 * One client of a robustness run, as its own process: a node (with
 * `nodeId`) or a watcher, using the SDK's public API only. It writes what it
 * sees to stdout, one JSON record a line (robustness/history.ts, without
 * `c`, which the harness adds): every HTTP request the SDK makes with its
 * answer (the global fetch is wrapped, so nothing in the SDK is touched),
 * every event the SDK emits, every change of its cached list.
 *
 * stdin takes commands, one JSON object a line:
 *   {"cmd":"meta","metadata":{…}}  re-register with new metadata (a PUT of the
 *                                   same incarnation and lease, beside the SDK)
 *   {"cmd":"stop"}                  stop the client (it deregisters) and exit
 * SIGTERM stops it the same way. Crashes and hangs are the harness's signals.
 *
 * Run as: node --import tsx robustness/client-process.ts '<config JSON>'
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { RosterClient, type ClientEvent } from '@roster/client';
import type { ClientRecord } from './history.ts';
import { recordingFetch, snap } from './recording.ts';

export interface ClientConfig {
  httpUrl: string;
  wsUrl: string;
  clusterId: string;
  nodeId?: string;
  incarnation?: number;
  leaseSeconds?: number;
  metadata?: Record<string, string>;
  refreshIntervalMs: number;
}

type Emitted = ClientRecord extends infer R ? (R extends { c: string } ? Omit<R, 'c'> : never) : never;

const emit = (record: Emitted): void => {
  process.stdout.write(`${JSON.stringify(record)}\n`);
};

function onEvent(event: ClientEvent): void {
  const t = Date.now();
  switch (event.type) {
    case 'registered':
    case 'updated':
      return emit({ k: 'ev', t, type: event.type, src: event.source, n: snap(event.node) });
    case 'down':
      return emit({ k: 'ev', t, type: 'down', src: event.source, n: snap(event.node), ...(event.reason ? { reason: event.reason } : {}) });
    case 'change':
      return emit({ k: 'cache', t, rev: event.revision, nodes: event.nodes.map(snap) });
    case 'connected':
      return emit({ k: 'conn', t, up: true, bound: event.bound });
    case 'disconnected':
      return emit({ k: 'conn', t, up: false, reason: event.reason });
    case 'resynced':
      return emit({ k: 'sync', t, reason: event.reason, rev: event.revision, size: event.nodes, reset: event.reset });
    case 'keepaliveFailed':
      return emit({ k: 'kaf', t, code: event.error.code, n: event.consecutive });
    case 'lost':
      return emit({ k: 'lost', t, reason: event.reason });
    case 'warning':
      return emit({ k: 'warn', t, msg: event.message.slice(0, 300) });
    case 'closed':
      return;
  }
}

const RETRY_START_MS = 1000;

async function main(config: ClientConfig): Promise<void> {
  // The SDK calls the global fetch; recording it observes every request without touching the SDK.
  globalThis.fetch = recordingFetch(globalThis.fetch, (r) => emit(r));
  const options = {
    httpUrl: config.httpUrl,
    wsUrl: config.wsUrl,
    clusterId: config.clusterId,
    nodeId: config.nodeId,
    incarnation: config.incarnation,
    leaseSeconds: config.leaseSeconds,
    metadata: config.metadata,
    refreshIntervalMs: config.refreshIntervalMs,
  };
  let client: RosterClient | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await client?.stop();
    emit({ k: 'proc', t: Date.now(), what: 'stopped' });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line) as { cmd: string; metadata?: Record<string, string> };
    if (command.cmd === 'stop') void stop();
    else if (command.cmd === 'meta' && config.nodeId !== undefined && command.metadata) void reRegister(config, command.metadata);
  });
  // A start during an outage of the information center fails; a real process would retry, so this one does.
  for (;;) {
    client = new RosterClient(options);
    client.on('registered', onEvent).on('updated', onEvent).on('down', onEvent).on('change', onEvent);
    client.on('connected', onEvent).on('disconnected', onEvent).on('resynced', onEvent);
    client.on('keepaliveFailed', onEvent).on('lost', onEvent).on('warning', onEvent);
    try {
      await client.start();
      emit({ k: 'proc', t: Date.now(), what: 'ready' });
      return;
    } catch (err) {
      if (stopping) return;
      emit({ k: 'proc', t: Date.now(), what: 'startFailed', detail: err instanceof Error ? err.message.slice(0, 200) : String(err) });
      await sleep(RETRY_START_MS);
    }
  }
}

/** Re-registers with new metadata: the same incarnation and lease, so the server answers NODE_UPDATED. */
async function reRegister(config: ClientConfig, metadata: Record<string, string>): Promise<void> {
  const url = `${config.httpUrl}/v1/clusters/${encodeURIComponent(config.clusterId)}/nodes/${encodeURIComponent(config.nodeId ?? '')}`;
  try {
    const res = await fetch(url, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ metadata, incarnation: config.incarnation, leaseSeconds: config.leaseSeconds }),
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
  } catch {
    // Recorded by the fetch wrapper; the next step of the schedule goes on.
  }
}

const configArg = process.argv[2];
if (configArg !== undefined && process.argv[1]?.endsWith('client-process.ts')) {
  await main(JSON.parse(configArg) as ClientConfig);
}
