import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import {
  activeSecrets,
  type DeliveryAttempt,
  type StoredWebhookEvent,
} from '../../../lambdas/domain/webhooks/endpoint.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { apiHarness } from '../../support/harness.ts';
import { contentTypeOf, httpEvent, jsonOf } from '../../support/http-events.ts';
import { problemIn } from '../../support/unit-problems.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

const HOUR = 3_600_000;

interface EndpointAnswer {
  id: string;
  url: string;
  events: string[];
  description: string;
  enabled: boolean;
  disabledReason: string | null;
  createdAt: string;
  updatedAt: string;
  secret?: string;
}

function setUp(options: { allowLoopbackHttp?: boolean; wired?: boolean } = {}) {
  const store = new InMemoryWebhookStore();
  const queue = new InMemoryWebhookQueue();
  const harness = apiHarness(
    {},
    {
      deps: () =>
        options.wired === false
          ? {}
          : { webhookEndpoints: { store, queue, allowLoopbackHttp: options.allowLoopbackHttp ?? false } },
    },
  );
  // The harness's own key has send, read and suppressions: not webhooks.
  const withoutScope = harness.token;
  const token = harness.addKey({ scopes: ['webhooks'], tenant: 'tenant-a' });
  const otherTenant = harness.addKey({ scopes: ['webhooks'], tenant: 'tenant-b' });
  const { api } = harness;
  const create = async (body: unknown, as = token) =>
    api(httpEvent(Route.createWebhook, { token: as, body }));
  const register = async (body: unknown = { url: 'https://hooks.example.com/baton' }, as = token) => {
    const result = await create(body, as);
    expect(result.statusCode, result.body).toBe(201);
    return jsonOf(result) as EndpointAnswer;
  };
  const call = (route: string, id: string, body?: unknown, as = token, query?: Record<string, string>) =>
    api(
      httpEvent(route, {
        token: as,
        pathParameters: { id },
        ...(body === undefined ? {} : { body }),
        ...(query === undefined ? {} : { query }),
      }),
    );
  return { ...harness, store, queue, token, withoutScope, otherTenant, create, register, call };
}

const storedEvent = (id: string, timestamp: string, tenant = 'tenant-a'): StoredWebhookEvent => ({
  id,
  tenant,
  type: 'message.delivered',
  timestamp,
  body: JSON.stringify({ type: 'message.delivered', timestamp, data: { messageId: 'msg_1', n: id } }),
});

/** Every route that names an endpoint, with a body it accepts. */
const ID_ROUTES: ReadonlyArray<readonly [string, unknown]> = [
  [Route.getWebhook, undefined],
  [Route.updateWebhook, { enabled: false }],
  [Route.deleteWebhook, undefined],
  [Route.rotateWebhookSecret, undefined],
  [Route.webhookDeliveries, undefined],
  [Route.replayWebhook, { eventId: 'evt_1' }],
];

