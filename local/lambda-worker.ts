/**
 * One execution environment of a function the local Lambda Invoke API runs
 * (local/lambda-api.ts): a child process that loads the handler module with
 * the function's environment, as a Lambda cold start does, and runs one
 * invocation at a time. Spoken to over the IPC channel `fork` opens.
 *
 *   node --import tsx local/lambda-worker.ts <handler module file: URL> <IAM gate config as JSON, or null>
 *
 * With a gate, the handler runs in a scope whose AWS SDK clients ask IAM
 * before each call, as the runtime's own functions do (local/functions.ts).
 */
import { Scope } from '../functions/core/scope.ts';
import { IamGate, type GateConfig } from './iam/gate.ts';
import { GatedRequestHandler } from './iam/request-handler.ts';

interface Invocation {
  id: number;
  event: unknown;
}

const moduleUrl = process.argv[2];
const send = (message: unknown): void => {
  process.send?.(message);
};
if (!moduleUrl || !process.send) {
  process.stderr.write('usage: forked by local/lambda-api.ts with the handler module URL\n');
  process.exit(2);
}
const gateConfig = JSON.parse(process.argv[3] ?? 'null') as GateConfig | null;
const gate = gateConfig ? new IamGate(gateConfig) : undefined;
const region = process.env.AWS_REGION ?? 'us-east-1';
const scope = new Scope({ env: process.env, awsRequestHandler: gate ? (options) => new GatedRequestHandler(gate, region, options) : undefined });
const loaded = ((await import(moduleUrl)) as { handler?: (event: unknown) => Promise<unknown> }).handler;
if (typeof loaded !== 'function') throw new Error(`${moduleUrl} does not export a handler function`);
const handler = scope.bind(loaded);

process.on('message', ({ id, event }: Invocation) => {
  handler(event).then(
    (result) => send({ id, ok: true, result }),
    (err: unknown) => {
      const error = err instanceof Error ? err : new Error(String(err));
      send({ id, ok: false, errorType: error.name, errorMessage: error.message });
    },
  );
});
// The runtime that forked this environment went away, or stops it: so does the environment.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
send({ ready: true });
