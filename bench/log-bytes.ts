/**
 * What each of Roster's operations writes to CloudWatch Logs on AWS: bytes
 * and log events. `roster cost` prices them (ingestion, and storage for the
 * log groups' retention); the planner does not need them.
 *
 * A cut (sampled success lines, an access log with a shorter retention,
 * fewer metric documents) is a change of one figure here, or of the
 * retention in the cost input: the model takes these as they are.
 */

/** Bytes written and the log events they make (each event is also counted with an overhead: see `LOG_EVENT_OVERHEAD_BYTES`). */
export interface Written {
  bytes: number;
  events: number;
}

export interface LogBytes {
  /** Where the figures come from. */
  source: string;
  /** Lambda's START, END and REPORT lines, per invocation of any function. */
  platform: Written;
  /** The HTTP stage's access log line, per request (zero when access logs are off), by route. */
  httpAccess: { keepalive: Written; list: Written; register: Written };
  /**
   * What the handler itself writes per invocation: its request line and its EMF metric documents. A routine
   * success (functions/core/observe.ts `isRoutine`: a keepalive, a ping, a list answered 304) writes nothing of
   * its own; its counts are held and written by `routinePublish`.
   */
  handler: {
    keepalive: Written;
    /** The documents a warm environment of the keepalive, list or ping function writes once a minute for the routine counts it held. */
    routinePublish: Written;
    /** A list refresh answered 304 from the revision counter. */
    listNotModified: Written;
    /** A full list (the handler's line does not grow with the list). */
    listFull: Written;
    /** A registration that produced an event (a restart). */
    register: Written;
    ping: Written;
    connect: Written;
    disconnect: Written;
    /** One fan-out batch of one event (the batch line and its metrics). */
    fanoutBatch: Written;
    /** A sweep that found nothing: its metric document (one per sweep, every `sweepIntervalSeconds`). */
    sweepIdle: Written;
    /** A sweep that declared one node down: its line and metrics, instead of the idle document. */
    sweepDown: Written;
  };
}

/**
 * PutLogEvents counts each event as its UTF-8 bytes plus 26 bytes
 * (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html).
 * The model counts ingested bytes the same way: an upper bound if AWS meters
 * the message bytes alone.
 */
export const LOG_EVENT_OVERHEAD_BYTES = 26;

/** The bytes a `Written` is metered as. */
export const meteredBytes = (w: Written): number => w.bytes + w.events * LOG_EVENT_OVERHEAD_BYTES;

/**
 * Measured on 2026-12-07 with `npx tsx scripts/measure-log-bytes.ts` (the
 * handlers run as on Lambda against DynamoDB Local, ids of 12 and 11
 * characters, a token subject of 11; Lambda's lines and the access line in
 * their documented formats, the access format from the synthesized stack).
 * A keepalive: the access line alone, 230 bytes in 1 event, 256 metered
 * (before the cuts of issue 22: 1,483 bytes in 7 events, 1,665 metered — the
 * request line at INFO and two EMF documents, 855 bytes; Lambda's START, END
 * and REPORT, 264; an access line of 364). Lambda's own lines are 0: the
 * stack's functions log in JSON at system log level WARN.
 */
export const MEASURED_LOG_BYTES: LogBytes = {
  source: 'scripts/measure-log-bytes.ts, 2026-12-07',
  platform: { bytes: 0, events: 0 },
  httpAccess: { keepalive: { bytes: 230, events: 1 }, list: { bytes: 210, events: 1 }, register: { bytes: 219, events: 1 } },
  handler: {
    keepalive: { bytes: 0, events: 0 },
    routinePublish: { bytes: 404, events: 2 },
    listNotModified: { bytes: 0, events: 0 },
    listFull: { bytes: 974, events: 4 },
    register: { bytes: 1024, events: 4 },
    ping: { bytes: 0, events: 0 },
    connect: { bytes: 791, events: 3 },
    disconnect: { bytes: 748, events: 3 },
    fanoutBatch: { bytes: 438, events: 2 },
    sweepIdle: { bytes: 206, events: 1 },
    sweepDown: { bytes: 793, events: 3 },
  },
};

/** Retention of the stack's log groups (function and access logs): infra/roster-stack.ts `logRetention`, one year. */
export const STACK_LOG_RETENTION_DAYS = 365;
