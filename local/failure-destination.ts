/**
 * The fan-out's on-failure destination, locally: where the stream poller puts
 * the invocation record of each batch it discarded, after its retries or
 * because its records were too old (on AWS: an SQS queue). Each entry also
 * carries the discarded records, which AWS's record only points to. The last
 * few stay in memory for `Runtime.streamFailures()`; with a data directory
 * every one is also appended to `{dataDir}/stream-failures.jsonl`.
 */
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RuntimeLog } from './log.ts';
import type { StreamFailure } from './stream-poller.ts';

const MAX_KEPT_FAILURES = 100;

export class FailureDestination {
  private readonly kept: StreamFailure[] = [];
  private readonly file: string | undefined;

  constructor(
    dataDir: string | undefined,
    private readonly log: RuntimeLog,
  ) {
    this.file = dataDir ? join(dataDir, 'stream-failures.jsonl') : undefined;
  }

  async write(failure: StreamFailure): Promise<void> {
    this.kept.push(failure);
    if (this.kept.length > MAX_KEPT_FAILURES) this.kept.shift();
    if (this.file) await appendFile(this.file, `${JSON.stringify(failure)}\n`);
    else
      this.log.warn('discarded stream batch kept in memory (start with --data-dir to keep them in a file)', {
        condition: failure.requestContext.condition,
        startSequenceNumber: failure.DDBStreamBatchInfo.startSequenceNumber,
        batchSize: failure.DDBStreamBatchInfo.batchSize,
      });
  }

  /** The most recent discarded batches, oldest first. */
  recent(): StreamFailure[] {
    return [...this.kept];
  }
}
