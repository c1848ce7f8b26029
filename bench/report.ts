/** The bench report as a plain-text table. */
import { table } from './table.ts';
import type { BenchReport, Goal } from './run.ts';
import type { CpuPerMessage, FanoutResult } from './fanout.ts';
import type { CapacityResult } from './capacity.ts';
import type { DetectionResult } from './detection.ts';
import type { StormResult } from './storm.ts';
import type { ScaleResult } from './scale.ts';
import type { Summary } from './stats.ts';

const ms = (s: Summary): string => (s.n === 0 ? 'none' : `${Math.round(s.p50)} / ${Math.round(s.p99)} ms`);
const secs = (s: Summary): string => (s.n === 0 ? 'none' : `${(s.p50 / 1000).toFixed(2)} / ${(s.p99 / 1000).toFixed(2)} s`);
const us = (x: number | null): string => (x === null ? '-' : `${x}`);
const cpuCell = (c: CpuPerMessage): string => `${us(c.server)} / ${us(c.store)} / ${us(c.clients)} µs`;
const metText = (goal: Goal | undefined): string => (goal === undefined ? '' : goal.met === null ? (goal.value === null ? 'n/a' : 'quick: n/a') : goal.met ? 'yes' : 'NO');

export function renderReport(report: BenchReport): string[] {
  const lines: string[] = [];
  const m = report.machine;
  lines.push(`Roster bench${report.quick ? ' --quick (small sizes; timings are not judged)' : ''}, ${report.startedAt}, ${report.durationSeconds} s`);
  lines.push(`machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.java}, ${m.platform}; load average ${m.loadAverage.start} at the start, ${m.loadAverage.end} at the end`);
  const s = report.settings;
  lines.push(`runtime: sweep ${s.sweepIntervalSeconds} s, disconnect grace ${s.disconnectGraceSeconds} s, stream poll ${s.pollIntervalMs} ms; DynamoDB Local started in ${report.startup.dynamodbLocalMs} ms, runtime ready ${report.startup.runtimeReadyMs} ms after spawn`);
  const etcd = report.etcd;
  if (etcd?.installed) lines.push(`etcd: ${etcd.version}, single member on loopback, started in ${etcd.startMs} ms`);
  else if (etcd) lines.push(`etcd: not installed (${etcd.reason}); ${etcd.howToInstall}`);
  lines.push('');

  const goal = (prefix: string) => report.goals.find((g) => g.what.startsWith(prefix));
  const etcdCell = (value: string | undefined) => (etcd === undefined ? '' : etcd.installed ? (value ?? '-') : 'not installed');
  const ratioCell = (key: string) => (etcd?.installed && etcd.ratios[key] !== undefined ? String(etcd.ratios[key]) : '');
  const rows: string[][] = [['SCENARIO', 'FIGURE', 'ROSTER', 'ETCD', 'ROSTER/ETCD', 'GOAL', 'MET']];

  const t = report.throughput;
  if (t) {
    const side = (x: typeof t.roster) => `${x.perSecond}/s (p50 ${x.latencyMs.p50} ms, p99 ${x.latencyMs.p99} ms${x.errors ? `, ${x.errors} errors` : ''})`;
    rows.push([`keepalive, ${t.concurrency} workers, ${t.durationSeconds} s`, 'Roster over HTTP', side(t.roster), '', '', '', '']);
    rows.push(['', 'raw: bare UpdateItem to DynamoDB Local', side(t.raw), '', '', '', '']);
    rows.push(['', 'same UpdateItem via the AWS SDK', side(t.rawSdk), '', '', '', '']);
    const g = goal('keepalive throughput');
    rows.push(['', 'Roster / raw (Roster / SDK)', `${t.ratio} (${t.ratioSdk})`, '', '', g?.target ?? '', metText(g)]);
  }
  const fanoutRow = (f: FanoutResult) => {
    const theirs = etcd?.installed ? etcd.fanout?.find((e) => e.subscribers === f.subscribers) : undefined;
    const g = goal(`fan-out p99 at ${f.subscribers} `);
    const mine = f.allReceived ? ms(f.allMs) : `${f.missing} missing`;
    const other = theirs === undefined ? undefined : theirs.allReceived ? ms(theirs.allMs) : `${theirs.missing} missing`;
    rows.push([`fan-out to ${f.subscribers} subscribers`, `PUT → all have it, p50 / p99 (${f.registrations} regs)`, mine, etcdCell(other), ratioCell(`fanout p99 at ${f.subscribers}`), g?.target ?? '', metText(g)]);
    rows.push(['', 'CPU per message: server / store / clients', cpuCell(f.cpuUsPerMessage), etcdCell(theirs && cpuCell(theirs.cpuUsPerMessage)), '', '', '']);
  };
  for (const f of report.fanout ?? []) fanoutRow(f);
  if (report.poster) rows.push(['fan-out poster alone (sizes AWS)', `CPU per PostToConnection, ${report.poster.posts} posts of ${report.poster.messageBytes} B`, `${report.poster.cpuUsPerPost} µs`, '', '', '', '']);
  if (report.storm) stormRows(rows, report.storm, goal('storm:'));
  const detectionRow = (d: DetectionResult, theirs: DetectionResult | undefined, label: string, goalPrefix: string) => {
    const g = goal(goalPrefix);
    const mine = d.allObserved ? secs(d.detectionMs) : 'not all observed';
    const lease = theirs !== undefined && theirs.leaseSeconds !== d.leaseSeconds ? ` (lease ${theirs.leaseSeconds} s)` : '';
    const other = theirs === undefined ? undefined : theirs.allObserved ? `${secs(theirs.detectionMs)}${lease}` : 'not all observed';
    rows.push([label, `${d.trials} agents, ${d.observers} observers, lease ${d.leaseSeconds} s, p50 / p99`, mine, etcdCell(other), ratioCell(`${d.kind} detection p99`), g?.target ? `${g.target} ms` : '', metText(g)]);
  };
  if (report.crash) detectionRow(report.crash, etcd?.installed ? etcd.crash : undefined, 'crash (SIGKILL) → NODE_DOWN', 'crash detection');
  if (report.hang) {
    detectionRow(report.hang, etcd?.installed ? etcd.hang : undefined, 'hang (SIGSTOP) → NODE_DOWN', 'hang detection');
    if (report.hang.fromLastKeepaliveMs) rows.push(['', 'from the last keepalive, p50 / p99', secs(report.hang.fromLastKeepaliveMs), '', '', '', '']);
  }
  const k = report.soak;
  if (k) {
    const g = goal('false NODE_DOWN');
    rows.push([`soak: ${k.nodes} nodes, lease ${k.leaseSeconds} s, every ${k.keepaliveSeconds} s, ${k.durationSeconds} s`, 'false NODE_DOWN', String(k.falseDowns), '', '', g?.target ?? '', metText(g)]);
    rows.push(['', 'keepalives (errors, re-registrations)', `${k.keepalives} (${k.keepaliveErrors}, ${k.reRegistrations}), ${k.keepalivesPerSecond}/s`, '', '', '', '']);
    rows.push(['', 'keepalive latency p50 / p99 / max', `${k.keepaliveLatencyMs.p50} / ${k.keepaliveLatencyMs.p99} / ${k.keepaliveLatencyMs.max} ms`, '', '', '', '']);
    rows.push(['', 'healthy nodes at the end', String(k.healthyAtEnd), '', '', '', '']);
    rows.push(['', 'runtime RSS start / max / end', `${k.runtimeRssMiB.start} / ${k.runtimeRssMiB.max} / ${k.runtimeRssMiB.end} MiB`, '', '', '', '']);
    rows.push(['', 'DynamoDB Local (JVM) RSS start / max / end', `${k.dynamodbLocalRssMiB.start} / ${k.dynamodbLocalRssMiB.max} / ${k.dynamodbLocalRssMiB.end} MiB`, '', '', '', '']);
  }
  if (report.scale) scaleRows(rows, report.scale, goal);
  if (report.capacity) capacityRows(rows, report.capacity, goal('write units per keepalive'));
  lines.push(...table(rows));
  return lines;
}

