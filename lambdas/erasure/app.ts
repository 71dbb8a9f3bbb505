import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import {
  continueErasure,
  type ErasureScanDeps,
  loggableKey,
  MalformedErasureJobError,
  parseErasureJob,
} from '../domain/erasure/erasure.ts';
import { describeError, logger, metrics } from '../shared/observability.ts';

/**
 * How long before the function's own timeout a step stops starting scan pages: the pages and
 * rewrites already started, and queueing the next step, must finish before Lambda stops it.
 */
export const ERASURE_STEP_MARGIN_MS = 20_000;

/**
 * The per-record handler of the erasure queue: one step of an erasure that outlasted its request
 * (domain/erasure/erasure.ts `continueErasure`). A step that fails throws, so the job is retried from the
 * same positions (rewrites are idempotent) and finally dead-lettered; the job holds only the
 * pseudonym, never the address.
 */
export function createErasureWorker(deps: ErasureScanDeps) {
  return async (record: SQSRecord, deadline: number): Promise<void> => {
    let job: ReturnType<typeof parseErasureJob>;
    try {
      job = parseErasureJob(record.body);
    } catch (error) {
      if (error instanceof MalformedErasureJobError) {
        metrics.addMetric('erasureJobsMalformed', MetricUnit.Count, 1);
        logger.error('malformed erasure job; it will be dead-lettered', {
          sqsMessageId: record.messageId,
          ...describeError(error),
        });
      }
      throw error;
    }
    const erasedKey = loggableKey(job.key);
    try {
      const outcome = await continueErasure(deps, job, deadline);
      if (outcome.erased > 0) metrics.addMetric('erasedRecords', MetricUnit.Count, outcome.erased);
      if (outcome.complete) metrics.addMetric('erasuresCompleted', MetricUnit.Count, 1);
      logger.info(outcome.complete ? 'erasure complete' : 'erasure continues', {
        erasedKey,
        round: job.round,
        records: outcome.job.erased,
        recordsThisRound: outcome.erased,
        complete: outcome.complete,
      });
    } catch (error) {
      logger.warn('erasure step failed; will retry', {
        erasedKey,
        round: job.round,
        ...describeError(error),
      });
      throw error;
    }
  };
}
