/**
 * Attack probes on the webhook pipeline (issue 14): production and fan-out. Each test was seen
 * failing before its fix.
 */
import { describe, expect, it } from 'vitest';
import { type WebhookEvent, webhookEventsOf } from '../../../lambdas/domain/webhooks/events.ts';
import { messageRecord, recipient } from '../../support/builders.ts';
import { fanoutRig, webhookEndpoint } from '../../support/webhooks.ts';

function queuedEvents(tenant = 'tenant-a', id = 'msg_1'): WebhookEvent[] {
  const record = messageRecord({ id, tenant, recipients: [recipient('ana@example.org')] });
  return webhookEventsOf(record, 0, {});
}

describe('attack: producing webhook events', () => {
  it('keeps the events of a tenant whose endpoints cannot be read in the replay log', async () => {
    // Prepare
    const { store, queue, failures, fanout } = fanoutRig();
    await store.create(webhookEndpoint());
    store.subscribers = async () => {
      throw new Error('throttled');
    };
    const events = queuedEvents();

    // Act
    await fanout.publish(events);

    // Assess: not queued (whom to?), but not lost either: a replay finds them.
    expect(queue.jobs).toEqual([]);
    expect(failures.map((f) => f.step)).toEqual(['directory']);
    for (const event of events) expect(await store.event('tenant-a', event.id)).toBeDefined();
  });

  it('keeps the events a disabled endpoint subscribes to, so a replay after re-enabling finds them', async () => {
    // Prepare
    const { store, queue, fanout } = fanoutRig();
    await store.create(webhookEndpoint({ enabled: false, disabledReason: 'failing' }));
    const events = queuedEvents();

    // Act
    await fanout.publish(events);

    // Assess: no job for the disabled endpoint, the event kept for its replay.
    expect(queue.jobs).toEqual([]);
    for (const event of events) expect(await store.event('tenant-a', event.id)).toBeDefined();
  });

  it('answers the producer in bounded time when the queue never answers (a stalled connection)', async () => {
    // Prepare
    const { store, failures, fanout } = fanoutRig({
      queue: { enqueue: () => new Promise<void>(() => {}) },
      waitMs: 50,
    });
    await store.create(webhookEndpoint());

    // Act: the api answers its client only after publishing; a hang here is a failed send request.
    const outcome = await Promise.race([
      fanout.publish(queuedEvents()).then(() => 'answered'),
      new Promise((resolve) => setTimeout(() => resolve('hung'), 1_000)),
    ]);

    // Assess
    expect(outcome).toBe('answered');
    expect(failures.map(({ count, step }) => ({ count, step }))).toEqual([{ count: 1, step: 'timeout' }]);
  });
});
