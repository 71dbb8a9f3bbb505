import '../../support/quiet-powertools.ts';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { toMessageView } from '../../../lambdas/domain/reporting/status.ts';
import { CLAIM_LEASE_MS, type SenderDeps } from '../../../lambdas/sender/app.ts';
import { PermanentError, SendingPausedError, TransientError } from '../../../lambdas/shared/errors.ts';
import { metrics } from '../../../lambdas/shared/observability.ts';
import { messageRecord, recipient, sqsRecord, T0 } from '../../support/builders.ts';
import { runSenderBatch } from '../../support/sender-batch.ts';
import { queuedJob, senderHarness } from '../../support/unit-sender.ts';

// Issue 4 parts 1, 6 and 8 through the handler's own batch shape (Powertools BatchProcessor,
// records one at a time): which records come back as batchItemFailures, which are delayed and by
// how much, what SES was asked, and what the status API would show.

const MAX_RECEIVE_COUNT = 10;

const THROTTLED = 'SES is unavailable or throttling (TooManyRequestsException)';
const REJECTED = 'SES rejected the message: Email address is not verified. (us-east-1: orders@example.com)';
const PAUSED = 'SES sending is paused for the account (SendingPausedException)';

/** The sender at T0, jitter at its middle (the first receive waits ceil(0.5 × 2) = 1 s). */
function setUp(deps: Partial<SenderDeps> = {}) {
  const h = senderHarness({ maxReceiveCount: MAX_RECEIVE_COUNT, ...deps });
  /** Seeds a queued record for `id` (to `<id>@example.org`) and returns the SQS record of its job. */
  const queued = (id: string, receiveCount = 1, record: Partial<MessageRecord> = {}): SQSRecord =>
    queuedJob(h.messages, id, { receiveCount, record });
  return { ...h, queued };
}

const failures = (...ids: string[]) => ({
  batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })),
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the sender over a mixed batch', () => {
  it('reports only the transient records as failures and delays only them', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, queued } = setUp();
    const records = [
      queued('ok'),
      queued('throttled'),
      queued('rejected'),
      queued('dup', 1, {
        phase: 'sent',
        sesMessageId: 'ses-0',
        recipients: [recipient('dup@example.org', 'sent')],
      }),
      queued('unavailable'),
    ];
    mailer.willAnswer(
      'ses-ok',
      new TransientError(THROTTLED),
      new PermanentError(REJECTED),
      new TransientError('SES is unavailable or throttling (InternalFailure)'),
    );

    // Act
    const response = await runSenderBatch(sender, records);

    // Assess
    expect(response).toEqual(failures('sqs-throttled', 'sqs-unavailable'));
    expect(visibility.delays).toEqual([
      { messageId: 'sqs-throttled', seconds: 1 },
      { messageId: 'sqs-unavailable', seconds: 1 },
    ]);
    expect(mailer.attempts.map((m) => m.to)).toEqual([
      ['ok@example.org'],
      ['throttled@example.org'],
      ['rejected@example.org'],
      ['unavailable@example.org'],
    ]);
    expect(messages.peek('ok')).toMatchObject({ phase: 'sent', sesMessageId: 'ses-ok' });
    expect(messages.peek('throttled')).toMatchObject({ phase: 'queued', recipients: [{ status: 'queued' }] });
    expect(messages.peek('dup')).toMatchObject({ phase: 'sent', sesMessageId: 'ses-0', version: 1 });
  });

  it('records the permanently rejected message failed with SES’s reason, and a later delivery of it does not retry', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, queued } = setUp();
    const rejected = queued('rejected');
    mailer.willAnswer(new PermanentError(REJECTED));

    // Act
    const first = await runSenderBatch(sender, [rejected]);
    const again = await runSenderBatch(sender, [rejected]);

    // Assess
    expect(first).toEqual(failures());
    expect(again).toEqual(failures());
    expect(mailer.attempts).toHaveLength(1);
    expect(visibility.delays).toEqual([]);
    const stored = messages.peek('rejected') as MessageRecord;
    expect(stored).not.toHaveProperty('redrivable');
    expect(toMessageView(stored, new Date(T0))).toMatchObject({
      status: 'failed',
      recipients: [{ address: 'rejected@example.org', status: 'failed', reason: REJECTED }],
    });
  });

  it('counts each outcome once in the metrics', async () => {
    // Prepare
    const { sender, mailer, queued } = setUp();
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const records = [
      queued('ok'),
      queued('throttled'),
      queued('rejected'),
      queued('dup', 1, { phase: 'sent', recipients: [recipient('dup@example.org', 'sent')] }),
    ];
    mailer.willAnswer('ses-ok', new TransientError(THROTTLED), new PermanentError(REJECTED));

    // Act
    await runSenderBatch(sender, records);

    // Assess
    expect(addMetric.mock.calls).toEqual([
      ['messagesSent', MetricUnit.Count, 1],
      // accepted → sent, from the queue's SentTimestamp
      ['acceptedToSentMs', MetricUnit.Milliseconds, expect.any(Number)],
      ['sendRetries', MetricUnit.Count, 1],
      ['messagesFailed', MetricUnit.Count, 1],
      ['duplicateDeliveries', MetricUnit.Count, 1],
    ]);
  });
});

