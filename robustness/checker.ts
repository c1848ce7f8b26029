/**
 * The checker: six invariants over the history of a run (docs/measured/robustness.md
 * states them with their bounds). Each is reported with the number of cases
 * it checked, its violations and the first of them, so a failed run says
 * what went wrong where, and the history says the rest.
 */
import { cpus } from 'node:os';
import { AMNESTY_PERIOD_MS } from '../functions/core/sweeper.ts';
import type { HistoryRecord, NodeSnap, RequestRecord } from './history.ts';
import { overlaps, Timeline, type Proc, type Settings } from './timeline.ts';

export interface CheckSettings extends Settings {
  /** Added to every time bound: scheduling delays of a busy machine. */
  marginMs: number;
}

export interface Violation {
  at: number;
  what: string;
}

export interface InvariantResult {
  name: string;
  checked: number;
  violations: number;
  first?: Violation;
  /** Invariant 1 only: list reads excused by an outage of the information center. */
  excused?: { count: number; first?: Violation };
}

export interface Summary {
  count: number;
  p50?: number;
  p99?: number;
  max?: number;
}

export interface CheckResult {
  ok: boolean;
  invariants: InvariantResult[];
  /** Measured from the fault to the watcher's cache without the node (cases whose bound was not extended by a degraded center). */
  detection: { crash: Summary; hang: Summary };
  /** From the quiet period's start (or the server list's last change) to each client's cache equalling the server's list. */
  convergence: Summary;
  bounds: { crashMs: number; hangMs: Record<string, number>; convergenceMs: number; marginMs: number };
}

class Tally {
  checked = 0;
  violations = 0;
  first: Violation | undefined;
  constructor(readonly name: string) {}
  check(ok: boolean, at: number, what: () => string): void {
    this.checked++;
    if (ok) return;
    this.violations++;
    this.first ??= { at, what: what() };
  }
  result(): InvariantResult {
    return { name: this.name, checked: this.checked, violations: this.violations, ...(this.first ? { first: this.first } : {}) };
  }
}

export function summarize(values: number[]): Summary {
  if (values.length === 0) return { count: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) };
}

const iso = (t: number) => new Date(t).toISOString().slice(11, 23);
const label = (s: NodeSnap) => `${s.id}#${s.inc}`;
const has = (cache: NodeSnap[] | undefined, node: string, inc: number | undefined) => (cache ?? []).some((s) => s.id === node && s.inc === inc);

/** The time a DOWN report says the node's lease ended. */
const claimOf = (snap: NodeSnap, reportedAt: number): number => (snap.st === 'DOWN' ? snap.exp : reportedAt);

/** 1. No false DOWN: no report of a protected node as DOWN (timeline.ts defines protection). */
function noFalseDown(tl: Timeline): InvariantResult {
  const tally = new Tally('no false DOWN');
  const excused = { count: 0, first: undefined as Violation | undefined };
  const judge = (snap: NodeSnap, at: number, by: string, listRead: boolean) => {
    const p = tl.procOf(snap.id, snap.inc);
    if (!p) return;
    if (snap.why === 'deregistered') {
      tally.check(p.deregs.some((d) => d <= at), at, () => `${by} reported ${label(snap)} deregistered at ${iso(at)}, but it never deregistered`);
      return;
    }
    const claim = claimOf(snap, at);
    const strict = tl.protectedAt(p, claim - 50);
    const outage = !strict && tl.outageProtectedAt(p, claim);
    const what = () =>
      `${by} reported ${label(snap)} DOWN (${snap.why ?? 'gone'}, rev ${snap.rev}) at ${iso(at)}; its lease ended ${iso(claim)}, when it was ` +
      (strict ? 'alive with every keepalive acknowledged' : 'alive but cut off from the information center by an outage');
    if (listRead && outage) {
      excused.count++;
      excused.first ??= { at, what: what() };
      tally.check(true, at, what);
      return;
    }
    tally.check(!strict && !outage, at, what);
  };
  for (const q of tl.procs.values()) {
    for (const ev of q.events) if (ev.type === 'down') judge(ev.n, ev.t, `${q.id}'s SDK (down, ${ev.src})`, false);
    for (let i = 1; i < q.caches.length; i++) {
      const prev = q.caches[i - 1]?.nodes ?? [];
      const cur = q.caches[i] as { t: number; nodes: NodeSnap[] };
      for (const s of prev) {
        if (cur.nodes.some((n) => n.id === s.id && n.inc >= s.inc)) continue;
        const told = q.events.some((e) => e.type === 'down' && e.n.id === s.id && e.n.inc === s.inc && Math.abs(e.t - cur.t) <= 200);
        if (!told) judge({ ...s, st: 'UP' }, cur.t, `${q.id}'s cache (change)`, false);
      }
    }
  }
  for (const r of tl.requests) {
    for (const s of r.list?.nodes ?? []) if (s.st === 'DOWN') judge(s, r.t, `a list read by ${r.c}`, true);
  }
  for (const w of tl.server) if (w.type === 'NODE_DOWN') judge(w.n, w.at, `the information center (NODE_DOWN in its stream)`, false);
  return { ...tally.result(), excused };
}

