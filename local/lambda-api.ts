/**
 * Lambda's `Invoke` API, locally, for the one function the handlers invoke
 * themselves: the fan-out's page function (functions/stream/fanout-page.ts).
 * The fan-out hands each page of a large cluster's subscribers to it with the
 * real `LambdaClient` (`InvokeCommand`, RequestResponse), exactly as on AWS;
 * here each function runs in a small pool of child processes — concurrent
 * execution environments, each a cold start of the handler module with the
 * function's environment, one invocation at a time — so the pages of an
 * event are posted in parallel, on other cores than the runtime's own.
 *
 * Wire shape (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html):
 * `POST /2015-03-31/functions/{name}/invocations` with the event as the body;
 * 200 with the result, or 200 with `X-Amz-Function-Error: Unhandled` and
 * `{errorType, errorMessage}` when the handler threw; 404
 * `ResourceNotFoundException` for an unknown function. Only RequestResponse
 * invocations. It listens on its own loopback-only port.
 */
import { availableParallelism } from 'node:os';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fork, type ChildProcess } from 'node:child_process';
import { BodyTooLargeError, readBody } from './http-api.ts';
import { gatewayId } from './ids.ts';
import type { RuntimeLog } from './log.ts';
import { listenOnLoopback } from './loopback.ts';
import { scriptToRun } from './modules.ts';
import type { GateConfig } from './iam/gate.ts';

/** Lambda's payload limit for a RequestResponse invocation. */
export const INVOKE_LIMIT_BYTES = 6 * 1024 * 1024;

export interface LocalFunction {
  /** `file:` URL of the handler module (it exports `handler`). */
  moduleUrl: string;
  /** The function's environment (its configuration). */
  env: Record<string, string>;
  /** IAM for the function's AWS calls, as in the runtime's own process (local/iam/gate.ts). @default none */
  gate?: GateConfig;
  /** Execution environments. @default one per core but one, at least one */
  concurrency?: number;
  /** An invocation that runs longer ends its environment, as Lambda's timeout does. @default 60000 */
  timeoutMs?: number;
}

export interface LambdaApi {
  /** The endpoint for the handlers' `LambdaClient` (`LAMBDA_ENDPOINT`). */
  url: string;
  close(): Promise<void>;
}

type Outcome = { ok: true; result: unknown } | { ok: false; errorType: string; errorMessage: string };

interface Environment {
  worker: ChildProcess;
  ready: Promise<void>;
  busy?: { id: number; settle: (outcome: Outcome) => void; timer?: NodeJS.Timeout };
}

const WORKER = scriptToRun('local/lambda-worker.ts');

/** A function's execution environments; invocations beyond them wait their turn. */
class Pool {
  private readonly envs: Environment[] = [];
  private readonly waiting: { event: unknown; settle: (outcome: Outcome) => void }[] = [];
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly fn: Required<Omit<LocalFunction, 'gate'>> & Pick<LocalFunction, 'gate'>,
    private readonly log: RuntimeLog,
  ) {}

  invoke(event: unknown): Promise<Outcome> {
    return new Promise((settle) => {
      this.waiting.push({ event, settle });
      this.pump();
    });
  }

  private spawn(): Environment {
    // Each environment loads the modules the way the runtime does (from the bundle, or through tsx), with only the function's environment.
    const worker = fork(WORKER.file, [this.fn.moduleUrl, JSON.stringify(this.fn.gate ?? null)], { execArgv: WORKER.execArgv, env: this.fn.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const env: Environment = {
      worker,
      ready: new Promise((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      }),
    };
    worker.on('message', (msg: { id?: number; ok?: boolean; result?: unknown; errorType?: string; errorMessage?: string }) => {
      if (msg.id === undefined || env.busy?.id !== msg.id) return;
      const { settle, timer } = env.busy;
      clearTimeout(timer);
      env.busy = undefined;
      settle(msg.ok ? { ok: true, result: msg.result } : { ok: false, errorType: msg.errorType ?? 'Error', errorMessage: msg.errorMessage ?? 'failed' });
      this.pump();
    });
    worker.on('error', (err) => this.log.warn('local Lambda: an execution environment failed', { error: err }));
    // Its IPC channel must not keep the runtime's process alive.
    worker.unref();
    worker.channel?.unref();
    worker.once('exit', () => this.retire(env, 'Runtime.ExitError', 'the execution environment exited'));
    this.envs.push(env);
    return env;
  }

  private retire(env: Environment, errorType: string, errorMessage: string): void {
    const index = this.envs.indexOf(env);
    if (index >= 0) this.envs.splice(index, 1);
    if (env.busy) {
      clearTimeout(env.busy.timer);
      env.busy.settle({ ok: false, errorType, errorMessage });
      env.busy = undefined;
    }
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.waiting.length > 0) {
      const env = this.envs.find((e) => !e.busy) ?? (this.envs.length < this.fn.concurrency ? this.spawn() : undefined);
      if (!env) return;
      const { event, settle } = this.waiting.shift() as { event: unknown; settle: (outcome: Outcome) => void };
      const id = this.nextId++;
      env.busy = { id, settle };
      env.ready.then(
        () => {
          // As on Lambda, the timeout counts from the invocation, not from the environment's start (its init).
          if (env.busy?.id !== id) return;
          env.busy.timer = setTimeout(() => {
            this.retire(env, 'Sandbox.Timedout', `Task timed out after ${this.fn.timeoutMs / 1000} seconds`);
            env.worker.kill('SIGKILL');
          }, this.fn.timeoutMs);
          env.worker.send({ id, event });
        },
        (err: unknown) => this.retire(env, 'Runtime.InitError', err instanceof Error ? err.message : String(err)),
      );
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const { settle } of this.waiting.splice(0)) settle({ ok: false, errorType: 'Runtime.ExitError', errorMessage: 'the local runtime is stopping' });
    await Promise.all(
      this.envs.splice(0).map(async (env) => {
        if (env.worker.exitCode !== null || env.worker.signalCode !== null) return;
        const exited = new Promise((resolve) => env.worker.once('exit', resolve));
        env.worker.kill('SIGTERM');
        await exited;
      }),
    );
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body ?? null);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-amzn-RequestId': gatewayId(), ...headers });
  res.end(text);
}

