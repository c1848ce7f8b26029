/**
 * Which project a test file belongs to is decided by what it does, and this
 * setup file (every project's) holds each file to it:
 *
 * - A **unit test** (`*.unit.test.ts`, the `unit` project, `npm run
 *   test:unit`) needs no store, server or child process: starting a process,
 *   listening on a port or opening a connection (to DynamoDB Local or anything
 *   else) throws here, and fails the file even if the code under test caught
 *   the error.
 * - Every **other test file** needs at least one of them: a file that ran all
 *   its tests without any is a unit test under the wrong name, which the
 *   fast loop would miss; it fails, asking for the rename.
 *
 * Node's own entry points are watched (the `child_process` functions,
 * `net.Server#listen` under every HTTP and WebSocket server, `net.Socket#connect`
 * under every client, `fetch` included), so no list of helpers can go stale.
 */
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, inject, type RunnerTestSuite } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `unit`: I/O is refused; `integration`: a file must do some. Set by each project in vitest.config.ts. */
    ioRule: 'unit' | 'integration';
  }
}

export const UNIT_SUFFIX = '.unit.test.ts';

/** What a file did that a unit test may not, in order. */
const seen: string[] = [];
const rule = inject('ioRule');

/** The unit rule's refusal, as thrown where the I/O was attempted. */
export class UnitTestIoError extends Error {
  override name = 'UnitTestIoError';
}

function watch(what: string): void {
  seen.push(what);
  if (rule === 'unit') {
    throw new UnitTestIoError(
      `a unit test (*${UNIT_SUFFIX}) needs no store, server or child process, but this one tried to ${what}: ` +
        'move the test to a file without ".unit" in its name (docs/contributing/testing.md#unit-tests)',
    );
  }
}

/** Takes what was seen so far (the guard's own test uses it to check the guard, then leaves nothing behind). */
export function takeSeen(): string[] {
  return seen.splice(0);
}

type ProcessFunction = 'spawn' | 'spawnSync' | 'exec' | 'execSync' | 'execFile' | 'execFileSync' | 'fork';
const PROCESS_FUNCTIONS: ProcessFunction[] = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'];

// A test process may load this module more than once (one module graph per file); wrap Node's functions once.
const WRAPPED = Symbol.for('roster.io-rule');
const registry = globalThis as { [WRAPPED]?: { watch: (what: string) => void } };
if (registry[WRAPPED]) {
  registry[WRAPPED].watch = watch;
} else {
  const hook = { watch };
  registry[WRAPPED] = hook;
  const mutable = childProcess as unknown as Record<ProcessFunction, (...args: unknown[]) => unknown>;
  for (const name of PROCESS_FUNCTIONS) {
    const original = mutable[name];
    const wrapped = function (this: unknown, ...args: unknown[]) {
      hook.watch(`start a child process (${name} ${String(args[0])})`);
      return original.apply(this, args);
    };
    // `promisify(execFile)` resolves with `{ stdout, stderr }` through the original's custom form; keep it, watched too.
    const custom = (original as unknown as Record<symbol, unknown>)[promisify.custom];
    if (typeof custom === 'function') {
      Object.defineProperty(wrapped, promisify.custom, {
        value: function (this: unknown, ...args: unknown[]) {
          hook.watch(`start a child process (${name} ${String(args[0])})`);
          return (custom as (...a: unknown[]) => unknown).apply(this, args);
        },
      });
    }
    mutable[name] = wrapped;
  }
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    hook.watch('listen on a port');
    return (listen as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof listen;
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    hook.watch(`open a connection (${describeTarget(args[0])})`);
    return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof connect;
  // ESM importers of node:child_process see the wrapped functions too.
  syncBuiltinESMExports();
}

function describeTarget(target: unknown): string {
  if (Array.isArray(target)) return describeTarget(target[0]);
  if (typeof target === 'object' && target !== null) {
    const { host, port, path } = target as { host?: string; port?: number; path?: string };
    return path ?? `${host ?? 'localhost'}:${String(port)}`;
  }
  return String(target);
}

/** True when every test of the file ran: a filtered run (`-t`, `.only` elsewhere) proves nothing about the file. */
function ranEverything(suite: RunnerTestSuite): boolean {
  return suite.tasks.every((task) => task.mode === 'run' && (task.type !== 'suite' || ranEverything(task)));
}

// Vitest passes a hook its fixtures first (none here), the file second.
// eslint-disable-next-line no-empty-pattern
afterAll(({}, suite) => {
  if (rule === 'unit') {
    // Thrown where it happened already; this catches a refusal the code under test swallowed.
    if (seen.length > 0) throw new UnitTestIoError(`a unit test did what it may not: ${seen.join('; ')}`);
  } else if (seen.length === 0 && ranEverything(suite)) {
    throw new Error(
      `${suite.name} started no process or server and opened no connection: it is a unit test; ` +
        `rename it to *${UNIT_SUFFIX} so that npm run test:unit runs it (docs/contributing/testing.md#unit-tests)`,
    );
  }
});
