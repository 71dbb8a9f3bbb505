import '../../support/quiet-powertools.ts';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { StatTally } from '../../../lambdas/domain/reporting/stats.ts';
import { createFeedbackConsumer } from '../../../lambdas/feedback/app.ts';
import { processSqsBatch } from '../../../lambdas/shared/batch.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { Tally } from '../../../lambdas/shared/tally.ts';
import { messageRecord, recipient, sesEventBody, snsEnvelope, sqsRecord } from '../../support/builders.ts';
import {
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  InMemoryUsageStore,
  testClock,
} from '../../support/fakes.ts';

// The feedback function's share of the daily statistics (delivered, bounced, complained, failed),
// through the handler's batch shape: Powertools' BatchProcessor (records in parallel), then one
// flush of the batch's tally.

function setUp(now = '2025-03-01T12:05:00.000Z') {
  const messages = new InMemoryMessageStore();
  const softBounces = new InMemorySoftBounceStore();
  const usage = new InMemoryUsageStore();
  const stats = new StatTally();
  const consume = createFeedbackConsumer(
    {
      messages,
      suppressions: new InMemorySuppressionStore(),
      softBounces,
      clock: testClock(now),
    },
    stats,
  );
  /** One invocation, as lambdas/feedback/handler.ts runs it. */
  const run = async (bodies: readonly string[]): Promise<SQSBatchResponse> => {
    const records: SQSRecord[] = bodies.map((body, i) => sqsRecord(body, { messageId: `sqs-${i}` }));
    return processSqsBatch(records, consume, { outcomes: new Tally(), finish: () => stats.flush(usage) });
  };
  /** A sent message of `tenant` to `to`. */
  const sent = (id: string, tenant: string, to: readonly string[], sesMessageId?: string) =>
    messages.seed(
      messageRecord({
        id,
        tenant,
        phase: 'sent',
        recipients: to.map((a) => recipient(a, 'sent')),
        ...(sesMessageId ? { sesMessageId } : {}),
      }),
    );
  /** The writes made, by tenant and day (records run in parallel, so they finish in any order). */
  const writes = () =>
    [...usage.statWrites].sort((a, b) => `${a.tenant} ${a.day}`.localeCompare(`${b.tenant} ${b.day}`));
  return { messages, softBounces, usage, run, sent, writes };
}

const at = '2025-03-01T12:01:00.000Z';

const delivery = (id: string, to: readonly string[], timestamp = at) =>
  sesEventBody({
    eventType: 'Delivery',
    batonMessageId: id,
    sesMessageId: `ses-${id}`,
    destination: to,
    sections: { delivery: { timestamp, recipients: to, smtpResponse: '250 ok' } },
  });

const bounce = (id: string, to: string, bounceType: 'Permanent' | 'Transient', status: string) =>
  sesEventBody({
    eventType: 'Bounce',
    batonMessageId: id,
    sesMessageId: `ses-${id}`,
    destination: [to],
    sections: {
      bounce: {
        timestamp: at,
        bounceType,
        bounceSubType: bounceType === 'Permanent' ? 'General' : 'MailboxFull',
        feedbackId: `fb-${id}`,
        bouncedRecipients: [{ emailAddress: to, action: 'failed', status }],
      },
    },
  });

const complaint = (id: string, to: string) =>
  sesEventBody({
    eventType: 'Complaint',
    batonMessageId: id,
    sesMessageId: `ses-${id}`,
    destination: [to],
    sections: {
      complaint: {
        timestamp: at,
        feedbackId: `fc-${id}`,
        complaintFeedbackType: 'abuse',
        complainedRecipients: [{ emailAddress: to }],
      },
    },
  });

