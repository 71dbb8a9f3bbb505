import '../../support/quiet-powertools.ts';
/**
 * Probes of the webhook routes' front (issue 14, attack pass): the endpoint cap under racing
 * registrations, replay amplification (queued jobs and log reads) and replay paging through one
 * instant. Each probe failed before the fix committed with it; the last checks the fix's wiring.
 */
import { describe, expect, it } from 'vitest';
import { ProblemError } from '../../../lambdas/domain/problem.ts';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../../../lambdas/domain/webhooks/events.ts';
import {
  MAX_REPLAY_EVENTS,
  MAX_REPLAY_SCAN,
  MAX_WEBHOOK_ENDPOINTS,
  REPLAY_BUDGET,
  registerEndpoint,
  replayEvents,
  type WebhookOperationsDeps,
} from '../../../lambdas/domain/webhooks/operations.ts';
import {
  createWebhookRequest,
  replayRequest,
  updateWebhookRequest,
} from '../../../lambdas/domain/webhooks/requests.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { testClock } from '../../support/fakes.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent, jsonOf } from '../../support/http-events.ts';
import { problemOf } from '../../support/problems.ts';
import { problemIn } from '../../support/unit-problems.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

function setUp() {
  const store = new InMemoryWebhookStore();
  const queue = new InMemoryWebhookQueue();
  let counter = 0;
  const clock = testClock('2026-05-04T10:00:00.000Z');
  const deps: WebhookOperationsDeps = {
    store,
    queue,
    clock,
    random: (size) => Buffer.alloc(size, ++counter % 256),
    allowLoopbackHttp: false,
  };
  const register = (tenant = 'acme', events: WebhookEventType[] = [...WEBHOOK_EVENT_TYPES]) =>
    registerEndpoint(deps, tenant, {
      url: 'https://hooks.example.com/baton',
      events,
      description: '',
    });
  return { deps, store, queue, clock, register };
}

describe('the endpoint cap', () => {
  it(`holds at ${MAX_WEBHOOK_ENDPOINTS} when registrations race`, async () => {
    const { store, register } = setUp();
    for (let i = 0; i < MAX_WEBHOOK_ENDPOINTS - 1; i++) await register();
    const racing = await Promise.allSettled(Array.from({ length: 10 }, () => register()));
    expect((await store.list('acme')).length).toBeLessThanOrEqual(MAX_WEBHOOK_ENDPOINTS);
    // Every refused one is the cap's 409, not an error.
    for (const r of racing) {
      if (r.status === 'rejected') expect(String(r.reason)).toMatch(/too_many_webhooks/);
    }
  });
});

describe('the endpoint cap, when the count after storing fails', () => {
  it('leaves no endpoint behind an error answer', async () => {
    const { store, register } = setUp();
    const list = store.list.bind(store);
    let calls = 0;
    store.list = async (tenant: string) => {
      calls += 1;
      if (calls === 2) throw new Error('DynamoDB is throttling');
      return list(tenant);
    };

    await expect(register()).rejects.toThrow('throttling');

    expect(await list('acme')).toEqual([]);
  });
});

