import { describe, expect, it } from 'vitest';
import { giveUp, markGaveUp, sendJob } from '../../../lambdas/domain/delivery/send.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { toMessageView } from '../../../lambdas/domain/reporting/status.ts';
import { type Suppression, suppressedReason } from '../../../lambdas/domain/suppression/suppression.ts';
import { ConflictError, TransientError } from '../../../lambdas/shared/errors.ts';
import {
  sendJob as job,
  messageRecord,
  outgoingMessage,
  recipient,
  suppression,
  T0,
} from '../../support/builders.ts';
import { sendHarness } from '../../support/unit-sender.ts';

// Issue 4 part 8, "nothing lost": on its last receive a never-sent message is recorded failed with
// its last error (and `redrivable`) before SQS dead-letters it; a redrive from the DLQ then sends it
// if, and only if, it was never sent.

const NOW = new Date(T0);
const LATER = '2025-03-01T12:05:00.000Z';
const REASON =
  'Baton gave up after 10 attempts: SES is unavailable or throttling (TooManyRequestsException). ' +
  'The message is in the dead-letter queue; redriving it sends it.';
const none: ReadonlyMap<string, Suppression> = new Map();

const setUp = sendHarness;

/** The record as the sender's last receive leaves it: gave up on, nothing sent. */
const gaveUpOn = (overrides: Partial<MessageRecord> = {}): MessageRecord =>
  markGaveUp(messageRecord({ version: 3, ...overrides }), REASON, NOW);

