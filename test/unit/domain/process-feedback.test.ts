import { describe, expect, it, vi } from 'vitest';
import {
  type FeedbackDeps,
  processFeedback,
  UnknownMessageError,
} from '../../../lambdas/domain/feedback/process-feedback.ts';
import { MalformedFeedbackError } from '../../../lambdas/domain/feedback/ses-event.ts';
import { ConflictError, PermanentError, TransientError } from '../../../lambdas/shared/errors.ts';
import { messageRecord, recipient, sesEventBody, suppression, T0 } from '../../support/builders.ts';
import {
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  testClock,
} from '../../support/fakes.ts';
import { fixtureText } from '../../support/fixtures.ts';

const EVENT_AT = '2025-03-01T12:01:00.000Z';

function setUp(now = '2025-03-01T12:02:00.000Z') {
  const messages = new InMemoryMessageStore();
  const suppressions = new InMemorySuppressionStore();
  const clock = testClock(now);
  const softBounces = new InMemorySoftBounceStore();
  const deps: FeedbackDeps = { messages, suppressions, softBounces, clock };
  return { deps, messages, suppressions, softBounces, clock };
}

const sent = (overrides = {}) =>
  messageRecord({
    phase: 'sent',
    sesMessageId: 'ses-1',
    recipients: [recipient('ana@example.org', 'sent'), recipient('bob@example.org', 'sent')],
    version: 3,
    ...overrides,
  });

const delivery = (recipients: string[], batonMessageId: string | undefined = 'msg_1') =>
  sesEventBody({
    eventType: 'Delivery',
    ...(batonMessageId ? { batonMessageId } : {}),
    sections: { delivery: { timestamp: EVENT_AT, recipients, smtpResponse: '250 ok' } },
  });

const hardBounce = (batonMessageId?: string) =>
  sesEventBody({
    eventType: 'Bounce',
    ...(batonMessageId ? { batonMessageId } : {}),
    sections: {
      bounce: {
        timestamp: EVENT_AT,
        bounceType: 'Permanent',
        bounceSubType: 'General',
        bouncedRecipients: [{ emailAddress: 'ana@example.org', status: '5.1.1' }],
      },
    },
  });

