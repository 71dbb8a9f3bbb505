/** Webhook events produced by the feedback function (issue 14): SES's evidence, once per change. */
import '../../support/quiet-powertools.ts';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { type FeedbackDeps, processFeedback } from '../../../lambdas/domain/feedback/process-feedback.ts';
import type { WebhookEvent } from '../../../lambdas/domain/webhooks/events.ts';
import type { WebhookPublisher } from '../../../lambdas/domain/webhooks/ports.ts';
import { createFeedbackBatch } from '../../../lambdas/feedback/app.ts';
import { messageRecord, recipient, sesEventBody, sqsRecord, suppression } from '../../support/builders.ts';
import {
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  InMemoryUsageStore,
  RecordingGuard,
  testClock,
} from '../../support/fakes.ts';
import { RecordingWebhookPublisher } from '../../support/webhooks.ts';

const EVENT_AT = '2025-03-01T12:01:00.000Z';
const NOW = '2025-03-01T12:02:00.000Z';
const TAGS = { campaign: 'spring' };
const ANA = 'ana@example.org';
const BOB = 'bob@example.org';

/** A message sent to ana and bob (timeline: accepted, sent), with tags. */
const sent = () =>
  messageRecord({
    phase: 'sent',
    sesMessageId: 'ses-1',
    tags: TAGS,
    recipients: [recipient(ANA, 'sent'), recipient(BOB, 'sent')],
    events: [
      { type: 'accepted', at: '2025-03-01T12:00:00.000Z' },
      { type: 'sent', at: '2025-03-01T12:00:01.000Z', sesMessageId: 'ses-1' },
    ],
    version: 3,
  });

function rig(webhooks: WebhookPublisher) {
  const messages = new InMemoryMessageStore();
  const suppressions = new InMemorySuppressionStore();
  const deps: FeedbackDeps = {
    messages,
    suppressions,
    softBounces: new InMemorySoftBounceStore(),
    clock: testClock(NOW),
    webhooks,
  };
  messages.seed(sent());
  return { deps, messages, suppressions };
}

const delivery = (recipients: string[]) =>
  sesEventBody({
    eventType: 'Delivery',
    batonMessageId: 'msg_1',
    sections: { delivery: { timestamp: EVENT_AT, recipients, smtpResponse: '250 ok' } },
  });