describe('the feedback function’s statistics', () => {
  it('writes once per tenant and day for a whole batch, counting each recipient', async () => {
    // Prepare
    const { run, sent, writes } = setUp();
    sent('msg_a1', 'shop', ['ana@example.org', 'bob@example.org']);
    sent('msg_a2', 'shop', ['carl@example.org']);
    sent('msg_a3', 'shop', ['dora@example.org']);
    sent('msg_b1', 'blog', ['eve@example.org']);
    sent('msg_b2', 'blog', ['finn@example.org']);

    // Act
    const response = await run([
      delivery('msg_a1', ['ana@example.org', 'bob@example.org']),
      bounce('msg_a2', 'carl@example.org', 'Permanent', '5.1.1'),
      snsEnvelope(complaint('msg_b1', 'eve@example.org')),
      bounce('msg_a3', 'dora@example.org', 'Transient', '4.2.2'),
      delivery('msg_b2', ['finn@example.org']),
    ]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(writes()).toEqual([
      { tenant: 'blog', day: '2025-03-01', counts: { complained: 1, delivered: 1 } },
      { tenant: 'shop', day: '2025-03-01', counts: { delivered: 2, bounced: 2 } },
    ]);
  });

  it('counts an event redelivered in the same batch once', async () => {
    // Prepare
    const { usage, run, sent } = setUp();
    sent('msg_1', 'shop', ['ana@example.org']);
    const event = complaint('msg_1', 'ana@example.org');

    // Act
    await run([event, snsEnvelope(event)]);

    // Assess
    expect(usage.stats.get('shop#2025-03-01')).toEqual({ complained: 1 });
  });

  it('counts an event redelivered in a later batch once', async () => {
    // Prepare
    const { run, sent, writes } = setUp();
    sent('msg_1', 'shop', ['ana@example.org']);
    const event = bounce('msg_1', 'ana@example.org', 'Permanent', '5.1.1');
    await run([event]);

    // Act
    const again = await run([event]);

    // Assess
    expect(again).toEqual({ batchItemFailures: [] });
    expect(writes()).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { bounced: 1 } }]);
  });

  it('counts an event on the UTC day SES says it happened', async () => {
    // Prepare
    const { run, sent, writes } = setUp('2025-03-01T00:00:30.000Z');
    sent('msg_1', 'shop', ['ana@example.org']);
    sent('msg_2', 'shop', ['bob@example.org']);

    // Act
    await run([
      delivery('msg_1', ['ana@example.org'], '2025-02-28T23:59:58.000Z'),
      delivery('msg_2', ['bob@example.org'], '2025-03-01T00:00:01.000Z'),
    ]);

    // Assess
    expect(writes()).toEqual([
      { tenant: 'shop', day: '2025-02-28', counts: { delivered: 1 } },
      { tenant: 'shop', day: '2025-03-01', counts: { delivered: 1 } },
    ]);
  });

  it('counts an untagged notification for the tenant of the message its SES id finds', async () => {
    // Prepare
    const { run, sent, writes } = setUp();
    sent('msg_1', 'blog', ['ana@example.org'], 'ses-untagged');
    const notification = JSON.stringify({
      notificationType: 'Delivery',
      mail: { timestamp: at, messageId: 'ses-untagged', destination: ['ana@example.org'] },
      delivery: { timestamp: at, recipients: ['ana@example.org'] },
    });

    // Act
    await run([notification]);

    // Assess
    expect(writes()).toEqual([{ tenant: 'blog', day: '2025-03-01', counts: { delivered: 1 } }]);
  });

  it('counts a Reject as a failed message', async () => {
    // Prepare
    const { run, sent, writes } = setUp();
    sent('msg_1', 'shop', ['ana@example.org', 'bob@example.org']);
    const reject = sesEventBody({
      eventType: 'Reject',
      batonMessageId: 'msg_1',
      destination: ['ana@example.org', 'bob@example.org'],
      sections: { reject: { reason: 'Bad content' } },
    });

    // Act
    await run([reject]);

    // Assess
    expect(writes()).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { failed: 1 } }]);
  });

  it('counts the recipients sent when SES’s Send event settles an uncertain attempt SES kept', async () => {
    // Prepare: the sender lost SES's answer (nothing counted sent), SES had taken the message.
    const { run, messages, writes } = setUp();
    messages.seed(
      messageRecord({
        id: 'msg_1',
        tenant: 'shop',
        phase: 'sending',
        recipients: [recipient('ana@example.org'), recipient('bob@example.org')],
        uncertain: { at, confirmUntil: Date.parse(at) + 255_000 },
      }),
    );
    const send = sesEventBody({
      eventType: 'Send',
      batonMessageId: 'msg_1',
      sesMessageId: 'ses-msg_1',
      destination: ['ana@example.org', 'bob@example.org'],
      sections: { send: {} },
    });

    // Act: the Send event, then its redelivery
    await run([send]);
    await run([send]);

    // Assess
    expect(writes()).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { sent: 2 } }]);
  });

  it('counts nothing for a record that fails, and counts it when its retry is applied', async () => {
    // Prepare
    const { run, sent, writes } = setUp();
    const early = delivery('msg_later', ['ana@example.org']);
    const first = await run([early, 'not json']);
    sent('msg_later', 'shop', ['ana@example.org']);

    // Act
    const retry = await run([early]);

    // Assess
    expect(first.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['sqs-0', 'sqs-1']);
    expect(retry).toEqual({ batchItemFailures: [] });
    expect(writes()).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { delivered: 1 } }]);
  });

  it('counts an event applied to its message once, even when a later step fails and the record is retried', async () => {
    // Prepare
    const { softBounces, run, sent, writes } = setUp();
    sent('msg_1', 'shop', ['ana@example.org']);
    const event = bounce('msg_1', 'ana@example.org', 'Transient', '4.2.2');
    vi.spyOn(softBounces, 'put').mockRejectedValueOnce(new TransientError('the soft-bounce write failed'));

    // Act
    const first = await run([event]);
    const retry = await run([event]);

    // Assess
    expect([first, retry]).toEqual([
      { batchItemFailures: [{ itemIdentifier: 'sqs-0' }] },
      { batchItemFailures: [] },
    ]);
    expect(writes()).toEqual([{ tenant: 'shop', day: '2025-03-01', counts: { bounced: 1 } }]);
  });

  it('writes nothing for a batch of events that count nothing', async () => {
    // Prepare
    const { run, sent, writes } = setUp();
    sent('msg_1', 'shop', ['ana@example.org']);
    const send = sesEventBody({ eventType: 'Send', batonMessageId: 'msg_1', sections: { send: {} } });

    // Act
    await run([send]);

    // Assess
    expect(writes()).toEqual([]);
  });
});
