import '../../support/quiet-powertools.ts';
import type { SQSRecord } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { processSqsBatch } from '../../../lambdas/shared/batch.ts';
import { logger } from '../../../lambdas/shared/observability.ts';
import { Tally } from '../../../lambdas/shared/tally.ts';
import { sqsRecord } from '../../support/builders.ts';

// The queue consumers' batch loop (sender and feedback handlers): partial-batch responses, one
// summary log line, then the batch's flush.

afterEach(() => {
  vi.restoreAllMocks();
});

describe('processSqsBatch', () => {
  it('reports the records that threw and logs one summary line with the outcomes counted', async () => {
    // Prepare
    const info = vi.spyOn(logger, 'info');
    const outcomes = new Tally();
    const records = ['ok', 'bad', 'fine'].map((body, i) => sqsRecord(body, { messageId: `sqs-${i}` }));
    const handle = async (record: SQSRecord): Promise<void> => {
      // An outcome named like a summary field must not hide the batch's own count.
      outcomes.add(record.body === 'ok' ? 'sent' : 'failed');
      if (record.body === 'bad') throw new Error('no');
    };

    // Act
    const response = await processSqsBatch(records, handle, { outcomes, processInParallel: false });

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-1' }] });
    expect(info).toHaveBeenCalledTimes(1);
    expect(info).toHaveBeenCalledWith('batch handled', {
      records: 3,
      failed: 1,
      outcomes: { sent: 1, failed: 2 },
    });
    expect(outcomes.drain()).toEqual({});
  });

  it('reports a wholly failed batch instead of throwing, and finishes after the summary line', async () => {
    // Prepare
    const order: string[] = [];
    vi.spyOn(logger, 'info').mockImplementation(() => order.push('logged'));
    const records = [sqsRecord('a', { messageId: 'sqs-a' }), sqsRecord('b', { messageId: 'sqs-b' })];

    // Act
    const response = await processSqsBatch(
      records,
      async () => {
        throw new Error('down');
      },
      {
        outcomes: new Tally(),
        finish: async () => {
          order.push('finished');
        },
      },
    );

    // Assess
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: 'sqs-a' }, { itemIdentifier: 'sqs-b' }],
    });
    expect(order).toEqual(['logged', 'finished']);
  });
});
