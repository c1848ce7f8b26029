/**
 * The local runtime's own log: short human-readable lines on stderr, so that
 * stdout carries only what a script may parse (the two ready lines).
 * The handlers keep logging through Powertools (JSON lines), as on Lambda.
 */

export interface RuntimeLog {
  debug(message: string, details?: Record<string, unknown>): void;
  info(message: string, details?: Record<string, unknown>): void;
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

function format(details: Record<string, unknown> | undefined, verbose: boolean): string {
  if (!details) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(details)) {
    if (value === undefined) continue;
    if (value instanceof Error) {
      // A stack is for the developer who asked for it; it never reaches a client either way.
      parts.push(`${key}=${verbose && value.stack ? value.stack : `${value.name}: ${value.message}`}`);
    } else {
      parts.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
    }
  }
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

export function createLog(options: { verbose?: boolean; write?: (line: string) => void } = {}): RuntimeLog {
  const verbose = options.verbose ?? false;
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (level: string, message: string, details?: Record<string, unknown>) =>
    write(`roster ${level}: ${message}${format(details, verbose)}`);
  return {
    debug: (m, d) => verbose && emit('debug', m, d),
    info: (m, d) => verbose && emit('info', m, d),
    warn: (m, d) => emit('warn', m, d),
    error: (m, d) => emit('error', m, d),
  };
}

/** Swallows everything; for embedding and tests. */
export const silentLog: RuntimeLog = { debug() {}, info() {}, warn() {}, error() {} };
