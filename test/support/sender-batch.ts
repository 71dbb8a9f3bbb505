/**
 * The sender's batch loop composed exactly as `lambdas/sender/handler.ts` composes it (which cannot
 * be imported without its environment): one `prepare` for the batch, then Powertools'
 * `processPartialResponse` with an SQS `BatchProcessor`, records one at a time, a whole-batch
 * failure reported as item failures rather than thrown.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import type { UsageStore } from '../../lambdas/domain/ports.ts';
import type { createSender } from '../../lambdas/sender/app.ts';

export type Sender = ReturnType<typeof createSender>;

/**
 * One invocation of the sender for `records`; returns what Lambda would get back. With `usage`, the
 * batch's statistics are flushed to it at the end, as the handler does.
 */
export async function runSenderBatch(
  sender: Sender,
  records: readonly SQSRecord[],
  usage?: Pick<UsageStore, 'addStats'>,
): Promise<SQSBatchResponse> {
  const processor = new BatchProcessor(EventType.SQS);
  const prepared = await sender.prepare(records);
  try {
    return await processPartialResponse(
      { Records: [...records] },
      (record: SQSRecord) => sender.sendRecord(record, prepared),
      processor,
      { throwOnFullBatchFailure: false, processInParallel: false },
    );
  } finally {
    if (usage) await prepared.stats.flush(usage);
  }
}
