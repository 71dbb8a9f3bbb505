import { describe, expect, it, vi } from 'vitest';
import { type SendDeps, sendJob } from '../../../lambdas/domain/delivery/send.ts';
import { applyFeedback } from '../../../lambdas/domain/feedback/feedback.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { type Suppression, suppressedReason } from '../../../lambdas/domain/suppression/suppression.ts';
import {
  ConfirmationPendingError,
  ConflictError,
  PermanentError,
  SendingPausedError,
  TransientError,
  UncertainSendError,
} from '../../../lambdas/shared/errors.ts';
import {
  feedbackEvent,
  sendJob as job,
  messageRecord,
  outgoingMessage,
  recipient,
  suppression,
  T0,
} from '../../support/builders.ts';
import { SEND_CONFIRMATION_MS, SEND_LEASE_MS, sendHarness } from '../../support/unit-sender.ts';

/** `record` seeded (a queued message to ana by default; null for none). */
const setUp = (record: MessageRecord | null = messageRecord()) => sendHarness(...(record ? [record] : []));

const none: ReadonlyMap<string, Suppression> = new Map();

/** A message to ana (to), bob (cc) and carl (bcc). */
const threeRecipients = () => ({
  message: outgoingMessage({
    to: [{ address: 'ana@example.org' }],
    cc: [{ address: 'bob@example.org' }],
    bcc: [{ address: 'carl@example.org' }],
    tags: { campaign: 'receipts' },
  }),
  record: messageRecord({
    recipients: [
      recipient('ana@example.org'),
      recipient('bob@example.org', 'queued', { kind: 'cc' }),
      recipient('carl@example.org', 'queued', { kind: 'bcc' }),
    ],
  }),
});

