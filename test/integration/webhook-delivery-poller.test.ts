import '../support/quiet-powertools.ts';
import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SqsVisibility } from '../../lambdas/adapters/visibility.ts';
import type { WebhookDeliveryJob } from '../../lambdas/domain/webhooks/endpoint.ts';
import { newWebhookSecret } from '../../lambdas/domain/webhooks/signing.ts';
import { createWebhookDelivery } from '../../lambdas/webhooks/app.ts';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { startSqsSns } from '../../local/emulators/sqs-sns.ts';
import type { FunctionPool } from '../../local/runtime/function-pool.ts';
import { SqsPoller } from '../../local/runtime/sqs-poller.ts';
import { createQueueWithArn, region, sqsClient } from '../support/emulators.ts';
import { FakePoster, InMemoryEndpointStateStore } from '../support/webhook-delivery.ts';
import {
  InMemoryWebhookQueue,
  InMemoryWebhookStore,
  RecordingWebhookPublisher,
} from '../support/webhooks.ts';

// Local mode runs the delivery function behind its SQS poller: a deferred job (hidden again and
// reported as a batch item failure) and a delayed message must come back when AWS would bring them.

const ID = 'wh_DDDDDDDDDDDDDDDDDDDDDDDD';

let emulator: LocalEmulator;
let sqs: SQSClient;
let queue: { url: string; arn: string };
let poster: FakePoster;
let postedAt: number[];
let poller: SqsPoller;

beforeAll(async () => {
  emulator = await startSqsSns({ port: 0, region });
  sqs = sqsClient(emulator.endpoint);
});

afterAll(async () => {
  sqs?.destroy();
  await emulator?.stop();
});

beforeEach(async () => {
  const name = `webhooks-${Math.random().toString(36).slice(2)}`;
  queue = await createQueueWithArn(sqs, name, { VisibilityTimeout: '180' });
  const store = new InMemoryWebhookStore();
  await store.create({
    id: ID,
    tenant: 'acme',
    url: 'https://hooks.acme.example/baton',
    events: ['message.delivered'],
    description: '',
    enabled: true,
    disabledReason: null,
    secrets: [{ secret: newWebhookSecret(), createdAt: new Date().toISOString() }],
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    version: 1,
  });
  poster = new FakePoster();
  postedAt = [];
  const answer = poster.answer;
  poster.answer = (request, n) => {
    postedAt.push(Date.now());
    return answer(request, n);
  };
  const deliver = createWebhookDelivery({
    endpoints: store,
    state: new InMemoryEndpointStateStore(),
    poster,
    log: store,
    queue: new InMemoryWebhookQueue(),
    publisher: new RecordingWebhookPublisher(),
    clock: () => new Date(),
    random: Math.random,
    leaseId: () => crypto.randomUUID(),
    visibility: new SqsVisibility(sqs),
  });
  const pool = {
    invoke: async (event: { Records: Parameters<typeof deliver>[0] }) => ({
      ok: true as const,
      result: await deliver(event.Records),
    }),
  } as unknown as FunctionPool;
  poller = new SqsPoller(sqs, pool, {
    queueUrl: queue.url,
    queueArn: queue.arn,
    batchSize: 10,
    maxBatchingWindowSeconds: 0,
    maxConcurrency: 1,
    reportBatchItemFailures: true,
  });
});

afterEach(async () => {
  await poller.stop();
});

const job = (notBefore: number): WebhookDeliveryJob => ({
  v: 1,
  tenant: 'acme',
  endpointId: ID,
  eventId: 'evt_33333333333333333333333333333333',
  type: 'message.delivered',
  body: '{}',
  attempt: 0,
  firstQueuedAt: Date.now(),
  notBefore,
  occurredAt: Date.now(),
});

const left = async (): Promise<number> => {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queue.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible)
  );
};

const until = async (condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> => {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('the delivery function behind local mode’s SQS poller', () => {
  it('brings a deferred job back after the deferral, not the queue’s visibility timeout', async () => {
    // Prepare
    const sent = Date.now();
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify(job(sent + 2000)) }),
    );

    // Act
    poller.start();
    await until(() => postedAt.length > 0, 10_000);
    await until(async () => (await left()) === 0, 5_000);

    // Assess
    expect((postedAt[0] ?? 0) - sent).toBeGreaterThanOrEqual(1900);
    expect(postedAt).toHaveLength(1);
    expect(poller.stats.failedRecords).toBeGreaterThanOrEqual(1);
  });

  it('does not hand a delayed message over before its delay', async () => {
    // Prepare
    const sent = Date.now();
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: JSON.stringify(job(sent)),
        DelaySeconds: 2,
      }),
    );

    // Act
    poller.start();
    await until(() => postedAt.length > 0, 10_000);

    // Assess
    expect((postedAt[0] ?? 0) - sent).toBeGreaterThanOrEqual(1900);
    expect(poller.stats.failedRecords).toBe(0);
  });
});
