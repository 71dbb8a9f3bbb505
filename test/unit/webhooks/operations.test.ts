import { describe, expect, it } from 'vitest';
import {
  activeSecrets,
  type DeliveryAttempt,
  type StoredWebhookEvent,
  WEBHOOK_ENDPOINT_ID,
} from '../../../lambdas/domain/webhooks/endpoint.ts';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../../../lambdas/domain/webhooks/events.ts';
import {
  deleteEndpoint,
  getEndpoint,
  listDeliveries,
  listEndpoints,
  MAX_REPLAY_EVENTS,
  MAX_WEBHOOK_ENDPOINTS,
  newEndpointId,
  registerEndpoint,
  replayEvents,
  rotateSecret,
  updateEndpoint,
  type WebhookOperationsDeps,
} from '../../../lambdas/domain/webhooks/operations.ts';
import { ConflictError } from '../../../lambdas/shared/errors.ts';
import { testClock } from '../../support/fakes.ts';
import { problemOf } from '../../support/problems.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

const T0 = '2026-05-04T10:00:00.000Z';
const HOUR = 3_600_000;

function setUp(options: { allowLoopbackHttp?: boolean } = {}) {
  const store = new InMemoryWebhookStore();
  const queue = new InMemoryWebhookQueue();
  const clock = testClock(T0);
  let counter = 0;
  // Distinct, deterministic bytes per call: ids and secrets differ, tests can predict nothing else.
  const random = (size: number): Buffer => {
    counter += 1;
    return Buffer.alloc(size, counter);
  };
  const deps: WebhookOperationsDeps = {
    store,
    queue,
    clock,
    random,
    allowLoopbackHttp: options.allowLoopbackHttp ?? false,
  };
  const register = (tenant = 'acme', url = 'https://hooks.example.com/baton', events?: WebhookEventType[]) =>
    registerEndpoint(deps, tenant, {
      url,
      events: events ?? [...WEBHOOK_EVENT_TYPES],
      description: 'CRM',
    });
  return { deps, store, queue, clock, register };
}

const storedEvent = (
  id: string,
  timestamp: string,
  type: WebhookEventType = 'message.delivered',
  tenant = 'acme',
): StoredWebhookEvent => ({
  id,
  tenant,
  type,
  timestamp,
  body: JSON.stringify({ type, timestamp, data: { messageId: 'msg_1', id } }),
});

describe('registerEndpoint', () => {
  it('stores an enabled endpoint with a wh_ id and a whsec_ secret, and shows the secret this once', async () => {
    // Prepare
    const { register, store, deps } = setUp();

    // Act
    const created = await register();

    // Assess
    expect(created.id).toMatch(WEBHOOK_ENDPOINT_ID);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(created).toMatchObject({
      url: 'https://hooks.example.com/baton',
      description: 'CRM',
      enabled: true,
      disabledReason: null,
      createdAt: T0,
      updatedAt: T0,
      previousSecretExpiresAt: null,
    });
    const stored = await store.get('acme', created.id);
    expect(stored?.secrets).toEqual([{ secret: created.secret, createdAt: T0 }]);
    expect(stored?.version).toBe(1);
    const shown = await getEndpoint(deps, 'acme', created.id);
    expect(shown).not.toHaveProperty('secret');
    expect(JSON.stringify(await listEndpoints(deps, 'acme'))).not.toContain('whsec_');
  });

  it.each([
    ['a private address', 'https://10.0.0.8/hook', 'private address'],
    ['a loopback URL without local mode', 'http://127.0.0.1:8080/hook', 'must use https'],
    ['the instance metadata address', 'https://169.254.169.254/latest', 'metadata'],
    ['credentials in the URL', 'https://user:pw@hooks.example.com/', 'credentials'],
    ['http in a deployment', 'http://hooks.example.com/', 'must use https'],
    ['a decimal IP spelling of loopback', 'https://2130706433/', 'loopback'],
  ])('refuses %s with a 422 naming the reason', async (_what, url, reason) => {
    // Prepare
    const { register, store } = setUp();

    // Act
    const p = await problemOf(() => register('acme', url));

    // Assess
    expect(p.status).toBe(422);
    expect(p.code).toBe('webhook_url_refused');
    expect(p.detail).toContain(reason);
    expect(p.errors?.[0]?.path).toBe('url');
    expect(await store.list('acme')).toEqual([]);
  });

  it('accepts a loopback http URL in local mode', async () => {
    // Prepare
    const { register } = setUp({ allowLoopbackHttp: true });

    // Act
    const created = await register('acme', 'http://localhost:4000/hooks');

    // Assess
    expect(created.url).toBe('http://localhost:4000/hooks');
  });

  it(`refuses a tenant's endpoint beyond ${MAX_WEBHOOK_ENDPOINTS} (409), while another tenant may still register`, async () => {
    // Prepare
    const { register } = setUp();
    for (let i = 0; i < MAX_WEBHOOK_ENDPOINTS; i++) await register();

    // Act
    const p = await problemOf(() => register());
    const other = await register('other');

    // Assess
    expect(p.status).toBe(409);
    expect(p.code).toBe('too_many_webhooks');
    expect(other.id).toMatch(WEBHOOK_ENDPOINT_ID);
  });
});

