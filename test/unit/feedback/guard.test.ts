import '../../support/quiet-powertools.ts';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { guardFeedbackOf } from '../../../lambdas/domain/feedback/guard-feedback.ts';
import { parseFeedback } from '../../../lambdas/domain/feedback/ses-event.ts';
import { hourOf } from '../../../lambdas/domain/guard/counters.ts';
import type { GuardFeedback } from '../../../lambdas/domain/ports.ts';
import { createFeedbackBatch } from '../../../lambdas/feedback/app.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { feedbackEvent, messageRecord, recipient, sesEventBody, sqsRecord } from '../../support/builders.ts';
import {
  InMemoryGuardCounters,
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  InMemoryUsageStore,
  RecordingGuard,
  testClock,
} from '../../support/fakes.ts';
import { fixtureText } from '../../support/fixtures.ts';

const AT = '2025-03-01T12:01:00.000Z';
const record = messageRecord({ tenant: 'shop', keyId: 'key-1', phase: 'sent' });

describe('guardFeedbackOf: what the abuse guard counts of one feedback event', () => {
  it.each([
    ['a permanent bounce', { bounceType: 'Permanent', bounceSubType: 'General' }, 'hardBounce'],
    [
      'a permanent bounce of SES’s global list',
      { bounceType: 'Permanent', bounceSubType: 'Suppressed' },
      'hardBounce',
    ],
    ['a transient bounce', { bounceType: 'Transient', bounceSubType: 'MailboxFull' }, 'transientBounce'],
    [
      'an undetermined bounce',
      { bounceType: 'Undetermined', bounceSubType: 'Undetermined' },
      'transientBounce',
    ],
  ] as const)('counts %s as %s, per recipient', (_name, fields, kind) => {
    // Prepare
    const event = feedbackEvent({
      kind: 'bounce',
      ...fields,
      recipients: [{ address: 'ana@example.org', status: '5.1.1' }, { address: 'Bob@Example.org' }],
    });

    // Act
    const counted = guardFeedbackOf(event, record, new Date(AT));

    // Assess
    expect(counted).toEqual([
      {
        eventId: `${event.key}:ana@example.org`,
        tenant: 'shop',
        keyId: 'key-1',
        recipient: 'ana@example.org',
        kind,
        at: new Date(AT),
      },
      {
        eventId: `${event.key}:bob@example.org`,
        tenant: 'shop',
        keyId: 'key-1',
        recipient: 'Bob@Example.org',
        kind,
        at: new Date(AT),
      },
    ]);
  });

  it('leaves out a bounce off the account’s own suppression list: SES did not try, the list did', () => {
    // Prepare
    const event = feedbackEvent({
      kind: 'bounce',
      bounceType: 'Permanent',
      bounceSubType: 'OnAccountSuppressionList',
    });

    // Act
    const counted = guardFeedbackOf(event, record, new Date(AT));

    // Assess
    expect(counted).toEqual([]);
  });

  it('leaves out a recipient a permanent bounce lists as only delayed', () => {
    // Prepare
    const event = feedbackEvent({
      kind: 'bounce',
      bounceType: 'Permanent',
      bounceSubType: 'General',
      recipients: [
        { address: 'ana@example.org', action: 'failed', status: '5.1.1' },
        { address: 'bob@example.org', action: 'delayed', status: '4.4.7' },
      ],
    });

    // Act
    const counted = guardFeedbackOf(event, record, new Date(AT));

    // Assess
    expect(counted.map((c) => [c.recipient, c.kind])).toEqual([['ana@example.org', 'hardBounce']]);
  });

  it('counts a complaint per recipient, and nothing for deliveries, opens or delays', () => {
    // Prepare
    const complaint = feedbackEvent({ kind: 'complaint', feedbackType: 'abuse' });

    // Act
    const counted = ['delivery', 'delay', 'open', 'send', 'reject'].flatMap((kind) =>
      guardFeedbackOf(feedbackEvent({ kind: kind as 'delivery' }), record, new Date(AT)),
    );

    // Assess
    expect(guardFeedbackOf(complaint, record, new Date(AT)).map((c) => c.kind)).toEqual(['complaint']);
    expect(counted).toEqual([]);
  });

  it('names no key for a message recorded before the guard, and takes the event’s own time', () => {
    // Prepare
    const { keyId: _none, ...old } = record;
    const event = feedbackEvent({ kind: 'complaint', at: '2025-02-27T23:59:59.000Z' });

    // Act
    const [counted] = guardFeedbackOf(event, old, new Date(AT));

    // Assess
    expect(counted).not.toHaveProperty('keyId');
    expect(counted?.at).toEqual(new Date('2025-02-27T23:59:59.000Z'));
  });

  it.each(['2999-01-01T00:00:00.000Z', '+010000-01-01T00:00:00.000Z', '-000001-01-01T00:00:00.000Z'])(
    'takes the time it was processed for an event dated %s, in the future or no hour a counter can hold',
    (eventAt) => {
      // Act
      const [counted] = guardFeedbackOf(
        feedbackEvent({ kind: 'complaint', at: eventAt }),
        record,
        new Date(AT),
      );

      // Assess
      expect(counted?.at).toEqual(new Date(AT));
    },
  );

  it('takes the time it was processed when the event’s time cannot be read', () => {
    // Act
    const [counted] = guardFeedbackOf(
      feedbackEvent({ kind: 'complaint', at: 'yesterday' }),
      record,
      new Date(AT),
    );

    // Assess
    expect(counted?.at).toEqual(new Date(AT));
  });
});

