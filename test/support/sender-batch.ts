/**
 * The sender's batch loop composed exactly as `lambdas/sender/handler.ts` composes it (which cannot
 * be imported without its environment): one `prepare` for the batch, then Powertools'
 * `processPartialResponse` with an SQS `BatchProcessor`, records one at a time, a whole-batch
 * failure reported as item failures rather than thrown.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import type { createSender } from '../../lambdas/sender/app.ts';

export type Sender = ReturnType<typeof createSender>;

/** One invocation of the sender for `records`; returns what Lambda would get back. */
export async function runSenderBatch(
  sender: Sender,
  records: readonly SQSRecord[],
): Promise<SQSBatchResponse> {
  const processor = new BatchProcessor(EventType.SQS);
  const prepared = await sender.prepare(records);
  return processPartialResponse(
    { Records: [...records] },
    (record: SQSRecord) => sender.sendRecord(record, prepared),
    processor,
    { throwOnFullBatchFailure: false, processInParallel: false },
  );
}
