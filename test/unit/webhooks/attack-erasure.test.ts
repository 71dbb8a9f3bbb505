/**
 * Attack probe (issue 14): an erased address must appear only as its pseudonym in any payload Baton
 * sends afterwards, replays of events produced before the erasure included.
 */
import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import { eraseFromRecord, TombstoneAwareSuppressions } from '../../../lambdas/domain/erasure/erasure.ts';
import { suppressionWebhookEvent, webhookEventsOf } from '../../../lambdas/domain/webhooks/events.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { messageRecord, recipient, suppression } from '../../support/builders.ts';
import { InMemoryErasureQueue, InMemorySoftBounceStore } from '../../support/fakes.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent, jsonOf } from '../../support/http-events.ts';
import { ANA, ANA_KEY, keyOf } from '../../support/unit-erasure.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

function setUp() {
  const store = new InMemoryWebhookStore();
  const queue = new InMemoryWebhookQueue();
  const h = apiHarness(
    {},
    {
      deps: ({ messages, suppressions: table, clock }) => ({
        suppressions: new TombstoneAwareSuppressions(table, keyOf),
        erasure: {
          messages,
          suppressions: table,
          softBounces: new InMemorySoftBounceStore(),
          queue: new InMemoryErasureQueue(),
          keyOf,
          clock,
          segments: 2,
        },
        webhookEndpoints: { store, queue, allowLoopbackHttp: false },
      }),
    },
  );
  const token = h.addKey({ scopes: ['webhooks', 'suppressions', 'read'], tenant: 'tenant-a' });
  return { ...h, store, queue, token };
}

describe('attack: erasure and the webhook replay log', () => {
  it('replays an event produced before the erasure with the pseudonym, never the address', async () => {
    // Prepare: an endpoint, and a message.queued event for Ana (and Bob) in the replay log.
    const { api, store, queue, token } = setUp();
    const created = await api(
      httpEvent(Route.createWebhook, { token, body: { url: 'https://hooks.example.com/baton' } }),
    );
    const { id } = jsonOf(created) as { id: string };
    const record = messageRecord({
      id: 'msg_1',
      tenant: 'tenant-a',
      recipients: [recipient('Ana@Example.org'), recipient('bob@example.org')],
    });
    const events = webhookEventsOf(record, 0, {});
    await store.append(
      events.map((e) => ({
        id: e.id,
        tenant: e.tenant,
        type: e.payload.type,
        timestamp: e.payload.timestamp,
        body: JSON.stringify(e.payload),
      })),
    );

    // Act
    const erased = await api(httpEvent(Route.eraseRecipient, { token, pathParameters: { address: ANA } }));
    const replay = await api(
      httpEvent(Route.replayWebhook, {
        token,
        pathParameters: { id },
        body: { since: '2000-01-01T00:00:00.000Z' },
      }),
    );

    // Assess
    expect(erased.statusCode).toBe(202);
    expect(replay.statusCode, replay.body).toBe(202);
    expect(queue.jobs).toHaveLength(2);
    const bodies = queue.jobs.map((j) => j.body).join('\n');
    expect(bodies.toLowerCase()).not.toContain('ana@example.org');
    expect(bodies).toContain(ANA_KEY);
    expect(bodies).toContain('bob@example.org');
    // The same ids: a replay never changes the webhook-id.
    expect(queue.jobs.map((j) => j.eventId).sort()).toEqual(events.map((e) => e.id).sort());
  });

  it('replays one suppression event by id with the pseudonym once the address is erased', async () => {
    // Prepare
    const { api, store, queue, token } = setUp();
    const created = await api(
      httpEvent(Route.createWebhook, { token, body: { url: 'https://hooks.example.com/baton' } }),
    );
    const { id } = jsonOf(created) as { id: string };
    const event = suppressionWebhookEvent(
      'suppression.created',
      suppression(ANA, 'manual', { tenant: 'tenant-a' }),
      'tenant-a',
      new Date('2026-05-01T00:00:00.000Z'),
    );
    const body = JSON.stringify(event.payload);
    await store.append([
      {
        id: event.id,
        tenant: 'tenant-a',
        type: event.payload.type,
        timestamp: event.payload.timestamp,
        body,
      },
    ]);

    // Act
    await api(httpEvent(Route.eraseRecipient, { token, pathParameters: { address: ANA } }));
    const replay = await api(
      httpEvent(Route.replayWebhook, { token, pathParameters: { id }, body: { eventId: event.id } }),
    );

    // Assess
    expect(replay.statusCode, replay.body).toBe(202);
    expect(queue.jobs.map((j) => [j.eventId, JSON.parse(j.body).data.address])).toEqual([
      [event.id, ANA_KEY],
    ]);
  });

  it('leaves an address another tenant erased as it is in this tenant’s replay', async () => {
    // Prepare
    const { api, store, queue, token, addKey } = setUp();
    const other = addKey({ scopes: ['suppressions'], tenant: 'tenant-b' });
    const created = await api(
      httpEvent(Route.createWebhook, { token, body: { url: 'https://hooks.example.com/baton' } }),
    );
    const { id } = jsonOf(created) as { id: string };
    const [event] = webhookEventsOf(
      messageRecord({ id: 'msg_1', tenant: 'tenant-a', recipients: [recipient(ANA)] }),
      0,
      {},
    );
    if (event === undefined) throw new Error('no event');
    const body = JSON.stringify(event.payload);
    await store.append([
      {
        id: event.id,
        tenant: 'tenant-a',
        type: event.payload.type,
        timestamp: event.payload.timestamp,
        body,
      },
    ]);

    // Act
    const erased = await api(
      httpEvent(Route.eraseRecipient, { token: other, pathParameters: { address: ANA } }),
    );
    await api(httpEvent(Route.replayWebhook, { token, pathParameters: { id }, body: { eventId: event.id } }));

    // Assess
    expect(erased.statusCode).toBe(202);
    expect(queue.jobs.map((j) => j.body)).toEqual([body]);
  });

  it('erases the address from the message’s tags, which every later event of the message carries', async () => {
    // Prepare: the client tagged the message with the recipient's address.
    const record = messageRecord({
      id: 'msg_1',
      tenant: 'tenant-a',
      recipients: [recipient(ANA, 'sent')],
      tags: { contact: 'Ana@Example.org', campaign: 'spring' },
    });

    // Act
    const erased = eraseFromRecord(record, ANA_KEY, keyOf);
    if (erased === undefined) throw new Error('not erased');
    const later = {
      ...erased,
      events: [...erased.events, { type: 'bounced' as const, at: record.createdAt, recipient: ANA_KEY }],
    };
    const events = webhookEventsOf(later, erased.events.length, later.tags ?? {});

    // Assess
    const bodies = JSON.stringify(events.map((e) => e.payload));
    expect(bodies.toLowerCase()).not.toContain('ana@example.org');
    expect(erased.tags).toEqual({ contact: ANA_KEY, campaign: 'spring' });
  });
});
