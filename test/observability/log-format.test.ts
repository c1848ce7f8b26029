/**
 * The handlers' log lines where a person reads them: on the local runtime's
 * console they take the runtime's own form (`roster warn: … (k=v, …)`), never
 * a raw JSON object among its human-readable lines; on Lambda (no
 * ROSTER_LOG_FORMAT) they stay Powertools' JSON for CloudWatch.
 */
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { Subscriber } from '../../bench/subscriber.ts';
import { logger } from '../../functions/core/log.ts';
import { Scope } from '../../functions/core/scope.ts';
import { registerDirect, uniqueCluster } from '../client/helpers.ts';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { eventually } from '../support/wait.ts';

/** What `fn` writes to stderr and stdout, line by line. */
function captured(fn: () => void): string[] {
  const written: string[] = [];
  const streams = [process.stderr, process.stdout] as const;
  const originals = streams.map((s) => s.write);
  for (const stream of streams) {
    stream.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof stream.write;
  }
  try {
    fn();
  } finally {
    streams.forEach((stream, i) => (stream.write = originals[i] as typeof stream.write));
  }
  return written.join('').split('\n').filter((l) => l !== '');
}

describe('the handlers\' logger', () => {
  test('with ROSTER_LOG_FORMAT=text: one readable line per entry, at the scope\'s level', () => {
    const scope = new Scope({ env: { POWERTOOLS_LOG_LEVEL: 'WARN', ROSTER_LOG_FORMAT: 'text' } });
    const lines = captured(() =>
      scope.run(() => {
        logger.info('sweep', { down: 1 });
        logger.warn('the store answered slowly: the next sweeps grant amnesty', { slowestRequestMs: 2100, amnesty: true });
        logger.error('sweep failed', { error: new Error('boom') });
      }),
    );
    expect(lines).toEqual([
      'roster warn: the store answered slowly: the next sweeps grant amnesty (slowestRequestMs=2100, amnesty=true)',
      'roster error: sweep failed (error=Error: boom)',
    ]);
  });

  test('without it (Lambda): Powertools\' JSON', () => {
    const scope = new Scope({ env: { POWERTOOLS_LOG_LEVEL: 'WARN' } });
    const [line] = captured(() => scope.run(() => logger.warn('fan-out failed; the records from here on will be retried', { clusterId: 'c1' })));
    expect(JSON.parse(line ?? '')).toMatchObject({ level: 'WARN', message: 'fan-out failed; the records from here on will be retried', clusterId: 'c1', service: 'roster' });
  });
});

describe('the local runtime\'s console', () => {
  let runtime: SpawnedRuntime;
  let subscriber: Subscriber | undefined;
  beforeAll(async () => {
    runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint'), extraArgs: ['--fault-injection'] });
  }, 120_000);
  afterAll(async () => {
    await subscriber?.close();
    await runtime?.stop();
  });

  test('a handler\'s WARN (the fan-out failing) reads like the runtime\'s own lines, with no JSON among them', async () => {
    const faults = /^Faults {4}(http:\/\/127\.0\.0\.1:\d+)$/m.exec(runtime.output())?.[1];
    expect(faults, runtime.output()).toBeDefined();
    const clusterId = uniqueCluster('logs');
    subscriber = await Subscriber.open(runtime.wsUrl, clusterId, { keepAll: true });
    expect((await fetch(`${faults}/faults/posts`, { method: 'PUT', body: JSON.stringify({ forMs: 5000 }) })).status).toBe(204);
    await registerDirect(runtime.httpUrl, clusterId, 'n1');
    const line = await eventually(() => runtime.output().split('\n').find((l) => l.includes('fan-out failed')) ?? false, 30_000, () => runtime.output());
    expect(line).toMatch(new RegExp(`^roster warn: fan-out failed; the records from here on will be retried \\(clusterId=${clusterId}, revisions=\\[\\d+\\], owed=\\d+, error=.+\\)$`));
    expect(runtime.output().split('\n').filter((l) => l.trimStart().startsWith('{'))).toEqual([]);
    await fetch(`${faults}/faults/posts`, { method: 'DELETE' });
  }, 60_000);
});