describe('newEndpointId', () => {
  it('draws 24 base62 characters, dropping the bytes that would bias them', () => {
    // Prepare: 248..255 would skew `% 62` toward the first characters, so they are skipped.
    let calls = 0;
    const random = (size: number): Buffer => {
      calls += 1;
      return calls === 1 ? Buffer.alloc(size, 250) : Buffer.from(Array.from({ length: size }, (_, i) => i));
    };

    // Act
    const id = newEndpointId(random);

    // Assess
    expect(id).toBe('wh_ABCDEFGHIJKLMNOPQRSTUVWX');
  });
});

describe('endpoints of another tenant', () => {
  it('are never listed, read, changed, rotated, deleted, replayed to or shown deliveries of (404)', async () => {
    // Prepare
    const { register, deps, store, queue } = setUp();
    const theirs = await register('other');
    await store.append([storedEvent('evt_1', T0, 'message.delivered', 'other')]);

    // Act
    const answers = await Promise.all([
      problemOf(() => getEndpoint(deps, 'acme', theirs.id)),
      problemOf(() => updateEndpoint(deps, 'acme', theirs.id, { enabled: false })),
      problemOf(() => deleteEndpoint(deps, 'acme', theirs.id)),
      problemOf(() => rotateSecret(deps, 'acme', theirs.id)),
      problemOf(() => listDeliveries(deps, 'acme', theirs.id, { limit: 10 })),
      problemOf(() => replayEvents(deps, 'acme', theirs.id, { eventId: 'evt_1' })),
    ]);

    // Assess
    expect(await listEndpoints(deps, 'acme')).toEqual([]);
    for (const p of answers) {
      expect(p.status).toBe(404);
      expect(p.detail).toBe(`No webhook endpoint with id ${theirs.id}.`);
    }
    expect(await store.get('other', theirs.id)).toMatchObject({ enabled: true, version: 1 });
    expect(queue.jobs).toEqual([]);
  });
});

describe('updateEndpoint', () => {
  it('changes the given fields, bumps the version and checks a new URL again', async () => {
    // Prepare
    const { register, deps, store, clock } = setUp();
    const e = await register();
    clock.advance(HOUR);

    // Act
    const updated = await updateEndpoint(deps, 'acme', e.id, {
      url: 'https://NEW.example.com/x',
      events: ['message.bounced'],
      description: 'ops',
    });
    const refused = await problemOf(() =>
      updateEndpoint(deps, 'acme', e.id, { url: 'https://192.168.1.1/' }),
    );

    // Assess
    expect(updated).toMatchObject({
      url: 'https://new.example.com/x',
      events: ['message.bounced'],
      description: 'ops',
      updatedAt: '2026-05-04T11:00:00.000Z',
      createdAt: T0,
    });
    expect(refused.code).toBe('webhook_url_refused');
    expect((await store.get('acme', e.id))?.version).toBe(2);
    expect((await store.get('acme', e.id))?.url).toBe('https://new.example.com/x');
  });

  it('clears the reason Baton disabled an endpoint for when its owner enables it again', async () => {
    // Prepare
    const { register, deps, store } = setUp();
    const e = await register();
    const stored = await store.get('acme', e.id);
    if (!stored) throw new Error('not stored');
    await store.update({ ...stored, enabled: false, disabledReason: 'gone', version: 2 }, 1);

    // Act
    const enabled = await updateEndpoint(deps, 'acme', e.id, { enabled: true });

    // Assess
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null });
  });

  it('writes again on a lost race, over what the other writer stored', async () => {
    // Prepare
    const { register, deps, store } = setUp();
    const e = await register();
    const original = store.update.bind(store);
    let raced = false;
    store.update = async (next, expected) => {
      if (!raced) {
        raced = true;
        const current = await store.get('acme', e.id);
        if (current)
          await original({ ...current, disabledReason: null, description: 'other', version: 2 }, 1);
        throw new ConflictError('lost');
      }
      return original(next, expected);
    };

    // Act
    const updated = await updateEndpoint(deps, 'acme', e.id, { enabled: false });

    // Assess
    expect(updated).toMatchObject({ enabled: false, description: 'other' });
    expect((await store.get('acme', e.id))?.version).toBe(3);
  });
});