function stormRows(rows: string[][], s: StormResult, g: Goal | undefined): void {
  const label = `storm: ${s.registrations} PUTs (${s.nodes} nodes × 2), ${s.parallel} in flight`;
  rows.push([label, 'all delivered, per-node order; total', `${s.groups.every((x) => x.allReceived && x.outOfOrder === 0) ? 'yes' : 'NO'}; ${(s.totalMs / 1000).toFixed(2)} s`, '', '', g?.target ?? '', metText(g)]);
  for (const group of s.groups) {
    const what = `${group.subscribers} ${group.batch ? 'batched' : 'plain'} subscribers: last one's lag p50 / p99 / max`;
    const lag = group.lagMs.n === 0 ? 'none' : `${group.lagMs.p50} / ${group.lagMs.p99} / ${group.lagMs.max} ms`;
    const detail = `${lag}; ${group.messagesReceived} messages${group.missing ? `, ${group.missing} missing` : ''}${group.outOfOrder ? `, ${group.outOfOrder} out of order` : ''}`;
    rows.push(['', what, detail, '', '', '', '']);
  }
  rows.push(['', 'CPU per event: server / store / clients', cpuCell(s.cpuUsPerEvent), '', '', '', '']);
}

function capacityRows(rows: string[][], c: CapacityResult, g: Goal | undefined): void {
  const op = (u: CapacityResult['operations'][keyof CapacityResult['operations']]) =>
    `${u.writeUnits} WCU (index ${u.indexWriteUnits})${u.readUnits ? `, ${u.readUnits} RCU` : ''}`;
  const o = c.operations;
  rows.push(['capacity (DynamoDB ConsumedCapacity)', `keepalive (${o.keepalive.count})`, op(o.keepalive), '', '', g?.target ?? '', metText(g)]);
  rows.push(['', 'register new / re-register changed / deregister', `${op(o.registerNew)}; ${op(o.reRegisterChanged)}; ${op(o.deregister)}`, '', '', '', '']);
  rows.push(['', 'connect bound / disconnect bound', `${op(o.connectBound)}; ${op(o.disconnectBound)}`, '', '', '', '']);
  const l = c.sweepLoad;
  rows.push(['', `sweeper, ${l.nodes} nodes in ${l.clusters} clusters, keepalive ${l.keepaliveSeconds} s, ${l.durationSeconds} s`, `${l.readUnitsPerSecond} RCU/s, ${l.clusterReadsPerSecond} cluster reads/s; keepalive ${l.keepaliveWriteUnits} WCU (${l.keepalives})`, '', '', '', '']);
  for (const f of c.fullSweeps) {
    rows.push(['', `full sweep after adding ${f.nodes} nodes in ${f.clusters} cluster${f.clusters === 1 ? '' : 's'}`, `${f.itemsRead} items in ${f.clustersRead} clusters: ${f.readUnits} RCU (${f.readUnitsPerItem} per item), ${f.durationMs} ms`, '', '', '', '']);
  }
}

