import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import { MalformedFeedbackError } from '../../../lambdas/domain/feedback/ses-event.ts';
import { createFeedbackConsumer } from '../../../lambdas/feedback/app.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { messageRecord, recipient, sesEventBody, snsEnvelope, sqsRecord } from '../../support/builders.ts';
import {
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  testClock,
} from '../../support/fakes.ts';
import { fixtureText } from '../../support/fixtures.ts';

function setUp() {
  const messages = new InMemoryMessageStore();
  const suppressions = new InMemorySuppressionStore();
  const consume = createFeedbackConsumer({
    messages,
    suppressions,
    softBounces: new InMemorySoftBounceStore(),
    clock: testClock('2025-03-01T12:02:00.000Z'),
  });
  return { consume, messages, suppressions };
}

const complaint = sesEventBody({
  eventType: 'Complaint',
  batonMessageId: 'msg_1',
  sections: {
    complaint: {
      timestamp: '2025-03-01T12:01:00.000Z',
      complaintFeedbackType: 'abuse',
      complainedRecipients: [{ emailAddress: 'ana@example.org' }],
    },
  },
});

describe('createFeedbackConsumer', () => {
  it('applies a record’s event and suppresses the complaining address', async () => {
    // Prepare
    const { consume, messages, suppressions } = setUp();
    messages.seed(messageRecord({ phase: 'sent', recipients: [recipient('ana@example.org', 'sent')] }));

    // Act
    await consume(sqsRecord(snsEnvelope(complaint)));

    // Assess
    expect(messages.peek('msg_1')?.recipients[0]?.status).toBe('complained');
    expect(suppressions.peek('ana@example.org')?.reason).toBe('complaint');
  });

  it('acknowledges a redelivered event without a second effect', async () => {
    // Prepare
    const { consume, messages } = setUp();
    messages.seed(messageRecord({ phase: 'sent', recipients: [recipient('ana@example.org', 'sent')] }));
    await consume(sqsRecord(complaint));
    const after = messages.peek('msg_1');

    // Act
    await consume(sqsRecord(complaint, { messageId: 'sqs-2' }));

    // Assess
    expect(messages.peek('msg_1')).toEqual(after);
  });

  it('fails a malformed record so it is retried and dead-lettered, never acknowledged', async () => {
    // Prepare
    const { consume } = setUp();
    const body = fixtureText('ses/sns-http_real_relay_subscription-confirmation.json');

    // Act
    const outcome = consume(sqsRecord(body));

    // Assess
    await expect(outcome).rejects.toThrow(
      new MalformedFeedbackError('SNS SubscriptionConfirmation message, not a notification'),
    );
    await expect(outcome).rejects.toBeInstanceOf(MalformedFeedbackError);
  });

  it('fails an event for a message not written yet, so the queue retries it', async () => {
    // Prepare
    const { consume } = setUp();

    // Act
    const outcome = consume(sqsRecord(complaint));

    // Assess
    await expect(outcome).rejects.toThrow(
      new TransientError('no message for this complaint event yet; retrying'),
    );
  });
});
