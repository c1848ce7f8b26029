/**
 * The structured logger (one JSON object per line), Powertools' on Lambda and
 * locally alike. One per scope (functions/core/scope.ts), so that each local
 * runtime logs at its own level: `POWERTOOLS_LOG_LEVEL` of the scope's
 * environment (the local runtime sets WARN, or INFO with --verbose).
 *
 * The local runtime also sets `ROSTER_LOG_FORMAT=text`: its console is read
 * by a person, beside its own `roster warn: …` lines, so the handlers' lines
 * take that form there too (`roster warn: message (key=value, …)`, on
 * stderr). On Lambda the variable is never set and CloudWatch gets JSON.
 */
import { Logger, LogLevel } from '@aws-lambda-powertools/logger';
import { perScope } from './scope.ts';

type LogMethod = Logger['info'];
type Levels = 'debug' | 'info' | 'warn' | 'error';
type LevelLogger = Record<Levels, LogMethod>;

const scopedLogger = perScope((scope): LevelLogger => {
  const level = logLevelOf(scope.env.POWERTOOLS_LOG_LEVEL);
  if (scope.env.ROSTER_LOG_FORMAT === 'text') return textLogger(level ?? 'INFO');
  return new Logger({ serviceName: 'roster', logLevel: level });
});

type Level = (typeof LogLevel)[keyof typeof LogLevel];
const LEVELS: ReadonlySet<string> = new Set(Object.values(LogLevel));

/** A level Powertools knows, else undefined (Powertools then falls back to its own default, INFO). */
function logLevelOf(raw: string | undefined): Level | undefined {
  const upper = raw?.toUpperCase();
  return upper !== undefined && LEVELS.has(upper) ? (upper as Level) : undefined;
}

const RANK: Record<string, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, CRITICAL: 5, SILENT: 6 };

/** `key=value` for a value a log line carries; an error by its name and message, or its stack when asked for. */
function valueText(value: unknown, stacks: boolean): string {
  if (value instanceof Error) return stacks && value.stack ? value.stack : `${value.name}: ${value.message}`;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function textLogger(level: Level): LevelLogger {
  // At INFO and below (the local runtime's --verbose) an error shows its stack, as the runtime's own lines do.
  const stacks = (RANK[level] ?? 0) <= (RANK.INFO ?? 0);
  const at = (name: Levels): LogMethod => {
    if ((RANK[name.toUpperCase()] ?? 0) < (RANK[level] ?? 0)) return () => undefined;
    return (input, ...extra) => {
      const { message, ...attributes } = typeof input === 'string' ? { message: input } : input;
      const parts: string[] = [];
      for (const item of [attributes, ...extra]) {
        if (item instanceof Error) parts.push(`error=${valueText(item, stacks)}`);
        else if (typeof item === 'string') parts.push(item);
        else for (const [key, value] of Object.entries(item)) if (value !== undefined) parts.push(`${key}=${valueText(value, stacks)}`);
      }
      process.stderr.write(`roster ${name}: ${String(message)}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}\n`);
    };
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** The logger of the scope under way; the handlers and the core log through it. */
export const logger: LevelLogger = {
  debug: (input, ...extra) => scopedLogger().debug(input, ...extra),
  info: (input, ...extra) => scopedLogger().info(input, ...extra),
  warn: (input, ...extra) => scopedLogger().warn(input, ...extra),
  error: (input, ...extra) => scopedLogger().error(input, ...extra),
};
