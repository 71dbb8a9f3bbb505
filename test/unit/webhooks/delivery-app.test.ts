import '../../support/quiet-powertools.ts';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { WebhookDeliveryJob, WebhookEndpoint } from '../../../lambdas/domain/webhooks/endpoint.ts';
import { newWebhookSecret } from '../../../lambdas/domain/webhooks/signing.ts';
import { metrics } from '../../../lambdas/shared/observability.ts';
import { createWebhookDelivery, type WebhookDeliveryAppDeps } from '../../../lambdas/webhooks/app.ts';
import { sqsRecord } from '../../support/builders.ts';
import { RecordingVisibility } from '../../support/fakes.ts';
import { FakePoster, InMemoryEndpointStateStore } from '../../support/webhook-delivery.ts';
import {
  InMemoryWebhookQueue,
  InMemoryWebhookStore,
  RecordingWebhookPublisher,
} from '../../support/webhooks.ts';

const t0 = new Date('2026-12-06T10:00:00.000Z');
const ID = 'wh_CCCCCCCCCCCCCCCCCCCCCCCC';

const endpoint: WebhookEndpoint = {
  id: ID,
  tenant: 'acme',
  url: 'https://hooks.acme.example/baton',
  events: ['message.delivered'],
  description: '',
  enabled: true,
  disabledReason: null,
  secrets: [{ secret: newWebhookSecret(), createdAt: '2026-12-01T00:00:00.000Z' }],
  createdAt: '2026-12-01T00:00:00.000Z',
  updatedAt: '2026-12-01T00:00:00.000Z',
  version: 1,
};

const job = (overrides: Partial<WebhookDeliveryJob> = {}): WebhookDeliveryJob => ({
  v: 1,
  tenant: 'acme',
  endpointId: ID,
  eventId: 'evt_22222222222222222222222222222222',
  type: 'message.delivered',
  body: '{"type":"message.delivered"}',
  attempt: 0,
  firstQueuedAt: t0.getTime() - 300,
  notBefore: t0.getTime() - 300,
  occurredAt: t0.getTime() - 1200,
  ...overrides,
});

let store: InMemoryWebhookStore;
let state: InMemoryEndpointStateStore;
let poster: FakePoster;
let queue: InMemoryWebhookQueue;
let visibility: RecordingVisibility;
let deps: WebhookDeliveryAppDeps;

beforeEach(async () => {
  vi.restoreAllMocks();
  store = new InMemoryWebhookStore();
  state = new InMemoryEndpointStateStore();
  poster = new FakePoster();
  queue = new InMemoryWebhookQueue();
  visibility = new RecordingVisibility();
  await store.create(endpoint);
  let n = 0;
  deps = {
    endpoints: store,
    state,
    poster,
    log: store,
    queue,
    publisher: new RecordingWebhookPublisher(),
    clock: () => t0,
    random: () => 0.5,
    leaseId: () => `lease-${n++}`,
    visibility,
  };
});