const PATH = /^\/2015-03-31\/functions\/([^/?]+)\/invocations$/;

async function handle(poolOf: (name: string) => Pool | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const name = decodeURIComponent(PATH.exec((req.url ?? '').split('?')[0] ?? '')?.[1] ?? '');
  const pool = req.method === 'POST' ? poolOf(name) : undefined;
  if (!pool) {
    req.resume();
    return send(res, 404, { Type: 'User', message: `Function not found: ${name}` }, { 'x-amzn-ErrorType': 'ResourceNotFoundException' });
  }
  const type = req.headers['x-amz-invocation-type'] ?? 'RequestResponse';
  if (type !== 'RequestResponse') {
    req.resume();
    return send(res, 400, { Type: 'User', message: `the local runtime supports RequestResponse invocations only, not ${String(type)}` }, { 'x-amzn-ErrorType': 'InvalidParameterValueException' });
  }
  let event: unknown;
  try {
    const body = await readBody(req, INVOKE_LIMIT_BYTES);
    event = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch (err) {
    const tooLarge = err instanceof BodyTooLargeError;
    return send(res, tooLarge ? 413 : 400, { Type: 'User', message: tooLarge ? 'Request must be smaller than 6291456 bytes' : 'Could not parse request body into json' }, {
      'x-amzn-ErrorType': tooLarge ? 'RequestTooLargeException' : 'InvalidRequestContentException',
    });
  }
  const outcome = await pool.invoke(event);
  if (outcome.ok) send(res, 200, outcome.result, { 'X-Amz-Executed-Version': '$LATEST' });
  else send(res, 200, { errorType: outcome.errorType, errorMessage: outcome.errorMessage }, { 'X-Amz-Executed-Version': '$LATEST', 'X-Amz-Function-Error': 'Unhandled' });
}

/**
 * Starts the Invoke API for `functions` (by name) on a random loopback port.
 * A map may be filled after the start; each function's execution
 * environments start at its first invocation, as on Lambda.
 */
export async function startLambdaApi(functions: ReadonlyMap<string, LocalFunction> | Record<string, LocalFunction>, log: RuntimeLog): Promise<LambdaApi> {
  const lookup = functions instanceof Map ? (name: string) => functions.get(name) : (name: string) => (functions as Record<string, LocalFunction>)[name];
  const pools = new Map<string, Pool>();
  const poolOf = (name: string): Pool | undefined => {
    let pool = pools.get(name);
    const fn = pool ? undefined : lookup(name);
    if (!pool && fn) {
      pool = new Pool({ concurrency: Math.max(1, availableParallelism() - 1), timeoutMs: 60_000, ...fn }, log);
      pools.set(name, pool);
    }
    return pool;
  };
  const server: Server = createServer((req, res) => {
    handle(poolOf, req, res).catch((err: unknown) => {
      log.error('local Lambda: an invocation failed', { error: err as Error });
      send(res, 500, { Type: 'Service', message: 'Internal error' }, { 'x-amzn-ErrorType': 'ServiceException' });
    });
  });
  const listening = await listenOnLoopback(server);
  return {
    url: listening.url,
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()));
      await listening.close();
    },
  };
}
