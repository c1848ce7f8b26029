/**
 * The etcd side of the bench: the store users would otherwise run for membership,
 * on the same machine, with the same lease. The bench only *detects* etcd (`etcd
 * --version` on PATH, or ETCD_BIN); it never installs it. When present it is
 * started on loopback ports with a temporary data directory and stopped (and
 * the directory removed) afterwards.
 *
 * Mapping of Roster's operations onto etcd, as a user would build them:
 * - a node = a lease with keepalive (the etcd3 client renews every ttl/3) and
 *   a key under the cluster's prefix attached to it;
 * - a subscriber = a prefix watch on its own connection (one gRPC channel
 *   each; grpc-js would otherwise share one TCP connection among clients);
 * - registration = grant a lease + put the key; down = the key's DELETE when
 *   the lease expires.
 * etcd has no connection-bound liveness: a crashed process is noticed only
 * when its lease runs out, exactly like a hung one.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Etcd3, IOptions, Watcher } from 'etcd3';
import { freePort } from '../local/dynamodb-local.ts';
import { mapLimit } from '../functions/core/concurrency.ts';
import { detectionResult, type DetectionOptions, type DetectionResult } from './detection.ts';
import { CpuMeter, fanoutResult, ownCpu, timeFanout, type FanoutResult, type WaitAll } from './fanout.ts';
import { cpuMicros, failEach, startChild, type Child } from './procs.ts';
import { uid, type Progress } from './scenario.ts';

export const ETCD_INSTALL_HINT = 'install etcd to compare: `sudo apt-get install -y etcd-server` (Debian/Ubuntu; needs `npm install` for the etcd3 dev dependency), or put an `etcd` binary on PATH / in ETCD_BIN';

export type EtcdAvailability =
  | { installed: true; version: string; binary: string }
  | { installed: false; reason: string; howToInstall: string };

/** Whether etcd (and the etcd3 client) can be used; never installs anything. */
export async function detectEtcd(): Promise<EtcdAvailability> {
  const binary = process.env.ETCD_BIN || 'etcd';
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (out.error || out.status !== 0) {
    return { installed: false, reason: `no working \`${binary} --version\``, howToInstall: ETCD_INSTALL_HINT };
  }
  try {
    await import('etcd3');
  } catch {
    return { installed: false, reason: 'the etcd3 npm client is not installed', howToInstall: 'run `npm install` (etcd3 is a dev dependency)' };
  }
  const version = /etcd Version:\s*(\S+)/.exec(out.stdout)?.[1] ?? out.stdout.split('\n')[0]?.trim() ?? 'unknown';
  return { installed: true, version, binary };
}

export interface EtcdServer {
  endpoint: string;
  pid: number;
  startMs: number;
  stop(): Promise<void>;
}

async function newClient(endpoint: string, ownConnection: boolean): Promise<Etcd3> {
  const { Etcd3 } = await import('etcd3');
  const options: IOptions = { hosts: endpoint, dialTimeout: 10_000 };
  // Without a local subchannel pool grpc-js multiplexes every client onto one TCP connection.
  if (ownConnection) options.grpcOptions = { 'grpc.use_local_subchannel_pool': 1 };
  return new Etcd3(options);
}

/** Starts a single-member etcd on two free loopback ports with a fresh data directory. */
export async function startEtcd(binary: string): Promise<EtcdServer> {
  const t0 = performance.now();
  const dataDir = await mkdtemp(join(tmpdir(), 'roster-bench-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const child = startChild(binary, [
    '--name', 'bench',
    '--data-dir', dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `bench=${peerUrl}`,
    '--initial-cluster-state', 'new',
    '--logger', 'zap',
    '--log-level', 'error',
  ]);
  const stop = async () => {
    child.signal('SIGTERM');
    const force = setTimeout(() => child.signal('SIGKILL'), 5000);
    await child.exited;
    clearTimeout(force);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const client = await newClient(clientUrl, false);
    try {
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          await client.get('roster-bench-probe').string();
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`etcd did not answer within 20 s: ${(err as Error).message}\n${child.output()}`, { cause: err });
          await sleep(100);
        }
      }
    } finally {
      client.close();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint: clientUrl, pid: child.pid, startMs: performance.now() - t0, stop };
}

interface EtcdWatcher {
  client: Etcd3;
  watcher: Watcher;
  /** performance.now() and Date.now() of the first PUT / DELETE per key. */
  puts: Map<string, number>;
  deletes: Map<string, number>;
  waitFor(kind: 'put' | 'delete', key: string, timeoutMs: number): Promise<number | undefined>;
}

