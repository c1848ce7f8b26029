/**
 * The schedule of a robustness run: operations on the clients and faults of
 * the network and of the information center, at fixed offsets from the
 * start, generated from a seed. The generator follows each client slot and
 * part through the states its steps lead to, so every step makes sense when
 * it is due (a node is crashed only while it runs, restarted only after),
 * and every fault it starts it also ends before the run's duration is over.
 *
 * A schedule is plain data: the history's first line holds it, and a
 * regression test can pass a few steps of it by hand.
 */
import { Random } from './random.ts';

export const NODE_OPS = ['crash', 'hang', 'resume', 'restart', 'leave', 'meta'] as const;
export const WATCHER_OPS = ['join', 'leave'] as const;
export const NET_OPS = ['cut', 'delay', 'restore'] as const;
export const CENTER_OPS = [
  'store-pause',
  'store-resume',
  'store-kill',
  'store-restart',
  'runtime-kill',
  'runtime-restart',
  'posts-fail',
  'sweeper-stall',
  'poller-stall',
] as const;

export type Op = (typeof NODE_OPS)[number] | (typeof WATCHER_OPS)[number] | (typeof NET_OPS)[number] | (typeof CENTER_OPS)[number];

export interface Step {
  /** Milliseconds from the start of the schedule. */
  at: number;
  op: Op;
  /** The client slot (`n0`, `w1`) of a client or network step. */
  target?: string;
  /** A delay's latency, a stall's or failure's duration. */
  ms?: number;
  /** New metadata value (`meta`). */
  value?: string;
}

/** The kinds a run reports its counts by; `zombie` is a restart while the old process hangs. */
export const KINDS = [
  'crash',
  'hang',
  'zombie',
  'leave',
  'meta',
  'watcher',
  'cut',
  'delay',
  'store-pause',
  'store-kill',
  'runtime-kill',
  'posts-fail',
  'sweeper-stall',
  'poller-stall',
] as const;
export type Kind = (typeof KINDS)[number];

export interface ScheduleOptions {
  seed: number;
  durationMs: number;
  /** Node slots with their lease in seconds. */
  nodes: Record<string, number>;
  /** Watcher slots; the first `initialWatchers` run from the start. */
  watchers: string[];
  initialWatchers: number;
  /** Mean time between the starts of two steps. @default 1200 */
  meanGapMs?: number;
}

type SlotState = 'up' | 'hung' | 'down';

interface Sim {
  rnd: Random;
  steps: Step[];
  state: Map<string, SlotState>;
  /** A slot (or `center`, or a runtime part) takes no new step before this. */
  busy: Map<string, number>;
  lease: (slot: string) => number;
  maxLeaseMs: number;
  end: number;
}

const free = (sim: Sim, key: string, t: number): boolean => (sim.busy.get(key) ?? 0) <= t;
const upSlots = (sim: Sim, t: number, prefix: string): string[] =>
  [...sim.state].filter(([slot, s]) => slot.startsWith(prefix) && s === 'up' && free(sim, slot, t)).map(([slot]) => slot);

/** A duration in [min, max] ms that ends before the run does, or undefined if even `min` does not fit. */
function span(sim: Sim, t: number, min: number, max: number): number | undefined {
  const room = sim.end - t;
  if (room < min) return undefined;
  return sim.rnd.int(min, Math.min(max, room));
}

type Planner = (sim: Sim, t: number) => boolean;

/**
 * A node step and the step that ends it, half a second to `leases` leases
 * later; the slot then rests for `settleMs` (a new process starting, a zombie
 * being told it was superseded).
 */
const nodePair =
  (start: Op, end: Op, leases: number, settleMs: (sim: Sim, slot: string) => number): Planner =>
  (sim, t) => {
    const slot = sim.rnd.shuffle(upSlots(sim, t, 'n'))[0];
    const d = slot === undefined ? undefined : span(sim, t, 500, Math.round(leases * sim.lease(slot)));
    if (slot === undefined || d === undefined) return false;
    sim.steps.push({ at: t, op: start, target: slot }, { at: t + d, op: end, target: slot });
    sim.busy.set(slot, t + d + settleMs(sim, slot));
    return true;
  };