describe('sendJob', () => {
  it('claims the message, sends it once through SES with Baton’s tags and records it sent', async () => {
    // Prepare
    const { message, record } = threeRecipients();
    const { deps, messages, mailer, composed } = setUp(record);

    // Act
    const outcome = await sendJob(deps, job(message), none);

    // Assess
    expect(outcome).toBe('sent');
    expect(composed).toEqual([{ id: 'msg_1', date: T0, subject: 'Your receipt' }]);
    expect(mailer.sent).toEqual([
      {
        raw: new TextEncoder().encode('raw:msg_1'),
        from: 'orders@example.com',
        to: ['ana@example.org'],
        cc: ['bob@example.org'],
        bcc: ['carl@example.org'],
        tags: {
          campaign: 'receipts',
          baton_message_id: 'msg_1',
          baton_tenant: 'tenant-a',
          baton_stream: 'transactional',
        },
      },
    ]);
    const stored = messages.peek('msg_1');
    expect(stored).toEqual({
      ...record,
      phase: 'sent',
      sesMessageId: 'ses-1',
      recipients: record.recipients.map((r) => ({ ...r, status: 'sent' })),
      events: [...record.events, { type: 'sent', at: T0, sesMessageId: 'ses-1' }],
      updatedAt: T0,
      version: 3,
    });
    expect(stored).not.toHaveProperty('claimToken');
    expect(stored).not.toHaveProperty('claimUntil');
  });

  it('acknowledges a duplicate delivery of a message already sent without calling SES', async () => {
    // Prepare
    const { deps, mailer } = setUp(messageRecord({ phase: 'sent', sesMessageId: 'ses-0' }));

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('duplicate');
    expect(mailer.attempts).toEqual([]);
  });

  it('asks for a retry while another live attempt holds the claim', async () => {
    // Prepare
    const { deps, mailer } = setUp(
      messageRecord({ phase: 'sending', claimToken: 'other', claimUntil: Date.parse(T0) + 1 }),
    );

    // Act
    const outcome = sendJob(deps, job(), none);

    // Assess
    await expect(outcome).rejects.toThrow('message msg_1 is being sent by another attempt');
    await expect(outcome).rejects.toBeInstanceOf(TransientError);
    // It comes back when the claim ends, not after a backoff that spends receives on a held claim.
    await expect(outcome).rejects.toMatchObject({ retryAfterMs: 1 });
    expect(mailer.attempts).toEqual([]);
  });

  it('takes over the claim of an attempt that died', async () => {
    // Prepare
    const { deps, messages } = setUp(
      messageRecord({ phase: 'sending', claimToken: 'dead', claimUntil: Date.parse(T0) - 1, version: 2 }),
    );

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('sent');
    expect(messages.peek('msg_1')).toMatchObject({ phase: 'sent', version: 4 });
  });

  it('refuses a job whose message has no record, since it could not be tracked', async () => {
    // Prepare
    const { deps, mailer } = setUp(null);

    // Act
    const outcome = sendJob(deps, job(), none);

    // Assess
    await expect(outcome).rejects.toThrow(
      new PermanentError('message msg_1 has no record; it cannot be tracked'),
    );
    expect(mailer.attempts).toEqual([]);
  });

  it('leaves out a recipient suppressed since the message was accepted', async () => {
    // Prepare
    const { message, record } = threeRecipients();
    const { deps, messages, mailer } = setUp(record);
    const complaint = suppression('bob@example.org', 'complaint');

    // Act
    const outcome = await sendJob(deps, job(message), new Map([['bob@example.org', complaint]]));

    // Assess
    expect(outcome).toBe('sent');
    expect(mailer.sent.map((m) => [m.to, m.cc, m.bcc])).toEqual([
      [['ana@example.org'], [], ['carl@example.org']],
    ]);
    const stored = messages.peek('msg_1');
    expect(stored?.recipients.map((r) => [r.address, r.status, r.reason])).toEqual([
      ['ana@example.org', 'sent', null],
      ['bob@example.org', 'suppressed', suppressedReason(complaint)],
      ['carl@example.org', 'sent', null],
    ]);
    expect(stored?.events.slice(1)).toEqual([
      { type: 'suppressed', at: T0, recipient: 'bob@example.org', detail: { reason: 'complaint' } },
      { type: 'sent', at: T0, sesMessageId: 'ses-1' },
    ]);
  });

  it('matches the suppression list by normalised address', async () => {
    // Prepare
    const { deps, mailer } = setUp(messageRecord({ recipients: [recipient('Ana@Example.org')] }));

    // Act
    const outcome = await sendJob(
      deps,
      job(),
      new Map([['ana@example.org', suppression('ana@example.org')]]),
    );

    // Assess
    expect(outcome).toBe('suppressed');
    expect(mailer.attempts).toEqual([]);
  });

  it('records the message suppressed and calls nobody when every recipient is suppressed now', async () => {
    // Prepare
    const { deps, messages, mailer } = setUp();
    const bounce = suppression('ana@example.org', 'hard_bounce');

    // Act
    const outcome = await sendJob(deps, job(), new Map([['ana@example.org', bounce]]));

    // Assess
    expect(outcome).toBe('suppressed');
    expect(mailer.attempts).toEqual([]);
    expect(messages.peek('msg_1')).toMatchObject({
      phase: 'suppressed',
      version: 3,
      recipients: [{ status: 'suppressed', reason: suppressedReason(bounce) }],
    });
    expect(messages.peek('msg_1')).not.toHaveProperty('claimToken');
  });

  it('ignores a suppression that has expired', async () => {
    // Prepare
    const { deps } = setUp();
    const expired = suppression('ana@example.org', 'soft_bounce', { expiresAt: '2025-03-01T11:00:00.000Z' });

    // Act
    const outcome = await sendJob(deps, job(), new Map([['ana@example.org', expired]]));

    // Assess
    expect(outcome).toBe('sent');
  });

  it('never sends to a recipient that was suppressed when the message was accepted', async () => {
    // Prepare
    const { message, record } = threeRecipients();
    const { deps, mailer } = setUp({
      ...record,
      recipients: record.recipients.map((r) =>
        r.address === 'ana@example.org' ? { ...r, status: 'suppressed' } : r,
      ),
    });

    // Act
    await sendJob(deps, job(message), none);

    // Assess
    expect(mailer.sent.map((m) => m.to)).toEqual([[]]);
  });

  it.each([
    ['a transient error', new TransientError('SES is unavailable or throttling (ThrottlingException)')],
    [
      'paused sending',
      new SendingPausedError('SES sending is paused for the account (SendingPausedException)'),
    ],
  ])(
    'gives the claim back and rethrows on %s, so the retry need not wait for the lease',
    async (_what, error) => {
      // Prepare
      const { deps, messages, mailer } = setUp();
      mailer.willAnswer(error);

      // Act
      const outcome = sendJob(deps, job(), none);

      // Assess
      await expect(outcome).rejects.toBe(error);
      const stored = messages.peek('msg_1');
      expect(stored).toMatchObject({ phase: 'queued', version: 3, recipients: [{ status: 'queued' }] });
      expect(stored).not.toHaveProperty('claimToken');
    },
  );

  it('lets the retry after a transient error send the message', async () => {
    // Prepare
    const { deps, mailer } = setUp();
    mailer.willAnswer(new TransientError('throttled'));
    await sendJob(deps, job(), none).catch(() => undefined);

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('sent');
    expect(mailer.sent).toHaveLength(1);
  });

  it('marks the recipients failed with SES’s reason when SES refuses the message for good', async () => {
    // Prepare
    const { deps, messages, mailer } = setUp();
    mailer.willAnswer(new PermanentError('SES rejected the message: Email address is not verified.'));

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    const reason = 'SES rejected the message: Email address is not verified.';
    expect(outcome).toBe('failed');
    expect(messages.peek('msg_1')).toMatchObject({
      phase: 'failed',
      version: 3,
      recipients: [{ status: 'failed', reason, updatedAt: T0 }],
      events: [{ type: 'accepted' }, { type: 'failed', at: T0, detail: { reason } }],
    });
  });

  it('marks the message failed when its MIME cannot be built, and reports it as permanent', async () => {
    // Prepare
    const { deps: base, messages, mailer } = setUp();
    const cause = new TypeError('bad attachment');
    const deps: SendDeps = {
      ...base,
      compose: async () => {
        throw cause;
      },
    };

    // Act
    const outcome = sendJob(deps, job(), none);

    // Assess
    await expect(outcome).rejects.toThrow(new PermanentError('the message could not be built'));
    await expect(outcome).rejects.toHaveProperty('cause', cause);
    expect(mailer.attempts).toEqual([]);
    expect(messages.peek('msg_1')).toMatchObject({
      phase: 'failed',
      recipients: [{ status: 'failed', reason: 'the message could not be built' }],
    });
  });

  it('marks the message failed with the signer’s words when DKIM signing fails', async () => {
    // Prepare
    const { deps: base, messages } = setUp();
    const deps: SendDeps = {
      ...base,
      compose: async () => {
        throw new PermanentError('DKIM signing failed: error:1E08010C:DECODER routines::unsupported');
      },
    };

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('failed');
    expect(messages.peek('msg_1')?.recipients[0]?.reason).toBe(
      'DKIM signing failed: error:1E08010C:DECODER routines::unsupported',
    );
  });

  it('merges with feedback that landed between the claim and the final write', async () => {
    // Prepare
    const { deps, messages } = setUp();
    messages.beforeNextUpdate(() => {
      const current = messages.peek('msg_1');
      if (!current) return;
      // SES is fast: its Send and Delivery events were applied by the feedback function first.
      const send = applyFeedback(current, feedbackEvent({ kind: 'send', key: 's' }), new Date(T0));
      const delivered =
        send && applyFeedback(send, feedbackEvent({ kind: 'delivery', key: 'd' }), new Date(T0));
      if (delivered) messages.write(delivered);
    });

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('sent');
    const stored = messages.peek('msg_1');
    expect(stored).toMatchObject({
      phase: 'sent',
      sesMessageId: 'ses-1',
      recipients: [{ status: 'delivered' }],
    });
    expect(stored?.events.filter((e) => e.type === 'sent')).toHaveLength(1);
    expect(stored?.seen).toEqual(['s', 'd']);
    expect(stored).not.toHaveProperty('claimToken');
  });

  it('keeps a Reject that the feedback function recorded first as the final word', async () => {
    // Prepare
    const { deps, messages } = setUp();
    messages.beforeNextUpdate(() => {
      const current = messages.peek('msg_1');
      const rejected =
        current &&
        applyFeedback(
          current,
          feedbackEvent({ kind: 'reject', reason: 'Bad content', key: 'r' }),
          new Date(T0),
        );
      if (rejected) messages.write(rejected);
    });

    // Act
    await sendJob(deps, job(), none);

    // Assess
    expect(messages.peek('msg_1')).toMatchObject({ phase: 'rejected', recipients: [{ status: 'failed' }] });
  });

  it('gives up after five lost races on the final write', async () => {
    // Prepare
    const { deps, messages } = setUp();
    const update = vi
      .spyOn(messages, 'update')
      .mockRejectedValue(new ConflictError('message msg_1 changed since version 2'));

    // Act
    const outcome = sendJob(deps, job(), none);

    // Assess
    await expect(outcome).rejects.toThrow(new ConflictError('message msg_1 changed since version 2'));
    expect(update).toHaveBeenCalledTimes(5);
  });

  it('reports a record that vanished while it was being sent', async () => {
    // Prepare
    const { deps, messages } = setUp();
    vi.spyOn(messages, 'update').mockRejectedValueOnce(new ConflictError('lost'));
    vi.spyOn(messages, 'get').mockResolvedValueOnce(undefined);

    // Act
    const outcome = sendJob(deps, job(), none);

    // Assess
    await expect(outcome).rejects.toThrow(
      new PermanentError('message msg_1 disappeared while it was being sent'),
    );
  });

  it('holds the claim for the lease while SES is called', async () => {
    // Prepare
    const { deps, messages, mailer } = setUp();
    let during: MessageRecord | undefined;
    vi.spyOn(mailer, 'send').mockImplementation(async () => {
      during = messages.peek('msg_1');
      return 'ses-1';
    });

    // Act
    await sendJob(deps, job(), none);

    // Assess
    expect(during).toMatchObject({
      phase: 'sending',
      claimToken: 'claim-1',
      // An attempt that dies is as ambiguous as a lost answer: held the confirmation window beyond
      // the lease (the attempt may call SES as late as its deadline).
      claimUntil: Date.parse(T0) + SEND_LEASE_MS + SEND_CONFIRMATION_MS,
    });
  });
});

