import { CreateQueueCommand, type Message, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqsWebhookQueue } from '../../lambdas/adapters/webhook-queue.ts';
import type { WebhookDeliveryJob } from '../../lambdas/domain/webhooks/endpoint.ts';
import { webhookEventsOf } from '../../lambdas/domain/webhooks/events.ts';
import { WebhookFanout } from '../../lambdas/domain/webhooks/publish.ts';
import { TransientError } from '../../lambdas/shared/errors.ts';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { startSqsSns } from '../../local/emulators/sqs-sns.ts';
import { messageRecord, T0 } from '../support/builders.ts';
import { region, sqsClient, unreachable } from '../support/emulators.ts';
import { InMemoryWebhookStore } from '../support/webhooks.ts';

function job(n: number, overrides: Partial<WebhookDeliveryJob> = {}): WebhookDeliveryJob {
  const now = Date.now();
  return {
    v: 1,
    tenant: 'tenant-a',
    endpointId: 'wh_aaaaaaaaaaaaaaaaaaaaaaaa',
    eventId: `evt_${n}`,
    type: 'message.delivered',
    body: JSON.stringify({ type: 'message.delivered', n }),
    attempt: 0,
    firstQueuedAt: now,
    notBefore: now,
    occurredAt: now,
    ...overrides,
  };
}

describe('SqsWebhookQueue against fauxqs', () => {
  let fauxqs: LocalEmulator;
  let sqs: SQSClient;
  let queues = 0;

  beforeAll(async () => {
    fauxqs = await startSqsSns({ port: 0, region });
    sqs = sqsClient(fauxqs.endpoint);
  });

  afterAll(async () => {
    sqs.destroy();
    await fauxqs.stop();
  });

  const newQueue = async (): Promise<string> => {
    const out = await sqs.send(new CreateQueueCommand({ QueueName: `webhooks-${++queues}` }));
    return out.QueueUrl as string;
  };

  /** Everything visible on the queue now (no long poll), received until it answers none. */
  const drain = async (url: string): Promise<Message[]> => {
    const all: Message[] = [];
    for (;;) {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (!out.Messages?.length) return all;
      all.push(...out.Messages);
    }
  };

  it('queues every job of a call larger than one batch, each body the job as JSON', async () => {
    // Prepare
    const url = await newQueue();
    const queue = new SqsWebhookQueue(sqs, url);
    const jobs = Array.from({ length: 23 }, (_, n) => job(n));

    // Act
    await queue.enqueue(jobs);

    // Assess
    const received = (await drain(url)).map((m) => JSON.parse(m.Body ?? 'null') as WebhookDeliveryJob);
    expect(received.sort((a, b) => a.eventId.localeCompare(b.eventId))).toEqual(
      [...jobs].sort((a, b) => a.eventId.localeCompare(b.eventId)),
    );
  });

  it('holds a job back until its notBefore', async () => {
    // Prepare
    const url = await newQueue();
    const queue = new SqsWebhookQueue(sqs, url);

    // Act
    await queue.enqueue([job(1, { notBefore: Date.now() + 1_500 }), job(2)]);

    // Assess
    expect((await drain(url)).map((m) => JSON.parse(m.Body ?? '').eventId)).toEqual(['evt_2']);
    await new Promise((r) => setTimeout(r, 2_200));
    expect((await drain(url)).map((m) => JSON.parse(m.Body ?? '').eventId)).toEqual(['evt_1']);
  });

  it('carries a published event to the queue as a job with the body the log kept', async () => {
    // Prepare
    const url = await newQueue();
    const store = new InMemoryWebhookStore();
    await store.create({
      id: 'wh_aaaaaaaaaaaaaaaaaaaaaaaa',
      tenant: 'tenant-a',
      url: 'https://hooks.example.com/baton',
      events: ['message.queued'],
      description: '',
      enabled: true,
      disabledReason: null,
      secrets: [{ secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', createdAt: T0 }],
      createdAt: T0,
      updatedAt: T0,
      version: 1,
    });
    const failures: unknown[] = [];
    const fanout = new WebhookFanout({
      directory: store,
      log: store,
      queue: new SqsWebhookQueue(sqs, url),
      clock: () => new Date(),
      onError: (error) => failures.push(error),
    });
    const [event] = webhookEventsOf(messageRecord({ tags: { order: '42' } }), 0, { order: '42' });

    // Act
    await fanout.publish(event ? [event] : []);

    // Assess
    expect(failures).toEqual([]);
    const [job] = (await drain(url)).map((m) => JSON.parse(m.Body ?? 'null') as WebhookDeliveryJob);
    expect(job).toMatchObject({ tenant: 'tenant-a', endpointId: 'wh_aaaaaaaaaaaaaaaaaaaaaaaa', attempt: 0 });
    expect(job?.body).toBe((await store.event('tenant-a', event?.id ?? ''))?.body);
    expect(JSON.parse(job?.body ?? '{}')).toMatchObject({
      type: 'message.queued',
      data: { tags: { order: '42' } },
    });
  });

  it('reports an unreachable queue service as a TransientError', async () => {
    // Prepare
    const dead = new SQSClient({ ...unreachable, useQueueUrlAsEndpoint: false });
    const queue = new SqsWebhookQueue(dead, await newQueue());

    // Act
    const queued = queue.enqueue([job(1)]);

    // Assess
    await expect(queued).rejects.toBeInstanceOf(TransientError);
    dead.destroy();
  });
});