/** How long after a degraded window ends a detection may still take: an amnesty lease, or a refresh for a lost event. */
const afterDegraded = (tl: Timeline, leaseMs: number): number => {
  const { sweepMs, deliveryMs, refreshMs } = tl.settings;
  return Math.max(leaseMs + AMNESTY_PERIOD_MS + 2 * sweepMs + deliveryMs + 2000, 1.1 * refreshMs + deliveryMs);
};

/**
 * What the history says about a detection that took too long: an amnesty
 * lease the sweeper granted the node meanwhile although no fault of the
 * information center was injected (it found the store slow or failing), and
 * the machine's load.
 */
function evidence(tl: Timeline, p: Proc, from: number, to: number): string {
  const extended = tl.server.filter((w) => w.type === 'EXTENDED' && w.n.id === p.node && w.n.inc === p.inc && w.t >= from && w.t <= to);
  const load = tl.loadAt(from);
  const parts = [
    ...(extended.length > 0 ? [`the sweeper granted it an amnesty lease at ${iso(extended[0]?.t ?? 0)} (it found the store slow or failing)`] : []),
    ...(load === undefined ? [] : [`load average ${load.toFixed(1)} on ${cpus().length} cores`]),
  ];
  return parts.length > 0 ? `; ${parts.join('; ')}` : '';
}

/** An observer that saw the whole window unfaulted: running, connected, on an intact network. */
function observes(tl: Timeline, q: Proc, from: number, to: number): boolean {
  if (q.readyAt === undefined || q.readyAt > to) return false;
  if ((q.deadAt !== undefined && q.deadAt <= to) || (q.leaveAt !== undefined && q.leaveAt <= to)) return false;
  if (q.hangs.some((h) => overlaps(h, [from, to]))) return false;
  if (q.node !== undefined && tl.superseded(q, to)) return false;
  return !(tl.netFaults.get(q.slot) ?? []).some((w) => overlaps(w, [from, to]));
}