/** A Guard over the in-memory counters, as GuardService counts feedback: each event once per scope. */
class CountingGuard extends RecordingGuard {
  readonly counters = new InMemoryGuardCounters();
  readonly calls: GuardFeedback[][] = [];

  override async recordFeedback(events: readonly GuardFeedback[]): Promise<void> {
    this.calls.push([...events]);
    await super.recordFeedback(events);
    const counter = {
      hardBounce: 'hardBounces',
      transientBounce: 'transientBounces',
      complaint: 'complaints',
    } as const;
    await this.counters.add(
      events.flatMap((e) =>
        [
          { kind: 'tenant' as const, tenant: e.tenant },
          ...(e.keyId ? [{ kind: 'key' as const, keyId: e.keyId }] : []),
        ].map((scope) => ({
          scope,
          hour: hourOf(e.at),
          counts: { [counter[e.kind]]: 1 },
          eventId: e.eventId,
        })),
      ),
    );
  }
}

function setUp(now = '2025-03-01T12:05:00.000Z') {
  const messages = new InMemoryMessageStore();
  const guard = new CountingGuard();
  const usage = new InMemoryUsageStore();
  const batch = createFeedbackBatch({
    messages,
    suppressions: new InMemorySuppressionStore(),
    softBounces: new InMemorySoftBounceStore(),
    clock: testClock(now),
    usage,
    guard,
  });
  let n = 0;
  /** One invocation of the feedback function with these queue message bodies. */
  const run = (...bodies: string[]) =>
    batch(bodies.map((body): SQSRecord => sqsRecord(body, { messageId: `sqs-${++n}` })));
  /** A sent message of key-1 (tenant shop) whose SES message id is `sesMessageId`. */
  const sent = (id: string, to: readonly string[], sesMessageId = `ses-${id}`) =>
    messages.seed(
      messageRecord({
        id,
        tenant: 'shop',
        keyId: 'key-1',
        phase: 'sent',
        sesMessageId,
        recipients: to.map((a) => recipient(a, 'sent')),
      }),
    );
  return { messages, guard, usage, run, sent };
}