describe('giveUp', () => {
  it('records a queued message failed and redrivable, its recipients showing the last error', async () => {
    // Prepare
    const { messages } = setUp(messageRecord({ version: 3 }));

    // Act
    const recorded = await giveUp(messages, 'msg_1', REASON, NOW);

    // Assess
    expect(recorded).toEqual(messages.peek('msg_1'));
    const stored = messages.peek('msg_1') as MessageRecord;
    expect(stored).toEqual({
      ...messageRecord(),
      phase: 'failed',
      redrivable: true,
      // unsent: SES's evidence arriving later still shows it sent.
      recipients: [recipient('ana@example.org', 'failed', { reason: REASON, updatedAt: T0, unsent: true })],
      events: [
        { type: 'accepted', at: T0 },
        { type: 'failed', at: T0, detail: { reason: REASON } },
      ],
      updatedAt: T0,
      version: 4,
    });
    expect(toMessageView(stored, new Date(T0))).toMatchObject({
      status: 'failed',
      recipients: [{ address: 'ana@example.org', status: 'failed', reason: REASON, updatedAt: T0 }],
    });
  });

  it('takes over a message whose claim ran out (its holder died before sending)', async () => {
    // Prepare
    const { messages } = setUp(
      messageRecord({ phase: 'sending', claimToken: 'dead', claimUntil: NOW.getTime() - 1, version: 4 }),
    );

    // Act
    const recorded = await giveUp(messages, 'msg_1', REASON, NOW);

    // Assess
    expect(recorded).toEqual(messages.peek('msg_1'));
    const stored = messages.peek('msg_1');
    expect(stored).toMatchObject({ phase: 'failed', redrivable: true, version: 5 });
    expect(stored).not.toHaveProperty('claimToken');
    expect(stored).not.toHaveProperty('claimUntil');
  });

  it('keeps recipients suppressed at acceptance as they were, and fails only the queued ones', async () => {
    // Prepare
    const kept = recipient('bob@example.org', 'suppressed', { reason: 'suppressed (complaint)' });
    const { messages } = setUp(messageRecord({ recipients: [recipient('ana@example.org'), kept] }));

    // Act
    await giveUp(messages, 'msg_1', REASON, NOW);

    // Assess
    expect(toMessageView(messages.peek('msg_1') as MessageRecord, new Date(T0))).toMatchObject({
      status: 'failed',
      recipients: [
        { address: 'ana@example.org', status: 'failed', reason: REASON },
        { address: 'bob@example.org', status: 'suppressed', reason: 'suppressed (complaint)' },
      ],
    });
  });

  it('leaves a message that was sent alone', async () => {
    // Prepare
    const sent = messageRecord({
      phase: 'sent',
      sesMessageId: 'ses-1',
      recipients: [recipient('ana@example.org', 'sent')],
      version: 3,
    });
    const { messages } = setUp(sent);

    // Act
    const recorded = await giveUp(messages, 'msg_1', REASON, NOW);

    // Assess
    expect(recorded).toBeUndefined();
    expect(messages.peek('msg_1')).toEqual(sent);
  });

  it('leaves a message whose claim a live attempt holds alone', async () => {
    // Prepare
    const sending = messageRecord({
      phase: 'sending',
      claimToken: 'live',
      claimUntil: NOW.getTime() + 1,
      version: 2,
    });
    const { messages } = setUp(sending);

    // Act
    const recorded = await giveUp(messages, 'msg_1', REASON, NOW);

    // Assess
    expect(recorded).toBeUndefined();
    expect(messages.peek('msg_1')).toEqual(sending);
  });

  it.each([
    [
      'suppressed',
      messageRecord({ phase: 'suppressed', recipients: [recipient('ana@example.org', 'suppressed')] }),
    ],
    ['rejected', messageRecord({ phase: 'rejected', recipients: [recipient('ana@example.org', 'failed')] })],
    [
      'failed for good',
      messageRecord({ phase: 'failed', recipients: [recipient('ana@example.org', 'failed')] }),
    ],
  ])('leaves a message that is %s alone', async (_phase, record) => {
    // Prepare
    const { messages } = setUp(record);

    // Act
    const recorded = await giveUp(messages, 'msg_1', REASON, NOW);

    // Assess
    expect(recorded).toBeUndefined();
    expect(messages.peek('msg_1')).toEqual(record);
  });

  it('answers undefined for a message with no record', async () => {
    // Prepare
    const { messages } = setUp();

    // Act
    const recorded = await giveUp(messages, 'msg_gone', REASON, NOW);

    // Assess
    expect(recorded).toBeUndefined();
    expect(messages.peek('msg_gone')).toBeUndefined();
  });

  it('re-reads after losing a race and leaves the message alone when the winner sent it', async () => {
    // Prepare
    const { messages } = setUp(messageRecord({ version: 3 }));
    messages.beforeNextUpdate(() => {
      const current = messages.peek('msg_1') as MessageRecord;
      messages.write({ ...current, phase: 'sent', sesMessageId: 'ses-9', version: current.version + 1 });
    });

    // Act
    const recorded = await giveUp(messages, 'msg_1', REASON, NOW);

    // Assess
    expect(recorded).toBeUndefined();
    expect(messages.peek('msg_1')).toMatchObject({ phase: 'sent', sesMessageId: 'ses-9', version: 4 });
  });

  it('re-reads after losing a race and records the give-up on the newer version', async () => {
    // Prepare
    const { messages } = setUp(messageRecord({ version: 3 }));
    messages.beforeNextUpdate(() => {
      const current = messages.peek('msg_1') as MessageRecord;
      messages.write({ ...current, subject: 'changed meanwhile', version: current.version + 1 });
    });

    // Act
    const recorded = await giveUp(messages, 'msg_1', REASON, NOW);

    // Assess
    expect(recorded).toEqual(messages.peek('msg_1'));
    expect(messages.peek('msg_1')).toMatchObject({
      phase: 'failed',
      redrivable: true,
      subject: 'changed meanwhile',
      version: 5,
    });
  });

  it('gives up on recording after five lost races and reports the conflict', async () => {
    // Prepare
    const { messages } = setUp(messageRecord({ version: 3 }));
    for (let i = 0; i < 5; i++) {
      messages.beforeNextUpdate(() => {
        const current = messages.peek('msg_1') as MessageRecord;
        messages.write({ ...current, version: current.version + 1 });
      });
    }

    // Act
    const outcome = giveUp(messages, 'msg_1', REASON, NOW);

    // Assess
    await expect(outcome).rejects.toThrow(new ConflictError('message msg_1 changed since version 7'));
    expect(messages.peek('msg_1')).toMatchObject({ phase: 'queued', version: 8 });
  });
});