describe('processFeedback', () => {
  it('applies a tagged event to the message it names', async () => {
    // Prepare
    const { deps, messages } = setUp();
    messages.seed(sent());

    // Act
    const result = await processFeedback(deps, delivery(['ana@example.org']));

    // Assess
    expect(result).toMatchObject({
      messageId: 'msg_1',
      applied: true,
      suppressed: 0,
      event: { kind: 'delivery' },
    });
    expect(messages.peek('msg_1')).toMatchObject({
      version: 4,
      recipients: [{ status: 'delivered' }, { status: 'sent' }],
    });
  });

  it('finds the message of an identity notification by its SES message id and suppresses the bounce', async () => {
    // Prepare
    const { deps, messages, suppressions } = setUp();
    const body = fixtureText('ses/ses-notif_real_relay-simulator_bounce-permanent-general.json');
    messages.seed(
      sent({
        id: 'msg_7',
        sesMessageId: '0100018264c6505e-66ca92ab-0593-41de-8df9-38b09a02a206-000000',
        recipients: [recipient('bounce@simulator.amazonses.com', 'sent')],
      }),
    );

    // Act
    const result = await processFeedback(deps, body);

    // Assess
    expect(result).toMatchObject({ messageId: 'msg_7', applied: true, suppressed: 1 });
    expect(messages.peek('msg_7')?.recipients[0]?.status).toBe('bounced');
    expect(suppressions.peek('bounce@simulator.amazonses.com')).toMatchObject({
      reason: 'hard_bounce',
      source: 'msg_7',
      createdAt: '2025-03-01T12:02:00.000Z',
    });
  });

  it('has no second effect when the same event is delivered again', async () => {
    // Prepare
    const { deps, messages, suppressions } = setUp();
    messages.seed(sent());
    const body = hardBounce('msg_1');
    await processFeedback(deps, body);
    const after = messages.peek('msg_1');

    // Act
    const again = await processFeedback(deps, body);

    // Assess
    expect(again).toMatchObject({ applied: false, suppressed: 0 });
    expect(messages.peek('msg_1')).toEqual(after);
    expect(suppressions.peek('ana@example.org')?.reason).toBe('hard_bounce');
  });

  it('keeps a complaint when a hard bounce for the same address comes later', async () => {
    // Prepare
    const { deps, messages, suppressions } = setUp();
    messages.seed(sent());
    suppressions.seed(suppression('ana@example.org', 'complaint'));

    // Act
    const result = await processFeedback(deps, hardBounce('msg_1'));

    // Assess
    expect(result.suppressed).toBe(0);
    expect(suppressions.peek('ana@example.org')?.reason).toBe('complaint');
  });

  it('asks for a retry when the message is not found within 15 minutes of the event', async () => {
    // Prepare
    const { deps } = setUp('2025-03-01T12:15:59.000Z');

    // Act
    const outcome = processFeedback(deps, delivery(['ana@example.org']));

    // Assess
    await expect(outcome).rejects.toThrow(
      new TransientError('no message for this delivery event yet; retrying'),
    );
    await expect(outcome).rejects.toBeInstanceOf(TransientError);
  });

  it('retries at exactly 15 minutes and gives up one millisecond later', async () => {
    // Prepare
    const atWindow = setUp('2025-03-01T12:16:00.000Z');
    const afterWindow = setUp('2025-03-01T12:16:00.001Z');

    // Act
    const early = processFeedback(atWindow.deps, delivery(['ana@example.org']));
    const late = processFeedback(afterWindow.deps, delivery(['ana@example.org']));

    // Assess
    await expect(early).rejects.toBeInstanceOf(TransientError);
    await expect(late).rejects.toThrow(
      new UnknownMessageError('delivery event for a message Baton does not know'),
    );
    await expect(late).rejects.toBeInstanceOf(PermanentError);
  });

  it('still suppresses a bounced address when the message is unknown', async () => {
    // Prepare
    const { deps, suppressions } = setUp('2025-03-01T13:00:00.000Z');

    // Act
    const outcome = processFeedback(deps, hardBounce('msg_gone'));

    // Assess
    await expect(outcome).rejects.toThrow(
      new UnknownMessageError('bounce event for a message Baton does not know'),
    );
    expect(suppressions.peek('ana@example.org')).toMatchObject({ reason: 'hard_bounce', source: 'msg_gone' });
  });

  it('re-reads and merges when another writer got there first', async () => {
    // Prepare
    const { deps, messages } = setUp();
    messages.seed(sent());
    messages.beforeNextUpdate(() => {
      const current = messages.peek('msg_1');
      if (!current) return;
      // A concurrent feedback function delivered to bob meanwhile.
      messages.write({
        ...current,
        recipients: [
          current.recipients[0] ?? recipient('ana@example.org'),
          recipient('bob@example.org', 'delivered'),
        ],
        seen: ['other-event'],
        version: current.version + 1,
      });
    });

    // Act
    const result = await processFeedback(deps, hardBounce('msg_1'));

    // Assess
    expect(result.applied).toBe(true);
    const record = messages.peek('msg_1');
    expect(record?.recipients.map((r) => r.status)).toEqual(['bounced', 'delivered']);
    expect(record?.seen).toEqual(['other-event', result.event.key]);
    expect(record?.version).toBe(5);
  });

  it('gives up after five lost races and lets the queue retry', async () => {
    // Prepare
    const { deps, messages } = setUp();
    messages.seed(sent());
    const update = vi
      .spyOn(messages, 'update')
      .mockRejectedValue(new ConflictError('message msg_1 changed since version 3'));

    // Act
    const outcome = processFeedback(deps, delivery(['ana@example.org']));

    // Assess
    await expect(outcome).rejects.toThrow(new ConflictError('message msg_1 changed since version 3'));
    expect(update).toHaveBeenCalledTimes(5);
  });

  it('does not retry a write that failed for another reason', async () => {
    // Prepare
    const { deps, messages } = setUp();
    messages.seed(sent());
    const update = vi
      .spyOn(messages, 'update')
      .mockRejectedValue(new TransientError('updating the message failed: ThrottlingException'));

    // Act
    const outcome = processFeedback(deps, delivery(['ana@example.org']));

    // Assess
    await expect(outcome).rejects.toThrow(
      new TransientError('updating the message failed: ThrottlingException'),
    );
    expect(update).toHaveBeenCalledTimes(1);
  });

  it('asks for a retry when the message vanishes between two attempts', async () => {
    // Prepare
    const { deps, messages } = setUp();
    messages.seed(sent());
    vi.spyOn(messages, 'update').mockRejectedValueOnce(new ConflictError('lost'));
    vi.spyOn(messages, 'get').mockResolvedValueOnce(sent()).mockResolvedValueOnce(undefined);

    // Act
    const outcome = processFeedback(deps, delivery(['ana@example.org']));

    // Assess
    await expect(outcome).rejects.toThrow(
      new TransientError('message msg_1 vanished while applying feedback'),
    );
  });

  it('refuses a malformed body without touching anything', async () => {
    // Prepare
    const { deps, messages, suppressions } = setUp();
    messages.seed(sent());
    const put = vi.spyOn(suppressions, 'putIfStronger');
    const body = fixtureText('ses/sns-http_aws-doc_subscription-confirmation.json');

    // Act
    const outcome = processFeedback(deps, body);

    // Assess
    await expect(outcome).rejects.toThrow(
      new MalformedFeedbackError('SNS SubscriptionConfirmation message, not a notification'),
    );
    expect(messages.peek('msg_1')?.version).toBe(3);
    expect(put).not.toHaveBeenCalled();
  });

  it('records the send of a message whose sender died before saying so', async () => {
    // Prepare
    const { deps, messages } = setUp();
    messages.seed(messageRecord({ phase: 'sending', claimToken: 'claim-1', claimUntil: Date.parse(T0) }));

    // Act
    await processFeedback(
      deps,
      sesEventBody({ eventType: 'Send', batonMessageId: 'msg_1', sesMessageId: 'ses-77' }),
    );

    // Assess
    expect(messages.peek('msg_1')).toMatchObject({ phase: 'sent', sesMessageId: 'ses-77' });
  });
});

describe('processFeedback reads', () => {
  it('reads the message eventually consistent first, and on a conflict re-reads it consistent before writing again', async () => {
    // Prepare: the first (cheap) read returns a version older than the table's.
    const { deps, messages } = setUp();
    messages.seed(sent({ version: 4 }));
    const stale = sent({ version: 3 });
    const reads: Array<boolean | undefined> = [];
    const get = messages.get.bind(messages);
    messages.get = async (id, options) => {
      reads.push(options?.consistent);
      return options?.consistent === false ? stale : get(id, options);
    };

    // Act
    const result = await processFeedback(deps, delivery(['ana@example.org']));

    // Assess
    expect(result.applied).toBe(true);
    expect(reads[0]).toBe(false);
    expect(reads.slice(1).every((c) => c !== false)).toBe(true);
    expect((await get('msg_1'))?.recipients.map((r) => r.status)).toEqual(['delivered', 'sent']);
  });
});
