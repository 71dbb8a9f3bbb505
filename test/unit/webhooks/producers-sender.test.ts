/** Webhook events produced by the senders (issue 14): after each outcome is recorded, once per batch. */
import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import { sendJob } from '../../../lambdas/domain/delivery/send.ts';
import type { WebhookEvent } from '../../../lambdas/domain/webhooks/events.ts';
import type { WebhookPublisher } from '../../../lambdas/domain/webhooks/ports.ts';
import { PermanentError, TransientError } from '../../../lambdas/shared/errors.ts';
import {
  sendJob as jobOf,
  messageRecord,
  outgoingMessage,
  recipient,
  suppression,
  T0,
} from '../../support/builders.ts';
import { issueApiKey } from '../../support/fakes.ts';
import { guardDecisionFor } from '../../support/guard.ts';
import { queuedJob, senderHarness, sendHarness } from '../../support/unit-sender.ts';
import { messageEventRows, RecordingWebhookPublisher } from '../../support/webhooks.ts';

const TAGS = { campaign: 'spring' };
const ANA = 'ana@example.org';
const BOB = 'bob@example.org';

/** A queued message to ana and bob with tags, and sendJob's deps publishing to `webhooks`. */
function rig(webhooks: WebhookPublisher) {
  const record = messageRecord({ tags: TAGS, recipients: [recipient(ANA), recipient(BOB)] });
  const harness = sendHarness(record);
  const job = jobOf(outgoingMessage({ to: [{ address: ANA }, { address: BOB }], tags: TAGS }));
  return { ...harness, deps: { ...harness.deps, webhooks }, job };
}

describe('events produced by sendJob', () => {
  it('produces message.sent per recipient once the send is recorded, with the tags', async () => {
    // Prepare
    const phases: string[] = [];
    const publisher = new RecordingWebhookPublisher();
    const { deps, job, messages } = rig({
      publish: async (events) => {
        phases.push(messages.peek('msg_1')?.phase ?? 'none');
        await publisher.publish(events);
      },
    });

    // Act
    await sendJob(deps, job, new Map());

    // Assess
    expect(messageEventRows(publisher.events)).toEqual([
      ['message.sent', 'msg_1', ANA, 1],
      ['message.sent', 'msg_1', BOB, 1],
    ]);
    expect(publisher.events[0]?.payload.data).toMatchObject({ tags: TAGS, stream: 'transactional' });
    expect(phases).toEqual(['sent']);
  });

  it('produces message.suppressed for a recipient suppressed since acceptance and message.sent for the other', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, job } = rig(publisher);

    // Act
    await sendJob(deps, job, new Map([[BOB, suppression(BOB, 'complaint')]]));

    // Assess
    expect(messageEventRows(publisher.events)).toEqual([
      ['message.suppressed', 'msg_1', BOB, 1],
      ['message.sent', 'msg_1', ANA, 2],
    ]);
  });

  it('produces message.failed when SES refuses the message for good', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, job, mailer } = rig(publisher);
    mailer.willAnswer(new PermanentError('Email address is not verified.'));

    // Act
    await sendJob(deps, job, new Map());

    // Assess
    expect(messageEventRows(publisher.events)).toEqual([
      ['message.failed', 'msg_1', ANA, 1],
      ['message.failed', 'msg_1', BOB, 1],
    ]);
    expect(publisher.events[0]?.payload.data).toMatchObject({ reason: 'Email address is not verified.' });
  });

  it('produces nothing for a send that will be retried', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, job, mailer } = rig(publisher);
    mailer.willAnswer(new TransientError('throttled'));

    // Act
    await expect(sendJob(deps, job, new Map())).rejects.toThrow(TransientError);

    // Assess
    expect(publisher.events).toEqual([]);
  });

  it('tells a duplicate delivery of a sent message’s events again, with the same ids, in case the first run died before publishing', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, job } = rig(publisher);
    await sendJob(deps, job, new Map());
    const first = publisher.events.map((e) => e.id);
    publisher.events.length = 0;

    // Act
    const outcome = await sendJob(deps, job, new Map());

    // Assess: sent once; the sent events are among those told again, under their ids.
    expect(outcome).toBe('duplicate');
    expect(first.length).toBeGreaterThan(0);
    expect(publisher.events.map((e) => e.id)).toEqual(expect.arrayContaining(first));
  });

  it('sends once and answers sent, whatever the publisher does', async () => {
    // Prepare
    const { deps, job, mailer, messages } = rig({
      publish: async () => {
        throw new Error('publisher broke');
      },
    });

    // Act
    const outcome = await sendJob(deps, job, new Map());

    // Assess
    expect(outcome).toBe('sent');
    expect(mailer.attempts).toHaveLength(1);
    expect(messages.peek('msg_1')?.phase).toBe('sent');
  });
});

describe('events produced by the sender', () => {
  it('publishes the events of a whole batch once, when the batch is done', async () => {
    // Prepare
    const calls: WebhookEvent[][] = [];
    const { sender, messages } = senderHarness({
      webhooks: { publish: async (events) => void calls.push([...events]) },
    });
    const records = [
      queuedJob(messages, 'msg_1', { to: [ANA], record: { tags: TAGS } }),
      queuedJob(messages, 'msg_2', { to: [BOB] }),
    ];
    const batch = await sender.prepare(records);

    // Act
    for (const record of records) await sender.sendRecord(record, batch);
    const before = calls.length;
    await sender.publishWebhooks(batch);

    // Assess
    expect(before).toBe(0);
    expect(calls.map(messageEventRows)).toEqual([
      [
        ['message.sent', 'msg_1', ANA, 1],
        ['message.sent', 'msg_2', BOB, 1],
      ],
    ]);
    expect(calls[0]?.[1]?.payload.data).toMatchObject({ tags: {} });
  });

  it('produces message.held for mail the guard holds at send', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { sender, messages, apiKeys } = senderHarness({ webhooks: publisher });
    const guard = { tenant: { actions: [guardDecisionFor('holdAll', { rate: 0.08 }, new Date(T0))] } };
    apiKeys.add({ ...issueApiKey().key, keyId: 'key-1', tenant: 'tenant-a', guard });
    const record = queuedJob(messages, 'msg_1', { to: [ANA], keyId: 'key-1' });
    const batch = await sender.prepare([record]);

    // Act
    await sender.sendRecord(record, batch);
    await sender.publishWebhooks(batch);

    // Assess
    expect(messageEventRows(publisher.events)).toEqual([['message.held', 'msg_1', ANA, 1]]);
  });

  it('produces message.failed for a message given up on its last receive', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { sender, messages, mailer } = senderHarness({ webhooks: publisher, maxReceiveCount: 3 });
    mailer.willAnswer(new TransientError('throttled'));
    const record = queuedJob(messages, 'msg_1', { to: [ANA], receiveCount: 3 });
    const batch = await sender.prepare([record]);

    // Act
    await expect(sender.sendRecord(record, batch)).rejects.toThrow(TransientError);
    await sender.publishWebhooks(batch);

    // Assess
    expect(messageEventRows(publisher.events)).toEqual([['message.failed', 'msg_1', ANA, 1]]);
  });
});