/** 2. Detection: a crashed or hung node is gone from every observing client's cache within its bound. */
function detection(tl: Timeline, marginMs: number, measured: { crash: number[]; hang: number[] }): InvariantResult {
  const tally = new Tally('detection within bounds');
  const { graceMs, sweepMs, deliveryMs } = tl.settings;
  for (const act of tl.actions) {
    if ((act.op !== 'crash' && act.op !== 'hang') || act.skipped) continue;
    const p = tl.procs.get(act.on);
    if (!p?.node) continue;
    const tf = act.t;
    if (!tl.protectedAt(p, tf - 1) && !tl.outageProtectedAt(p, tf - 1)) continue;
    const bound = act.op === 'crash' ? graceMs + sweepMs + deliveryMs : p.leaseMs + sweepMs + deliveryMs;
    let deadline = tf + bound + marginMs;
    let extended = false;
    for (let moved = true; moved; ) {
      moved = false;
      for (const w of tl.degraded) {
        const later = w[1] + afterDegraded(tl, p.leaseMs) + marginMs;
        if (overlaps(w, [tf, deadline]) && later > deadline) {
          deadline = later;
          extended = moved = true;
        }
      }
    }
    // A hung node that continued before it had to be declared down may come back as itself; a deadline
    // past the end of the run cannot be checked.
    const hang = act.op === 'hang' ? p.hangs.find(([a]) => a === tf) : undefined;
    if ((hang && hang[1] < deadline) || deadline > tl.endAt) continue;
    for (const q of tl.procs.values()) {
      if (q === p || !observes(tl, q, tf, deadline)) continue;
      const cache = tl.cacheAt(q, deadline);
      tally.check(!has(cache, p.node, p.inc), deadline, () => `${q.id} still listed ${p.node}#${p.inc} at ${iso(deadline)}, ${deadline - tf} ms after its ${act.op} at ${iso(tf)}${evidence(tl, p, tf, deadline)}`);
      if (extended || !has(tl.cacheAt(q, tf), p.node, p.inc)) continue;
      const gone = q.caches.find((c) => c.t >= tf && !has(c.nodes, p.node as string, p.inc));
      if (gone) measured[act.op].push(gone.t - tf);
    }
  }
  return tally.result();
}

const listKey = (nodes: NodeSnap[]): string =>
  nodes
    .filter((n) => n.st === 'UP')
    .map((n) => `${n.id}#${n.inc}${n.meta ?? ''}`)
    .sort()
    .join(',');

/** 3. Convergence: after the faults stop, every client's cache equals the server's list within the bound. */
function convergence(tl: Timeline, boundMs: number, marginMs: number, measured: number[]): InvariantResult {
  const tally = new Tally('convergence after faults stop');
  if (!Number.isFinite(tl.healedAt)) return tally.result();
  const reads = tl.requests.filter((r) => r.c === 'harness' && r.list && r.t0 >= tl.healedAt).sort((a, b) => a.t - b.t);
  const last = reads.at(-1);
  if (!last?.list) return tally.result();
  const truth = listKey(last.list.nodes);
  let stableFrom = last.t0;
  for (let i = reads.length - 1; i >= 0 && listKey((reads[i] as RequestRecord).list?.nodes ?? []) === truth; i--) stableFrom = (reads[i] as RequestRecord).t0;
  const start = Math.max(tl.healedAt, stableFrom);
  for (const q of tl.procs.values()) {
    if (q.readyAt === undefined || q.deadAt !== undefined || q.leaveAt !== undefined || (q.node !== undefined && tl.superseded(q, tl.endAt))) continue;
    const caches = q.caches;
    let i = caches.length;
    while (i > 0 && listKey((caches[i - 1] as { nodes: NodeSnap[] }).nodes) === truth) i--;
    if (i === caches.length) {
      tally.check(false, tl.endAt, () => `${q.id} never converged: it lists [${listKey(caches.at(-1)?.nodes ?? [])}], the server [${truth}]`);
      continue;
    }
    const took = Math.max(0, (caches[i] as { t: number }).t - start);
    measured.push(took);
    tally.check(took <= boundMs + marginMs, start + took, () => `${q.id} took ${took} ms to converge on [${truth}] (bound ${boundMs} ms)`);
  }
  return tally.result();
}

/** 4. Order: per node, the revisions a client reports (events) and caches only grow. */
function order(tl: Timeline): InvariantResult {
  const tally = new Tally('per-node revision order');
  const written = new Map<string, number>();
  for (const w of tl.server) {
    const before = written.get(w.n.id) ?? -1;
    tally.check(w.n.rev > before, w.t, () => `the information center's stream had ${w.type} ${label(w.n)} at rev ${w.n.rev} after rev ${before}`);
    written.set(w.n.id, Math.max(before, w.n.rev));
  }
  for (const q of tl.procs.values()) {
    const seen = new Map<string, number>();
    for (const ev of q.events) {
      const before = seen.get(ev.n.id) ?? -1;
      tally.check(ev.n.rev > before, ev.t, () => `${q.id} reported ${ev.type} ${label(ev.n)} at rev ${ev.n.rev} after rev ${before}`);
      seen.set(ev.n.id, Math.max(before, ev.n.rev));
    }
    const cached = new Map<string, number>();
    for (const c of q.caches) {
      for (const s of c.nodes) {
        const before = cached.get(s.id) ?? -1;
        tally.check(s.rev >= before, c.t, () => `${q.id}'s cache went from ${s.id} rev ${before} back to rev ${s.rev}`);
        cached.set(s.id, Math.max(before, s.rev));
      }
    }
  }
  return tally.result();
}