describe('the sender on the last receive', () => {
  const gaveUp = (attempts: number, why: string) =>
    `Baton gave up after ${attempts} attempts: ${why}. The message is in the dead-letter queue; redriving it sends it.`;

  it('records a message still failing transiently failed and redrivable, lets SQS move it now and reports it', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, queued } = setUp();
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const last = queued('last', MAX_RECEIVE_COUNT);
    mailer.willAnswer(new TransientError(THROTTLED));

    // Act
    const response = await runSenderBatch(sender, [last]);

    // Assess
    expect(response).toEqual(failures('sqs-last'));
    expect(visibility.delays).toEqual([{ messageId: 'sqs-last', seconds: 0 }]);
    expect(addMetric.mock.calls).toEqual([['messagesDeadLettered', MetricUnit.Count, 1]]);
    const stored = messages.peek('last') as MessageRecord;
    expect(stored).toMatchObject({ phase: 'failed', redrivable: true });
    expect(toMessageView(stored, new Date(T0))).toMatchObject({
      status: 'failed',
      recipients: [{ address: 'last@example.org', status: 'failed', reason: gaveUp(10, THROTTLED) }],
    });
  });

  it('backs off as usual on the receive before the last one', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, queued } = setUp();
    const record = queued('nine', MAX_RECEIVE_COUNT - 1);
    mailer.willAnswer(new TransientError(THROTTLED));

    // Act
    const response = await runSenderBatch(sender, [record]);

    // Assess
    expect(response).toEqual(failures('sqs-nine'));
    // Ninth receive: a window of min(900, 2 × 2⁸ = 512) s, half of it.
    expect(visibility.delays).toEqual([{ messageId: 'sqs-nine', seconds: 256 }]);
    expect(messages.peek('nine')).toMatchObject({ phase: 'queued' });
  });

  it('gives up on a message SES would not take because sending is paused, instead of holding it 900 s more', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, queued } = setUp();
    const last = queued('last', MAX_RECEIVE_COUNT);
    mailer.willAnswer(new SendingPausedError(PAUSED));

    // Act
    const response = await runSenderBatch(sender, [last]);

    // Assess
    expect(response).toEqual(failures('sqs-last'));
    expect(visibility.delays).toEqual([{ messageId: 'sqs-last', seconds: 0 }]);
    expect(toMessageView(messages.peek('last') as MessageRecord, new Date(T0)).recipients).toEqual([
      { address: 'last@example.org', status: 'failed', reason: gaveUp(10, PAUSED), updatedAt: T0 },
    ]);
  });

  it('leaves a message whose claim a live attempt holds as it is, and still lets SQS move it', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, queued } = setUp();
    const held = queued('held', MAX_RECEIVE_COUNT, {
      phase: 'sending',
      claimToken: 'live',
      claimUntil: Date.parse(T0) + CLAIM_LEASE_MS,
    });

    // Act
    const response = await runSenderBatch(sender, [held]);

    // Assess
    expect(response).toEqual(failures('sqs-held'));
    expect(mailer.attempts).toEqual([]);
    expect(visibility.delays).toEqual([{ messageId: 'sqs-held', seconds: 0 }]);
    expect(messages.peek('held')).toMatchObject({ phase: 'sending', claimToken: 'live' });
    expect(messages.peek('held')).not.toHaveProperty('redrivable');
  });

  // Regression: a claim-checked job whose payload could not be read was never given up on.
  it('gives up on a claim-checked message whose payload still cannot be read', async () => {
    // Prepare
    const slowDown = new TransientError('reading the payload failed: SlowDown');
    const { sender, messages, visibility } = setUp({
      payloads: {
        bucket: 'baton-payloads',
        get: async () => {
          throw slowDown;
        },
      },
    });
    messages.seed(messageRecord({ id: 'big', recipients: [recipient('big@example.org')] }));
    const pointer = {
      v: 1,
      id: 'big',
      tenant: 'tenant-a',
      payload: { bucket: 'baton-payloads', key: 'payloads/big' },
    };
    const last = sqsRecord(JSON.stringify(pointer), {
      messageId: 'sqs-big',
      receiveCount: MAX_RECEIVE_COUNT,
    });

    // Act
    const response = await runSenderBatch(sender, [last]);

    // Assess
    expect(response).toEqual(failures('sqs-big'));
    expect(visibility.delays).toEqual([{ messageId: 'sqs-big', seconds: 0 }]);
    expect(toMessageView(messages.peek('big') as MessageRecord, new Date(T0))).toMatchObject({
      status: 'failed',
      recipients: [{ status: 'failed', reason: gaveUp(10, slowDown.message) }],
    });
  });

  it('records a permanent rejection on the last receive as failed for good and acknowledges it', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, queued } = setUp();
    const last = queued('last', MAX_RECEIVE_COUNT);
    mailer.willAnswer(new PermanentError(REJECTED));

    // Act
    const response = await runSenderBatch(sender, [last]);

    // Assess
    expect(response).toEqual(failures());
    expect(visibility.delays).toEqual([]);
    expect(messages.peek('last')).toMatchObject({ phase: 'failed', recipients: [{ reason: REJECTED }] });
    expect(messages.peek('last')).not.toHaveProperty('redrivable');
  });
});