describe('webhook routes', () => {
  describe('authorisation', () => {
    it.each<readonly [string, unknown]>([
      [Route.createWebhook, { url: 'https://hooks.example.com/' }],
      [Route.listWebhooks, undefined],
      ...ID_ROUTES,
    ])('%s answers 403 to a key without the webhooks scope, and 401 without a key', async (route, body) => {
      // Prepare
      const { call, register, withoutScope, store, queue } = setUp();
      const mine = await register();
      await store.append([storedEvent('evt_1', '2026-05-01T00:00:00.000Z')]);

      // Act
      const refused = await call(route, mine.id, body, withoutScope);
      const anonymous = await call(route, mine.id, body, '');

      // Assess
      expect(problemIn(refused, 403).code).toBe('forbidden');
      expect(problemIn(anonymous, 401).code).toBe('unauthorized');
      expect(store.endpoints.size).toBe(1);
      expect(queue.jobs).toEqual([]);
    });

    it.each(ID_ROUTES)(
      '%s answers 404 for another tenant’s endpoint, exactly as for none',
      async (route, body) => {
        // Prepare
        const { call, register, otherTenant, store, queue } = setUp();
        const theirs = await register({ url: 'https://hooks.example.com/' }, otherTenant);
        await store.append([storedEvent('evt_1', '2026-05-01T00:00:00.000Z', 'tenant-b')]);

        // Act
        const result = await call(route, theirs.id, body);
        const none = await call(route, 'wh_AAAAAAAAAAAAAAAAAAAAAAAA', body);

        // Assess
        expect(problemIn(result, 404).detail).toBe(`No webhook endpoint with id ${theirs.id}.`);
        expect(problemIn(none, 404).code).toBe('not_found');
        expect(await store.get('tenant-b', theirs.id)).toMatchObject({ enabled: true, version: 1 });
        expect(queue.jobs).toEqual([]);
      },
    );

    it('lists only the key’s tenant’s endpoints', async () => {
      // Prepare
      const { api, register, token, otherTenant } = setUp();
      const mine = await register();
      await register({ url: 'https://theirs.example.com/' }, otherTenant);

      // Act
      const result = await api(httpEvent(Route.listWebhooks, { token }));

      // Assess
      expect(result.statusCode).toBe(200);
      expect((jsonOf(result) as { items: EndpointAnswer[] }).items.map((e) => e.id)).toEqual([mine.id]);
    });

    it('answers 501 after checking the key when webhooks are not configured', async () => {
      // Prepare
      const { create, withoutScope, token } = setUp({ wired: false });

      // Act
      const configured = await create({ url: 'https://hooks.example.com/' }, token);
      const unscoped = await create({ url: 'https://hooks.example.com/' }, withoutScope);

      // Assess
      expect(problemIn(configured, 501).detail).toBe('Webhooks are not configured in this deployment.');
      expect(problemIn(unscoped, 403).code).toBe('forbidden');
    });
  });

  describe('POST /v1/webhooks', () => {
    it('answers 201 with the endpoint and its secret, shown this once and never cached', async () => {
      // Prepare
      const { create, call } = setUp();

      // Act
      const result = await create({
        url: 'https://Hooks.Example.com/baton',
        events: ['message.delivered'],
        description: 'CRM',
      });

      // Assess
      expect(result.statusCode).toBe(201);
      expect(contentTypeOf(result)).toBe('application/json');
      expect(result.headers?.['cache-control']).toBe('no-store');
      const created = jsonOf(result) as EndpointAnswer;
      expect(created).toMatchObject({
        url: 'https://hooks.example.com/baton',
        events: ['message.delivered'],
        description: 'CRM',
        enabled: true,
        disabledReason: null,
      });
      expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      const read = await call(Route.getWebhook, created.id);
      const listed = await call(Route.listWebhooks, created.id);
      expect(read.body).not.toContain('whsec_');
      expect(listed.body).not.toContain('whsec_');
      expect(jsonOf(read)).not.toHaveProperty('secret');
    });

    it.each([
      ['a private address', 'https://10.1.2.3/hook', 'a private address'],
      ['a loopback address outside local mode', 'http://127.0.0.1:9000/hook', 'must use https'],
      ['loopback over https outside local mode', 'https://127.0.0.1/hook', 'a loopback address'],
      ['the instance metadata address', 'https://169.254.169.254/latest/meta-data', 'instance metadata'],
      ['credentials in the URL', 'https://user:secret@hooks.example.com/', 'credentials'],
      ['http in a deployment', 'http://hooks.example.com/', 'must use https'],
    ])('refuses %s with a 422 that names the reason', async (_what, url, reason) => {
      // Prepare
      const { create, store } = setUp();

      // Act
      const result = await create({ url });

      // Assess
      const p = problemIn(result, 422);
      expect(p.code).toBe('webhook_url_refused');
      expect(p.type).toBe('urn:baton:problem:webhook_url_refused');
      expect(p.detail).toContain(reason);
      expect(p.errors).toEqual([{ path: 'url', message: expect.stringContaining(reason) }]);
      expect(store.endpoints.size).toBe(0);
    });

    it('accepts a loopback http URL in local mode', async () => {
      // Prepare
      const { register } = setUp({ allowLoopbackHttp: true });

      // Act
      const created = await register({ url: 'http://127.0.0.1:4000/hooks' });

      // Assess
      expect(created.url).toBe('http://127.0.0.1:4000/hooks');
    });

    it('refuses unknown event names with a 422 that names them', async () => {
      // Prepare
      const { create } = setUp();

      // Act
      const result = await create({ url: 'https://hooks.example.com/', events: ['message.opened'] });

      // Assess
      const p = problemIn(result, 422);
      expect(p.detail).toBe('Unknown event type: "message.opened".');
      expect(p.errors?.[0]?.path).toBe('events[0]');
    });

    it('refuses a body that is not JSON before anything is stored', async () => {
      // Prepare
      const { api, token, store } = setUp();

      // Act
      const result = await api(httpEvent(Route.createWebhook, { token, body: '{"url": ' }));

      // Assess
      expect(problemIn(result, 400).code).toBe('malformed_json');
      expect(store.endpoints.size).toBe(0);
    });
  });

  describe('PATCH and DELETE /v1/webhooks/{id}', () => {
    it('changes the fields given, checks a new URL again, and deletes', async () => {
      // Prepare
      const { register, call } = setUp();
      const e = await register();

      // Act
      const patched = await call(Route.updateWebhook, e.id, { events: ['message.bounced'], enabled: false });
      const refused = await call(Route.updateWebhook, e.id, { url: 'https://[::1]/' });
      const empty = await call(Route.updateWebhook, e.id, {});
      const deleted = await call(Route.deleteWebhook, e.id);
      const gone = await call(Route.getWebhook, e.id);

      // Assess
      expect(patched.statusCode).toBe(200);
      expect(jsonOf(patched)).toMatchObject({
        events: ['message.bounced'],
        enabled: false,
        disabledReason: null,
      });
      expect(problemIn(refused, 422).detail).toContain('loopback');
      expect(problemIn(empty, 422).detail).toBe('Give at least one of url, events, enabled, description.');
      expect(deleted).toEqual({ statusCode: 204, headers: {}, body: '' });
      expect(problemIn(gone, 404).code).toBe('not_found');
    });
  });

  describe('POST /v1/webhooks/{id}/rotate-secret', () => {
    it('shows the new secret once; old and new both sign for 24 hours, then the new one alone', async () => {
      // Prepare
      const { register, call, store, clock } = setUp();
      const e = await register();

      // Act
      const result = await call(Route.rotateWebhookSecret, e.id);

      // Assess
      expect(result.statusCode).toBe(200);
      expect(result.headers?.['cache-control']).toBe('no-store');
      const rotated = jsonOf(result) as EndpointAnswer & { previousSecretExpiresAt: string };
      expect(rotated.secret).toMatch(/^whsec_/);
      expect(rotated.secret).not.toBe(e.secret);
      const stored = await store.get('tenant-a', e.id);
      if (!stored) throw new Error('not stored');
      expect(activeSecrets(stored, clock())).toEqual([rotated.secret, e.secret]);
      clock.advance(24 * HOUR);
      expect(activeSecrets(stored, clock())).toEqual([rotated.secret]);
      expect((await call(Route.getWebhook, e.id)).body).not.toContain('whsec_');
    });
  });

  describe('GET /v1/webhooks/{id}/deliveries', () => {
    const attempt = (endpointId: string, n: number): DeliveryAttempt => ({
      tenant: 'tenant-a',
      endpointId,
      eventId: `evt_${n}`,
      type: 'message.delivered',
      attempt: n,
      at: new Date(Date.parse('2026-05-04T00:00:00.000Z') + n * 1000).toISOString(),
      statusCode: n % 2 === 0 ? 200 : 500,
      latencyMs: 10 * n,
      response: n % 2 === 0 ? 'ok' : 'oops',
      outcome: n % 2 === 0 ? 'success' : 'retry',
    });

    it('pages the attempts newest first with nextCursor, and refuses a bad limit or cursor with a 422', async () => {
      // Prepare
      const { register, call, store } = setUp();
      const e = await register();
      for (const n of [1, 2, 3, 4, 5]) await store.record(attempt(e.id, n));

      // Act
      const first = await call(Route.webhookDeliveries, e.id, undefined, undefined, { limit: '2' });
      const next = (jsonOf(first) as { nextCursor: string }).nextCursor;
      const second = await call(Route.webhookDeliveries, e.id, undefined, undefined, {
        limit: '2',
        cursor: next,
      });
      const badLimit = await call(Route.webhookDeliveries, e.id, undefined, undefined, { limit: '1000' });
      const badCursor = await call(Route.webhookDeliveries, e.id, undefined, undefined, {
        cursor: 'not-ours',
      });

      // Assess
      expect(first.statusCode).toBe(200);
      const page = jsonOf(first) as { items: Array<Record<string, unknown>>; nextCursor: string | null };
      expect(page.items.map((a) => a.eventId)).toEqual(['evt_5', 'evt_4']);
      expect(page.items[0]).toMatchObject({
        statusCode: 500,
        latencyMs: 50,
        response: 'oops',
        outcome: 'retry',
      });
      expect(page.items[0]).not.toHaveProperty('tenant');
      expect((jsonOf(second) as { items: Array<{ eventId: string }> }).items.map((a) => a.eventId)).toEqual([
        'evt_3',
        'evt_2',
      ]);
      expect(problemIn(badLimit, 422).errors?.[0]?.path).toBe('limit');
      expect(problemIn(badCursor, 422).errors?.[0]?.path).toBe('cursor');
    });
  });

  describe('POST /v1/webhooks/{id}/replay', () => {
    it('replays one event by id: 202, the same event id and body, as a replay', async () => {
      // Prepare
      const { register, call, store, queue } = setUp();
      const e = await register();
      const event = storedEvent('evt_one', '2026-05-01T00:00:00.000Z');
      await store.append([event]);

      // Act
      const result = await call(Route.replayWebhook, e.id, { eventId: 'evt_one' });

      // Assess
      expect(result.statusCode).toBe(202);
      expect(jsonOf(result)).toEqual({ replayed: 1, truncated: false });
      expect(queue.jobs).toEqual([
        expect.objectContaining({
          eventId: 'evt_one',
          body: event.body,
          endpointId: e.id,
          attempt: 0,
          replay: true,
        }),
      ]);
    });

    it('replays every event since a time with their ids and bodies, and 404s an unknown event', async () => {
      // Prepare
      const { register, call, store, queue } = setUp();
      const e = await register();
      const events = [
        storedEvent('evt_old', '2026-04-01T00:00:00.000Z'),
        storedEvent('evt_a', '2026-05-01T00:00:00.000Z'),
        storedEvent('evt_b', '2026-05-01T00:00:01.000Z'),
        storedEvent('evt_theirs', '2026-05-01T00:00:02.000Z', 'tenant-b'),
      ];
      await store.append(events);

      // Act
      const result = await call(Route.replayWebhook, e.id, { since: '2026-05-01T00:00:00Z' });
      const unknown = await call(Route.replayWebhook, e.id, { eventId: 'evt_theirs' });

      // Assess
      expect(result.statusCode).toBe(202);
      expect(jsonOf(result)).toEqual({ replayed: 2, truncated: false });
      expect(queue.jobs.map((j) => [j.eventId, j.body])).toEqual([
        ['evt_a', events[1]?.body],
        ['evt_b', events[2]?.body],
      ]);
      expect(problemIn(unknown, 404).code).toBe('not_found');
    });

    it('refuses to replay to a disabled endpoint (409) and a body with both since and eventId (422)', async () => {
      // Prepare
      const { register, call, store, queue } = setUp();
      const e = await register();
      await store.append([storedEvent('evt_1', '2026-05-01T00:00:00.000Z')]);
      await call(Route.updateWebhook, e.id, { enabled: false });

      // Act
      const disabled = await call(Route.replayWebhook, e.id, { eventId: 'evt_1' });
      const both = await call(Route.replayWebhook, e.id, { eventId: 'evt_1', since: '2026-05-01T00:00:00Z' });

      // Assess
      expect(problemIn(disabled, 409).code).toBe('webhook_disabled');
      expect(problemIn(both, 422).code).toBe('invalid_request');
      expect(queue.jobs).toEqual([]);
    });
  });
});
