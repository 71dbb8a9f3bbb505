import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { logger } from './observability.ts';
import type { Tally } from './tally.ts';

export interface SqsBatchOptions {
  readonly context?: Context;
  /** Counts by outcome, filled in by `handle`: logged (and drained) in the batch's summary line. */
  readonly outcomes: Tally;
  /** @default true (Powertools' default) */
  readonly processInParallel?: boolean;
  /** Runs once the batch is done, whether or not it threw: writes what the batch collected. */
  readonly finish?: () => void | Promise<void>;
}

/**
 * One SQS batch as the queue consumers (sender, feedback) run it: Powertools' partial-batch
 * processing, so a record that throws becomes a batchItemFailure and even a wholly failed batch is
 * reported, not thrown; then the batch's one summary log line (records, failed, and the outcomes
 * counted) and `finish`.
 */
export async function processSqsBatch(
  records: SQSRecord[],
  handle: (record: SQSRecord) => Promise<void>,
  options: SqsBatchOptions,
): Promise<SQSBatchResponse> {
  let failed = 0;
  try {
    const response = await processPartialResponse(
      { Records: records },
      handle,
      new BatchProcessor(EventType.SQS),
      {
        context: options.context,
        throwOnFullBatchFailure: false,
        processInParallel: options.processInParallel,
      },
    );
    failed = response.batchItemFailures.length;
    return response;
  } finally {
    // Outcomes nested: a count named like a batch field (the sender's outcome `failed`) cannot hide it.
    logger.info('batch handled', { records: records.length, failed, outcomes: options.outcomes.drain() });
    await options.finish?.();
  }
}
