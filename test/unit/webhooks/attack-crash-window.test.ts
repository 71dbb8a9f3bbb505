/**
 * Attack probe (issue 14): a producer's state change is written before its events are published
 * (the feedback and sender functions buffer a batch's events and publish them at its end). A crash
 * in between (a Lambda timeout, an out-of-memory kill) left the events neither queued nor in the
 * replay log, and the redelivered SES event found itself applied and produced nothing. Now a
 * redelivery tells the record's events again, under the same ids.
 */
import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import { type FeedbackDeps, processFeedback } from '../../../lambdas/domain/feedback/process-feedback.ts';
import { WebhookBuffer } from '../../../lambdas/domain/webhooks/produce.ts';
import { messageRecord, recipient, sesEventBody } from '../../support/builders.ts';
import {
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  testClock,
} from '../../support/fakes.ts';
import { RecordingWebhookPublisher } from '../../support/webhooks.ts';

const ANA = 'ana@example.org';

describe('attack: a crash between the state change and its publishing', () => {
  it('still produces message.delivered when the SES event is redelivered after the crash', async () => {
    // Prepare: a sent message; the first handling's events stay in a buffer the crash discards.
    const messages = new InMemoryMessageStore();
    messages.seed(
      messageRecord({
        phase: 'sent',
        sesMessageId: 'ses-1',
        recipients: [recipient(ANA, 'sent')],
        events: [
          { type: 'accepted', at: '2025-03-01T12:00:00.000Z' },
          { type: 'sent', at: '2025-03-01T12:00:01.000Z', sesMessageId: 'ses-1' },
        ],
        version: 3,
      }),
    );
    const deps = (webhooks: FeedbackDeps['webhooks']): FeedbackDeps => ({
      messages,
      suppressions: new InMemorySuppressionStore(),
      softBounces: new InMemorySoftBounceStore(),
      clock: testClock('2025-03-01T12:02:00.000Z'),
      webhooks,
    });
    const delivery = sesEventBody({
      eventType: 'Delivery',
      batonMessageId: 'msg_1',
      sections: {
        delivery: { timestamp: '2025-03-01T12:01:00.000Z', recipients: [ANA], smtpResponse: '250 ok' },
      },
    });
    await processFeedback(deps(new WebhookBuffer()), delivery);

    // Act: SQS redelivers the event.
    const publisher = new RecordingWebhookPublisher();
    await processFeedback(deps(publisher), delivery);

    // Assess
    expect(publisher.events.map((e) => e.payload.type)).toContain('message.delivered');
  });
});
