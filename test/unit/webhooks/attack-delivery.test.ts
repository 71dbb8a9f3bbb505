/**
 * Attack probes on webhook delivery (issue 14) that held: racing deliveries of one job, a hanging
 * endpoint beside a healthy one, a crashed holder's slot and probe.
 */
import '../../support/quiet-powertools.ts';
import { beforeEach, describe, expect, it } from 'vitest';
import { breakerPolicy } from '../../../lambdas/domain/webhooks/breaker.ts';
import { type DeliveryDeps, deliverJob, deliveryPolicy } from '../../../lambdas/domain/webhooks/deliver.ts';
import type { WebhookDeliveryJob, WebhookEndpoint } from '../../../lambdas/domain/webhooks/endpoint.ts';
import { newWebhookSecret } from '../../../lambdas/domain/webhooks/signing.ts';
import { createWebhookDelivery } from '../../../lambdas/webhooks/app.ts';
import { sqsRecord } from '../../support/builders.ts';
import { RecordingVisibility } from '../../support/fakes.ts';
import {
  type DeliveryRig,
  deliveryRig,
  type FakePoster,
  type InMemoryEndpointStateStore,
} from '../../support/webhook-delivery.ts';
import type { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

const t0 = new Date('2026-12-06T10:00:00.000Z');
const SLOW = 'wh_SSSSSSSSSSSSSSSSSSSSSSSS';
const FAST = 'wh_FFFFFFFFFFFFFFFFFFFFFFFF';

const endpoint = (id: string, tenant = 'acme'): WebhookEndpoint => ({
  id,
  tenant,
  url: `https://${id.toLowerCase()}.example/baton`,
  events: ['message.delivered'],
  description: '',
  enabled: true,
  disabledReason: null,
  secrets: [{ secret: newWebhookSecret(() => Buffer.alloc(32, 3)), createdAt: '2026-12-01T00:00:00.000Z' }],
  createdAt: '2026-12-01T00:00:00.000Z',
  updatedAt: '2026-12-01T00:00:00.000Z',
  version: 1,
});

const job = (endpointId: string, n = 0, tenant = 'acme'): WebhookDeliveryJob => ({
  v: 1,
  tenant,
  endpointId,
  eventId: `evt_${String(n).padStart(32, '0')}`,
  type: 'message.delivered',
  body: `{"type":"message.delivered","n":${n}}`,
  attempt: 0,
  firstQueuedAt: t0.getTime(),
  notBefore: t0.getTime(),
  occurredAt: t0.getTime(),
});

let rig: DeliveryRig;
let store: InMemoryWebhookStore;
let state: InMemoryEndpointStateStore;
let poster: FakePoster;
let queue: InMemoryWebhookQueue;
const deps = (): DeliveryDeps => rig.deps();

beforeEach(async () => {
  rig = deliveryRig(t0);
  ({ store, state, poster, queue } = rig);
  await store.create(endpoint(SLOW));
  await store.create(endpoint(FAST));
});

describe('attack: webhook delivery', () => {
  it('two deliveries racing one job both send the same id and body, and queue retries of the same id', async () => {
    // Prepare
    poster.answer = () => ({ status: 500, snippet: 'no', latencyMs: 5 });

    // Act
    await Promise.all([deliverJob(job(SLOW), deps()), deliverJob(job(SLOW), deps())]);

    // Assess
    expect(new Set(poster.requests.map((r) => r.headers['webhook-id']))).toEqual(
      new Set([job(SLOW).eventId]),
    );
    expect(queue.jobs.map((j) => [j.eventId, j.body, j.attempt])).toEqual([
      [job(SLOW).eventId, job(SLOW).body, 1],
      [job(SLOW).eventId, job(SLOW).body, 1],
    ]);
    expect(state.state(SLOW).leases).toEqual({});
  });

  it('an endpoint whose every slot is held leaves another endpoint’s jobs going at once', async () => {
    // Prepare: the slow endpoint's slots all held by attempts in flight.
    const held = Object.fromEntries(
      Array.from({ length: deliveryPolicy.slots }, (_, i) => [`in-flight-${i}`, t0.getTime() + 30_000]),
    );
    state.set(SLOW, { breaker: { status: 'closed', consecutiveFailures: 0 }, leases: held });

    // Act
    const slow = await deliverJob(job(SLOW, 1), deps());
    const fast = await deliverJob(job(FAST, 2), deps());

    // Assess
    expect(slow).toHaveProperty('deferSeconds');
    expect(fast).toMatchObject({ done: true, attempt: { outcome: 'success' } });
  });

  it('frees the slots and the probe of crashed attempts once their leases end', async () => {
    // Prepare: every slot held and a probe in flight, by attempts that crashed at t0.
    const held = Object.fromEntries(
      Array.from({ length: deliveryPolicy.slots }, (_, i) => [
        `crashed-${i}`,
        t0.getTime() + deliveryPolicy.leaseSeconds * 1000,
      ]),
    );
    state.set(SLOW, {
      breaker: {
        status: 'half-open',
        consecutiveFailures: 7,
        failingSince: t0.toISOString(),
        cooldownSeconds: 120,
        probeSince: t0.toISOString(),
      },
      leases: held,
    });

    // Act
    const early = await deliverJob(job(SLOW, 1), deps());
    rig.now = new Date(
      t0.getTime() + Math.max(deliveryPolicy.leaseSeconds, breakerPolicy.probeLeaseSeconds) * 1000,
    );
    const later = await deliverJob(job(SLOW, 2), deps());

    // Assess: the probe goes, succeeds, and closes the breaker.
    expect(early).toHaveProperty('deferSeconds');
    expect(later).toMatchObject({ done: true, attempt: { outcome: 'success' } });
    expect(state.state(SLOW)).toEqual({ breaker: { status: 'closed', consecutiveFailures: 0 }, leases: {} });
  });

  it('never sends a job naming another tenant’s endpoint', async () => {
    // Prepare: the store keys endpoints by tenant, so what deliverJob owes is to ask with the job's.
    const asked: Array<[string, string]> = [];
    const get = store.get.bind(store);
    store.get = async (tenant, id) => {
      asked.push([tenant, id]);
      return get(tenant, id);
    };

    // Act: a job of tenant-b naming acme's endpoint id.
    const decision = await deliverJob(job(FAST, 3, 'tenant-b'), deps());

    // Assess
    expect(asked).toEqual([['tenant-b', FAST]]);
    expect(decision).toEqual({ done: true, dropped: 'no-endpoint' });
    expect(poster.requests).toEqual([]);
  });

  it('queues a long-deferred job afresh with its own time, not an earlier one', async () => {
    // Prepare: a job due in 20 h (past the 12 h a message can be hidden), at the receive limit.
    const deliver = createWebhookDelivery({
      ...deps(),
      visibility: new RecordingVisibility(),
      maxReceiveCount: 5,
    });
    const later = job(FAST, 4);
    const due = { ...later, notBefore: t0.getTime() + 20 * 3_600_000 };

    // Act
    await deliver([sqsRecord(JSON.stringify(due), { messageId: 'tired', receiveCount: 4 })]);

    // Assess
    expect(queue.jobs.map((j) => j.notBefore)).toEqual([due.notBefore]);
    expect(poster.requests).toEqual([]);
  });
});