/** A node's process crashes (SIGKILL); a new incarnation starts later. */
const crash = nodePair('crash', 'restart', 3, () => 2000);
/** A node hangs (SIGSTOP) and continues (SIGCONT). */
const hang = nodePair('hang', 'resume', 2.5, () => 1000);
/** A node hangs and is replaced by a new incarnation while it hangs. */
const zombie = nodePair('hang', 'restart', 2.5, (sim, slot) => 2000 + 2 * sim.lease(slot));
/** A node deregisters and stops (the SDK's stop()); a new incarnation starts later. */
const leave = nodePair('leave', 'restart', 2, () => 2000);

const meta: Planner = (sim, t) => {
  const slot = sim.rnd.shuffle(upSlots(sim, t, 'n'))[0];
  if (slot === undefined) return false;
  sim.steps.push({ at: t, op: 'meta', target: slot, value: `v${sim.rnd.int(1, 9999)}` });
  sim.busy.set(slot, t + 500);
  return true;
};

/** A watcher leaves and joins again, or one that is not running joins. */
const watcher: Planner = (sim, t) => {
  const slots = sim.rnd.shuffle([...sim.state.keys()].filter((s) => s.startsWith('w') && free(sim, s, t)));
  const slot = slots[0];
  if (slot === undefined) return false;
  if (sim.state.get(slot) === 'down') {
    sim.steps.push({ at: t, op: 'join', target: slot });
    sim.state.set(slot, 'up');
    sim.busy.set(slot, t + 2000);
    return true;
  }
  const d = span(sim, t, 500, 8000);
  if (d === undefined) return false;
  sim.steps.push({ at: t, op: 'leave', target: slot }, { at: t + d, op: 'join', target: slot });
  sim.busy.set(slot, t + d + 2000);
  return true;
};

/** A client's network is cut, or delayed by 50–1500 ms, and restored. */
const network =
  (kind: 'cut' | 'delay'): Planner =>
  (sim, t) => {
    const slot = sim.rnd.shuffle([...upSlots(sim, t, 'n'), ...upSlots(sim, t, 'w')])[0];
    const d = slot === undefined ? undefined : span(sim, t, 300, slot.startsWith('n') ? Math.round(2.5 * sim.lease(slot)) : 8000);
    if (slot === undefined || d === undefined) return false;
    sim.steps.push(
      kind === 'cut' ? { at: t, op: 'cut', target: slot } : { at: t, op: 'delay', target: slot, ms: sim.rnd.int(50, 1500) },
      { at: t + d, op: 'restore', target: slot },
    );
    sim.busy.set(slot, t + d + 500);
    return true;
  };

/**
 * One outage of the store or the runtime at a time: each needs the other to
 * come back, and the harness serialises them. The gap after one leaves time
 * for the restarted part to be ready.
 */
const outage =
  (start: Op, stop: Op, min: number, max: (sim: Sim) => number, recoveryMs: number): Planner =>
  (sim, t) => {
    if (!free(sim, 'center', t)) return false;
    const d = span(sim, t, min, max(sim));
    if (d === undefined) return false;
    sim.steps.push({ at: t, op: start }, { at: t + d, op: stop });
    sim.busy.set('center', t + d + recoveryMs);
    return true;
  };

/** A fault of a runtime part for `ms`, ending by itself. */
const partFault =
  (op: Op, min: number, max: (sim: Sim) => number): Planner =>
  (sim, t) => {
    if (!free(sim, op, t)) return false;
    const d = span(sim, t, min, max(sim));
    if (d === undefined) return false;
    sim.steps.push({ at: t, op, ms: d });
    sim.busy.set(op, t + d + 500);
    return true;
  };

