import { describe, expect, it } from 'vitest';
import type { WebhookEndpoint } from '../../../lambdas/domain/webhooks/endpoint.ts';
import {
  suppressionWebhookEvent,
  type WebhookEvent,
  type WebhookEventType,
  webhookEventsOf,
} from '../../../lambdas/domain/webhooks/events.ts';
import { CachedWebhookDirectory } from '../../../lambdas/domain/webhooks/publish.ts';
import { messageRecord, recipient, suppression, T0 } from '../../support/builders.ts';
import { testClock } from '../../support/fakes.ts';
import { fanoutRig, InMemoryWebhookStore, webhookEndpoint } from '../../support/webhooks.ts';

/** The shared endpoint, subscribed to suppression.created too. */
const endpoint = (overrides: Partial<WebhookEndpoint> = {}): WebhookEndpoint =>
  webhookEndpoint({ events: ['message.queued', 'message.delivered', 'suppression.created'], ...overrides });

/** A queued message to ana and bob of tenant `tenant`: two message.queued events. */
function queuedEvents(tenant = 'tenant-a', id = 'msg_1'): WebhookEvent[] {
  const record = messageRecord({
    id,
    tenant,
    recipients: [recipient('ana@example.org'), recipient('bob@example.org')],
  });
  return webhookEventsOf(record, 0, { campaign: 'spring' });
}

describe('WebhookFanout', () => {
  it('queues one job per event and subscribed endpoint, with the body it logged', async () => {
    // Prepare
    const { store, queue, fanout } = fanoutRig();
    await store.create(endpoint());
    await store.create(endpoint({ id: 'wh_bbbbbbbbbbbbbbbbbbbbbbbb' }));
    const events = queuedEvents();

    // Act
    await fanout.publish(events);

    // Assess
    expect(queue.jobs).toHaveLength(4);
    const first = events[0] as WebhookEvent;
    const logged = await store.event('tenant-a', first.id);
    expect(logged).toEqual({
      id: first.id,
      tenant: 'tenant-a',
      type: 'message.queued',
      timestamp: T0,
      body: JSON.stringify(first.payload),
    });
    expect(queue.jobs.filter((j) => j.eventId === first.id)).toEqual(
      ['wh_aaaaaaaaaaaaaaaaaaaaaaaa', 'wh_bbbbbbbbbbbbbbbbbbbbbbbb'].map((endpointId) => ({
        v: 1,
        tenant: 'tenant-a',
        endpointId,
        eventId: first.id,
        type: 'message.queued',
        body: logged?.body,
        attempt: 0,
        firstQueuedAt: Date.parse('2025-03-01T12:10:00.000Z'),
        notBefore: Date.parse('2025-03-01T12:10:00.000Z'),
        occurredAt: Date.parse(T0),
      })),
    );
  });

  it('sends an event only to the endpoints subscribed to its type and enabled', async () => {
    // Prepare
    const { store, queue, fanout } = fanoutRig();
    await store.create(endpoint({ id: 'wh_000000000000000000000001', events: ['message.delivered'] }));
    await store.create(endpoint({ id: 'wh_000000000000000000000002', enabled: false }));
    await store.create(endpoint({ id: 'wh_000000000000000000000003' }));

    // Act
    await fanout.publish(queuedEvents());

    // Assess
    expect(new Set(queue.jobs.map((j) => j.endpointId))).toEqual(new Set(['wh_000000000000000000000003']));
  });

  it('costs nothing for events no endpoint subscribes to: no log write, no job', async () => {
    // Prepare
    const { store, queue, fanout } = fanoutRig();
    await store.create(endpoint({ events: ['message.bounced'] as WebhookEventType[] }));
    await store.create(endpoint({ id: 'wh_bbbbbbbbbbbbbbbbbbbbbbbb', tenant: 'tenant-b' }));
    queue.failing = true;

    // Act
    await fanout.publish(queuedEvents());

    // Assess
    expect(store.events.size).toBe(0);
    expect(queue.jobs).toEqual([]);
  });

  it("sends each tenant's events to that tenant's endpoints only", async () => {
    // Prepare
    const { store, queue, fanout } = fanoutRig();
    await store.create(endpoint({ id: 'wh_aaaaaaaaaaaaaaaaaaaaaaaa', tenant: 'tenant-a' }));
    await store.create(endpoint({ id: 'wh_bbbbbbbbbbbbbbbbbbbbbbbb', tenant: 'tenant-b' }));

    // Act
    await fanout.publish([...queuedEvents('tenant-a', 'msg_a'), ...queuedEvents('tenant-b', 'msg_b')]);

    // Assess
    const pairs = queue.jobs.map((j) => [j.tenant, j.endpointId, JSON.parse(j.body).data.messageId]);
    expect(pairs).toEqual(
      expect.arrayContaining([
        ['tenant-a', 'wh_aaaaaaaaaaaaaaaaaaaaaaaa', 'msg_a'],
        ['tenant-b', 'wh_bbbbbbbbbbbbbbbbbbbbbbbb', 'msg_b'],
      ]),
    );
    expect(queue.jobs).toHaveLength(4);
  });

  it('keeps the events in the log when the queue refuses them, and reports the failure without throwing', async () => {
    // Prepare
    const { store, queue, failures, fanout } = fanoutRig();
    await store.create(endpoint());
    queue.failing = true;
    const events = queuedEvents();

    // Act
    await fanout.publish(events);

    // Assess
    expect(store.events.size).toBe(2);
    expect(failures).toEqual([{ error: expect.any(Error), count: 2, step: 'enqueue' }]);
  });

  it('still queues the jobs when the log refuses them, and reports the log failure', async () => {
    // Prepare
    const { store, queue, failures, fanout } = fanoutRig();
    await store.create(endpoint());
    store.append = async () => {
      throw new Error('table unavailable');
    };

    // Act
    await fanout.publish(queuedEvents());

    // Assess
    expect(queue.jobs).toHaveLength(2);
    expect(failures.map((f) => [f.step, f.count])).toEqual([['log', 2]]);
  });

  it("reports a tenant whose endpoints cannot be read and still publishes the other tenants' events", async () => {
    // Prepare
    const { store, queue, failures, fanout } = fanoutRig();
    await store.create(endpoint({ tenant: 'tenant-b' }));
    const list = store.subscribers.bind(store);
    store.subscribers = async (tenant) => {
      if (tenant === 'tenant-a') throw new Error('throttled');
      return list(tenant);
    };

    // Act
    await fanout.publish([...queuedEvents('tenant-a', 'msg_a'), ...queuedEvents('tenant-b', 'msg_b')]);

    // Assess
    expect(failures.map((f) => [f.step, f.count])).toEqual([['directory', 2]]);
    expect(queue.jobs.map((j) => j.tenant)).toEqual(['tenant-b', 'tenant-b']);
  });

  it('never throws, even when its error report throws', async () => {
    // Prepare
    const { store, queue, fanout } = fanoutRig({
      onError: () => {
        throw new Error('logger broke');
      },
    });
    await store.create(endpoint());
    queue.failing = true;

    // Act
    const published = fanout.publish(queuedEvents());

    // Assess
    await expect(published).resolves.toBeUndefined();
  });

  it('publishes a suppression event to the subscribed endpoints', async () => {
    // Prepare
    const { store, queue, fanout } = fanoutRig();
    await store.create(endpoint());
    const event = suppressionWebhookEvent(
      'suppression.created',
      suppression('ana@example.org'),
      'tenant-a',
      new Date(T0),
    );

    // Act
    await fanout.publish([event]);

    // Assess
    expect(queue.jobs.map((j) => [j.type, j.eventId])).toEqual([['suppression.created', event.id]]);
  });
});

