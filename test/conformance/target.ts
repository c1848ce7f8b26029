/**
 * What the conformance suite runs against.
 *
 * By default it spawns the local runtime (`local/main.ts`, with the shared
 * DynamoDB Local of the vitest global setup and a table of its own). With
 * `ROSTER_OUTPUTS=cdk-outputs.json` it reads `{ "<Stack>": { HttpApiUrl,
 * WebSocketUrl, TableName } }` (the first stack) and runs the very same cases
 * against that deployment (AWS or LocalStack). Timing bounds then come from
 * `ROSTER_SWEEP_INTERVAL_SECONDS`, `ROSTER_DISCONNECT_GRACE_SECONDS` and
 * `ROSTER_DELIVERY_SECONDS` (defaults 1, 2 and 2). A deployment requires
 * tokens: `ROSTER_TOKEN` must hold an admin token for every cluster
 * (`npx roster token create --outputs cdk-outputs.json --cluster '*' --role admin`).
 */
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { spawnRuntime } from '../support/runtime.ts';

export interface Target {
  httpUrl: string;
  wsUrl: string;
  /** True for the local runtime this suite started; a few checks (exact refusal status) only hold there. */
  local: boolean;
  /** The documented parts of the detection bound, in ms. */
  sweepIntervalMs: number;
  graceMs: number;
  deliveryMs: number;
  close(): Promise<void>;
}

function seconds(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}=${raw} is not a number of seconds`);
  return value * 1000;
}

export async function openTarget(): Promise<Target> {
  const outputsFile = process.env.ROSTER_OUTPUTS;
  if (outputsFile) {
    const outputs = JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string> | undefined>;
    const stack = Object.values(outputs)[0];
    if (!stack?.HttpApiUrl || !stack.WebSocketUrl) throw new Error(`${outputsFile}: the first stack has no HttpApiUrl and WebSocketUrl outputs`);
    if (!process.env.ROSTER_TOKEN) {
      throw new Error("a deployment requires tokens: set ROSTER_TOKEN to an admin token (npx roster token create --outputs FILE --cluster '*' --role admin)");
    }
    return {
      httpUrl: stack.HttpApiUrl.replace(/\/+$/, ''),
      wsUrl: stack.WebSocketUrl.replace(/\/+$/, ''),
      local: false,
      sweepIntervalMs: seconds('ROSTER_SWEEP_INTERVAL_SECONDS', 1),
      graceMs: seconds('ROSTER_DISCONNECT_GRACE_SECONDS', 2),
      deliveryMs: seconds('ROSTER_DELIVERY_SECONDS', 2),
      close: async () => {},
    };
  }
  const runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint'), sweepInterval: 1, disconnectGrace: 2 });
  return {
    httpUrl: runtime.httpUrl,
    wsUrl: runtime.wsUrl,
    local: true,
    sweepIntervalMs: 1000,
    graceMs: 2000,
    deliveryMs: 1000,
    async close() {
      const code = await runtime.stop();
      if (code !== 0) throw new Error(`the runtime exited with ${code}\n${runtime.output()}`);
    },
  };
}
