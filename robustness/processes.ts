/**
 * The client processes of a robustness run: spawned with the SDK, their
 * stdout records fed to the history, and signalled to crash (SIGKILL), hang
 * (SIGSTOP) and resume (SIGCONT). Every process still alive when the harness
 * exits is killed — a stopped one too — so an interrupted run leaves nothing
 * behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../local/spawn.ts';
import type { ClientConfig } from './client-process.ts';
import type { ClientRecord } from './history.ts';

const live = new Set<ChildProcess>();
let hooked = false;

/** Kills (SIGKILL) every child this module or `track` started that is still running. */
export function killAllChildren(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Makes sure `child` dies with the harness. */
export function track(child: ChildProcess): void {
  if (!hooked) {
    hooked = true;
    process.once('exit', killAllChildren);
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

export class ClientProcess {
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  /** Set once the process is signalled to stop (SIGSTOP) and not yet continued. */
  hung = false;
  /** Set once it was asked to stop (it deregisters and exits). */
  leaving = false;
  private stderr = '';

  constructor(
    /** `n2.3`: slot n2, its third process. */
    readonly id: string,
    readonly config: ClientConfig,
    onRecord: (record: ClientRecord) => void,
  ) {
    // The SDK by its package name resolves to its sources under the `@roster/source` condition (as in bin/roster.js).
    this.process = spawn(process.execPath, ['--conditions=@roster/source', '--import', 'tsx', 'robustness/client-process.ts', JSON.stringify(config)], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    track(this.process);
    this.exited = new Promise((resolve) => {
      this.process.once('exit', () => resolve());
      this.process.once('error', () => resolve());
    });
    this.process.stdin?.on('error', () => undefined);
    createInterface({ input: this.process.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let record: ClientRecord;
      try {
        record = { ...(JSON.parse(line) as ClientRecord), c: id };
      } catch {
        return;
      }
      onRecord(record);
    });
    this.process.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-4000)));
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** The last few kilobytes of stderr, for diagnostics. */
  errors(): string {
    return this.stderr;
  }

  signal(signal: NodeJS.Signals): boolean {
    if (!this.running) return false;
    this.process.kill(signal);
    if (signal === 'SIGSTOP') this.hung = true;
    if (signal === 'SIGCONT') this.hung = false;
    return true;
  }

  /** Writes a command line to the process's stdin. */
  command(command: Record<string, unknown>): void {
    if (this.running) this.process.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  /** Asks the client to stop (it deregisters) and waits for the exit, killing it after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.leaving = true;
    if (this.hung) this.signal('SIGCONT');
    this.command({ cmd: 'stop' });
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
