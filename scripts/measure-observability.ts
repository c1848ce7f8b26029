/**
 * What logging and metrics cost: keepalive (and register) latency in the
 * local runtime with telemetry off (`--no-metrics`, handlers log at WARN),
 * with metrics on (the default), and with metrics plus a JSON log line per
 * request (`--verbose`). Requests are sent one at a time over a kept-alive
 * connection after a warm-up, so the figures are per-request latency.
 *
 *   npx tsx scripts/measure-observability.ts [--registrations 300] [--keepalives 2000] [--rounds 2]
 *
 * Rounds interleave the configurations so a noisy neighbour does not land on
 * one of them only. Each runtime starts its own DynamoDB Local (Java 17+).
 */
import { latencyPlan, latencyRows, measureConfigs } from './latency.ts';

const PLAN = latencyPlan({ registrations: 300, keepalives: 2000, warmup: 100 });

const CONFIGS = [
  { name: 'telemetry off (--no-metrics)', args: ['--no-metrics'] },
  { name: 'metrics on (default)', args: [] },
  { name: 'metrics + request logs (--verbose)', args: ['--verbose'] },
];

const rows = latencyRows(await measureConfigs(CONFIGS, PLAN), ['keepalive', 'register'], 2);
process.stdout.write(
  `Local runtime, requests one at a time (${PLAN.rounds} rounds):\n\n| configuration | request | n | p50 | p99 | vs telemetry off |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
);
