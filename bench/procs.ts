/**
 * Child processes of the bench (agents, etcd nodes, etcd itself): started
 * with a line reader on stdout, tracked, and all killed if the bench exits
 * before stopping them, so an interrupted or failed run leaves nothing
 * behind — not even a SIGSTOPped agent.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from '../local/spawn.ts';

export { REPO_ROOT };
export const ROSTER_BIN = fileURLToPath(new URL('../bin/roster.js', import.meta.url));

const live = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const child of live) {
    // SIGKILL also ends a stopped process; SIGCONT is not needed first.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', killAll);
}

export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves with the first stdout line that `match` accepts (rejects on exit or timeout). */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** The last few kilobytes of stdout and stderr, for error messages. */
  output(): string;
  exited: Promise<void>;
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

export function startChild(command: string, args: string[], options: SpawnOptions = {}): Child {
  hook();
  const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...options });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  live.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      live.delete(child);
      resolve();
    });
    child.once('error', () => {
      live.delete(child);
      resolve();
    });
  });
  let tail = '';
  let partial = '';
  const lines: string[] = [];
  const waiters = new Set<(line: string) => void>();
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    tail = (tail + d).slice(-4000);
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      for (const waiter of [...waiters]) waiter(line);
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (tail = (tail + d).slice(-4000)));
  const pid = child.pid;
  return {
    process: child,
    pid,
    exited,
    output: () => tail,
    waitForLine(match, timeoutMs) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(onLine);
        };
        const onLine = (line: string) => {
          if (!match(line)) return;
          done();
          resolve(line);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${command} (pid ${pid}) printed no expected line within ${timeoutMs} ms:\n${tail}`));
        }, timeoutMs);
        waiters.add(onLine);
        void exited.then(() => {
          if (!waiters.has(onLine)) return;
          done();
          reject(new Error(`${command} (pid ${pid}) exited (${child.signalCode ?? `code ${child.exitCode}`}):\n${tail}`));
        });
      });
    },
    signal(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Resident set size of a process in bytes (VmRSS from /proc), or undefined if it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc/{pid}/stat's CPU times (USER_HZ: 100 on every Linux this runs on). */
const USER_HZ = 100;

/**
 * CPU time (user + system) a process has used so far, in microseconds, from
 * /proc/{pid}/stat (10 ms resolution), or undefined if it is gone. CPU time
 * rather than wall time: on a busy machine it still counts the work done,
 * not the waiting for a core.
 */
export function cpuMicros(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at state (field 3); utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1e6) / USER_HZ : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (µs) of a process and all its descendants now alive (e.g. the runtime and its page-function processes). */
export function treeCpuMicros(pid: number): number | undefined {
  const own = cpuMicros(pid);
  if (own === undefined) return undefined;
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  let total = own;
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const child = queue.pop() as number;
    total += cpuMicros(child) ?? 0;
    queue.push(...(children.get(child) ?? []));
  }
  return total;
}

/**
 * Sends each process the failure of `kind` (crash: SIGKILL, hang: SIGSTOP) in turn, after a random pause (a real
 * failure has a random phase against the sweeper's tick and the keepalive timer), and starts `detect(i, t0)` for
 * it, `t0` being the moment of its signal. Shared by Roster's and etcd's detection scenarios so both are timed alike.
 */
export async function failEach<R>(processes: readonly Child[], kind: 'crash' | 'hang', detect: (i: number, t0: number) => Promise<R>): Promise<R[]> {
  const signal: NodeJS.Signals = kind === 'crash' ? 'SIGKILL' : 'SIGSTOP';
  const detections: Promise<R>[] = [];
  for (const [i, child] of processes.entries()) {
    await sleep(200 + Math.random() * 1000);
    const t0 = performance.now();
    child.signal(signal);
    detections.push(detect(i, t0));
  }
  return Promise.all(detections);
}
