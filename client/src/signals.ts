/**
 * The `stopOnSignals` option: on SIGINT or SIGTERM, stop the client first,
 * then let the signal do what it would have done.
 */
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Installs the handlers; returns the function that removes them. */
export function stopOnSignals(stop: () => Promise<void>): () => void {
  const handler = (signal: NodeJS.Signals): void => {
    // A second signal while stopping finds no handler of ours: it ends the process at once.
    remove();
    void stop().finally(() => {
      // An application that listens for the signal decides what it means; without one, the
      // process ends the way the signal ends it (exit status 128 + signal number).
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  const remove = (): void => {
    for (const signal of SIGNALS) process.off(signal, handler);
  };
  for (const signal of SIGNALS) process.on(signal, handler);
  return remove;
}