describe('the sender when SES pauses sending mid-batch', () => {
  it('hands the rest of the batch back for 900 s without sending it, and alarms once', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, queued } = setUp();
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const records = [queued('first'), queued('paused'), queued('third'), queued('fourth')];
    mailer.willAnswer('ses-first', new SendingPausedError(PAUSED));

    // Act
    const response = await runSenderBatch(sender, records);

    // Assess
    expect(response).toEqual(failures('sqs-paused', 'sqs-third', 'sqs-fourth'));
    expect(mailer.attempts.map((m) => m.to)).toEqual([['first@example.org'], ['paused@example.org']]);
    expect(visibility.delays).toEqual([
      { messageId: 'sqs-paused', seconds: 900 },
      { messageId: 'sqs-third', seconds: 900 },
      { messageId: 'sqs-fourth', seconds: 900 },
    ]);
    expect(['first', 'paused', 'third', 'fourth'].map((id) => messages.peek(id)?.phase)).toEqual([
      'sent',
      'queued',
      'queued',
      'queued',
    ]);
    expect(messages.peek('paused')).not.toHaveProperty('claimToken');
    expect(addMetric.mock.calls).toEqual([
      ['messagesSent', MetricUnit.Count, 1],
      // accepted → sent, from the queue's SentTimestamp
      ['acceptedToSentMs', MetricUnit.Milliseconds, expect.any(Number)],
      ['sendingPaused', MetricUnit.Count, 1],
    ]);
  });

  // Regression: a paused record on its last receive did not stop the rest of the batch.
  it('hands the rest of the batch back even when the paused record was on its last receive', async () => {
    // Prepare
    const { sender, mailer, visibility, queued } = setUp();
    const records = [queued('last', MAX_RECEIVE_COUNT), queued('second'), queued('third')];
    // Paused is an account state: SES answers every call the same way.
    mailer.willAnswer(
      new SendingPausedError(PAUSED),
      new SendingPausedError(PAUSED),
      new SendingPausedError(PAUSED),
    );

    // Act
    const response = await runSenderBatch(sender, records);

    // Assess
    expect(response).toEqual(failures('sqs-last', 'sqs-second', 'sqs-third'));
    expect(mailer.attempts.map((m) => m.to)).toEqual([['last@example.org']]);
    expect(visibility.delays).toEqual([
      { messageId: 'sqs-last', seconds: 0 },
      { messageId: 'sqs-second', seconds: 900 },
      { messageId: 'sqs-third', seconds: 900 },
    ]);
  });

  it('records a handed-back record that was on its last receive failed and redrivable, not queued', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, queued } = setUp();
    const records = [queued('first'), queued('lastone', MAX_RECEIVE_COUNT)];
    mailer.willAnswer(new SendingPausedError(PAUSED));

    // Act
    const response = await runSenderBatch(sender, records);

    // Assess: the second never reached SES, and goes to the DLQ with its status telling why
    expect(response).toEqual(failures('sqs-first', 'sqs-lastone'));
    expect(mailer.attempts.map((m) => m.to)).toEqual([['first@example.org']]);
    expect(visibility.delays).toEqual([
      { messageId: 'sqs-first', seconds: 900 },
      { messageId: 'sqs-lastone', seconds: 0 },
    ]);
    expect(messages.peek('lastone')).toMatchObject({ phase: 'failed', redrivable: true });
    expect(messages.peek('first')?.phase).toBe('queued');
  });

  it('sends the handed-back records once sending resumes', async () => {
    // Prepare
    const { sender, messages, mailer, queued } = setUp();
    const records = [queued('paused'), queued('second')];
    mailer.willAnswer(new SendingPausedError(PAUSED));
    await runSenderBatch(sender, records);

    // Act
    const response = await runSenderBatch(sender, records);

    // Assess
    expect(response).toEqual(failures());
    expect(mailer.sent.map((m) => m.to)).toEqual([['paused@example.org'], ['second@example.org']]);
    expect([messages.peek('paused')?.phase, messages.peek('second')?.phase]).toEqual(['sent', 'sent']);
  });
});