describe('deleteEndpoint', () => {
  it('deletes the endpoint, then answers 404', async () => {
    // Prepare
    const { register, deps } = setUp();
    const e = await register();

    // Act
    await deleteEndpoint(deps, 'acme', e.id);
    const again = await problemOf(() => deleteEndpoint(deps, 'acme', e.id));

    // Assess
    expect(again.status).toBe(404);
    expect(await listEndpoints(deps, 'acme')).toEqual([]);
  });
});

describe('rotateSecret', () => {
  it('signs with the old and the new secret for 24 hours, then with the new one alone', async () => {
    // Prepare
    const { register, deps, store, clock } = setUp();
    const e = await register();

    // Act
    const rotated = await rotateSecret(deps, 'acme', e.id);

    // Assess
    const stored = await store.get('acme', e.id);
    if (!stored) throw new Error('not stored');
    expect(rotated.secret).not.toBe(e.secret);
    expect(rotated.previousSecretExpiresAt).toBe('2026-05-05T10:00:00.000Z');
    expect(activeSecrets(stored, clock())).toEqual([rotated.secret, e.secret]);
    clock.advance(24 * HOUR - 1);
    expect(activeSecrets(stored, clock())).toEqual([rotated.secret, e.secret]);
    clock.advance(1);
    expect(activeSecrets(stored, clock())).toEqual([rotated.secret]);
    expect((await getEndpoint(deps, 'acme', e.id)).previousSecretExpiresAt).toBeNull();
  });

  it('keeps at most two secrets: a second rotation drops the oldest', async () => {
    // Prepare
    const { register, deps, store, clock } = setUp();
    const e = await register();
    const first = await rotateSecret(deps, 'acme', e.id);
    clock.advance(HOUR);

    // Act
    const second = await rotateSecret(deps, 'acme', e.id);

    // Assess
    const stored = await store.get('acme', e.id);
    expect(stored?.secrets.map((s) => s.secret)).toEqual([second.secret, first.secret]);
    expect(stored?.secrets[1]?.expiresAt).toBe('2026-05-05T11:00:00.000Z');
    expect(stored && activeSecrets(stored, clock())).not.toContain(e.secret);
  });
});

describe('listDeliveries', () => {
  const attempt = (endpointId: string, n: number): DeliveryAttempt => ({
    tenant: 'acme',
    endpointId,
    eventId: `evt_${n}`,
    type: 'message.delivered',
    attempt: 1,
    at: `2026-05-04T0${n}:00:00.000Z`,
    statusCode: 200,
    latencyMs: 30,
    response: 'ok',
    outcome: 'success',
  });

  it('pages the endpoint’s attempts newest first, without the tenant', async () => {
    // Prepare
    const { register, deps, store } = setUp();
    const e = await register();
    for (const n of [1, 2, 3]) await store.record(attempt(e.id, n));

    // Act
    const first = await listDeliveries(deps, 'acme', e.id, { limit: 2 });
    const second = await listDeliveries(deps, 'acme', e.id, { limit: 2, cursor: first.nextCursor ?? '' });

    // Assess
    expect(first.items.map((a) => a.eventId)).toEqual(['evt_3', 'evt_2']);
    expect(first.items[0]).not.toHaveProperty('tenant');
    expect(second).toEqual({ items: [expect.objectContaining({ eventId: 'evt_1' })], nextCursor: null });
  });
});