interface Write {
  node: string;
  inc: number;
  t0: number;
  t1: number;
  rev?: number;
  meta?: string;
}

/** The writes of node processes: register attempts, acknowledged registrations and deregistrations. */
function writesOf(tl: Timeline): { attempts: Write[]; registers: Write[]; deregs: Write[] } {
  const out = { attempts: [] as Write[], registers: [] as Write[], deregs: [] as Write[] };
  for (const r of tl.requests) {
    const node = /\/nodes\/([^/?]+)/.exec(r.p)?.[1];
    const inc = tl.procs.get(r.c)?.inc;
    if (node === undefined || inc === undefined) continue;
    if (r.m === 'PUT') out.attempts.push({ node, inc, t0: r.t0, t1: r.t });
    if (r.m === 'PUT' && (r.st === 200 || r.st === 201) && r.n) out.registers.push({ node, inc, t0: r.t0, t1: r.t, rev: r.n.rev, meta: r.n.meta });
    if (r.m === 'DELETE' && r.st === 204) out.deregs.push({ node, inc, t0: r.t0, t1: r.t });
  }
  // A process killed with a registration in flight never records it, yet the request may land
  // (seed 2003): such a process may have sent one at any time since it was spawned.
  for (const p of tl.procs.values()) {
    if (p.node !== undefined && p.inc !== undefined && p.deadAt !== undefined) out.attempts.push({ node: p.node, inc: p.inc, t0: p.spawnAt, t1: Infinity });
  }
  return out;
}

/**
 * 5. Durability: every list read reflects every write acknowledged before it
 * was sent — the cluster revision, each node's latest registration (its
 * revision, or a later one; at the same revision the same incarnation and
 * metadata) and each deregistration not followed by a registration.
 */
function durability(tl: Timeline): InvariantResult {
  const tally = new Tally('durability of acknowledged writes');
  const { attempts, registers, deregs } = writesOf(tl);
  const lists = tl.requests.filter((r) => r.list && r.st === 200).sort((a, b) => a.t0 - b.t0);
  const answered = [...lists].sort((a, b) => a.t - b.t);
  registers.sort((a, b) => a.t1 - b.t1);
  deregs.sort((a, b) => a.t1 - b.t1);
  // A registration sent after a deregistration began (or still in flight then) may have undone it.
  const undoneAt = (d: Write) => Math.min(Infinity, ...attempts.filter((a) => a.node === d.node && a.t1 > d.t0).map((a) => a.t0));
  const latest = new Map<string, Write>();
  const lastDereg = new Map<string, Write & { undone: number }>();
  let floor = 0;
  let ia = 0;
  let ir = 0;
  let id = 0;
  for (const l of lists) {
    for (; ia < answered.length && (answered[ia] as RequestRecord).t < l.t0; ia++) floor = Math.max(floor, answered[ia]?.list?.rev ?? 0);
    for (; ir < registers.length && (registers[ir] as Write).t1 < l.t0; ir++) {
      const w = registers[ir] as Write;
      floor = Math.max(floor, w.rev ?? 0);
      if ((w.rev ?? 0) > (latest.get(w.node)?.rev ?? -1)) latest.set(w.node, w);
    }
    for (; id < deregs.length && (deregs[id] as Write).t1 < l.t0; id++) {
      const d = deregs[id] as Write;
      lastDereg.set(d.node, { ...d, undone: undoneAt(d) });
    }
    const list = l.list as { rev: number; nodes: NodeSnap[] };
    tally.check(list.rev >= floor, l.t, () => `a list read by ${l.c} at ${iso(l.t0)} has cluster revision ${list.rev}, below ${floor} acknowledged before it`);
    for (const [node, w] of latest) {
      const entry = list.nodes.find((n) => n.id === node);
      const ok = entry !== undefined && (entry.rev > (w.rev ?? 0) || (entry.rev === w.rev && entry.inc === w.inc && entry.meta === w.meta));
      tally.check(ok, l.t, () => `a list read by ${l.c} at ${iso(l.t0)} shows ${node} as ${entry ? `${label(entry)} rev ${entry.rev} ${entry.meta ?? ''}` : 'missing'}; ${node}#${w.inc} rev ${w.rev} ${w.meta ?? ''} was acknowledged at ${iso(w.t1)}`);
    }
    for (const d of lastDereg.values()) {
      // A registration sent before the read was answered may be in it: reads are concurrent with writes.
      if (d.undone < l.t) continue;
      const entry = list.nodes.find((n) => n.id === d.node);
      tally.check(entry?.st === 'DOWN', l.t, () => `a list read by ${l.c} at ${iso(l.t0)} shows ${d.node} UP after its deregistration was acknowledged at ${iso(d.t1)}`);
    }
  }
  return tally.result();
}

