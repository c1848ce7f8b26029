/**
 * The local Lambda Invoke API (local/lambda-api.ts) through the real
 * `LambdaClient`: what the fan-out relies on to hand pages to the page
 * function, as it does on AWS.
 */
import { InvokeCommand, LambdaClient, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { localOverrides } from '../../functions/core/aws.ts';
import { startLambdaApi, type LambdaApi } from '../../local/lambda-api.ts';
import { silentLog } from '../../local/log.ts';

let api: LambdaApi;
let client: LambdaClient;

beforeAll(async () => {
  api = await startLambdaApi(
    { echo: { moduleUrl: new URL('../support/echo-handler.ts', import.meta.url).href, env: { GREETING: 'hello', PATH: process.env.PATH ?? '' }, concurrency: 2, timeoutMs: 2000 } },
    silentLog,
  );
  client = new LambdaClient({ ...localOverrides(api.url), region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
});

afterAll(async () => {
  client.destroy();
  await api.close();
});

const invoke = async (name: string, event: unknown) => {
  const out = await client.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from(JSON.stringify(event)) }));
  return { error: out.FunctionError, body: JSON.parse(Buffer.from(out.Payload ?? new Uint8Array()).toString() || 'null') as Record<string, unknown> };
};

test('returns the handler result, run in an execution environment of its own with the function\'s environment', async () => {
  const { error, body } = await invoke('echo', { n: 1 });
  expect(error).toBeUndefined();
  expect(body).toMatchObject({ event: { n: 1 }, greeting: 'hello' });
  expect(body.pid).not.toBe(process.pid);
});

test('a handler that throws is a function error (Unhandled) with its type and message, and the environment lives on', async () => {
  const { error, body } = await invoke('echo', { fail: 'boom' });
  expect(error).toBe('Unhandled');
  expect(body).toEqual({ errorType: 'TypeError', errorMessage: 'boom' });
  expect((await invoke('echo', { n: 2 })).error).toBeUndefined();
});

test('an invocation past the timeout ends as Sandbox.Timedout; the next one gets a fresh environment', async () => {
  const { error, body } = await invoke('echo', { waitMs: 10_000 });
  expect(error).toBe('Unhandled');
  expect(body).toMatchObject({ errorType: 'Sandbox.Timedout' });
  expect((await invoke('echo', { n: 3 })).body).toMatchObject({ greeting: 'hello' });
});

test('concurrent invocations all complete', async () => {
  const results = await Promise.all(Array.from({ length: 5 }, (_, i) => invoke('echo', { i, waitMs: 50 })));
  expect(results.map((r) => (r.body.event as { i: number }).i)).toEqual([0, 1, 2, 3, 4]);
});

test('an unknown function is ResourceNotFoundException', async () => {
  await expect(invoke('nope', {})).rejects.toBeInstanceOf(ResourceNotFoundException);
});
