import { describe, expect, it } from 'vitest';
import { HOLD_DAYS, markHeld } from '../../../lambdas/domain/guard/hold.ts';
import type {
  MessageRecord,
  MessageStatus,
  Phase,
  RecipientStatus,
  TimelineEvent,
} from '../../../lambdas/domain/message.ts';
import { deriveStatus, recipientRank, toMessageView } from '../../../lambdas/domain/reporting/status.ts';
import { messageRecord, recipient, T0 } from '../../support/builders.ts';
import { guardDecisionFor } from '../../support/guard.ts';

const r = (status: RecipientStatus, soft?: boolean) =>
  recipient(`${status}@example.org`, status, soft === undefined ? {} : { soft });

describe('recipientRank', () => {
  it('orders recipient states so feedback only ever moves a recipient forward', () => {
    // Prepare
    const ladder = [
      r('queued'),
      r('sent'),
      r('delayed'),
      r('bounced', true),
      r('delivered'),
      r('failed'),
      r('bounced'),
      r('complained'),
      r('suppressed'),
    ];

    // Act
    const ranks = ladder.map(recipientRank);

    // Assess
    expect(ranks).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('lets a delivery beat a transient bounce (an out-of-office reply) but not a permanent one', () => {
    // Prepare / Act
    const delivered = recipientRank({ status: 'delivered' });

    // Assess
    expect(delivered).toBeGreaterThan(recipientRank({ status: 'bounced', soft: true }));
    expect(delivered).toBeLessThan(recipientRank({ status: 'bounced' }));
    expect(delivered).toBeLessThan(recipientRank({ status: 'complained' }));
  });
});

describe('deriveStatus', () => {
  it.each<[string, Phase, RecipientStatus[], MessageStatus]>([
    ['a queued message', 'queued', ['queued'], 'queued'],
    ['a message being sent', 'sending', ['queued'], 'sending'],
    ['a message SES rejected', 'rejected', ['failed'], 'rejected'],
    ['a sent message still in flight', 'sent', ['sent', 'delayed'], 'sent'],
    ['a failed message with recipients left in flight', 'failed', ['sent'], 'failed'],
    ['a message delivered to everyone', 'sent', ['delivered', 'delivered'], 'delivered'],
    ['a message bounced by everyone', 'sent', ['bounced'], 'bounced'],
    ['a message everyone complained about', 'sent', ['complained'], 'complained'],
    ['a message that failed for everyone', 'sent', ['failed'], 'failed'],
    [
      'a message whose recipients were all suppressed',
      'suppressed',
      ['suppressed', 'suppressed'],
      'suppressed',
    ],
    ['a message suppressed for everyone after it was queued', 'sent', ['suppressed'], 'suppressed'],
    [
      'a message delivered to one and bounced by another',
      'sent',
      ['delivered', 'bounced'],
      'partially_delivered',
    ],
    [
      'a message delivered to one and suppressed for another',
      'sent',
      ['delivered', 'suppressed'],
      'partially_delivered',
    ],
    [
      'a message delivered to one that failed for another',
      'sent',
      ['delivered', 'failed'],
      'partially_delivered',
    ],
    ['a complaint next to a bounce', 'sent', ['complained', 'bounced'], 'partially_delivered'],
    ['a complaint among deliveries', 'sent', ['delivered', 'complained'], 'complained'],
    ['a bounce next to a suppression', 'sent', ['bounced', 'suppressed'], 'bounced'],
    ['a bounce next to a failure', 'sent', ['bounced', 'failed'], 'bounced'],
    ['a failure next to a suppression', 'failed', ['failed', 'suppressed'], 'failed'],
    ['a delivery still waiting on another recipient', 'sent', ['delivered', 'delayed'], 'sent'],
    ['a sent message without recipients', 'sent', [], 'sent'],
    ['a failed message without recipients', 'failed', [], 'failed'],
  ])('calls %s %s', (_what, phase, statuses, expected) => {
    // Prepare
    const recipients = statuses.map((s, i) => recipient(`r${i}@example.org`, s));

    // Act
    const status = deriveStatus(phase, recipients);

    // Assess
    expect(status).toBe(expected);
  });

  it('calls a soft bounce bounced when nothing followed it', () => {
    // Prepare
    const recipients = [r('bounced', true)];

    // Act
    const status = deriveStatus('sent', recipients);

    // Assess
    expect(status).toBe('bounced');
  });
});

describe('toMessageView', () => {
  it('shows the status API view without claims, versions or seen keys', () => {
    // Prepare: the timeline, built afresh for the record and for the expected view
    const timeline = (): TimelineEvent[] => [
      { type: 'accepted', at: '2025-03-01T12:00:00.000Z' },
      {
        type: 'delivered',
        at: '2025-03-01T12:01:00.000Z',
        recipient: 'ana@example.org',
        detail: { smtpResponse: '250 ok' },
      },
    ];
    const record = messageRecord({
      phase: 'sent',
      sesMessageId: 'ses-1',
      claimToken: 'claim-1',
      claimUntil: 1,
      seen: ['k1'],
      version: 4,
      recipients: [recipient('ana@example.org', 'delivered', { soft: true })],
      events: timeline(),
    });

    // Act
    const view = toMessageView(record, new Date(T0));

    // Assess
    expect(view).toEqual({
      id: 'msg_1',
      status: 'delivered',
      stream: 'transactional',
      createdAt: '2025-03-01T12:00:00.000Z',
      from: 'Shop <orders@example.com>',
      subject: 'Your receipt',
      recipients: [
        {
          address: 'ana@example.org',
          status: 'delivered',
          reason: null,
          updatedAt: '2025-03-01T12:00:00.000Z',
        },
      ],
      // The timeline as recorded.
      events: timeline(),
    });
  });
});

describe('toMessageView of a message the abuse guard holds', () => {
  const heldAt = new Date(T0);
  const held = markHeld(
    messageRecord({ stream: 'broadcast' }),
    guardDecisionFor('pauseBroadcast', { reason: 'hard-bounce rate 5 % over 800 sends' }, heldAt),
    heldAt,
  ) as MessageRecord;

  it('shows it held, each recipient held with the reason', () => {
    // Act
    const view = toMessageView(held, new Date(heldAt.getTime() + 86_400_000));

    // Assess
    expect(view.status).toBe('held');
    expect(view.recipients).toEqual([
      {
        address: 'ana@example.org',
        status: 'held',
        reason: 'hard-bounce rate 5 % over 800 sends',
        updatedAt: T0,
      },
    ]);
    expect(view.events.at(-1)).toMatchObject({ type: 'held', at: T0 });
  });

  it('shows a hold that ran out as failed with the reason, though nothing wrote it', () => {
    // Prepare
    const until = new Date(heldAt.getTime() + HOLD_DAYS * 86_400_000);

    // Act
    const lastHeld = toMessageView(held, new Date(until.getTime() - 1));
    const expired = toMessageView(held, until);

    // Assess
    expect(lastHeld.status).toBe('held');
    expect(expired.status).toBe('failed');
    const reason = `held by the abuse guard for ${HOLD_DAYS} days and not released (hard-bounce rate 5 % over 800 sends)`;
    expect(expired.recipients).toEqual([
      { address: 'ana@example.org', status: 'failed', reason, updatedAt: until.toISOString() },
    ]);
    expect(expired.events.at(-1)).toMatchObject({
      type: 'failed',
      at: until.toISOString(),
      detail: { reason },
    });
  });
});
