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
  /** What the handler itself writes per invocation: its request line and its EMF metric documents. */
  handler: {
    keepalive: Written;
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
 * A keepalive: 364 + 264 + 855 = 1,483 bytes in 7 events, 1,665 metered.
 */
export const MEASURED_LOG_BYTES: LogBytes = {
  source: 'scripts/measure-log-bytes.ts, 2026-12-07',
  platform: { bytes: 264, events: 3 },
  httpAccess: { keepalive: { bytes: 364, events: 1 }, list: { bytes: 341, events: 1 }, register: { bytes: 352, events: 1 } },
  handler: {
    keepalive: { bytes: 855, events: 3 },
    listNotModified: { bytes: 762, events: 3 },
    listFull: { bytes: 762, events: 3 },
    register: { bytes: 1026, events: 4 },
    ping: { bytes: 737, events: 3 },
    connect: { bytes: 791, events: 3 },
    disconnect: { bytes: 748, events: 3 },
    fanoutBatch: { bytes: 428, events: 2 },
    sweepIdle: { bytes: 207, events: 1 },
    sweepDown: { bytes: 773, events: 3 },
  },
};

/** Retention of the stack's log groups (function and access logs): infra/roster-stack.ts `logRetention`, one year. */
export const STACK_LOG_RETENTION_DAYS = 365;
