import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { markGaveUp } from '../../../lambdas/domain/delivery/send.ts';
import { applyFeedback, suppressionsFor } from '../../../lambdas/domain/feedback/feedback.ts';
import { type FeedbackEvent, parseFeedback } from '../../../lambdas/domain/feedback/ses-event.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { deriveStatus, recipientRank } from '../../../lambdas/domain/reporting/status.ts';
import { feedbackEvent, messageRecord, recipient, T0 } from '../../support/builders.ts';
import { fixtureJson, fixtureText } from '../../support/fixtures.ts';

const NOW = new Date('2025-03-01T12:10:00.000Z');

/** A record SES has accepted: phase sent, recipients sent. */
function sentRecord(addresses: string[] = ['ana@example.org'], overrides: Partial<MessageRecord> = {}) {
  return messageRecord({
    phase: 'sent',
    sesMessageId: 'ses-1',
    recipients: addresses.map((a) => recipient(a, 'sent')),
    events: [
      { type: 'accepted', at: T0 },
      { type: 'sent', at: T0, sesMessageId: 'ses-1' },
    ],
    version: 3,
    ...overrides,
  });
}

/** Applies events in order, skipping the ones that change nothing. */
function applyAll(record: MessageRecord, events: readonly FeedbackEvent[]): MessageRecord {
  return events.reduce((r, e) => applyFeedback(r, e, NOW) ?? r, record);
}

const fixtureEvent = (file: string) => parseFeedback(fixtureText(`ses/${file}`));

/** Permanent bounces SES sent without trying, the address being on its suppression list: subtype, fixture, address. */
const SES_LIST_BOUNCES: Array<[subtype: string, file: string, address: string]> = [
  [
    'OnAccountSuppressionList',
    'sns-http_real_relay_hard-bounce-permanent-OnAccountSuppressionList.json',
    'relayuser@test.com',
  ],
  ['Suppressed', 'ses-notif_real_carbon_suppressed-bounce-2014.json', 'hi@simulator.amazonses.com'],
];

