/**
 * Roster's fan-out scenario: `registrations` registrations, one at a time,
 * to `subscribers` WebSocket subscribers of one cluster; for each, the time
 * until the last (and the median) subscriber has its event, and the CPU each
 * process spends per delivered message. Timed by the loop etcd's fan-out
 * (etcd.ts) uses too (fanout.ts).
 */
import { fanoutResult, timeFanout, type FanoutResult } from './fanout.ts';
import { LoadClient, mustRegister } from './load-client.ts';
import { rosterCpuMeter, uid, type Progress, type RosterTarget } from './scenario.ts';
import { arrivalsAt, closeAll, openSubscribers } from './subscriber.ts';

export async function rosterFanout(target: RosterTarget, options: { subscribers: number; registrations: number; timeoutMs: number }, progress: Progress): Promise<FanoutResult> {
  const clusterId = uid(`fo${options.subscribers}`);
  const http = new LoadClient(target.httpUrl, 4);
  progress(`fan-out: opening ${options.subscribers} WebSocket subscribers`);
  const subscribers = await openSubscribers(target.wsUrl, clusterId, options.subscribers, { parallel: options.subscribers > 1000 ? 50 : 25 });
  try {
    const cpu = rosterCpuMeter(target);
    await cpu.measureIdle(2000);
    progress(`fan-out: ${options.registrations} registrations → ${options.subscribers} subscribers`);
    const register = async (i: number) => {
      await mustRegister(http, clusterId, `r${i}`, 3600);
      return `r${i}`;
    };
    const timed = await timeFanout(options.registrations, options.timeoutMs, register, (nodeId, timeoutMs) => arrivalsAt(subscribers, 'NODE_REGISTERED', nodeId, timeoutMs), cpu);
    return fanoutResult(options.subscribers, options.registrations, timed, cpu.end(timed.messages));
  } finally {
    await closeAll(subscribers);
    http.close();
  }
}
