/** Webhook events produced at acceptance (issue 14): the api's and the SMTP server's front door. */
import { describe, expect, it } from 'vitest';
import { acceptBatch, acceptMessage, acceptSubmission } from '../../../lambdas/domain/send/accept.ts';
import { validateSendRequest } from '../../../lambdas/domain/send/send-request.ts';
import type { WebhookEvent } from '../../../lambdas/domain/webhooks/events.ts';
import type { WebhookPublisher } from '../../../lambdas/domain/webhooks/ports.ts';
import { sendBody, suppression, T0 } from '../../support/builders.ts';
import { decisionOf, guardMarkOf } from '../../support/guard.ts';
import { acceptHarness, type KeyOverrides } from '../../support/harness.ts';
import { RecordingWebhookPublisher } from '../../support/webhooks.ts';

const TAGS = { campaign: 'spring', order: '42' };

function rig(keyOverrides: KeyOverrides = {}, webhooks: WebhookPublisher = new RecordingWebhookPublisher()) {
  const harness = acceptHarness(keyOverrides);
  return { ...harness, deps: { ...harness.deps, webhooks } };
}

/** type, recipient and sequence of each event, in order. */
const summary = (events: readonly WebhookEvent[]) =>
  events.map((e) => [
    e.payload.type,
    'recipient' in e.payload.data ? e.payload.data.recipient : null,
    'sequence' in e.payload.data ? e.payload.data.sequence : null,
  ]);

describe('events produced at acceptance', () => {
  it('produces message.queued for each recipient, with the tags, stream and sequence, and keeps the tags on the record', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, key, messages } = rig({}, publisher);

    // Act
    await acceptMessage(
      deps,
      key,
      sendBody({ to: ['ana@example.org'], cc: ['bob@example.org'], tags: TAGS }),
    );

    // Assess
    expect(messages.peek('msg_1')?.tags).toEqual(TAGS);
    expect(publisher.events.map((e) => e.payload)).toEqual(
      ['ana@example.org', 'bob@example.org'].map((recipient) => ({
        type: 'message.queued',
        timestamp: T0,
        data: { messageId: 'msg_1', recipient, tags: TAGS, stream: 'transactional', sequence: 0 },
      })),
    );
    expect(publisher.events.every((e) => e.tenant === 'tenant-a')).toBe(true);
  });

  it('writes no tags on the record of a message that has none', async () => {
    // Prepare
    const { deps, key, messages } = rig();

    // Act
    await acceptMessage(deps, key, sendBody());

    // Assess
    expect(messages.peek('msg_1')).not.toHaveProperty('tags');
  });

  it('produces message.suppressed and no message.queued for a recipient suppressed at the door', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, key, suppressions } = rig({}, publisher);
    suppressions.seed(suppression('bob@example.org', 'complaint'));

    // Act
    await acceptMessage(deps, key, sendBody({ to: ['ana@example.org', 'bob@example.org'] }));

    // Assess
    expect(summary(publisher.events)).toEqual([
      ['message.queued', 'ana@example.org', 0],
      ['message.suppressed', 'bob@example.org', 1],
    ]);
    expect(publisher.events[1]?.payload.data).toMatchObject({ reason: 'complaint' });
  });

  it('produces message.held for each recipient of a message the guard holds at accept', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, key } = rig({ guard: guardMarkOf(decisionOf('pauseBroadcast', new Date(T0))) }, publisher);

    // Act
    await acceptMessage(
      deps,
      key,
      sendBody({ stream: 'broadcast', listUnsubscribe: 'https://example.com/u', tags: TAGS }),
    );

    // Assess
    expect(summary(publisher.events)).toEqual([
      ['message.queued', 'ana@example.org', 0],
      ['message.held', 'ana@example.org', 1],
    ]);
    expect(publisher.events[1]?.payload.data).toMatchObject({ stream: 'broadcast', tags: TAGS });
  });

  it('produces nothing for a message whose job could not be queued (the client is told to retry)', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, key, queue } = rig({}, publisher);
    queue.failing.add('msg_1');

    // Act
    const accepted = acceptMessage(deps, key, sendBody());

    // Assess
    await expect(accepted).rejects.toMatchObject({ problem: { status: 503 } });
    expect(publisher.events).toEqual([]);
  });

  it('produces the events of every message of a batch it recorded, none of one it could not queue', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, key, queue } = rig({}, publisher);
    queue.failing.add('msg_2');

    // Act
    await acceptBatch(deps, key, [
      sendBody({ tags: { n: '1' } }),
      sendBody({ tags: { n: '2' } }),
      { from: 'not an address' },
      sendBody({ to: ['carl@example.org'], tags: { n: '3' } }),
    ]);

    // Assess
    expect(
      publisher.events.map((e) => [e.payload.type, (e.payload.data as { messageId: string }).messageId]),
    ).toEqual([
      ['message.queued', 'msg_1'],
      ['message.queued', 'msg_3'],
    ]);
    expect(publisher.events.map((e) => (e.payload.data as { tags: unknown }).tags)).toEqual([
      { n: '1' },
      { n: '3' },
    ]);
  });

  it('produces message.suppressed for a recipient refused at RCPT over SMTP', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, key } = rig({}, publisher);
    const message = validateSendRequest(sendBody({ to: ['ana@example.org'], tags: TAGS }));

    // Act
    await acceptSubmission(deps, key, message, {
      maxJobBytes: 10_000_000,
      suppressedAtRcpt: new Map([['gone@example.org', suppression('gone@example.org', 'hard_bounce')]]),
    });

    // Assess
    expect(summary(publisher.events)).toEqual([
      ['message.queued', 'ana@example.org', 0],
      ['message.suppressed', 'gone@example.org', 1],
    ]);
  });

  it('accepts the message once, whatever the publisher does', async () => {
    // Prepare
    const throwing: WebhookPublisher = {
      publish: async () => {
        throw new Error('publisher broke');
      },
    };
    const { deps, key, queue, messages } = rig({}, throwing);

    // Act
    const result = await acceptMessage(deps, key, sendBody());

    // Assess
    expect(result.status).toBe('queued');
    expect(queue.jobs).toHaveLength(1);
    expect(messages.peek('msg_1')?.phase).toBe('queued');
  });
});