describe('the webhook delivery function', () => {
  it('acknowledges a delivered job and counts the attempt and the first-attempt latency', async () => {
    // Prepare
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const deliver = createWebhookDelivery(deps);

    // Act
    const response = await deliver([sqsRecord(JSON.stringify(job()))]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(addMetric.mock.calls.map(([name, , value]) => [name, value])).toEqual([
      ['WebhookAttempts', 1],
      ['WebhookFirstAttemptLatency', 1200],
      ['WebhookDelivered', 1],
    ]);
  });

  it('does not count a retry’s or a replay’s latency as the first attempt’s', async () => {
    // Prepare
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const deliver = createWebhookDelivery(deps);

    // Act
    await deliver([
      sqsRecord(JSON.stringify(job({ attempt: 1 })), { messageId: 'a' }),
      sqsRecord(JSON.stringify(job({ replay: true })), { messageId: 'b' }),
    ]);

    // Assess
    expect(addMetric.mock.calls.map(([name]) => name)).not.toContain('WebhookFirstAttemptLatency');
  });

  it('acknowledges a failed attempt once its retry is queued, and counts it', async () => {
    // Prepare
    poster.answer = () => ({ status: 503, snippet: '', latencyMs: 3 });
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const deliver = createWebhookDelivery(deps);

    // Act
    const response = await deliver([sqsRecord(JSON.stringify(job()))]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(queue.jobs).toHaveLength(1);
    expect(addMetric.mock.calls.map(([name]) => name)).toContain('WebhookFailedAttempts');
  });

  it('counts a given-up event and a disabled endpoint', async () => {
    // Prepare
    poster.answer = () => ({ status: 410, snippet: '', latencyMs: 3 });
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const deliver = createWebhookDelivery(deps);

    // Act
    await deliver([sqsRecord(JSON.stringify(job()))]);

    // Assess
    expect(addMetric.mock.calls.map(([name]) => name)).toEqual(
      expect.arrayContaining(['WebhookFailedAttempts', 'WebhookEndpointDisabled']),
    );
  });

  it('hides a job that is not due yet and reports it as a batch item failure, without an attempt', async () => {
    // Prepare
    const deliver = createWebhookDelivery(deps);

    // Act
    const response = await deliver([
      sqsRecord(JSON.stringify(job({ notBefore: t0.getTime() + 3600_000 })), { messageId: 'later' }),
      sqsRecord(JSON.stringify(job()), { messageId: 'now' }),
    ]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'later' }] });
    expect(visibility.delays).toEqual([{ messageId: 'later', seconds: 3600 }]);
    expect(poster.requests).toHaveLength(1);
  });

  it('queues a job deferred near the queue’s maxReceiveCount afresh instead of hiding it again', async () => {
    // Prepare
    const deliver = createWebhookDelivery({ ...deps, maxReceiveCount: 100 });
    const later = job({ notBefore: t0.getTime() + 60_000 });

    // Act
    const response = await deliver([
      sqsRecord(JSON.stringify(later), { messageId: 'tired', receiveCount: 99 }),
      sqsRecord(JSON.stringify(later), { messageId: 'fresh', receiveCount: 98 }),
    ]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'fresh' }] });
    expect(queue.jobs).toEqual([later]);
    expect(visibility.delays).toEqual([{ messageId: 'fresh', seconds: 60 }]);
  });

  it('drops a malformed job instead of retrying it forever', async () => {
    // Prepare
    const deliver = createWebhookDelivery(deps);
    const addMetric = vi.spyOn(metrics, 'addMetric');

    // Act
    const response = await deliver([
      sqsRecord('not json', { messageId: 'garbage' }),
      sqsRecord(JSON.stringify({ ...job(), attempt: -1 }), { messageId: 'negative' }),
      sqsRecord(JSON.stringify({ ...job(), type: 'message.opened' }), { messageId: 'unknown-type' }),
    ]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(poster.requests).toHaveLength(0);
    expect(addMetric).toHaveBeenCalledWith('WebhookMalformedJobs', 'Count', 1);
  });

  it('hands a job back when a store fails, for SQS to redeliver', async () => {
    // Prepare
    store.get = async () => {
      throw new Error('DynamoDB is unreachable');
    };
    const deliver = createWebhookDelivery(deps);

    // Act
    const response = await deliver([sqsRecord(JSON.stringify(job()), { messageId: 'x' })]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'x' }] });
    expect(visibility.delays).toEqual([]);
  });

  it('runs the jobs of a batch concurrently', async () => {
    // Prepare
    let inFlight = 0;
    let most = 0;
    poster.post = async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return { status: 200, snippet: '', latencyMs: 20 };
    };
    const deliver = createWebhookDelivery(deps);

    // Act
    await deliver(
      [1, 2, 3].map((i) => sqsRecord(JSON.stringify(job({ eventId: `evt_${i}` })), { messageId: `m${i}` })),
    );

    // Assess
    expect(most).toBe(3);
  });

  it('delivers a burst of ten jobs for one endpoint in one invocation, at most its slots at a time, deferring none', async () => {
    // Prepare: the receiver answers after a tick, so the jobs overlap.
    let inFlight = 0;
    let most = 0;
    const slow = {
      async post(request: Parameters<FakePoster['post']>[0]) {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return poster.post(request);
      },
    };
    const deliver = createWebhookDelivery({ ...deps, poster: slow });
    const records = Array.from({ length: 10 }, (_, i) =>
      sqsRecord(JSON.stringify(job({ eventId: `evt_${String(i).padStart(32, '0')}` })), {
        messageId: `m${i}`,
      }),
    );

    // Act
    const response = await deliver(records);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(poster.requests).toHaveLength(10);
    expect(most).toBe(4);
    expect(visibility.delays).toEqual([]);
  });

  it('hides a job whose turn comes too late in the invocation instead of starting it', async () => {
    // Prepare: 21 s left, less than a slot wait, a 15 s request and its writes need.
    const deliver = createWebhookDelivery(deps);
    const context = { getRemainingTimeInMillis: () => 21_000 } as unknown as Parameters<typeof deliver>[1];

    // Act
    const response = await deliver([sqsRecord(JSON.stringify(job()), { messageId: 'late' })], context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'late' }] });
    expect(poster.requests).toEqual([]);
    expect(visibility.delays.map((d) => d.seconds)).toEqual([2]);
  });
});