describe('replayEvents', () => {
  it('queues one event by id with the same id and body, as a replay due now', async () => {
    // Prepare
    const { register, deps, store, queue, clock } = setUp();
    const e = await register();
    const event = storedEvent('evt_again', '2026-05-03T08:00:00.000Z');
    await store.append([event]);
    clock.advance(HOUR);

    // Act
    const outcome = await replayEvents(deps, 'acme', e.id, { eventId: 'evt_again' });

    // Assess
    const now = Date.parse(T0) + HOUR;
    expect(outcome).toEqual({ replayed: 1, truncated: false });
    expect(queue.jobs).toEqual([
      {
        v: 1,
        tenant: 'acme',
        endpointId: e.id,
        eventId: 'evt_again',
        type: 'message.delivered',
        body: event.body,
        attempt: 0,
        firstQueuedAt: now,
        notBefore: now,
        occurredAt: Date.parse(event.timestamp),
        replay: true,
      },
    ]);
  });

  it('answers 404 for an event the tenant does not have (another tenant’s included)', async () => {
    // Prepare
    const { register, deps, store, queue } = setUp();
    const e = await register();
    await store.append([storedEvent('evt_theirs', T0, 'message.delivered', 'other')]);

    // Act
    const p = await problemOf(() => replayEvents(deps, 'acme', e.id, { eventId: 'evt_theirs' }));

    // Assess
    expect(p.status).toBe(404);
    expect(queue.jobs).toEqual([]);
  });

  it('queues the events since a time of the types the endpoint subscribes to, oldest first', async () => {
    // Prepare
    const { register, deps, store, queue } = setUp();
    const e = await register('acme', 'https://hooks.example.com/', ['message.bounced', 'message.delivered']);
    await store.append([
      storedEvent('evt_before', '2026-05-01T00:00:00.000Z'),
      storedEvent('evt_1', '2026-05-02T01:00:00.000Z'),
      storedEvent('evt_sent', '2026-05-02T02:00:00.000Z', 'message.sent'),
      storedEvent('evt_2', '2026-05-02T03:00:00.000Z', 'message.bounced'),
      storedEvent('evt_other', '2026-05-02T03:30:00.000Z', 'message.delivered', 'other'),
    ]);

    // Act
    const outcome = await replayEvents(deps, 'acme', e.id, { since: new Date('2026-05-02T00:00:00.000Z') });

    // Assess
    expect(outcome).toEqual({ replayed: 2, truncated: false });
    expect(queue.jobs.map((j) => [j.eventId, j.type, j.replay])).toEqual([
      ['evt_1', 'message.delivered', true],
      ['evt_2', 'message.bounced', true],
    ]);
  });

  it(`stops at ${MAX_REPLAY_EVENTS} events and says where to go on`, async () => {
    // Prepare
    const { register, deps, store, queue } = setUp();
    const e = await register();
    const base = Date.parse('2026-05-02T00:00:00.000Z');
    await store.append(
      Array.from({ length: MAX_REPLAY_EVENTS + 5 }, (_, i) =>
        storedEvent(`evt_${String(i).padStart(5, '0')}`, new Date(base + i * 1000).toISOString()),
      ),
    );

    // Act
    const outcome = await replayEvents(deps, 'acme', e.id, { since: new Date(base) });

    // Assess
    expect(outcome).toEqual({
      replayed: MAX_REPLAY_EVENTS,
      truncated: true,
      nextSince: new Date(base + MAX_REPLAY_EVENTS * 1000).toISOString(),
    });
    expect(queue.jobs).toHaveLength(MAX_REPLAY_EVENTS);
  });

  it('refuses to replay to a disabled endpoint (409) and to replay an event type it does not subscribe to (422)', async () => {
    // Prepare
    const { register, deps, store, queue } = setUp();
    const off = await register();
    await updateEndpoint(deps, 'acme', off.id, { enabled: false });
    const bouncesOnly = await register('acme', 'https://hooks.example.com/', ['message.bounced']);
    await store.append([storedEvent('evt_d', T0)]);

    // Act
    const disabled = await problemOf(() => replayEvents(deps, 'acme', off.id, { eventId: 'evt_d' }));
    const unsubscribed = await problemOf(() =>
      replayEvents(deps, 'acme', bouncesOnly.id, { eventId: 'evt_d' }),
    );

    // Assess
    expect([disabled.status, disabled.code]).toEqual([409, 'webhook_disabled']);
    expect([unsubscribed.status, unsubscribed.code]).toEqual([422, 'invalid_request']);
    expect(queue.jobs).toEqual([]);
  });
});
