/**
 * The process that started this one, and a watch that says when it ends, so
 * that `roster agent` does not outlive it: an orphaned agent would keep its
 * node UP with nobody left to stop it.
 *
 * Under npx (`npm exec`) or an npm script, npm runs a bin through `sh -c`:
 * the agent's parent is that shell, which a `kill -9` of npm leaves running
 * (and a SIGTERM to npm ends, leaving the agent orphaned). So when npm ran the
 * agent through a shell, npm's own process is watched as well as the shell.
 *
 * Linux reads /proc; elsewhere `ps` is asked once at start, and the watch
 * itself only asks whether a pid still exists.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface Starter {
  pid: number;
  /** Its command name (`npm exec roster`, `sh`, `bash`), for messages. */
  name: string;
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ash', 'ksh']);

interface ProcessInfo {
  ppid: number;
  name: string;
}

/** /proc/<pid>/stat: `pid (comm) state ppid …`; comm may hold spaces and parentheses. */
function fromProc(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    return { name: stat.slice(stat.indexOf('(') + 1, close), ppid: Number(stat.slice(close + 2).split(' ')[1]) };
  } catch {
    return undefined;
  }
}

function fromPs(pid: number): ProcessInfo | undefined {
  if (process.platform === 'win32') return undefined;
  const result = spawnSync('ps', ['-o', 'ppid=', '-o', 'comm=', '-p', String(pid)], { encoding: 'utf8' });
  const match = /^\s*(\d+)\s+(.+?)\s*$/.exec(result.stdout ?? '');
  return result.status === 0 && match ? { ppid: Number(match[1]), name: basename(match[2] as string) } : undefined;
}

const infoOf = (pid: number): ProcessInfo | undefined => fromProc(pid) ?? fromPs(pid);

function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The processes whose end should end this one: the parent, and npm's process when npm ran us through a shell. */
export function startersOf(env: NodeJS.ProcessEnv = process.env): Starter[] {
  const parent = process.ppid;
  // Started by init (or a container's first process, or nothing known): there is nobody to outlive.
  if (parent <= 1) return [];
  const info = infoOf(parent);
  const starters: Starter[] = [{ pid: parent, name: info?.name ?? 'its parent' }];
  if (env.npm_lifecycle_event !== undefined && info && SHELLS.has(info.name) && info.ppid > 1) {
    starters.push({ pid: info.ppid, name: infoOf(info.ppid)?.name ?? 'npm' });
  }
  return starters;
}

/**
 * Calls `ended` once, within about `intervalMs`, when one of `starters`
 * ends. Returns the function that stops watching. The timer does not keep
 * the process alive.
 */
export function watchStarters(starters: readonly Starter[], ended: (starter: Starter) => void, intervalMs = 1000): () => void {
  const [parent, grandparent] = starters;
  if (!parent) return () => undefined;
  const check = (): Starter | undefined => {
    // Orphaned: the parent is gone and init (or a subreaper) adopted us.
    if (process.ppid !== parent.pid || !exists(parent.pid)) return parent;
    if (!grandparent) return undefined;
    // Its parent changed the moment it ended, even while nobody has reaped it yet (Linux).
    const parentNow = fromProc(parent.pid);
    if (!exists(grandparent.pid) || (parentNow !== undefined && parentNow.ppid !== grandparent.pid)) return grandparent;
    return undefined;
  };
  const timer = setInterval(() => {
    const gone = check();
    if (!gone) return;
    clearInterval(timer);
    ended(gone);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
