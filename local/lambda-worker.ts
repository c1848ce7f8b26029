/**
 * One execution environment of a function the local Lambda Invoke API runs
 * (local/lambda-api.ts): a child process that loads the handler module with
 * the function's environment, as a Lambda cold start does, and runs one
 * invocation at a time. Spoken to over the IPC channel `fork` opens.
 *
 *   node --import tsx local/lambda-worker.ts <handler module file: URL>
 */

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
const handler = ((await import(moduleUrl)) as { handler?: (event: unknown) => Promise<unknown> }).handler;
if (typeof handler !== 'function') throw new Error(`${moduleUrl} does not export a handler function`);

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
