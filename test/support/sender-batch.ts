/**
 * The sender's batch loop composed exactly as `lambdas/sender/handler.ts` composes it (which cannot
 * be imported without its environment): one `prepare` for the batch, then the handlers' own
 * `processSqsBatch`, records one at a time, a whole-batch failure reported as item failures rather
 * than thrown.
 */
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import type { UsageStore } from '../../lambdas/domain/ports.ts';
import type { createSender } from '../../lambdas/sender/app.ts';
import { processSqsBatch } from '../../lambdas/shared/batch.ts';

export type Sender = ReturnType<typeof createSender>;

/**
 * One invocation of the sender for `records`; returns what Lambda would get back. At the end, as the
 * handler does, the batch's webhook events are published and, with `usage`, its statistics flushed
 * to it; with `deadline`, the sender keeps it as it keeps the Lambda context's.
 */
export async function runSenderBatch(
  sender: Sender,
  records: readonly SQSRecord[],
  usage?: Pick<UsageStore, 'addStats'>,
  deadline?: Date,
): Promise<SQSBatchResponse> {
  const prepared = await sender.prepare(records, { deadline });
  return processSqsBatch([...records], (record) => sender.sendRecord(record, prepared), {
    outcomes: prepared.outcomes,
    processInParallel: false,
    finish: async () => {
      // The batch's webhook events (a no-op for a sender without a publisher), then its statistics.
      await sender.publishWebhooks(prepared);
      if (usage) await prepared.stats.flush(usage);
    },
  });
}
