/**
 * The setup several test files share: a spawned runtime for a `describe`
 * block, clean-ups that run after each test (newest first), and TCP proxies
 * in front of the runtime for fault injection.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startProxy, type TcpProxy } from './proxy.ts';
import { spawnRuntime, type SpawnRuntimeOptions, type SpawnedRuntime } from './runtime.ts';

export interface RuntimeFixture {
  /** The runtime; its fields are filled in by `beforeAll`, so use them inside tests only. */
  runtime: SpawnedRuntime;
  /** What to undo after the test; run newest first. */
  cleanup: (() => Promise<void>)[];
  /** A proxy to the runtime's port, closed after the test. */
  proxy(): Promise<TcpProxy>;
}

/** Registers the hooks of a spawned runtime (call it in a `describe` block or at the top of a file). */
export function runtimeFixture(options: SpawnRuntimeOptions): RuntimeFixture {
  const runtime = {} as SpawnedRuntime;
  const cleanup: (() => Promise<void>)[] = [];
  let started = false;
  beforeAll(async () => {
    Object.assign(runtime, await spawnRuntime(options));
    started = true;
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  afterAll(async () => {
    if (started) await runtime.stop();
  });
  return {
    runtime,
    cleanup,
    async proxy() {
      const p = await startProxy({ targetPort: runtime.port });
      cleanup.push(() => p.close());
      return p;
    },
  };
}