const bounce = (id: string, to: string, bounceType = 'Permanent', bounceSubType = 'General') =>
  sesEventBody({
    eventType: 'Bounce',
    batonMessageId: id,
    sesMessageId: `ses-${id}`,
    destination: [to],
    sections: {
      bounce: {
        timestamp: AT,
        bounceType,
        bounceSubType,
        feedbackId: `fb-${id}`,
        bouncedRecipients: [{ emailAddress: to, action: 'failed', status: '5.1.1' }],
      },
    },
  });

const delivery = (id: string, to: string) =>
  sesEventBody({
    eventType: 'Delivery',
    batonMessageId: id,
    sesMessageId: `ses-${id}`,
    destination: [to],
    sections: { delivery: { timestamp: AT, recipients: [to], smtpResponse: '250 ok' } },
  });

/** The scope's counts per hour of `day`. */
const counts = async (
  guard: CountingGuard,
  scope: { kind: 'tenant'; tenant: string } | { kind: 'key'; keyId: string },
  day = '2025-03-01',
) => (await guard.counters.read(scope, `${day}T00`, `${day}T23`)).map((b) => b.counts);

describe('the feedback function counts bounces and complaints for the abuse guard', () => {
  it('tells the guard once per batch, about every recipient of its bounces and complaints', async () => {
    // Prepare
    const { run, sent, guard } = setUp();
    sent('msg_1', ['ana@example.org']);
    sent('msg_2', ['bob@example.org']);
    sent('msg_3', ['carl@example.org']);

    // Act
    const response = await run(
      bounce('msg_1', 'ana@example.org'),
      delivery('msg_2', 'bob@example.org'),
      bounce('msg_3', 'carl@example.org', 'Transient', 'MailboxFull'),
    );

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(
      guard.calls.map((call) => call.map((e) => [e.recipient, e.kind, e.tenant, e.keyId]).sort()),
    ).toEqual([
      [
        ['ana@example.org', 'hardBounce', 'shop', 'key-1'],
        ['carl@example.org', 'transientBounce', 'shop', 'key-1'],
      ],
    ]);
  });

  it('does not call the guard for a batch with nothing to count', async () => {
    // Prepare
    const { run, sent, guard } = setUp();
    sent('msg_1', ['ana@example.org']);

    // Act
    await run(delivery('msg_1', 'ana@example.org'));

    // Assess
    expect(guard.calls).toEqual([]);
  });

  it('tells the guard again about a redelivered event, under the same event id, and it counts once', async () => {
    // Prepare: the first delivery applied and counted; the guard dedupes the second by its event id.
    const { run, sent, guard } = setUp();
    sent('msg_1', ['ana@example.org']);
    await run(bounce('msg_1', 'ana@example.org'));

    // Act
    await run(bounce('msg_1', 'ana@example.org'));

    // Assess
    const ids = guard.calls.map((call) => call.map((e) => e.eventId));
    expect(ids).toHaveLength(2);
    expect(ids[1]).toEqual(ids[0]);
    expect(await counts(guard, { kind: 'key', keyId: 'key-1' })).toEqual([{ hardBounces: 1 }]);
    expect(await counts(guard, { kind: 'tenant', tenant: 'shop' })).toEqual([{ hardBounces: 1 }]);
  });

  it('retries the records it could not count, and counts them once when they come back', async () => {
    // Prepare
    const { run, sent, guard, usage } = setUp();
    sent('msg_1', ['ana@example.org']);
    sent('msg_2', ['bob@example.org']);
    const down = vi
      .spyOn(guard, 'recordFeedback')
      .mockRejectedValue(new TransientError('Guard table throttled'));

    // Act: the bounce is applied to its message, then the guard cannot count it (its store is down).
    const first = await run(bounce('msg_1', 'ana@example.org'), delivery('msg_2', 'bob@example.org'));
    down.mockRestore();
    const second = await run(bounce('msg_1', 'ana@example.org'));

    // Assess: only the bounce comes back (the delivery had nothing to count); counted once in all.
    expect(first).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-1' }] });
    expect(second).toEqual({ batchItemFailures: [] });
    expect(await counts(guard, { kind: 'key', keyId: 'key-1' })).toEqual([{ hardBounces: 1 }]);
    // The daily statistics counted the bounce when it was applied, and not again on the retry.
    expect(usage.statWrites.map((w) => w.counts)).toEqual([{ bounced: 1, delivered: 1 }]);
  });

  it('retries only the record the guard refuses, when the others of the batch can be counted', async () => {
    // Prepare: the guard refuses anything about carl (a poison event), counts the rest.
    const { run, sent, guard } = setUp();
    sent('msg_1', ['ana@example.org']);
    sent('msg_2', ['carl@example.org']);
    sent('msg_3', ['dora@example.org']);
    const count = guard.recordFeedback.bind(guard);
    vi.spyOn(guard, 'recordFeedback').mockImplementation(async (events) => {
      if (events.some((e) => e.recipient === 'carl@example.org')) throw new RangeError('not countable');
      await count(events);
    });

    // Act
    const response = await run(
      bounce('msg_1', 'ana@example.org'),
      bounce('msg_2', 'carl@example.org'),
      bounce('msg_3', 'dora@example.org'),
    );

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-2' }] });
    expect(await counts(guard, { kind: 'key', keyId: 'key-1' })).toEqual([{ hardBounces: 2 }]);
  });

  it('does not count an event whose record failed: its retry does', async () => {
    // Prepare
    const { run, guard } = setUp();

    // Act: no message for it yet (the sender has not written SES's id), so it is retried.
    const response = await run(bounce('msg_later', 'ana@example.org'));

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'sqs-1' }]);
    expect(guard.calls).toEqual([]);
  });
});

