/**
 * Keepalive throughput: how many keepalives per second the runtime serves
 * over HTTP, beside the store's own limit for the very same UpdateItem — sent
 * bare (bare-update-item.ts) and through the AWS SDK client the handlers
 * use — against the same DynamoDB Local.
 */
import { performance } from 'node:perf_hooks';
import type { DynamoDBDocumentClient, UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../functions/core/aws.ts';
import { mapLimit } from '../functions/core/concurrency.ts';
import { readConfig } from '../functions/core/config.ts';
import type { Deps } from '../functions/core/deps.ts';
import { keepalive as coreKeepalive } from '../functions/core/registry.ts';
import { bareUpdateItem } from './bare-update-item.ts';
import { LoadClient, mustRegister } from './load-client.ts';
import { uid, type Progress, type RosterTarget } from './scenario.ts';
import { Histogram, type Summary } from './stats.ts';

export interface ThroughputSide {
  requests: number;
  errors: number;
  perSecond: number;
  latencyMs: Summary;
}

export interface ThroughputResult {
  concurrency: number;
  durationSeconds: number;
  /** POST …/keepalive through the runtime (HTTP → API Gateway-shaped event → handler → UpdateItem). */
  roster: ThroughputSide;
  /**
   * The store's own limit: the keepalive's very UpdateItem (expression and
   * values from the core's `keepalive()`), sent to the same DynamoDB Local as
   * a bare HTTP request, without the AWS SDK's per-request work.
   */
  raw: ThroughputSide;
  /** The same UpdateItem through the AWS SDK client the handlers use, from the bench process. */
  rawSdk: ThroughputSide;
  /** roster.perSecond / raw.perSecond. */
  ratio: number;
  /** roster.perSecond / rawSdk.perSecond. */
  ratioSdk: number;
}

/** `concurrency` workers call `op` back to back for `durationMs`; latencies of successful calls are recorded. */
async function hammer(concurrency: number, durationMs: number, op: (worker: number) => Promise<boolean>): Promise<ThroughputSide> {
  const histogram = new Histogram();
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        let ok: boolean;
        try {
          ok = await op(worker);
        } catch {
          ok = false;
        }
        if (ok) histogram.record(performance.now() - t0);
        else errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { requests: histogram.count, errors, perSecond: Math.round(histogram.count / elapsed), latencyMs: histogram.summary(2) };
}

class Captured extends Error {
  constructor(readonly input: UpdateCommandInput) {
    super('captured');
  }
}

/** The exact UpdateItem input the core's keepalive sends now, without sending it. */
async function keepaliveInput(config: Deps['config'], clusterId: string, nodeId: string): Promise<UpdateCommandInput> {
  const capture = {
    send: (command: { input: UpdateCommandInput }) => Promise.reject(new Captured(command.input)),
  } as unknown as DynamoDBDocumentClient;
  try {
    await coreKeepalive({ db: capture, config, now: Date.now }, clusterId, nodeId);
  } catch (err) {
    if (err instanceof Captured) return err.input;
    throw err;
  }
  throw new Error('the core keepalive sent nothing');
}

export async function keepaliveThroughput(
  target: RosterTarget,
  options: { concurrency: number; durationMs: number; warmupMs: number },
  progress: Progress,
): Promise<ThroughputResult> {
  const { concurrency, durationMs, warmupMs } = options;
  const clusterId = uid('tp');
  const nodes = Array.from({ length: concurrency }, (_, i) => `n${i}`);
  const http = new LoadClient(target.httpUrl, concurrency);
  // The handlers' own client configuration (retry mode, attempts, connection pool), pointed at the same engine.
  const config = readConfig({ TABLE_NAME: target.tableName, DYNAMODB_ENDPOINT: target.dynamodbEndpoint });
  const deps: Deps = { db: createDocumentClient(config), config, now: Date.now };
  const bare = bareUpdateItem(target.dynamodbEndpoint, concurrency);
  try {
    await mapLimit(nodes, 16, (nodeId) => mustRegister(http, clusterId, nodeId, 3600));
    const viaRoster = async (worker: number) => (await http.keepalive(clusterId, nodes[worker] as string)).status === 200;
    const viaSdk = async (worker: number) => {
      await coreKeepalive(deps, clusterId, nodes[worker] as string);
      return true;
    };
    const viaBare = async (worker: number) => bare.send(await keepaliveInput(config, clusterId, nodes[worker] as string));
    // DynamoDB Local's JVM needs a few seconds of load before it reaches full speed.
    progress(`throughput: warming up (${(3 * warmupMs) / 1000} s)`);
    await hammer(concurrency, warmupMs, viaBare);
    await hammer(concurrency, warmupMs, viaSdk);
    await hammer(concurrency, warmupMs, viaRoster);
    progress(`throughput: bare UpdateItem to DynamoDB Local, ${concurrency} workers, ${durationMs / 1000} s`);
    const raw = await hammer(concurrency, durationMs, viaBare);
    progress(`throughput: UpdateItem through the AWS SDK, ${concurrency} workers, ${durationMs / 1000} s`);
    const rawSdk = await hammer(concurrency, durationMs, viaSdk);
    progress(`throughput: Roster keepalive over HTTP, ${concurrency} workers, ${durationMs / 1000} s`);
    const roster = await hammer(concurrency, durationMs, viaRoster);
    return {
      concurrency,
      durationSeconds: durationMs / 1000,
      roster,
      raw,
      rawSdk,
      ratio: Number((roster.perSecond / raw.perSecond).toFixed(3)),
      ratioSdk: Number((roster.perSecond / rawSdk.perSecond).toFixed(3)),
    };
  } finally {
    http.close();
    bare.close();
    deps.db.destroy();
  }
}