function scaleRows(rows: string[][], sc: ScaleResult, goal: (prefix: string) => Goal | undefined): void {
  const r = sc.steady.rates;
  const label = `scale: ${sc.nodes} nodes, 1 cluster, ${sc.subscribers} + ${sc.stormNodes} RosterClients`;
  const gFalse = goal('false NODE_DOWN at scale');
  rows.push([label, `false NODE_DOWN, steady ${sc.steadySeconds} s (in the ${sc.rampSeconds} s ramp)`, `${sc.falseDowns.steady} (${sc.falseDowns.ramp})`, '', '', gFalse?.target ?? '', metText(gFalse)]);
  const t = sc.steadyClientTrouble;
  rows.push(['', 'steady: failed keepalives / lapsed leases / re-registrations', `${t.keepaliveFailures} / ${t.leasesLost} / ${t.reRegistrations}`, '', '', '', '']);
  rows.push(['', 'steady req/s: keepalive, list (full), ping, $connect, posts, 429', `${r.keepalive}, ${r.list} (${r.fullLists}), ${r.ping}, ${r.connect}, ${r.posts}, ${r.throttled}`, '', '', '', '']);
  const busy = (w: ScaleResult['steady']['writes']) => (w.busiest ? `${w.busiest.writes}/s (${w.busiest.item})` : 'none');
  rows.push(['', 'steady: item writes/s by place; the busiest item', `${Object.entries(sc.steady.writes.perSecond).map(([k, v]) => `${k} ${v}`).join(', ')}; ${busy(sc.steady.writes)}`, '', '', '', '']);
  const gCrash = goal('crash detection p99 at scale');
  const c = sc.crash;
  rows.push(['', `storm: ${sc.stormNodes} killed at once → NODE_DOWN, p50 / p99 (at every subscriber)`, `${c.observed === sc.stormNodes ? secs(c.detectionMs) : `${c.observed} of ${sc.stormNodes} seen`} (${secs(c.allSubscribersMs)})`, '', '', gCrash?.target ? `${gCrash.target} ms` : '', metText(gCrash)]);
  rows.push(['', 'storm: kill → lease cut (DynamoDB Local taking the disconnects), cut → NODE_DOWN, p50 / p99', `${secs(c.killToCutMs)}, ${secs(c.cutToDownMs)}`, '', '', '', '']);
  const st = sc.storm;
  const conv = st.convergedMs.fromKill === null ? 'NOT within the deadline' : `${(st.convergedMs.fromKill / 1000).toFixed(1)} s after the kill (${((st.convergedMs.fromRestart ?? 0) / 1000).toFixed(1)} s after the restart)`;
  rows.push(['', "storm: every subscriber's list equals the server's", conv, '', '', '', '']);
  rows.push(['', 'storm: full-list reads, posts, registrations, $connect', `${st.counts.fullLists}, ${st.counts.posts}, ${st.counts.register}, ${st.counts.connect}`, '', '', '', '']);
  const why = st.fullListsBy;
  rows.push(['', "storm: full-list reads by why: restarts' starts, gaps, refreshes (bound / plain processes), reconnects", `${why.starts}, ${why.gaps}, ${why.refreshes} / ${why.plainRefreshes}, ${why.reconnects}`, '', '', '', '']);
  const tl = st.timeline;
  const first = tl.firstAfterKillMs;
  const over = first === null ? 0 : (tl.eventsPerSlot.length * tl.slotMs - first) / 1000;
  rows.push(['', 'storm: its events reached the stream from … over …', first === null ? 'none' : `${(first / 1000).toFixed(1)} s after the kill, over ${over.toFixed(1)} s`, '', '', '', '']);
  rows.push(['', "storm: the busiest item's writes in a second; the longest sweep", `${busy(st.writes)}; ≤ ${st.longestSweepMs ?? '-'} ms (mean ${st.meanSweepMs ?? '-'} ms)`, '', '', '', '']);
  const cpu = sc.steadyCpuCores;
  rows.push(['', 'steady CPU, in cores: runtime / DynamoDB Local / client processes', `${cpu.runtime} / ${cpu.dynamodbLocal} / ${cpu.clients}`, '', '', '', '']);
  rows.push(['', 'runtime RSS start / max / end (DynamoDB Local max)', `${sc.rssMiB.runtime.start} / ${sc.rssMiB.runtime.max} / ${sc.rssMiB.runtime.end} MiB (${sc.rssMiB.dynamodbLocal.max} MiB)`, '', '', '', '']);
  for (const k of sc.clients) rows.push(['', `client processes, ${k.kind}: ${k.nodes} nodes in ${k.processes}`, `${k.cpuUsPerNodeSecond} µs CPU per node-second, ${k.rssKiBPerNode} KiB RSS per node`, '', '', '', '']);
  const p = sc.prediction;
  if (!p) return;
  const gPlan = goal('scale: measured figures');
  rows.push(['', `roster capacity: ${p.command}`, 'measured / predicted (ratio)', '', '', gPlan?.target ?? '', metText(gPlan)]);
  for (const f of p.figures) rows.push(['', `  ${f.figure}`, `${f.measured} / ${f.predicted} (${f.ratio ?? '-'})${f.agrees === false ? ' APART' : ''}${f.note ? `; ${f.note}` : ''}`, '', '', '', '']);
}