/** 6. No 5xx, except while the store is unreachable, and then only the contract's 500 INTERNAL. */
function no5xx(tl: Timeline): InvariantResult {
  const tally = new Tally('no 5xx outside store outages');
  for (const r of tl.requests) {
    if (typeof r.st !== 'number') continue;
    if (r.st < 500) {
      tally.check(true, r.t, () => '');
      continue;
    }
    const during = tl.storeDown.some(([a, b]) => overlaps([a, b + 1000], [r.t0, r.t]));
    const contract = r.err?.contract === true && r.err.code === 'INTERNAL' && r.st === 500;
    tally.check(during && contract, r.t, () => `${r.c}: ${r.m} ${r.p} answered ${r.st} ${r.err?.code ?? ''} at ${iso(r.t)}${during ? ' (not the contract\'s error)' : ' while the store was up'}`);
  }
  return tally.result();
}

export interface Bounds {
  crashMs: number;
  hangMs: (leaseMs: number) => number;
  convergenceMs: number;
}

/** The bounds the invariants hold the run to, from its settings (docs/measured/robustness.md). */
export function boundsOf(settings: Settings): Bounds {
  return {
    crashMs: settings.graceMs + settings.sweepMs + settings.deliveryMs,
    hangMs: (leaseMs) => leaseMs + settings.sweepMs + settings.deliveryMs,
    convergenceMs: Math.round(1.1 * settings.refreshMs) + settings.deliveryMs,
  };
}

export function check(records: readonly HistoryRecord[], settings: CheckSettings): CheckResult {
  const tl = new Timeline(records, settings);
  const bounds = boundsOf(settings);
  const measured = { crash: [] as number[], hang: [] as number[] };
  const converged: number[] = [];
  const invariants = [
    noFalseDown(tl),
    detection(tl, settings.marginMs, measured),
    convergence(tl, bounds.convergenceMs, settings.marginMs, converged),
    order(tl),
    durability(tl),
    no5xx(tl),
  ];
  const leases = [...new Set([...tl.procs.values()].filter((p) => p.node).map((p) => p.leaseMs))].sort((a, b) => a - b);
  return {
    ok: invariants.every((i) => i.violations === 0),
    invariants,
    detection: { crash: summarize(measured.crash), hang: summarize(measured.hang) },
    convergence: summarize(converged),
    bounds: {
      crashMs: bounds.crashMs,
      hangMs: Object.fromEntries(leases.map((l) => [`lease ${l / 1000} s`, bounds.hangMs(l)])),
      convergenceMs: bounds.convergenceMs,
      marginMs: settings.marginMs,
    },
  };
}
