/**
 * Stopping a lease while a registration is in flight: the registration is
 * waited for, never abandoned. A request the client abandons still reaches
 * the server and may land after the deregistration that follows, bringing
 * a stopped node back for a lease (roster robustness, seed 1011: a node that
 * left was listed UP again after its deregistration was acknowledged).
 */
import { RosterClientError, exponentialBackoff, type Node } from '@roster/client';
import { expect, test } from 'vitest';
import { Lease } from '../../client/src/lease.ts';
import { nodeRecord } from '../support/nodes.ts';

test('stop() waits for the registration in flight (which cannot be aborted), then resolves', async () => {
  let finish: (node: Node) => void = () => undefined;
  let registrations = 0;
  const lease = new Lease({
    backoff: exponentialBackoff(),
    transport: {
      // Like fetch: a request given a signal fails when it is aborted.
      register: (...args: unknown[]) => {
        registrations++;
        const signal = args[0] instanceof AbortSignal ? args[0] : undefined;
        return new Promise((resolve, reject) => {
          finish = resolve;
          signal?.addEventListener('abort', () => reject(new RosterClientError('CLOSED', 'aborted')));
        });
      },
      keepalive: () => Promise.reject(new RosterClientError('NETWORK', 'not in this test')),
    },
  });
  const registered = lease.ensureRegistered();
  let stopped = false;
  const stopping = lease.stop().then(() => (stopped = true));
  await new Promise((resolve) => setImmediate(resolve));
  expect(stopped).toBe(false);
  expect(registrations).toBe(1);
  finish(nodeRecord('c', 'n', 1));
  await stopping;
  await expect(registered).resolves.toBeUndefined();
  expect(stopped).toBe(true);
});