describe('scenario replay: SES’s own notifications through the feedback function', () => {
  const permanent = fixtureText('ses/ses-notif_real_relay-simulator_bounce-permanent-general.json');
  const accountList = fixtureText(
    'ses/sns-http_real_relay_hard-bounce-permanent-OnAccountSuppressionList.json',
  );
  const complaint = fixtureText('ses/ses-notif_real_relay-simulator_complaint-abuse.json');
  const transient = fixtureText('ses/ses-notif_real_relay-simulator_ooto-bounce-transient-general.json');

  /** Seeds the sent message each notification is about (found by SES's message id, as deployed). */
  function seeded(...bodies: string[]) {
    const rig = setUp('2022-08-03T18:00:00.000Z');
    bodies.forEach((body, i) => {
      const event = parseFeedback(body);
      rig.sent(`msg_${i}`, event.destination ?? [], event.sesMessageId);
    });
    return rig;
  }

  it('counts the same bounce delivered twice once', async () => {
    // Prepare
    const { run, guard } = seeded(permanent);

    // Act
    await run(permanent);
    await run(permanent);

    // Assess
    expect(guard.feedback).toHaveLength(2);
    expect(guard.feedback[1]?.eventId).toBe(guard.feedback[0]?.eventId);
    expect(await counts(guard, { kind: 'key', keyId: 'key-1' }, '2022-08-03')).toEqual([{ hardBounces: 1 }]);
  });

  it('counts a complaint and a transient bounce, and not a bounce off the account’s suppression list', async () => {
    // Prepare
    const { run, guard } = seeded(accountList, complaint, transient);

    // Act
    const response = await run(accountList, complaint, transient);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(guard.feedback.map((e) => [e.recipient, e.kind]).sort()).toEqual([
      ['complaint@simulator.amazonses.com', 'complaint'],
      ['ooto@simulator.amazonses.com', 'transientBounce'],
    ]);
    expect(await counts(guard, { kind: 'tenant', tenant: 'shop' }, '2022-08-03')).toEqual([
      { complaints: 1, transientBounces: 1 },
    ]);
  });
});
