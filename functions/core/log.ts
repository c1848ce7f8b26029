/**
 * The process-wide structured logger (one JSON object per line).
 * Level from POWERTOOLS_LOG_LEVEL; the local runtime sets it to WARN unless --verbose.
 */
import { Logger } from '@aws-lambda-powertools/logger';

export const logger = new Logger({ serviceName: 'roster' });
