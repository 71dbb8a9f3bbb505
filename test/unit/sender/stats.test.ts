import '../../support/quiet-powertools.ts';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import type { DkimKey } from '../../../lambdas/domain/delivery/dkim.ts';
import { PermanentError, SendingPausedError, TransientError } from '../../../lambdas/shared/errors.ts';
import { messageRecord, sqsRecord, suppression } from '../../support/builders.ts';
import { InMemoryUsageStore } from '../../support/fakes.ts';
import { runSenderBatch } from '../../support/sender-batch.ts';
import { queuedJob, senderHarness } from '../../support/unit-sender.ts';

// The sender's share of the daily statistics (sent, suppressed, failed), through the handler's
// batch shape: counted per record, written once per tenant and day when the batch ends.

const MAX_RECEIVE_COUNT = 10;

function setUp(options: { dkim?: DkimKey; now?: string } = {}) {
  const { sender, messages, suppressions, mailer, clock } = senderHarness({
    dkim: options.dkim,
    maxReceiveCount: MAX_RECEIVE_COUNT,
  });
  if (options.now !== undefined) clock.set(options.now);
  const usage = new InMemoryUsageStore();
  /** Seeds a queued message of `tenant` to `to` and returns the SQS record of its job. */
  const queued = (id: string, tenant: string, to?: string[], receiveCount = 1): SQSRecord =>
    queuedJob(messages, id, { tenant, to, receiveCount });
  const run = (records: SQSRecord[]) => runSenderBatch(sender, records, usage);
  return { sender, messages, suppressions, mailer, usage, clock, queued, run };
}

describe('the sender’s statistics', () => {
  it('writes once per tenant and day for a whole batch, counting each recipient SES took', async () => {
    // Prepare
    const { usage, queued, run } = setUp();
    const records = [
      queued('a1', 'shop'),
      queued('a2', 'shop', ['ana@example.org', 'bob@example.org']),
      queued('b1', 'blog'),
      queued('a3', 'shop'),
      queued('b2', 'blog'),
    ];

    // Act
    const response = await run(records);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(usage.statWrites).toEqual([
      { tenant: 'shop', day: '2025-03-01', counts: { sent: 4 } },
      { tenant: 'blog', day: '2025-03-01', counts: { sent: 2 } },
    ]);
  });

  it('counts a message with no recipient left at send time as suppressed, and sends the rest', async () => {
    // Prepare
    const { usage, suppressions, queued, run } = setUp();
    suppressions.seed(suppression('gone@example.org', 'complaint'));
    const records = [
      queued('m1', 'shop', ['gone@example.org']),
      queued('m2', 'shop', ['gone@example.org', 'ana@example.org']),
    ];

    // Act
    await run(records);

    // Assess
    expect(usage.statWrites).toEqual([
      { tenant: 'shop', day: '2025-03-01', counts: { suppressed: 1, sent: 1 } },
    ]);
  });

  it('counts a message SES refused for good as failed, and a throttled one not at all', async () => {
    // Prepare
    const { usage, mailer, queued, run } = setUp();
    mailer.willAnswer(new PermanentError('SES rejected the message: Email address is not verified.'));
    mailer.willAnswer(new TransientError('SES is unavailable or throttling (TooManyRequestsException)'));
    const records = [queued('rejected', 'shop'), queued('throttled', 'shop'), queued('ok', 'shop')];

    // Act
    const response = await run(records);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-throttled' }] });
    expect(usage.statWrites).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { failed: 1, sent: 1 } }]);
  });

  it('counts a message it gives up on (its last receive still failing) as failed', async () => {
    // Prepare
    const { usage, mailer, queued, run } = setUp();
    mailer.willAnswer(new TransientError('SES is unavailable or throttling (TooManyRequestsException)'));

    // Act
    await run([queued('tired', 'shop', undefined, MAX_RECEIVE_COUNT)]);

    // Assess
    expect(usage.statWrites).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { failed: 1 } }]);
  });

  it('counts a job that can never be read as failed, for the tenant of its message record', async () => {
    // Prepare
    const { usage, messages, run } = setUp();
    messages.seed(messageRecord({ id: 'msg_broken', tenant: 'shop' }));
    const broken = sqsRecord(JSON.stringify({ v: 1, id: 'msg_broken', tenant: 'shop' }), {
      messageId: 'sqs-b',
    });

    // Act
    const response = await run([broken]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-b' }] });
    expect(messages.peek('msg_broken')?.phase).toBe('failed');
    expect(usage.statWrites).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { failed: 1 } }]);
  });

  it('counts nothing for a job that is not Baton’s (no message record to fail)', async () => {
    // Prepare
    const { usage, run } = setUp();

    // Act
    await run([sqsRecord('not json at all', { messageId: 'sqs-x' }), sqsRecord('{"id":"msg_nobody"}')]);

    // Assess
    expect(usage.statWrites).toEqual([]);
  });

  it('counts a message that cannot be built as failed, once, however often its job comes back', async () => {
    // Prepare
    const { usage, messages, queued, run } = setUp({
      dkim: { selector: 'baton', privateKey: 'not a PEM key' },
    });
    const record = queued('unbuildable', 'shop');

    // Act
    await run([record]);
    await run([record]);

    // Assess
    expect(messages.peek('unbuildable')?.phase).toBe('failed');
    expect(usage.statWrites).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { failed: 1 } }]);
  });

  it('does not count a duplicate delivery of a message already sent', async () => {
    // Prepare
    const { usage, mailer, queued, run } = setUp();
    const record = queued('once', 'shop');
    await run([record]);

    // Act
    await run([record]);

    // Assess
    expect(mailer.sent).toHaveLength(1);
    expect(usage.statWrites).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { sent: 1 } }]);
  });

  it('counts a message SES took even when recording it afterwards fails', async () => {
    // Prepare
    const { usage, messages, queued, run } = setUp();
    const record = queued('unrecorded', 'shop');
    // The claim is its own conditional write; the one after SES accepted is the first update.
    vi.spyOn(messages, 'update').mockRejectedValueOnce(
      new TransientError('writing the message failed: InternalServerError'),
    );

    // Act
    const response = await run([record]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-unrecorded' }] });
    expect(usage.statWrites).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { sent: 1 } }]);
  });

  it('counts nothing for a batch handed back because sending is paused', async () => {
    // Prepare
    const { usage, mailer, queued, run } = setUp();
    mailer.willAnswer(
      new SendingPausedError('SES sending is paused for the account (SendingPausedException)'),
    );

    // Act
    await run([queued('p1', 'shop'), queued('p2', 'shop')]);

    // Assess
    expect(usage.statWrites).toEqual([]);
  });

  it('counts a send on the UTC day it happened, not the day the message was accepted', async () => {
    // Prepare
    const { usage, queued, run } = setUp({ now: '2025-03-02T00:00:05.000Z' });

    // Act
    await run([queued('late', 'shop')]);

    // Assess
    expect(usage.statWrites).toEqual([{ tenant: 'shop', day: '2025-03-02', counts: { sent: 1 } }]);
  });
});
