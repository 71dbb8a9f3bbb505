/**
 * Attack probe (issue 14): a replay `since` a time must reach every event after it, following
 * `nextSince` as the answer says, even when more events than one replay takes share one timestamp
 * (a batch of 100 messages to 50 recipients each is 5,000 message.queued events of one instant).
 */
import { describe, expect, it } from 'vitest';
import type { StoredWebhookEvent } from '../../../lambdas/domain/webhooks/endpoint.ts';
import { WEBHOOK_EVENT_TYPES } from '../../../lambdas/domain/webhooks/events.ts';
import {
  MAX_REPLAY_EVENTS,
  registerEndpoint,
  replayEvents,
  type WebhookOperationsDeps,
} from '../../../lambdas/domain/webhooks/operations.ts';
import { testClock } from '../../support/fakes.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

const stored = (id: string, timestamp: string): StoredWebhookEvent => ({
  id,
  tenant: 'acme',
  type: 'message.queued',
  timestamp,
  body: JSON.stringify({ type: 'message.queued', timestamp, data: { messageId: id } }),
});

describe('attack: replay since a time', () => {
  it('gets past a run of events sharing one timestamp longer than one replay takes', async () => {
    // Prepare
    const store = new InMemoryWebhookStore();
    const queue = new InMemoryWebhookQueue();
    const deps: WebhookOperationsDeps = {
      store,
      queue,
      clock: testClock('2026-05-04T10:00:00.000Z'),
      allowLoopbackHttp: false,
    };
    const e = await registerEndpoint(deps, 'acme', {
      url: 'https://hooks.example.com/baton',
      events: [...WEBHOOK_EVENT_TYPES],
      description: '',
    });
    const instant = '2026-05-02T00:00:00.000Z';
    await store.append(
      Array.from({ length: MAX_REPLAY_EVENTS + 500 }, (_, i) =>
        stored(`evt_${String(i).padStart(5, '0')}`, instant),
      ),
    );
    await store.append([stored('evt_later', '2026-05-02T00:00:01.000Z')]);

    // Act: replay, and again from nextSince while the answer says truncated (a few rounds at most).
    let since = new Date('2026-05-01T00:00:00.000Z');
    for (let round = 0; round < 5; round++) {
      const outcome = await replayEvents(deps, 'acme', e.id, { since });
      if (!outcome.truncated || outcome.nextSince === undefined) break;
      since = new Date(outcome.nextSince);
    }

    // Assess: every event was replayed, the later one included.
    const ids = new Set(queue.jobs.map((j) => j.eventId));
    expect(ids.has('evt_later')).toBe(true);
    expect(ids.size).toBe(MAX_REPLAY_EVENTS + 501);
  });
});