const PLANNERS: Record<Kind, Planner> = {
  crash,
  hang,
  zombie,
  leave,
  meta,
  watcher,
  cut: network('cut'),
  delay: network('delay'),
  'store-pause': outage('store-pause', 'store-resume', 500, (s) => Math.round(2.5 * s.maxLeaseMs), 3000),
  'store-kill': outage('store-kill', 'store-restart', 0, (s) => 2 * s.maxLeaseMs, 8000),
  'runtime-kill': outage('runtime-kill', 'runtime-restart', 0, (s) => 2 * s.maxLeaseMs, 8000),
  'posts-fail': partFault('posts-fail', 500, () => 5000),
  'sweeper-stall': partFault('sweeper-stall', 1000, (s) => 2 * s.maxLeaseMs),
  'poller-stall': partFault('poller-stall', 1000, () => 8000),
};

/** How often each kind is picked once every kind had its turn. */
const WEIGHTS: readonly (readonly [Kind, number])[] = [
  ['crash', 3],
  ['hang', 2],
  ['zombie', 1],
  ['leave', 2],
  ['meta', 3],
  ['watcher', 2],
  ['cut', 3],
  ['delay', 2],
  // Faults of the information center are rarer: each degrades every client for seconds, and the
  // detection bounds can only be measured between them.
  ['store-pause', 0.3],
  ['store-kill', 0.3],
  ['runtime-kill', 0.3],
  ['posts-fail', 0.3],
  ['sweeper-stall', 0.3],
  ['poller-stall', 0.3],
];

/**
 * Generates the schedule of a seed. Every kind gets its turn early, in a
 * seeded order (so a run of a minute or more has them all); the other steps
 * pick their kind by weight. A step that does not fit (no free slot, no time left)
 * is passed over.
 */
export function generateSchedule(options: ScheduleOptions): Step[] {
  const rnd = new Random(options.seed);
  const leases = options.nodes;
  const sim: Sim = {
    rnd,
    steps: [],
    state: new Map<string, SlotState>([
      ...Object.keys(leases).map((n) => [n, 'up'] as const),
      ...options.watchers.map((w, i) => [w, i < options.initialWatchers ? 'up' : 'down'] as const),
    ]),
    busy: new Map(),
    lease: (slot) => (leases[slot] ?? 5) * 1000,
    maxLeaseMs: Math.max(...Object.values(leases)) * 1000,
    end: options.durationMs,
  };
  const turns: Kind[] = rnd.shuffle(KINDS);
  const meanGap = options.meanGapMs ?? 1200;
  for (let t = rnd.int(200, meanGap); t < options.durationMs; t += Math.max(200, Math.round(-Math.log(1 - rnd.next()) * meanGap))) {
    // Turns are taken at about every other step, so they spread over the first half of a minute-long run.
    const due = rnd.next() < 0.4 ? turns.findIndex((kind) => PLANNERS[kind](sim, t)) : -1;
    if (due >= 0) {
      turns.splice(due, 1);
      continue;
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      if (PLANNERS[rnd.weighted(WEIGHTS)](sim, t)) break;
    }
  }
  return sim.steps.sort((a, b) => a.at - b.at);
}

/** How many steps of each kind a schedule has. */
export function countKinds(steps: readonly Step[]): Record<Kind, number> {
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
  const hung = new Set<string>();
  for (const step of steps) {
    const target = step.target ?? '';
    if (step.op === 'hang') hung.add(target);
    if (step.op === 'resume') {
      counts.hang++;
      hung.delete(target);
    } else if (step.op === 'restart' && hung.has(target)) {
      counts.zombie++;
      hung.delete(target);
    } else if (step.op === 'crash' || step.op === 'meta' || step.op === 'cut' || step.op === 'delay') counts[step.op]++;
    else if (step.op === 'leave') counts[target.startsWith('w') ? 'watcher' : 'leave']++;
    else if (step.op === 'store-pause' || step.op === 'store-kill' || step.op === 'runtime-kill') counts[step.op]++;
    else if (step.op === 'posts-fail' || step.op === 'sweeper-stall' || step.op === 'poller-stall') counts[step.op]++;
  }
  return counts;
}