describe('replay amplification', () => {
  it('bounds what repeated replays of one endpoint queue, per hour, and says so with a 429', async () => {
    // Prepare: more events than one replay takes.
    const { deps, store, queue, clock, register } = setUp();
    const e = await register();
    const base = Date.parse('2026-05-01T00:00:00.000Z');
    await store.append(
      Array.from({ length: MAX_REPLAY_EVENTS + 10 }, (_, i) => ({
        id: `evt_${String(i).padStart(5, '0')}`,
        tenant: 'acme',
        type: 'message.delivered' as const,
        timestamp: new Date(base + i * 1000).toISOString(),
        body: '{}',
      })),
    );

    // Act: replay everything since the epoch, again and again, and one event again and again.
    const calls = Math.ceil(REPLAY_BUDGET.events / MAX_REPLAY_EVENTS) + 3;
    for (let i = 0; i < calls; i++) {
      await replayEvents(deps, 'acme', e.id, { since: new Date(0) }).catch(() => undefined);
    }
    const refused = await problemOf(() => replayEvents(deps, 'acme', e.id, { since: new Date(0) }));
    const one = await problemOf(() => replayEvents(deps, 'acme', e.id, { eventId: 'evt_00000' }));

    // Assess
    expect(queue.jobs.length).toBeLessThanOrEqual(REPLAY_BUDGET.events);
    expect([refused.status, refused.code]).toEqual([429, 'rate_limited']);
    expect([one.status, one.code]).toEqual([429, 'rate_limited']);
    const thrown = await replayEvents(deps, 'acme', e.id, { since: new Date(0) }).catch((error) => error);
    expect(thrown).toBeInstanceOf(ProblemError);
    expect(Number(thrown.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(thrown.headers['retry-after'])).toBeLessThanOrEqual(REPLAY_BUDGET.windowSeconds);

    // An hour later the endpoint may replay again.
    clock.advance(REPLAY_BUDGET.windowSeconds * 1000);
    const later = await replayEvents(deps, 'acme', e.id, { eventId: 'evt_00000' });
    expect(later.replayed).toBe(1);
  });
});

describe('replay reads', () => {
  it('bounds the events repeated replays read, even when they send none of them', async () => {
    // Prepare: a bounces-only endpoint and a log of deliveries only, longer than one replay reads.
    const { deps, store, queue, register } = setUp();
    const e = await register('acme', ['message.bounced']);
    const base = Date.parse('2026-05-01T00:00:00.000Z');
    await store.append(
      Array.from({ length: MAX_REPLAY_SCAN + 10 }, (_, i) => ({
        id: `evt_${String(i).padStart(6, '0')}`,
        tenant: 'acme',
        type: 'message.delivered' as const,
        timestamp: new Date(base + i * 1000).toISOString(),
        body: '{}',
      })),
    );
    let reads = 0;
    const since = store.since.bind(store);
    store.since = async (...args: Parameters<typeof since>) => {
      const page = await since(...args);
      reads += page.events.length;
      return page;
    };

    // Act: replay since the epoch in a loop; each reads MAX_REPLAY_SCAN events and queues nothing.
    const outcomes: string[] = [];
    for (let i = 0; i < 15; i++) {
      outcomes.push(
        await replayEvents(deps, 'acme', e.id, { since: new Date(0) }).then(
          () => 'ok',
          (error: unknown) => (error instanceof ProblemError ? error.problem.code : 'error'),
        ),
      );
    }

    // Assess: the loop is stopped (429) before it has read more than ten times the queue budget.
    expect(queue.jobs).toEqual([]);
    expect(outcomes).toContain('rate_limited');
    expect(reads).toBeLessThanOrEqual(10 * REPLAY_BUDGET.events + 2 * MAX_REPLAY_SCAN);
  });
});

describe('replay paging', () => {
  it('gets past more events of one instant than one replay takes (one batch of 100 messages to 50 recipients each)', async () => {
    // Prepare: 1,500 message.queued events of one accept (one timestamp), then three later ones.
    const { deps, store, queue, register } = setUp();
    const e = await register();
    const at = '2026-05-02T00:00:00.000Z';
    const event = (id: string, timestamp: string) => ({
      id,
      tenant: 'acme',
      type: 'message.queued' as const,
      timestamp,
      body: '{}',
    });
    await store.append([
      ...Array.from({ length: MAX_REPLAY_EVENTS + 500 }, (_, i) =>
        event(`evt_${String(i).padStart(5, '0')}`, at),
      ),
      event('evt_later_1', '2026-05-02T00:00:01.000Z'),
      event('evt_later_2', '2026-05-02T00:00:02.000Z'),
      event('evt_later_3', '2026-05-02T00:00:03.000Z'),
    ]);

    // Act: replay since before them, and go on from nextSince as the answer says.
    let since = new Date('2026-05-01T00:00:00.000Z');
    for (let call = 0; call < 5; call++) {
      const outcome = await replayEvents(deps, 'acme', e.id, { since });
      if (!outcome.truncated) break;
      since = new Date(outcome.nextSince ?? '');
    }

    // Assess: every event was replayed, the later ones included.
    const replayed = new Set(queue.jobs.map((j) => j.eventId));
    expect(replayed.has('evt_later_3')).toBe(true);
    expect(replayed.size).toBe(MAX_REPLAY_EVENTS + 503);
  });
});

describe('the replay route past the budget', () => {
  it('answers 429 rate_limited with Retry-After', async () => {
    // Prepare
    const store = new InMemoryWebhookStore();
    const queue = new InMemoryWebhookQueue();
    const harness = apiHarness(
      {},
      { deps: () => ({ webhookEndpoints: { store, queue, allowLoopbackHttp: false } }) },
    );
    const token = harness.addKey({ scopes: ['webhooks'], tenant: 'tenant-a' });
    const created = await harness.api(
      httpEvent(Route.createWebhook, { token, body: { url: 'https://hooks.example.com/' } }),
    );
    const { id } = jsonOf(created) as { id: string };
    await store.append([
      {
        id: 'evt_1',
        tenant: 'tenant-a',
        type: 'message.delivered',
        timestamp: '2026-01-01T00:00:00.000Z',
        body: '{}',
      },
    ]);
    // Spend the budget of every window the test's clock could be in.
    store.takeReplay = async () => 0;

    // Act
    const result = await harness.api(
      httpEvent(Route.replayWebhook, { token, pathParameters: { id }, body: { eventId: 'evt_1' } }),
    );

    // Assess
    expect(problemIn(result, 429).code).toBe('rate_limited');
    expect(Number(result.headers?.['retry-after'])).toBeGreaterThan(0);
    expect(queue.jobs).toEqual([]);
  });
});

describe('request bodies that cannot be stored', () => {
  // DynamoDB stores UTF-8: a lone surrogate fails the write (or the key) with a 500, after the
  // checks; the guard's requests refuse them for that reason.
  it.each([
    [
      'a description',
      () => createWebhookRequest({ url: 'https://hooks.example.com/', description: 'ops \ud800' }),
    ],
    ['a changed description', () => updateWebhookRequest({ description: '\udfffops' })],
    ['a replayed event id', () => replayRequest({ eventId: 'evt_\ud83d' })],
  ])('refuses a lone surrogate in %s with a 422', (_, parse) => {
    const thrown = (() => {
      try {
        parse();
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(ProblemError);
    expect((thrown as ProblemError).problem.status).toBe(422);
  });
});
