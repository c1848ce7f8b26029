/**
 * A cluster of `roster agent` processes against the local runtime: every
 * agent's cache follows the cluster when a member is killed, restarted or
 * stopped.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from '../support/wait.ts';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { killAgent, serverList, ids, startAgent, uniqueCluster, type AgentProcess } from './helpers.ts';

const LEASE_S = 10;
const GRACE_S = 1;
const SWEEP_S = 0.5;
/** The documented detection bound is lease + grace + sweep (+ delivery); the deadline is generous on purpose. */
const DETECTION_DEADLINE_MS = (LEASE_S + GRACE_S + SWEEP_S) * 1000 + 15_000;

describe('a cluster of agent processes', () => {
  let runtime: SpawnedRuntime;
  const clusterId = uniqueCluster('agents');
  const agents = new Map<string, AgentProcess>();
  const members = ['a1', 'a2', 'a3', 'a4'];

  const start = (nodeId: string) =>
    agents.set(
      nodeId,
      startAgent({ httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId, nodeId, args: ['--lease', String(LEASE_S), '--meta', `name=${nodeId}`] }),
    );
  const others = (nodeId: string) => [...agents.values()].filter((a) => a.nodeId !== nodeId);
  const describeViews = () => [...agents.values()].map((a) => `${a.nodeId}: ${JSON.stringify(a.view())}`).join('; ');

  beforeAll(async () => {
    runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint'), sweepInterval: SWEEP_S, disconnectGrace: GRACE_S });
  });

  afterAll(async () => {
    await Promise.all([...agents.values()].map((a) => killAgent(a)));
    await runtime?.stop();
  });

  it('every agent sees the whole cluster', async () => {
    for (const id of members) start(id);
    await eventually(
      () => {
        for (const agent of agents.values()) expect(agent.view(), describeViews()).toEqual(members);
      },
      45_000,
    );
    expect(ids((await serverList(runtime.httpUrl, clusterId)).nodes)).toEqual(members);
  });

  it('a SIGKILLed agent drops out of every other cache, and comes back everywhere when restarted', async () => {
    const victim = agents.get('a2');
    expect(victim).toBeDefined();
    await killAgent(victim!, 'SIGKILL');
    const survivors = members.filter((id) => id !== 'a2');

    await eventually(
      () => {
        for (const agent of others('a2')) expect(agent.view(), describeViews()).toEqual(survivors);
      },
      DETECTION_DEADLINE_MS,
    );
    // The bound connection dropped, so the server knew why it went down.
    for (const agent of others('a2')) {
      expect(agent.events()).toContainEqual(expect.objectContaining({ type: 'down', nodeId: 'a2', reason: 'disconnected' }));
    }

    start('a2');
    await eventually(
      () => {
        for (const agent of agents.values()) expect(agent.view(), describeViews()).toEqual(members);
      },
      45_000,
    );
    expect(ids((await serverList(runtime.httpUrl, clusterId)).nodes)).toEqual(members);
  });

  it('SIGTERM deregisters the agent, which exits 0', async () => {
    const leaving = agents.get('a4');
    expect(leaving).toBeDefined();
    expect(await killAgent(leaving!, 'SIGTERM')).toBe(0);
    agents.delete('a4');

    await eventually(
      () => {
        for (const agent of agents.values()) expect(agent.view(), describeViews()).toEqual(['a1', 'a2', 'a3']);
      },
      20_000,
    );
    for (const agent of agents.values()) {
      expect(agent.events()).toContainEqual(expect.objectContaining({ type: 'down', nodeId: 'a4', reason: 'deregistered' }));
    }
  });
});