describe('CachedWebhookDirectory', () => {
  /** A store that counts its list calls. */
  function countingStore() {
    const store = new InMemoryWebhookStore();
    const calls: string[] = [];
    const list = store.list.bind(store);
    store.list = async (tenant) => {
      calls.push(tenant);
      return list(tenant);
    };
    return { store, calls };
  }

  it("reads a tenant's endpoints once per period, also when it has none", async () => {
    // Prepare
    const { store, calls } = countingStore();
    const clock = testClock();
    const directory = new CachedWebhookDirectory(store, { seconds: 10, clock });

    // Act
    const first = await directory.subscribers('tenant-a');
    await directory.subscribers('tenant-a');
    clock.advance(9_999);
    await directory.subscribers('tenant-a');
    await store.create(endpoint());
    clock.advance(1);
    const later = await directory.subscribers('tenant-a');

    // Assess
    expect(first).toEqual([]);
    expect(calls).toEqual(['tenant-a', 'tenant-a']);
    expect(later.map((e) => e.id)).toEqual(['wh_aaaaaaaaaaaaaaaaaaaaaaaa']);
  });

  it('answers the enabled endpoints only', async () => {
    // Prepare
    const { store } = countingStore();
    await store.create(endpoint());
    await store.create(
      endpoint({ id: 'wh_bbbbbbbbbbbbbbbbbbbbbbbb', enabled: false, disabledReason: 'gone' }),
    );
    const directory = new CachedWebhookDirectory(store, { seconds: 10, clock: testClock() });

    // Act
    const endpoints = await directory.subscribers('tenant-a');

    // Assess
    expect(endpoints.map((e) => e.id)).toEqual(['wh_aaaaaaaaaaaaaaaaaaaaaaaa']);
  });

  it('shares one read between concurrent lookups and caches no failure', async () => {
    // Prepare
    const { store, calls } = countingStore();
    const directory = new CachedWebhookDirectory(store, { seconds: 10, clock: testClock() });
    const list = store.list;
    let fail = true;
    store.list = async (tenant) => {
      calls.push(`try:${tenant}`);
      if (fail) throw new Error('throttled');
      return list(tenant);
    };

    // Act
    const both = await Promise.allSettled([
      directory.subscribers('tenant-a'),
      directory.subscribers('tenant-a'),
    ]);
    fail = false;
    const after = await directory.subscribers('tenant-a');

    // Assess
    expect(both.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls.filter((c) => c.startsWith('try:'))).toHaveLength(2);
    expect(after).toEqual([]);
  });
});