describe('applyFeedback', () => {
  it('marks a delivered recipient delivered and records the SMTP response', () => {
    // Prepare
    const record = sentRecord();
    const event = feedbackEvent({ kind: 'delivery', smtpResponse: '250 2.6.0 Message received', key: 'd1' });

    // Act
    const next = applyFeedback(record, event, NOW);

    // Assess
    expect(next).toEqual({
      ...record,
      recipients: [
        {
          address: 'ana@example.org',
          kind: 'to',
          status: 'delivered',
          reason: null,
          updatedAt: '2025-03-01T12:01:00.000Z',
        },
      ],
      events: [
        ...record.events,
        {
          type: 'delivered',
          at: '2025-03-01T12:01:00.000Z',
          recipient: 'ana@example.org',
          detail: { smtpResponse: '250 2.6.0 Message received' },
        },
      ],
      seen: ['d1'],
      updatedAt: NOW.toISOString(),
      version: 4,
    });
  });

  it('has no second effect when the same event comes again', () => {
    // Prepare
    const event = feedbackEvent({ kind: 'delivery', key: 'd1' });
    const once = applyFeedback(sentRecord(), event, NOW);

    // Act
    const twice = once && applyFeedback(once, event, NOW);

    // Assess
    expect(once).toBeDefined();
    expect(twice).toBeUndefined();
  });

  it('takes any event from SES as proof a queued or sending message was sent', () => {
    // Prepare
    const record = messageRecord({ phase: 'sending', claimToken: 'claim-1', claimUntil: 1 });
    const event = feedbackEvent({ kind: 'send', sesMessageId: 'ses-9', key: 's1' });

    // Act
    const next = applyFeedback(record, event, NOW);

    // Assess
    expect(next?.phase).toBe('sent');
    expect(next?.sesMessageId).toBe('ses-9');
    expect(next?.recipients.map((r) => r.status)).toEqual(['sent']);
    expect(next?.events).toEqual([
      { type: 'accepted', at: T0 },
      { type: 'sent', at: '2025-03-01T12:01:00.000Z', sesMessageId: 'ses-9' },
    ]);
    // The sender still holds its claim and will finish against it.
    expect(next?.claimToken).toBe('claim-1');
  });

  it('moves only the recipients in the event’s destination when it recovers a send', () => {
    // Prepare: the sender left bob out (suppressed at send time) and lost SES's answer.
    const record = messageRecord({
      phase: 'sending',
      recipients: [recipient('ana@example.org'), recipient('bob@example.org'), recipient('carl@example.org')],
      uncertain: { at: T0, confirmUntil: 1 },
    });
    const send = feedbackEvent({
      kind: 'send',
      recipients: [{ address: 'ana@example.org' }, { address: 'Carl@Example.org' }],
      destination: ['ana@example.org', 'Carl@Example.org'],
      key: 's1',
    });
    const delivery = feedbackEvent({
      kind: 'delivery',
      recipients: [{ address: 'ana@example.org' }],
      destination: ['ana@example.org', 'carl@example.org'],
      key: 'd1',
    });

    // Act
    const afterSend = applyFeedback(record, send, NOW);
    const afterDelivery = applyFeedback(record, delivery, NOW);

    // Assess
    expect(afterSend?.recipients.map((r) => [r.address, r.status])).toEqual([
      ['ana@example.org', 'sent'],
      ['bob@example.org', 'queued'],
      ['carl@example.org', 'sent'],
    ]);
    expect(afterDelivery?.recipients.map((r) => [r.address, r.status])).toEqual([
      ['ana@example.org', 'delivered'],
      ['bob@example.org', 'queued'],
      ['carl@example.org', 'sent'],
    ]);
    // SES's evidence settles the uncertain attempt.
    expect(afterSend).not.toHaveProperty('uncertain');
  });

  it('recovers each recipient Baton gave up on whatever order the events of its two SES copies come in', () => {
    // Prepare: given up on before any evidence came (its retries ran out), then two SES copies
    // whose events name different destinations (found by the feedback fuzz at 100,000 cases).
    const record = markGaveUp(
      messageRecord({ recipients: [recipient('ana@example.org'), recipient('bob@example.org')] }),
      'Baton gave up',
      new Date(T0),
    );
    const send = feedbackEvent({
      kind: 'send',
      recipients: [{ address: 'bob@example.org' }],
      destination: ['bob@example.org'],
      key: 's1',
    });
    const delivery = feedbackEvent({
      kind: 'delivery',
      sesMessageId: 'ses-2',
      recipients: [{ address: 'ana@example.org' }],
      destination: ['ana@example.org'],
      key: 'd2',
    });

    // Act
    const one = applyAll(record, [send, delivery]);
    const other = applyAll(record, [delivery, send]);

    // Assess
    const states = (r: MessageRecord) => r.recipients.map((x) => [x.address, x.status]);
    expect(states(one)).toEqual([
      ['ana@example.org', 'delivered'],
      ['bob@example.org', 'sent'],
    ]);
    expect(states(other)).toEqual(states(one));
  });

  it('reads mail.destination from an SES event', () => {
    // Act
    const event = parseFeedback(
      JSON.stringify({
        eventType: 'Delivery',
        mail: {
          messageId: 'ses-1',
          timestamp: T0,
          destination: ['ana@example.org', 'bob@example.org'],
          tags: { baton_message_id: ['msg_1'] },
        },
        delivery: { timestamp: T0, recipients: ['ana@example.org'] },
      }),
    );

    // Assess
    expect(event.destination).toEqual(['ana@example.org', 'bob@example.org']);
    expect(event.recipients).toEqual([{ address: 'ana@example.org' }]);
  });

  it('leaves a record the sender already marked sent alone on SES’s Send event: no write to make', () => {
    // Prepare
    const record = sentRecord();
    const event = feedbackEvent({ kind: 'send', sesMessageId: 'ses-1', key: 'send-after-sender' });

    // Act
    const next = applyFeedback(record, event, NOW);

    // Assess
    expect(next).toBeUndefined();
  });

  it('keeps the SES message id the record already has', () => {
    // Prepare
    const record = sentRecord();

    // Act
    const next = applyFeedback(
      record,
      feedbackEvent({ kind: 'delivery', sesMessageId: 'other', key: 'k' }),
      NOW,
    );

    // Assess
    expect(next?.sesMessageId).toBe('ses-1');
  });

  it('marks a permanent bounce bounced with its subtype and diagnostic', () => {
    // Prepare
    const record = sentRecord();
    const event = feedbackEvent({
      kind: 'bounce',
      bounceType: 'Permanent',
      bounceSubType: 'General',
      recipients: [
        { address: 'ana@example.org', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
      ],
      key: 'b1',
    });

    // Act
    const next = applyFeedback(record, event, NOW);

    // Assess
    expect(next?.recipients).toEqual([
      {
        address: 'ana@example.org',
        kind: 'to',
        status: 'bounced',
        reason: 'permanent bounce (General): smtp; 550 5.1.1 user unknown',
        updatedAt: '2025-03-01T12:01:00.000Z',
      },
    ]);
    expect(next?.events.at(-1)).toEqual({
      type: 'bounced',
      at: '2025-03-01T12:01:00.000Z',
      recipient: 'ana@example.org',
      detail: {
        bounceType: 'Permanent',
        bounceSubType: 'General',
        diagnosticCode: 'smtp; 550 5.1.1 user unknown',
        status: '5.1.1',
      },
    });
  });

  it.each(SES_LIST_BOUNCES)(
    'explains a %s bounce as SES’s suppression list, not a failed delivery',
    (subtype, file, address) => {
      // Prepare
      const event = fixtureEvent(file);
      const record = sentRecord([address], { sesMessageId: event.sesMessageId });

      // Act
      const next = applyFeedback(record, event, NOW);

      // Assess
      expect(next?.recipients[0]?.reason).toBe(
        `permanent bounce (${subtype}): the address is on the SES suppression list, so SES did not attempt delivery`,
      );
    },
  );

  it('marks a transient bounce as a soft bounce', () => {
    // Prepare
    const event = fixtureEvent('ses-notif_real_relay-simulator_ooto-bounce-transient-general.json');
    const record = sentRecord(['ooto@simulator.amazonses.com'], { sesMessageId: event.sesMessageId });

    // Act
    const next = applyFeedback(record, event, NOW);

    // Assess
    expect(next?.recipients[0]).toMatchObject({
      status: 'bounced',
      soft: true,
      reason: 'transient bounce (General)',
    });
  });

  it.each([
    ['bounce first', ['ooto-bounce-transient-general', 'delivery-ooto']],
    ['delivery first', ['delivery-ooto', 'ooto-bounce-transient-general']],
  ])('ends an out-of-office exchange delivered (%s)', (_order, names) => {
    // Prepare
    const events = names.map((n) => fixtureEvent(`ses-notif_real_relay-simulator_${n}.json`));
    const record = sentRecord(['ooto@simulator.amazonses.com']);

    // Act
    const last = applyAll(record, events);

    // Assess
    expect(last.recipients).toEqual([
      expect.objectContaining({ address: 'ooto@simulator.amazonses.com', status: 'delivered', reason: null }),
    ]);
    expect(last.recipients[0]).not.toHaveProperty('soft');
    expect(last.events.map((e) => e.type)).toEqual([
      'accepted',
      'sent',
      ...events.map((e) => (e.kind === 'delivery' ? 'delivered' : 'bounced')),
    ]);
  });

  it.each([
    ['complaint first (as the simulator timestamps them)', ['complaint-abuse', 'delivery-complaint']],
    ['delivery first', ['delivery-complaint', 'complaint-abuse']],
  ])('never lets a late delivery clear a complaint (%s)', (_order, names) => {
    // Prepare
    const events = names.map((n) => fixtureEvent(`ses-notif_real_relay-simulator_${n}.json`));
    const record = sentRecord(['complaint@simulator.amazonses.com']);

    // Act
    const last = applyAll(record, events);

    // Assess
    expect(last.recipients[0]).toMatchObject({
      status: 'complained',
      reason: 'the recipient reported the message as spam (feedback type: abuse)',
    });
  });

  it('never lets a late delivery clear a permanent bounce', () => {
    // Prepare
    const bounce = feedbackEvent({
      kind: 'bounce',
      bounceType: 'Permanent',
      bounceSubType: 'General',
      key: 'b',
    });
    const delivery = feedbackEvent({ kind: 'delivery', key: 'd', at: '2025-03-01T12:02:00.000Z' });

    // Act
    const last = applyAll(sentRecord(), [bounce, delivery]);

    // Assess
    expect(last.recipients[0]).toMatchObject({ status: 'bounced', reason: 'permanent bounce (General)' });
    // The delivery is still part of the history.
    expect(last.events.map((e) => e.type)).toEqual(['accepted', 'sent', 'bounced', 'delivered']);
  });

  it('lets a bounce that arrives after a delivery win (the remote server gave up later)', () => {
    // Prepare
    const delivery = feedbackEvent({ kind: 'delivery', key: 'd' });
    const bounce = feedbackEvent({
      kind: 'bounce',
      bounceType: 'Permanent',
      bounceSubType: 'General',
      key: 'b',
    });

    // Act
    const last = applyAll(sentRecord(), [delivery, bounce]);

    // Assess
    expect(last.recipients[0]?.status).toBe('bounced');
  });

  it('marks a delayed recipient delayed, and a later delivery delivered', () => {
    // Prepare
    const delay = feedbackEvent({
      kind: 'delay',
      delayType: 'TransientCommunicationFailure',
      recipients: [{ address: 'ana@example.org', diagnosticCode: 'smtp; 421 4.4.1 Unable to connect' }],
      key: 'w',
    });
    const delivery = feedbackEvent({ kind: 'delivery', key: 'd' });

    // Act
    const delayed = applyAll(sentRecord(), [delay]);
    const delivered = applyAll(delayed, [delivery]);

    // Assess
    expect(delayed.recipients[0]).toMatchObject({
      status: 'delayed',
      reason:
        'delivery delayed (TransientCommunicationFailure): smtp; 421 4.4.1 Unable to connect; SES keeps trying',
    });
    expect(delivered.recipients[0]).toMatchObject({ status: 'delivered', reason: null });
  });

  it('does not move a delivered recipient back to delayed', () => {
    // Prepare
    const delivery = feedbackEvent({ kind: 'delivery', key: 'd' });
    const delay = feedbackEvent({ kind: 'delay', key: 'w' });

    // Act
    const last = applyAll(sentRecord(), [delivery, delay]);

    // Assess
    expect(last.recipients[0]?.status).toBe('delivered');
  });

  it('marks the message rejected and every unfinished recipient failed on a Reject', () => {
    // Prepare
    const record = sentRecord(['ana@example.org', 'bob@example.org'], {
      recipients: [recipient('ana@example.org', 'sent'), recipient('bob@example.org', 'suppressed')],
    });
    const event = fixtureEvent('ses-event_aws-doc_reject.json');

    // Act
    const next = applyFeedback(record, event, NOW);

    // Assess
    const reason = 'SES rejected the message (Bad content); it was not sent';
    expect(next?.phase).toBe('rejected');
    expect(next?.recipients.map((r) => [r.status, r.reason])).toEqual([
      ['failed', reason],
      ['suppressed', null],
    ]);
    expect(next?.events.at(-1)).toEqual({
      type: 'rejected',
      at: '2016-10-14T17:38:15.211Z',
      detail: { reason },
    });
  });

  it('leaves a message another SES copy delivered as it is on a late Reject of the first copy', () => {
    // Prepare: the first attempt's answer was lost and its events came after the window; the second
    // copy (ses-2) was delivered. The first copy's Reject arrives last.
    const record = sentRecord(['ana@example.org'], {
      sesMessageId: 'ses-2',
      recipients: [recipient('ana@example.org', 'delivered')],
      events: [
        { type: 'accepted', at: T0 },
        { type: 'retrying', at: T0, detail: { reason: 'SES outcome unknown', sesRequestId: 'req-1' } },
        { type: 'sent', at: T0, sesMessageId: 'ses-2' },
      ],
    });
    const reject = feedbackEvent({ kind: 'reject', sesMessageId: 'ses-1', reason: 'Bad content' });

    // Act
    const next = applyFeedback(record, reject, NOW);

    // Assess: the timeline tells, the message and its recipient keep what the delivered copy earned.
    expect(next?.phase).toBe('sent');
    expect(next?.recipients.map((r) => r.status)).toEqual(['delivered']);
    expect(next?.events.at(-1)).toMatchObject({ type: 'rejected', detail: { sesMessageId: 'ses-1' } });
  });

  it('marks the message failed on a Rendering Failure', () => {
    // Prepare
    const event = fixtureEvent('ses-event_aws-doc_rendering-failure.json');

    // Act
    const next = applyFeedback(sentRecord(), event, NOW);

    // Assess
    const reason =
      "SES could not render the message: Attribute 'attributeName' is not present in the rendering data.";
    expect(next?.phase).toBe('failed');
    expect(next?.recipients[0]).toMatchObject({ status: 'failed', reason });
    expect(next?.events.at(-1)).toEqual({
      type: 'rendering_failed',
      at: '2018-01-22T18:43:06.197Z',
      detail: { reason },
    });
  });

  it.each([
    ['open', 'opened'],
    ['click', 'clicked'],
    ['subscription', 'unsubscribed'],
  ] as const)('only adds a %s to the timeline', (kind, type) => {
    // Prepare
    const record = sentRecord();

    // Act
    const next = applyFeedback(record, feedbackEvent({ kind, key: kind }), NOW);

    // Assess
    expect(next?.recipients).toEqual(record.recipients);
    expect(next?.events.at(-1)).toEqual({ type, at: '2025-03-01T12:01:00.000Z' });
  });

  it('matches recipients case-insensitively and by punycode domain', () => {
    // Prepare
    const record = sentRecord(['Ana@xn--bcher-kva.example']);
    const event = feedbackEvent({
      kind: 'delivery',
      recipients: [{ address: 'ana@BÜCHER.example' }],
      key: 'd',
    });

    // Act
    const next = applyFeedback(record, event, NOW);

    // Assess
    expect(next?.recipients[0]).toMatchObject({ address: 'Ana@xn--bcher-kva.example', status: 'delivered' });
  });

  it('leaves recipients the event does not name alone', () => {
    // Prepare
    const record = sentRecord(['ana@example.org', 'bob@example.org']);

    // Act
    const next = applyFeedback(record, feedbackEvent({ kind: 'delivery', key: 'd' }), NOW);

    // Assess
    expect(next?.recipients.map((r) => r.status)).toEqual(['delivered', 'sent']);
  });

  it('falls back to the current time when the event time cannot be read', () => {
    // Prepare
    const event = feedbackEvent({ kind: 'delivery', at: 'yesterday', key: 'd' });

    // Act
    const next = applyFeedback(sentRecord(), event, NOW);

    // Assess
    expect(next?.recipients[0]?.updatedAt).toBe(NOW.toISOString());
  });

  it('remembers only the last 64 applied event keys', () => {
    // Prepare
    const seen = Array.from({ length: 64 }, (_, i) => `k${i}`);

    // Act
    const next = applyFeedback(
      sentRecord(['ana@example.org'], { seen }),
      feedbackEvent({ kind: 'open', key: 'new' }),
      NOW,
    );

    // Assess
    expect(next?.seen).toHaveLength(64);
    expect(next?.seen[0]).toBe('k1');
    expect(next?.seen.at(-1)).toBe('new');
  });

  it('ends each recipient in the strongest state it reached, whatever order the events came in', () => {
    // Prepare
    const pool: FeedbackEvent[] = [
      feedbackEvent({ kind: 'delay', key: 'delay' }),
      feedbackEvent({ kind: 'delivery', key: 'delivery' }),
      feedbackEvent({ kind: 'bounce', bounceType: 'Transient', key: 'soft' }),
      feedbackEvent({ kind: 'bounce', bounceType: 'Permanent', key: 'hard' }),
      feedbackEvent({ kind: 'complaint', key: 'complaint' }),
    ];
    const expectedFor = (events: readonly FeedbackEvent[]) => {
      const states = events.map((e) => applyAll(sentRecord(), [e]).recipients[0]);
      return states.reduce(
        (best, s) => (s && best && recipientRank(s) > recipientRank(best) ? s : best),
        recipient('ana@example.org', 'sent'),
      )?.status;
    };

    // Act / Assess
    fc.assert(
      fc.property(fc.shuffledSubarray(pool, { minLength: 1 }), (events) => {
        const last = applyAll(sentRecord(), events);
        expect(last.recipients[0]?.status).toBe(expectedFor(events));
      }),
      { numRuns: 200 },
    );
  });
});

describe('suppressionsFor', () => {
  it('suppresses a permanently bounced address for good, with the evidence', () => {
    // Prepare
    const event = fixtureEvent('ses-notif_real_relay-simulator_bounce-permanent-general.json');

    // Act
    const out = suppressionsFor(event, 'msg_1', NOW);

    // Assess
    expect(out).toEqual([
      {
        address: 'bounce@simulator.amazonses.com',
        reason: 'hard_bounce',
        detail: 'permanent bounce (General): smtp; 550 5.1.1 user unknown',
        source: 'msg_1',
        createdAt: NOW.toISOString(),
        expiresAt: null,
        severity: 3,
        evidence: {
          sesMessageId: '0100018264c6505e-66ca92ab-0593-41de-8df9-38b09a02a206-000000',
          feedbackId: '0100018264c6525d-e8967b05-82f8-4575-9413-34faff769528-000000',
          bounceType: 'Permanent',
          bounceSubType: 'General',
          diagnosticCode: 'smtp; 550 5.1.1 user unknown',
          status: '5.1.1',
        },
      },
    ]);
  });

  it.each([
    ...SES_LIST_BOUNCES,
    [
      'General (suppressionlist@ simulator)',
      'ses-notif_real_relay-simulator_suppressionlist-bounce-permanent-general.json',
      'suppressionlist@simulator.amazonses.com',
    ],
  ])('suppresses an address SES refused as %s as a hard bounce', (_subtype, file, address) => {
    // Prepare
    const event = fixtureEvent(file);

    // Act
    const out = suppressionsFor(event, undefined, NOW);

    // Assess
    expect(out.map((s) => [s.address, s.reason, s.severity, s.expiresAt, s.source])).toEqual([
      [address, 'hard_bounce', 3, null, null],
    ]);
  });

  it('suppresses every recipient of a permanent bounce, normalised', () => {
    // Prepare
    const event = feedbackEvent({
      kind: 'bounce',
      bounceType: 'Permanent',
      recipients: [{ address: 'Jane@Example.com' }, { address: 'richard@BÜCHER.example' }],
    });

    // Act
    const out = suppressionsFor(event, 'msg_1', NOW);

    // Assess
    expect(out.map((s) => s.address)).toEqual(['jane@example.com', 'richard@xn--bcher-kva.example']);
  });

  it('suppresses a complaining address above any bounce', () => {
    // Prepare
    const event = fixtureEvent('ses-notif_aws-doc_complaint-abuse-with-feedback-report.json');

    // Act
    const out = suppressionsFor(event, 'msg_1', NOW);

    // Assess
    expect(out).toEqual([
      {
        address: 'richard@example.com',
        reason: 'complaint',
        detail: 'the recipient reported the message as spam (feedback type: abuse)',
        source: 'msg_1',
        createdAt: NOW.toISOString(),
        expiresAt: null,
        severity: 4,
        evidence: {
          sesMessageId: '000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000',
          feedbackId: '000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000',
          feedbackType: 'abuse',
        },
      },
    ]);
  });

  it('suppresses the address of a complaint that carries no feedback report', () => {
    // Prepare
    const event = fixtureEvent('ses-notif_aws-doc_complaint-without-feedback-report.json');

    // Act
    const out = suppressionsFor(event, undefined, NOW);

    // Assess
    expect(out.map((s) => [s.address, s.reason, s.detail])).toEqual([
      [
        'richard@example.com',
        'complaint',
        'the recipient reported the message as spam (feedback type: not given)',
      ],
    ]);
    expect(out[0]?.evidence).toEqual({
      sesMessageId: '0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000',
      feedbackId: '0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000',
    });
  });

  it.each([
    ['a transient bounce', 'ses-notif_real_relay-simulator_ooto-bounce-transient-general.json'],
    ['a transient MailboxFull bounce', 'sns-http_real-modified_relay_soft-bounce-transient-MailboxFull.json'],
    ['a delivery', 'ses-notif_real_relay-simulator_delivery-success.json'],
    ['a delay', 'ses-event_aws-doc_delivery-delay.json'],
    ['a reject', 'ses-event_aws-doc_reject.json'],
    ['an unsubscribe', 'ses-event_aws-doc_subscription.json'],
  ])('suppresses nobody for %s', (_what, file) => {
    // Prepare
    const event = fixtureEvent(file);

    // Act
    const out = suppressionsFor(event, 'msg_1', NOW);

    // Assess
    expect(out).toEqual([]);
  });

  it('skips a bounced recipient whose address cannot be read', () => {
    // Prepare
    const event = feedbackEvent({
      kind: 'bounce',
      bounceType: 'Permanent',
      recipients: [{ address: 'not an address' }],
    });

    // Act
    const out = suppressionsFor(event, 'msg_1', NOW);

    // Assess
    expect(out).toEqual([]);
  });

  describe('a Permanent bounce that lists a recipient as only delayed', () => {
    // The AWS Bounce-object example (fixtures/ses/...bounce-object-only_mixed-failed-and-delayed-
    // recipients.json) puts a recipient with action "delayed" and status 4.0.0 inside a Permanent
    // bounce. Wrapped into a notification, it is what SES can send.
    const bounce = fixtureJson<Record<string, unknown>>(
      'ses/ses-notif_aws-doc_bounce-object-only_mixed-failed-and-delayed-recipients.json',
    );
    const event = parseFeedback(
      JSON.stringify({
        notificationType: 'Bounce',
        bounce,
        mail: {
          timestamp: '2012-05-25T14:59:38.000Z',
          messageId: 'ses-1',
          destination: ['recipient1@example.com', 'recipient2@example.com'],
        },
      }),
    );

    it('suppresses the recipient that failed', () => {
      // Prepare / Act
      const out = suppressionsFor(event, 'msg_1', NOW);

      // Assess
      expect(out.map((s) => s.address)).toContain('recipient1@example.com');
    });

    // SES can list a merely delayed recipient inside a Permanent bounce (AWS Bounce-object example).
    it('does not suppress the recipient that was only delayed', () => {
      // Prepare / Act
      const out = suppressionsFor(event, 'msg_1', NOW);

      // Assess
      expect(out.map((s) => s.address)).toEqual(['recipient1@example.com']);
    });

    it('does not mark the delayed recipient as permanently bounced', () => {
      // Prepare
      const record = sentRecord(['recipient1@example.com', 'recipient2@example.com']);

      // Act
      const next = applyFeedback(record, event, NOW);

      // Assess
      expect(next?.recipients.map((r) => recipientRank(r) < recipientRank({ status: 'bounced' }))).toEqual([
        false,
        true,
      ]);
    });
  });
});

describe('feedback for a message Baton gave up on', () => {
  it('marks it sent and delivered: the SES event proves the send happened after all', () => {
    // Prepare
    const record = messageRecord({
      phase: 'failed',
      redrivable: true,
      recipients: [recipient('ana@example.org', 'failed', { reason: 'gave up' })],
    });
    const event = feedbackEvent({ kind: 'delivery', recipients: [{ address: 'ana@example.org' }] });

    // Act
    const next = applyFeedback(record, event, new Date(T0));

    // Assess
    expect(next?.phase).toBe('sent');
    expect(next?.redrivable).toBeUndefined();
    expect(next?.recipients[0]).toMatchObject({ status: 'delivered', reason: null });
    expect(deriveStatus(next?.phase ?? 'queued', next?.recipients ?? [])).toBe('delivered');
  });
});
