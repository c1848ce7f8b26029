/** Helpers for tests that run Roster's programs (`local/main.ts`, `bin/roster.js`) as real processes, and look at what is left running. */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { REPO_ROOT } from './runtime.ts';

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Added to (or, with `undefined`, removed from) this process's environment. */
  env?: Record<string, string | undefined>;
  /** Sent `killSignal` after this long. @default 60000 */
  timeoutMs?: number;
  /** @default 'SIGTERM' */
  killSignal?: NodeJS.Signals;
}

/** Runs `node ...args` in the repository to completion and collects its output. */
export function runNode(args: string[], options: RunOptions = {}): Promise<Finished> {
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill(options.killSignal ?? 'SIGTERM'), options.timeoutMs ?? 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `roster serve` (what `npm start` runs) with `args` to completion (stopped after `timeoutMs`). */
export const runMain = (args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<Finished> =>
  runNode(['bin/roster.js', 'serve', ...args], { env, timeoutMs });

/** Runs the `roster` CLI (`bin/roster.js`) with `args` to completion. */
export const runCli = (args: string[], options: RunOptions = {}): Promise<Finished> => runNode(['bin/roster.js', ...args], options);

/** Lines the runtime itself wrote (`roster ...`), without Node's and the AWS SDK's warnings. */
export const rosterLines = (text: string): string[] => text.split('\n').filter((line) => line.startsWith('roster'));

/** Something that looks like a stack trace. */
export const STACK_TRACE = /\n\s+at .+[(:]\d+|\.ts:\d+:\d+/;

/** PIDs whose parent is `pid` (from /proc). */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may contain spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) children.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return children;
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Command lines of the processes now running (this one aside) that contain `needle`. */
export function processesWith(needle: string): string[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .map((entry) => commandOf(Number(entry)))
    .filter((command) => command.includes(needle));
}
