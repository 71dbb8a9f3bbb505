import '../../support/quiet-powertools.ts';
import { describe, expect, it, vi } from 'vitest';
import { MalformedErasureJobError } from '../../../lambdas/domain/erasure/erasure.ts';
import { createErasureWorker } from '../../../lambdas/erasure/app.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { logger } from '../../../lambdas/shared/observability.ts';
import { erasureJob, messageRecord, recipient, sqsRecord, T0 } from '../../support/builders.ts';
import { InMemoryErasureQueue, InMemoryMessageStore, testClock } from '../../support/fakes.ts';
import { ANA, ANA_KEY, keyOf } from '../../support/unit-erasure.ts';

function setUp() {
  const messages = new InMemoryMessageStore();
  const queue = new InMemoryErasureQueue();
  const clock = testClock(T0);
  const work = createErasureWorker({ messages, queue, keyOf, clock, segments: 2 });
  return { work, messages, queue, clock };
}

const firstStep = erasureJob({ key: ANA_KEY, erased: 5 });

describe('createErasureWorker', () => {
  it('erases the rest of the tenant’s records and logs the total under the pseudonym’s prefix', async () => {
    // Prepare
    const { work, messages, queue } = setUp();
    messages.seed(
      messageRecord({ id: 'msg_a', recipients: [recipient(ANA)] }),
      messageRecord({ id: 'msg_b', recipients: [recipient('bob@example.org')] }),
    );
    const info = vi.spyOn(logger, 'info');

    // Act
    await work(sqsRecord(JSON.stringify(firstStep)), Date.parse(T0) + 60_000);

    // Assess
    expect(messages.peek('msg_a')?.recipients[0]?.address).toBe(ANA_KEY);
    expect(queue.jobs).toEqual([]);
    expect(info).toHaveBeenCalledWith('erasure complete', {
      erasedKey: ANA_KEY.slice(0, 15),
      round: 1,
      records: 6,
      recordsThisRound: 1,
      complete: true,
    });
    info.mockRestore();
  });

  it('queues the next step when its deadline comes first', async () => {
    // Prepare
    const { work, messages, queue, clock } = setUp();
    messages.scanPageSize = 1;
    messages.onScanPage = () => clock.advance(10_000);
    messages.seed(
      ...['msg_a', 'msg_b', 'msg_c', 'msg_d'].map((id) =>
        messageRecord({ id, recipients: [recipient(ANA)] }),
      ),
    );

    // Act
    await work(sqsRecord(JSON.stringify(firstStep)), Date.parse(T0) + 5_000);

    // Assess: the first page passes the deadline, so no other page starts; the count carries on.
    expect(queue.jobs.map((j) => [j.round, j.erased])).toEqual([[2, 6]]);
  });

  it('throws a malformed job, so it is dead-lettered', async () => {
    // Prepare
    const { work } = setUp();

    // Act
    const step = work(sqsRecord('{"eventType":"Bounce"}'), Date.parse(T0) + 60_000);

    // Assess
    await expect(step).rejects.toThrow(new MalformedErasureJobError('not a Baton erasure job'));
  });

  it('throws a failed step, so the same positions are retried', async () => {
    // Prepare
    const { work, messages } = setUp();
    vi.spyOn(messages, 'scanTenant').mockRejectedValueOnce(
      new TransientError('scanning the messages failed'),
    );

    // Act
    const step = work(sqsRecord(JSON.stringify(firstStep)), Date.parse(T0) + 60_000);

    // Assess
    await expect(step).rejects.toThrow(new TransientError('scanning the messages failed'));
  });
});
