/**
 * The local runtime's CPU per keepalive: registers `--nodes` nodes (lease
 * 600 s), measures the runtime's CPU over `--seconds` idle (its sweeper and
 * stream poller alone), then over as long again with keepalives sent at
 * `--rate` a second (loopback only), and reports the difference per
 * keepalive. What the scale bench's keepalive load costs the runtime's one
 * process (docs/measured/bench.md). Linux (/proc). To see where it goes,
 * run the runtime yourself with `node --cpu-prof bin/roster.js serve` and
 * point this script at it with `--url` and `--pid`.
 *
 *   node --conditions=@roster/source --import tsx scripts/measure-keepalive-cpu.ts [--nodes 500] [--rate 150] [--seconds 20]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { cpuMicros } from '../bench/procs.ts';
import { spawnRuntime } from '../local/spawn.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '500' },
    rate: { type: 'string', default: '150' },
    seconds: { type: 'string', default: '20' },
    url: { type: 'string' },
    pid: { type: 'string' },
  },
});
const nodes = Number(values.nodes);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const CLUSTER = 'keepalive-cpu';

/** A process's CPU so far (user + system), in seconds. */
function cpuOf(pid: number): number {
  const micros = cpuMicros(pid);
  if (micros === undefined) throw new Error(`no CPU figure for process ${pid} (Linux /proc only)`);
  return micros / 1e6;
}

async function send(url: string, method: string, body: unknown): Promise<Response> {
  return fetch(url, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

const spawned = values.url === undefined ? await spawnRuntime({}) : undefined;
const base = values.url ?? (spawned?.httpUrl as string);
const pid = values.pid !== undefined ? Number(values.pid) : (spawned?.process.pid as number);
try {
  const incarnations = new Map<string, number>();
  for (let i = 0; i < nodes; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, nodes - i) }, async (_, j) => {
        const nodeId = `k${i + j}`;
        const answer = await send(`${base}/v1/clusters/${CLUSTER}/nodes/${nodeId}`, 'PUT', { leaseSeconds: 600, metadata: { role: 'bench' } });
        incarnations.set(nodeId, ((await answer.json()) as { node: { incarnation: number } }).node.incarnation);
      }),
    );
  }

  const idle0 = cpuOf(pid);
  await sleep(seconds * 1000);
  const idleCpu = cpuOf(pid) - idle0;

  const ids = [...incarnations.keys()];
  let sent = 0;
  let ok = 0;
  const inFlight = new Set<Promise<void>>();
  const cpu0 = cpuOf(pid);
  const started = Date.now();
  while (Date.now() - started < seconds * 1000) {
    const due = Math.floor(((Date.now() - started) / 1000) * rate) - sent;
    for (let k = 0; k < due; k++) {
      const nodeId = ids[sent++ % ids.length] as string;
      const request = send(`${base}/v1/clusters/${CLUSTER}/nodes/${nodeId}/keepalive`, 'POST', { incarnation: incarnations.get(nodeId) }).then(
        async (answer) => {
          await answer.text();
          if (answer.ok) ok++;
        },
        () => undefined,
      );
      inFlight.add(request);
      void request.finally(() => inFlight.delete(request));
    }
    await sleep(10);
  }
  await Promise.all(inFlight);
  // As long as the idle window, so the sweeper's and poller's share cancels out.
  await sleep(Math.max(0, seconds * 1000 - (Date.now() - started)));
  const loadedCpu = cpuOf(pid) - cpu0;
  process.stdout.write(
    `${nodes} nodes; idle ${seconds} s: ${idleCpu.toFixed(2)} CPU-s; ${sent} keepalives at ${rate}/s (${ok} answered 200): ${loadedCpu.toFixed(2)} CPU-s; ` +
      `${(((loadedCpu - idleCpu) / Math.max(ok, 1)) * 1000).toFixed(2)} ms of the runtime's CPU per keepalive\n`,
  );
} finally {
  await spawned?.stop();
}