async function openWatcher(endpoint: string, prefix: string): Promise<EtcdWatcher> {
  const client = await newClient(endpoint, true);
  const puts = new Map<string, number>();
  const deletes = new Map<string, number>();
  const listeners = new Set<(kind: 'put' | 'delete', key: string) => void>();
  const watcher = await client.watch().prefix(prefix).create();
  const seen = (kind: 'put' | 'delete', map: Map<string, number>) => (kv: { key: Buffer }) => {
    const key = kv.key.toString();
    if (map.has(key)) return;
    map.set(key, performance.now());
    for (const l of listeners) l(kind, key);
  };
  watcher.on('put', seen('put', puts));
  watcher.on('delete', seen('delete', deletes));
  watcher.on('error', () => undefined);
  return {
    client,
    watcher,
    puts,
    deletes,
    waitFor(kind, key, timeoutMs) {
      const known = (kind === 'put' ? puts : deletes).get(key);
      if (known !== undefined) return Promise.resolve(known);
      return new Promise((resolve) => {
        const listener = (k: 'put' | 'delete', name: string) => {
          if (k !== kind || name !== key) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve((kind === 'put' ? puts : deletes).get(key));
        };
        const timer = setTimeout(() => {
          listeners.delete(listener);
          resolve(undefined);
        }, timeoutMs);
        listeners.add(listener);
      });
    },
  };
}

async function closeWatchers(watchers: EtcdWatcher[]): Promise<void> {
  await mapLimit(watchers.splice(0), 50, async (w) => {
    await w.watcher.cancel().catch(() => undefined);
    w.client.close();
  });
}

async function openWatchers(endpoint: string, prefix: string, count: number): Promise<EtcdWatcher[]> {
  const opened: EtcdWatcher[] = [];
  try {
    await mapLimit(Array.from({ length: count }), 25, async () => {
      opened.push(await openWatcher(endpoint, prefix));
    });
  } catch (err) {
    await closeWatchers(opened);
    throw err;
  }
  return opened;
}

/** One registration (grant a lease, put the key) → every watcher has the PUT; timed by the loop Roster's fan-out uses. */
export async function etcdFanout(
  server: EtcdServer,
  options: { subscribers: number; registrations: number; timeoutMs: number },
  progress: Progress,
): Promise<FanoutResult> {
  const prefix = `/roster-bench/${uid(`fo${options.subscribers}`)}/`;
  progress(`etcd fan-out: opening ${options.subscribers} prefix watchers (one connection each)`);
  const watchers = await openWatchers(server.endpoint, prefix, options.subscribers);
  const writer = await newClient(server.endpoint, true);
  try {
    const cpu = new CpuMeter({ server: () => cpuMicros(server.pid), store: undefined, clients: ownCpu });
    await cpu.measureIdle(2000);
    progress(`etcd fan-out: ${options.registrations} registrations → ${options.subscribers} watchers`);
    const register = async (i: number) => {
      const key = `${prefix}r${i}`;
      await writer.lease(3600, { autoKeepAlive: false }).put(key).value('up');
      return key;
    };
    const waitAll: WaitAll = (key, timeoutMs) => Promise.all(watchers.map((w) => w.waitFor('put', key, timeoutMs)));
    const timed = await timeFanout(options.registrations, options.timeoutMs, register, waitAll, cpu);
    return fanoutResult(options.subscribers, options.registrations, timed, cpu.end(timed.messages));
  } finally {
    await closeWatchers(watchers);
    await writer.delete().prefix(prefix).catch(() => undefined);
    writer.close();
  }
}

const ETCD_NODE = fileURLToPath(new URL('./etcd-node.ts', import.meta.url));

/** `trials` node processes on etcd; SIGKILL (crash) or SIGSTOP (hang) each; time until every watcher has the DELETE. */
export async function etcdDetection(
  server: EtcdServer,
  options: DetectionOptions,
  progress: Progress,
): Promise<DetectionResult> {
  const { kind, trials, leaseSeconds } = options;
  const prefix = `/roster-bench/${uid(kind)}/`;
  const observers = await openWatchers(server.endpoint, prefix, options.observers);
  const nodes: Child[] = [];
  try {
    progress(`etcd ${kind}: starting ${trials} node processes (lease ${leaseSeconds} s with keepalive)`);
    for (let i = 0; i < trials; i++) {
      nodes.push(startChild(process.execPath, ['--import', 'tsx', ETCD_NODE, server.endpoint, `${prefix}a${i}`, String(leaseSeconds)]));
    }
    await Promise.all(nodes.map((n) => n.waitForLine((line) => line === 'ready', 60_000)));
    await Promise.all(nodes.map((_, i) => Promise.all(observers.map((o) => o.waitFor('put', `${prefix}a${i}`, 10_000)))));

    progress(`etcd ${kind}: ${kind === 'crash' ? 'SIGKILL' : 'SIGSTOP'} each node at a random moment; waiting for the key's DELETE at ${observers.length} watchers`);
    const results = await failEach(nodes, kind, async (i, t0) => {
      const arrivals = await Promise.all(observers.map((o) => o.waitFor('delete', `${prefix}a${i}`, options.timeoutMs)));
      (nodes[i] as Child).signal('SIGKILL');
      if (arrivals.some((a) => a === undefined)) return undefined;
      return Math.max(...(arrivals as number[])) - t0;
    });
    const times = results.filter((r) => r !== undefined);
    return detectionResult(options, observers.length, times, { 'lease expired (DELETE)': times.length * observers.length });
  } finally {
    await Promise.all(nodes.map((n) => n.kill()));
    await closeWatchers(observers);
  }
}