const hardBounce = (address = ANA) =>
  sesEventBody({
    eventType: 'Bounce',
    batonMessageId: 'msg_1',
    sections: {
      bounce: {
        timestamp: EVENT_AT,
        bounceType: 'Permanent',
        bounceSubType: 'General',
        bouncedRecipients: [
          { emailAddress: address, status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 unknown' },
        ],
      },
    },
  });

const complaint = sesEventBody({
  eventType: 'Complaint',
  batonMessageId: 'msg_1',
  sections: {
    complaint: {
      timestamp: EVENT_AT,
      complainedRecipients: [{ emailAddress: BOB }],
      complaintFeedbackType: 'abuse',
    },
  },
});

const summary = (events: readonly WebhookEvent[]) =>
  events.map((e) => {
    const data = e.payload.data as { recipient?: string; address?: string };
    return [e.payload.type, data.recipient ?? data.address];
  });

describe('events produced by processFeedback', () => {
  it('produces message.delivered per recipient SES delivered to, with the tags and the sequence', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps } = rig(publisher);

    // Act
    await processFeedback(deps, delivery([ANA]));

    // Assess
    expect(publisher.events.map((e) => e.payload)).toEqual([
      {
        type: 'message.delivered',
        timestamp: EVENT_AT,
        data: { messageId: 'msg_1', recipient: ANA, tags: TAGS, stream: 'transactional', sequence: 2 },
      },
    ]);
  });

  it('tells a redelivered SES event’s events again, with the same ids, in case the first run died before publishing', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps } = rig(publisher);
    await processFeedback(deps, hardBounce());
    const first = publisher.events.filter((e) => e.payload.type.startsWith('message.')).map((e) => e.id);
    publisher.events.length = 0;

    // Act
    const result = await processFeedback(deps, hardBounce());

    // Assess: not applied twice; its message events are among those told again, under their ids.
    expect(result.applied).toBe(false);
    expect(first.length).toBeGreaterThan(0);
    expect(publisher.events.map((e) => e.id)).toEqual(expect.arrayContaining(first));
    expect(publisher.events.every((e) => e.payload.type.startsWith('message.'))).toBe(true);
  });

  it('produces message.bounced and suppression.created to the message’s tenant for a hard bounce', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps } = rig(publisher);

    // Act
    await processFeedback(deps, hardBounce());

    // Assess
    expect(summary(publisher.events)).toEqual([
      ['suppression.created', ANA],
      ['message.bounced', ANA],
    ]);
    expect(publisher.events.map((e) => e.tenant)).toEqual(['tenant-a', 'tenant-a']);
    expect(publisher.events[0]?.payload.data).toEqual({
      address: ANA,
      reason: 'hard_bounce',
      scope: 'global',
    });
    expect(publisher.events[1]?.payload.data).toMatchObject({
      kind: 'hard',
      type: 'Permanent',
      subType: 'General',
      diagnostic: 'smtp; 550 5.1.1 unknown',
    });
  });

  it('produces no suppression.created when a stronger entry stood already', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, suppressions } = rig(publisher);
    suppressions.seed(suppression(BOB, 'complaint'));

    // Act
    await processFeedback(deps, complaint);

    // Assess
    expect(summary(publisher.events)).toEqual([['message.complained', BOB]]);
    expect(publisher.events[0]?.payload.data).toMatchObject({ feedbackType: 'abuse' });
  });

  it('applies the event once, whatever the publisher does', async () => {
    // Prepare
    const { deps, messages, suppressions } = rig({
      publish: async () => {
        throw new Error('publisher broke');
      },
    });

    // Act
    const result = await processFeedback(deps, hardBounce());

    // Assess
    expect(result.applied).toBe(true);
    expect(messages.peek('msg_1')?.recipients[0]?.status).toBe('bounced');
    expect(await suppressions.get(ANA)).toMatchObject({ reason: 'hard_bounce' });
  });
});

describe('events produced by the feedback function', () => {
  function batchRig(webhooks: WebhookPublisher) {
    const messages = new InMemoryMessageStore();
    messages.seed(sent());
    const batch = createFeedbackBatch({
      messages,
      suppressions: new InMemorySuppressionStore(),
      softBounces: new InMemorySoftBounceStore(),
      clock: testClock(NOW),
      usage: new InMemoryUsageStore(),
      guard: new RecordingGuard(),
      webhooks,
    });
    let n = 0;
    const run = (...bodies: string[]) =>
      batch(bodies.map((body): SQSRecord => sqsRecord(body, { messageId: `sqs-${++n}` })));
    return { run, messages };
  }

  it('publishes the events of a whole batch once', async () => {
    // Prepare
    const calls: WebhookEvent[][] = [];
    const { run } = batchRig({ publish: async (events) => void calls.push([...events]) });

    // Act
    const response = await run(delivery([ANA]), complaint);

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    // Records are handled in parallel: their events come in either order (ordering is not promised).
    expect(calls).toHaveLength(1);
    expect(summary(calls[0] ?? []).sort()).toEqual([
      ['message.complained', BOB],
      ['message.delivered', ANA],
      ['suppression.created', BOB],
    ]);
  });

  it('acknowledges the feedback when the publisher throws', async () => {
    // Prepare
    const { run, messages } = batchRig({
      publish: async () => {
        throw new Error('publisher broke');
      },
    });

    // Act
    const response = await run(delivery([ANA]));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(messages.peek('msg_1')?.recipients[0]?.status).toBe('delivered');
  });
});
