/**
 * What a handler reads from where it runs, and how long it keeps it.
 *
 * On Lambda a handler reads its environment variables once, at cold start,
 * and keeps what it built from them (settings, SDK clients, the metrics sink,
 * the logger, the auth mode, the token secret) for the life of the process.
 * That is the *process scope*: `process.env`, nothing else.
 *
 * The local runtime runs the very same handler modules, several runtimes to
 * a process if need be (tests, embedding). Each runtime gives its handlers a
 * scope of their own, `scope.run(() => handler(event, context))`, carried
 * through every await by `AsyncLocalStorage`: its environment variables
 * (what the stack would set on the functions), where metrics go, and the
 * token secret. Whatever the core keeps "once per process" it keeps with
 * `perScope`, so it is built once per scope instead and two runtimes never
 * see each other's settings, clients, metrics or secret.
 *
 * The handlers do not know which scope they run in; nothing here is mutable
 * once a scope exists.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { HttpHandler } from '@smithy/core/protocols';
import type { NodeHttpHandlerOptions } from '@smithy/node-http-handler';
import type { MetricsSink } from './metrics.ts';

/** Environment variables, as Lambda hands them to a function. */
export type Environment = Readonly<Record<string, string | undefined>>;

export interface ScopeOptions {
  /** The environment variables the handlers read (functions/core/config.ts and the few others). */
  env: Environment;
  /** Where the handlers' metrics go. @default CloudWatch EMF when `AWS_LAMBDA_FUNCTION_NAME` is set, else nowhere */
  metrics?: MetricsSink;
  /** The token signing secret itself, instead of reading `TOKEN_SECRET_ARN` from Secrets Manager. */
  tokenSecret?: string;
  /**
   * The HTTP handler the scope's AWS SDK clients send with, given the options
   * a client would pass the SDK's own: the local runtime's, which asks IAM
   * before a request leaves (local/iam/request-handler.ts). @default the SDK's
   */
  awsRequestHandler?: (options: NodeHttpHandlerOptions) => HttpHandler;
}

const storage = new AsyncLocalStorage<Scope>();

export class Scope {
  readonly env: Environment;
  readonly metrics: MetricsSink | undefined;
  readonly tokenSecret: string | undefined;
  readonly awsRequestHandler: ScopeOptions['awsRequestHandler'];
  private readonly disposers: (() => void)[] = [];

  constructor(options: ScopeOptions) {
    this.env = options.env;
    this.metrics = options.metrics;
    this.tokenSecret = options.tokenSecret;
    this.awsRequestHandler = options.awsRequestHandler;
  }

  /** Runs `fn` (and everything it awaits or schedules) in this scope. */
  run<T>(fn: () => T): T {
    return storage.run(this, fn);
  }

  /** `fn`, always run in this scope: a handler bound to one runtime. */
  bind<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args) => this.run(() => fn(...args));
  }

  /** Registers clean-up for something built for this scope (an SDK client's sockets). */
  onDispose(fn: () => void): void {
    this.disposers.push(fn);
  }

  /** Releases what was built for this scope; for a local runtime that stops. */
  dispose(): void {
    for (const fn of this.disposers.splice(0).reverse()) fn();
  }
}

/** Lambda's scope: the process environment, read at first use (cold start). */
const processScope = new Scope({ env: process.env });

/** The scope of the invocation under way; the process scope outside any. */
export function currentScope(): Scope {
  return storage.getStore() ?? processScope;
}

/**
 * `init` once per scope, at first use: what a handler would otherwise keep in
 * a module-level variable. A throwing `init` is tried again at the next use,
 * as a failed cold-start read would be.
 */
export function perScope<T>(init: (scope: Scope) => T): () => T {
  const values = new WeakMap<Scope, { value: T }>();
  return () => {
    const scope = currentScope();
    let entry = values.get(scope);
    if (!entry) {
      entry = { value: init(scope) };
      values.set(scope, entry);
    }
    return entry.value;
  };
}