describe('sendJob when the attempt dies after SES took the message', () => {
  it('keeps the claim for the confirmation window after the latest moment the attempt could call SES', async () => {
    // Prepare: the pacer makes the call wait 25 s after the claim (within a 120 s lease: a 30 s
    // function); SES takes the message, then the attempt dies before writing it sent.
    const { deps, messages, mailer, clock } = setUp();
    const send = mailer.send.bind(mailer);
    vi.spyOn(mailer, 'send').mockImplementation(async (mail) => {
      clock.advance(25_000);
      return send(mail);
    });
    messages.beforeNextUpdate(() => {
      throw new TransientError('the sender was killed before recording the send');
    });
    await sendJob(deps, job(), none).catch(() => undefined);

    // Act: a retry when SES's Send event may still be on its way (25 s + window − 1 s after the claim)
    clock.set(new Date(Date.parse(T0) + 25_000 + SEND_CONFIRMATION_MS - 1_000).toISOString());
    const retry = await sendJob(deps, job(), none).catch((error: unknown) => error);

    // Assess
    expect(retry).toBeInstanceOf(ConfirmationPendingError);
    expect(mailer.sent).toHaveLength(1);
  });
});

describe('sendJob when SES leaves the outcome unknown', () => {
  const ambiguous = () =>
    new UncertainSendError('SES answered InternalFailure (500); it may have taken the message', {
      requestId: 'req-1',
    });

  /** A first attempt that ended ambiguously, at T0. */
  const afterAmbiguousAttempt = async () => {
    const harness = setUp();
    harness.mailer.willAnswer(ambiguous());
    const first = await sendJob(harness.deps, job(), none).catch((error: unknown) => error);
    return { ...harness, first };
  };

  it('records the attempt as uncertain and keeps the claim for the confirmation window', async () => {
    // Act
    const { messages, first } = await afterAmbiguousAttempt();

    // Assess
    expect(first).toBeInstanceOf(ConfirmationPendingError);
    expect((first as ConfirmationPendingError).retryAfterMs).toBe(SEND_CONFIRMATION_MS);
    expect((first as ConfirmationPendingError).cause).toBeInstanceOf(UncertainSendError);
    expect(messages.peek('msg_1')).toMatchObject({
      phase: 'sending',
      claimUntil: Date.parse(T0) + SEND_CONFIRMATION_MS,
      uncertain: { at: T0, confirmUntil: Date.parse(T0) + SEND_CONFIRMATION_MS, sesRequestId: 'req-1' },
      recipients: [{ status: 'queued' }],
    });
    expect(messages.peek('msg_1')?.events.at(-1)).toMatchObject({
      type: 'retrying',
      detail: { reason: 'SES outcome unknown', sesRequestId: 'req-1' },
    });
  });

  it('waits for SES’s evidence, without sending, while the confirmation window runs', async () => {
    // Prepare
    const { deps, mailer, clock } = await afterAmbiguousAttempt();
    clock.advance(SEND_CONFIRMATION_MS - 10_000);

    // Act
    const retry = await sendJob(deps, job(), none).catch((error: unknown) => error);

    // Assess
    expect(retry).toBeInstanceOf(ConfirmationPendingError);
    expect((retry as ConfirmationPendingError).retryAfterMs).toBe(10_000);
    expect(mailer.attempts).toHaveLength(1);
  });

  it.each([
    ['send', {}],
    ['delivery', {}],
    ['bounce', { bounceType: 'Permanent' }],
    ['reject', { reason: 'Bad content' }],
    ['rendering_failure', { reason: 'no template' }],
  ] as const)('does not send again once a %s event with Baton’s id came', async (kind, extra) => {
    // Prepare
    const { deps, messages, mailer, clock } = await afterAmbiguousAttempt();
    const current = messages.peek('msg_1');
    const evidence = current && applyFeedback(current, feedbackEvent({ kind, ...extra }), clock());
    if (evidence) messages.write(evidence);
    clock.advance(SEND_CONFIRMATION_MS + 1);

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('duplicate');
    expect(mailer.attempts).toHaveLength(1);
    expect(messages.peek('msg_1')).not.toHaveProperty('uncertain');
  });

  it('sends again after the window when no evidence came, and records it sent', async () => {
    // Prepare
    const { deps, messages, mailer, clock } = await afterAmbiguousAttempt();
    clock.advance(SEND_CONFIRMATION_MS + 1);

    // Act
    const outcome = await sendJob(deps, job(), none);

    // Assess
    expect(outcome).toBe('sent');
    expect(mailer.attempts).toHaveLength(2);
    expect(mailer.sent).toHaveLength(1);
    const stored = messages.peek('msg_1');
    expect(stored).toMatchObject({ phase: 'sent', recipients: [{ status: 'sent' }] });
    expect(stored).not.toHaveProperty('uncertain');
    expect(stored).not.toHaveProperty('claimToken');
  });

  it('settles a recipient the lost send left out once SES’s evidence marked the message sent', async () => {
    // Prepare: the attempt died after SES took the message for ana only (bob was suppressed then).
    const record = messageRecord({
      recipients: [recipient('ana@example.org'), recipient('bob@example.org')],
    });
    const { deps, messages, mailer, clock } = setUp(record);
    const evidence = applyFeedback(
      record,
      feedbackEvent({ kind: 'send', destination: ['ana@example.org'], key: 's' }),
      clock(),
    );
    if (evidence) messages.write(evidence);
    const bob = suppression('bob@example.org');

    // Act
    const outcome = await sendJob(deps, job(), new Map([['bob@example.org', bob]]));

    // Assess
    expect(outcome).toBe('duplicate');
    expect(mailer.attempts).toEqual([]);
    expect(messages.peek('msg_1')?.recipients.map((r) => [r.address, r.status])).toEqual([
      ['ana@example.org', 'sent'],
      ['bob@example.org', 'suppressed'],
    ]);
  });

  it('gives the claim back at once only on answers that prove SES took nothing', async () => {
    // Prepare
    const { deps, messages, mailer } = setUp();
    mailer.willAnswer(new TransientError('SES is unavailable or throttling (TooManyRequestsException)'));

    // Act
    await sendJob(deps, job(), none).catch(() => undefined);

    // Assess
    expect(messages.peek('msg_1')).toMatchObject({ phase: 'queued' });
    expect(messages.peek('msg_1')).not.toHaveProperty('uncertain');
  });
});