describe('sendJob on a redriven message', () => {
  it('claims a message Baton gave up on, sends it, and shows it sent with no trace of redrivable', async () => {
    // Prepare
    const { deps, messages, mailer, clock } = setUp(gaveUpOn());
    clock.set(LATER);

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('sent');
    expect(mailer.sent.map((m) => m.to)).toEqual([['ana@example.org']]);
    const stored = messages.peek('msg_1') as MessageRecord;
    expect(stored).not.toHaveProperty('redrivable');
    expect(stored).not.toHaveProperty('claimToken');
    expect(stored).toMatchObject({ phase: 'sent', sesMessageId: 'ses-1', version: 6 });
    expect(toMessageView(stored, new Date(T0))).toMatchObject({
      status: 'sent',
      recipients: [{ address: 'ana@example.org', status: 'sent', reason: null, updatedAt: LATER }],
      events: [
        { type: 'accepted', at: T0 },
        { type: 'failed', at: T0, detail: { reason: REASON } },
        { type: 'sent', at: LATER, sesMessageId: 'ses-1' },
      ],
    });
  });

  it('acknowledges a second redrive of the same message without a second SES call', async () => {
    // Prepare
    const { deps, mailer } = setUp(gaveUpOn());
    await sendJob(deps, job(), none);

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('duplicate');
    expect(mailer.attempts).toHaveLength(1);
  });

  it('never sends a message that failed for good (SES refused it), even when its job is redriven', async () => {
    // Prepare
    const refused = messageRecord({
      phase: 'failed',
      recipients: [recipient('ana@example.org', 'failed', { reason: 'SES rejected the message' })],
      version: 3,
    });
    const { deps, messages, mailer } = setUp(refused);

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('duplicate');
    expect(mailer.attempts).toEqual([]);
    expect(messages.peek('msg_1')).toEqual(refused);
  });

  it('ends suppressed, without calling SES, when every recipient was suppressed since it was given up on', async () => {
    // Prepare
    const { deps, messages, mailer, clock } = setUp(gaveUpOn());
    const bounce = suppression('ana@example.org', 'hard_bounce', { detail: 'smtp; 550 5.1.1 user unknown' });
    clock.set(LATER);

    // Act
    const outcome = await sendJob(deps, job(), new Map([['ana@example.org', bounce]]));

    // Assess
    expect(outcome).toBe('suppressed');
    expect(mailer.attempts).toEqual([]);
    const stored = messages.peek('msg_1') as MessageRecord;
    expect(stored).not.toHaveProperty('redrivable');
    expect(stored.phase).toBe('suppressed');
    expect(toMessageView(stored, new Date(T0))).toMatchObject({
      status: 'suppressed',
      recipients: [
        {
          address: 'ana@example.org',
          status: 'suppressed',
          reason: suppressedReason(bounce),
          updatedAt: LATER,
        },
      ],
    });
    expect(stored.events.slice(-1)).toEqual([
      { type: 'suppressed', at: LATER, recipient: 'ana@example.org', detail: { reason: 'hard_bounce' } },
    ]);
  });

  it('sends to the recipients still allowed and records the newly suppressed one', async () => {
    // Prepare
    const record = gaveUpOn({ recipients: [recipient('ana@example.org'), recipient('bob@example.org')] });
    const { deps, messages, mailer } = setUp(record);
    const complaint = suppression('bob@example.org', 'complaint');
    const message = outgoingMessage({ to: [{ address: 'ana@example.org' }, { address: 'bob@example.org' }] });

    // Act
    const outcome = await sendJob(deps, job(message), new Map([['bob@example.org', complaint]]));

    // Assess
    expect(outcome).toBe('sent');
    expect(mailer.sent.map((m) => m.to)).toEqual([['ana@example.org']]);
    expect(toMessageView(messages.peek('msg_1') as MessageRecord, new Date(T0))).toMatchObject({
      status: 'sent',
      recipients: [
        { address: 'ana@example.org', status: 'sent', reason: null },
        { address: 'bob@example.org', status: 'suppressed', reason: suppressedReason(complaint) },
      ],
    });
  });

  it('gives the claim back on a transient error, so the next receive of the redrive can send it', async () => {
    // Prepare
    const { deps, messages, mailer } = setUp(gaveUpOn());
    const throttled = new TransientError('SES is unavailable or throttling (TooManyRequestsException)');
    mailer.willAnswer(throttled);
    const first = await sendJob(deps, job(), none).catch((error: unknown) => error);

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(first).toBe(throttled);
    expect(outcome).toBe('sent');
    expect(mailer.sent).toHaveLength(1);
    expect(messages.peek('msg_1')).toMatchObject({ phase: 'sent', recipients: [{ status: 'sent' }] });
  });

  // Regression: a second give-up kept the first error on the recipients.
  it('shows the latest error after a redrive that also ran out of retries', async () => {
    // Prepare
    const { deps, messages, mailer } = setUp(gaveUpOn());
    mailer.willAnswer(new TransientError('SES is unavailable or throttling (ServiceUnavailable)'));
    await sendJob(deps, job(), none).catch(() => undefined);
    const latest =
      'Baton gave up after 10 attempts: SES is unavailable or throttling (ServiceUnavailable). ' +
      'The message is in the dead-letter queue; redriving it sends it.';

    // Act
    await giveUp(messages, 'msg_1', latest, new Date(LATER));

    // Assess
    expect(toMessageView(messages.peek('msg_1') as MessageRecord, new Date(T0)).recipients).toEqual([
      { address: 'ana@example.org', status: 'failed', reason: latest, updatedAt: LATER },
    ]);
  });
});
