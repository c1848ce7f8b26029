/**
 * The structured logger (one JSON object per line), Powertools' on Lambda and
 * locally alike. One per scope (functions/core/scope.ts), so that each local
 * runtime logs at its own level: `POWERTOOLS_LOG_LEVEL` of the scope's
 * environment (the local runtime sets WARN, or INFO with --verbose).
 */
import { Logger, LogLevel } from '@aws-lambda-powertools/logger';
import { perScope } from './scope.ts';

const scopedLogger = perScope((scope) => new Logger({ serviceName: 'roster', logLevel: logLevelOf(scope.env.POWERTOOLS_LOG_LEVEL) }));

type Level = (typeof LogLevel)[keyof typeof LogLevel];
const LEVELS: ReadonlySet<string> = new Set(Object.values(LogLevel));

/** A level Powertools knows, else undefined (Powertools then falls back to its own default, INFO). */
function logLevelOf(raw: string | undefined): Level | undefined {
  const upper = raw?.toUpperCase();
  return upper !== undefined && LEVELS.has(upper) ? (upper as Level) : undefined;
}

type LogMethod = Logger['info'];

/** The logger of the scope under way; the handlers and the core log through it. */
export const logger: Record<'debug' | 'info' | 'warn' | 'error', LogMethod> = {
  debug: (input, ...extra) => scopedLogger().debug(input, ...extra),
  info: (input, ...extra) => scopedLogger().info(input, ...extra),
  warn: (input, ...extra) => scopedLogger().warn(input, ...extra),
  error: (input, ...extra) => scopedLogger().error(input, ...extra),
};
