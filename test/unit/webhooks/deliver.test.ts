import { Webhook } from 'standardwebhooks';
import { beforeEach, describe, expect, it } from 'vitest';
import { type BreakerState, breakerPolicy } from '../../../lambdas/domain/webhooks/breaker.ts';
import {
  type DeliveryDeps,
  DeliveryStateContendedError,
  deliverJob,
  deliveryPolicy,
} from '../../../lambdas/domain/webhooks/deliver.ts';
import type { WebhookDeliveryJob, WebhookEndpoint } from '../../../lambdas/domain/webhooks/endpoint.ts';
import { newWebhookSecret } from '../../../lambdas/domain/webhooks/signing.ts';
import {
  type DeliveryRig,
  deliveryRig,
  type FakePoster,
  type InMemoryEndpointStateStore,
} from '../../support/webhook-delivery.ts';
import type {
  InMemoryWebhookQueue,
  InMemoryWebhookStore,
  RecordingWebhookPublisher,
} from '../../support/webhooks.ts';

const t0 = new Date('2026-12-06T10:00:00.000Z');
const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000);
const day = 24 * 3600;
const SECRET = newWebhookSecret(() => Buffer.alloc(32, 7));
const ID = 'wh_AAAAAAAAAAAAAAAAAAAAAAAA';

const endpoint = (overrides: Partial<WebhookEndpoint> = {}): WebhookEndpoint => ({
  id: ID,
  tenant: 'acme',
  url: 'https://hooks.acme.example/baton',
  events: ['message.delivered', 'message.bounced'],
  description: '',
  enabled: true,
  disabledReason: null,
  secrets: [{ secret: SECRET, createdAt: '2026-12-01T00:00:00.000Z' }],
  createdAt: '2026-12-01T00:00:00.000Z',
  updatedAt: '2026-12-01T00:00:00.000Z',
  version: 1,
  ...overrides,
});

const body = JSON.stringify({
  type: 'message.delivered',
  timestamp: '2026-12-06T09:59:59.000Z',
  data: { messageId: 'x', sequence: 2 },
});

const job = (overrides: Partial<WebhookDeliveryJob> = {}): WebhookDeliveryJob => ({
  v: 1,
  tenant: 'acme',
  endpointId: ID,
  eventId: 'evt_0123456789abcdef0123456789abcdef',
  type: 'message.delivered',
  body,
  attempt: 0,
  firstQueuedAt: t0.getTime(),
  notBefore: t0.getTime(),
  occurredAt: t0.getTime() - 1000,
  ...overrides,
});

let rig: DeliveryRig;
let store: InMemoryWebhookStore;
let state: InMemoryEndpointStateStore;
let poster: FakePoster;
let queue: InMemoryWebhookQueue;
let publisher: RecordingWebhookPublisher;
const deps = (): DeliveryDeps => rig.deps();

beforeEach(async () => {
  rig = deliveryRig(t0);
  ({ store, state, poster, queue, publisher } = rig);
  await store.create(endpoint());
});

/** Every slot of the endpoint held (`busy-0`, `busy-1`, ...), slot i's lease ending at `until(i)`. */
const takeEverySlot = (until: (i: number) => Date = () => at(30)) => {
  state.set(ID, {
    breaker: { status: 'closed', consecutiveFailures: 0 },
    leases: Object.fromEntries(
      Array.from({ length: deliveryPolicy.slots }, (_, i) => [`busy-${i}`, until(i).getTime()]),
    ),
  });
};

const failWith = (status: number, headers: { retryAfter?: string } = {}) => {
  poster.answer = () => ({ status, snippet: 'nope', latencyMs: 30, ...headers });
};

describe('deliverJob: when it may go', () => {
  it('defers a job whose time has not come by the time left, without an attempt', async () => {
    // Prepare
    const later = job({ notBefore: t0.getTime() + 1500 });

    // Act
    const decision = await deliverJob(later, deps());

    // Assess
    expect(decision).toEqual({ deferSeconds: 2 });
    expect(poster.requests).toHaveLength(0);
  });

  it('defers at most the 12 hours SQS can hide a message', async () => {
    // Prepare
    const later = job({ notBefore: at(2 * day).getTime() });

    // Act
    const decision = await deliverJob(later, deps());

    // Assess
    expect(decision).toEqual({ deferSeconds: 12 * 3600 });
  });

  it.each([
    ['deleted', 'no-endpoint', async () => void (await store.delete('acme', ID))],
    ['disabled', 'disabled', async () => store.update(endpoint({ enabled: false, version: 2 }), 1)],
    [
      'no longer subscribed',
      'not-subscribed',
      async () => store.update(endpoint({ events: ['message.bounced'], version: 2 }), 1),
    ],
  ])(
    'drops the job without an attempt or a log entry when the endpoint was %s',
    async (_, dropped, change) => {
      // Prepare
      await change();

      // Act
      const decision = await deliverJob(job(), deps());

      // Assess
      expect(decision).toEqual({ done: true, dropped });
      expect(poster.requests).toHaveLength(0);
      expect(store.attemptLog).toHaveLength(0);
    },
  );
});

describe('deliverJob: an attempt', () => {
  it('posts the exact body signed with the event id, verifiable with standardwebhooks', async () => {
    // Act
    const decision = await deliverJob(job(), deps());

    // Assess
    expect(decision).toEqual({
      done: true,
      attempt: { outcome: 'success', startedAt: t0, endpointDisabled: false },
    });
    const [request] = poster.requests;
    expect(request?.url).toBe('https://hooks.acme.example/baton');
    expect(request?.body).toBe(body);
    expect(request?.headers['webhook-id']).toBe('evt_0123456789abcdef0123456789abcdef');
    expect(request?.headers['webhook-timestamp']).toBe(String(t0.getTime() / 1000));
    expect(request?.headers['webhook-signature']).toBe(
      new Webhook(SECRET).sign('evt_0123456789abcdef0123456789abcdef', t0, body),
    );
  });

  it('signs with both secrets during a rotation', async () => {
    // Prepare
    const old = newWebhookSecret(() => Buffer.alloc(32, 9));
    await store.update(
      endpoint({
        secrets: [
          { secret: SECRET, createdAt: '2026-12-06T00:00:00.000Z' },
          { secret: old, createdAt: '2026-12-01T00:00:00.000Z', expiresAt: '2026-12-07T00:00:00.000Z' },
        ],
        version: 2,
      }),
      1,
    );

    // Act
    await deliverJob(job(), deps());

    // Assess
    expect(poster.requests[0]?.headers['webhook-signature'].split(' ')).toHaveLength(2);
  });

  it('records a success with its status, latency and the first bytes of the answer', async () => {
    // Prepare
    poster.answer = () => ({ status: 204, snippet: 'é'.repeat(600), latencyMs: 41 });

    // Act
    await deliverJob(job(), deps());

    // Assess
    const [entry] = store.attemptLog;
    expect(entry).toMatchObject({
      attempt: 1,
      statusCode: 204,
      latencyMs: 41,
      outcome: 'success',
      at: t0.toISOString(),
    });
    expect(entry?.response).toBe('é'.repeat(512));
    expect(queue.jobs).toHaveLength(0);
  });

  it('queues the next attempt as a new job with Baton’s attempt number and its time', async () => {
    // Prepare
    failWith(500);

    // Act
    const decision = await deliverJob(job(), deps());

    // Assess
    expect(decision).toMatchObject({ done: true, attempt: { outcome: 'retry' } });
    expect(queue.jobs).toEqual([job({ attempt: 1, notBefore: t0.getTime() + 5000 })]);
    expect(store.attemptLog[0]).toMatchObject({
      statusCode: 500,
      outcome: 'retry',
      response: 'nope',
      nextAttemptAt: at(5).toISOString(),
    });
  });

  it('uses the job’s attempt number for the schedule, not how often the message was received', async () => {
    // Prepare
    failWith(502);

    // Act
    await deliverJob(job({ attempt: 3 }), deps());

    // Assess: the fourth attempt failed, the fifth is due after 2 h.
    expect(queue.jobs[0]).toMatchObject({ attempt: 4, notBefore: t0.getTime() + 2 * 3600 * 1000 });
    expect(store.attemptLog[0]?.attempt).toBe(4);
  });

  it('honours a 429’s Retry-After when it is longer than the schedule', async () => {
    // Prepare
    failWith(429, { retryAfter: '120' });

    // Act
    await deliverJob(job(), deps());

    // Assess
    expect(queue.jobs[0]?.notBefore).toBe(t0.getTime() + 120_000);
  });

  it('treats a redirect as a failure to retry, never following it', async () => {
    // Prepare
    poster.answer = () => ({ status: 302, snippet: '', latencyMs: 5 });

    // Act
    await deliverJob(job(), deps());

    // Assess
    expect(poster.requests).toHaveLength(1);
    expect(store.attemptLog[0]).toMatchObject({ statusCode: 302, outcome: 'retry' });
    expect(queue.jobs).toHaveLength(1);
  });

  it.each([
    ['timeout', 'no answer within 15 s'],
    ['refused-address', '10.0.0.1 is a private address (10.0.0.0/8)'],
    ['network', 'ECONNREFUSED'],
  ] as const)('records a %s as an attempt with no status and retries it', async (error, detail) => {
    // Prepare
    poster.answer = () => ({ error, detail, latencyMs: 15_000 });

    // Act
    await deliverJob(job(), deps());

    // Assess
    expect(store.attemptLog[0]).toMatchObject({
      statusCode: null,
      outcome: 'retry',
      response: `${error}: ${detail}`,
    });
    expect(queue.jobs).toHaveLength(1);
  });

  it('gives up once the three days are over', async () => {
    // Prepare
    failWith(500);
    rig.now = at(3 * day - 60);
    state.set(ID, {
      breaker: { status: 'closed', consecutiveFailures: 1, failingSince: at(day).toISOString() },
      leases: {},
    });

    // Act
    const decision = await deliverJob(job({ attempt: 9 }), deps());

    // Assess
    expect(decision).toMatchObject({ done: true, attempt: { outcome: 'gave-up', endpointDisabled: false } });
    expect(store.attemptLog[0]).toMatchObject({ outcome: 'gave-up' });
    expect(store.attemptLog[0]?.nextAttemptAt).toBeUndefined();
    expect(queue.jobs).toHaveLength(0);
  });

  it('marks a replayed job’s attempts as replays', async () => {
    // Act
    await deliverJob(job({ replay: true }), deps());

    // Assess
    expect(store.attemptLog[0]?.replay).toBe(true);
  });
});

describe('deliverJob: disabling the endpoint', () => {
  it('disables the endpoint after a 410 and tells the tenant’s other endpoints', async () => {
    // Prepare
    failWith(410);

    // Act
    const decision = await deliverJob(job(), deps());

    // Assess
    expect(decision).toMatchObject({ done: true, attempt: { outcome: 'disabled', endpointDisabled: true } });
    expect(await store.get('acme', ID)).toMatchObject({ enabled: false, disabledReason: 'gone', version: 2 });
    expect(publisher.events.map((e) => e.payload)).toEqual([
      {
        type: 'webhook.endpoint.disabled',
        timestamp: t0.toISOString(),
        data: { endpointId: ID, reason: 'gone' },
      },
    ]);
    expect(store.attemptLog[0]).toMatchObject({ statusCode: 410, outcome: 'disabled' });
    expect(queue.jobs).toHaveLength(0);
  });

  it('disables an endpoint that failed every attempt for three days', async () => {
    // Prepare
    failWith(500);
    rig.now = at(3 * day);
    state.set(ID, {
      breaker: {
        status: 'half-open',
        consecutiveFailures: 40,
        failingSince: t0.toISOString(),
        cooldownSeconds: 3600,
      },
      leases: {},
    });

    // Act
    const decision = await deliverJob(job({ attempt: 9 }), deps());

    // Assess
    expect(decision).toMatchObject({ done: true, attempt: { outcome: 'gave-up', endpointDisabled: true } });
    expect(await store.get('acme', ID)).toMatchObject({ enabled: false, disabledReason: 'failing' });
    expect(publisher.events[0]?.payload).toMatchObject({ data: { endpointId: ID, reason: 'failing' } });
  });

  it('re-reads the endpoint when it changed meanwhile and still disables it', async () => {
    // Prepare
    failWith(410);
    const original = store.update.bind(store);
    let raced = false;
    store.update = async (next, expected) => {
      if (!raced) {
        raced = true;
        await original(endpoint({ description: 'renamed', version: 2 }), 1);
      }
      return original(next, expected);
    };

    // Act
    await deliverJob(job(), deps());

    // Assess
    expect(await store.get('acme', ID)).toMatchObject({ enabled: false, description: 'renamed', version: 3 });
    expect(publisher.events).toHaveLength(1);
  });

  it('finishes a disable whose endpoint write was lost, with the same event', async () => {
    // Prepare
    const disabledAt = at(-10).toISOString();
    state.set(ID, {
      breaker: { status: 'disabled', disabled: true, reason: 'gone', disabledAt },
      leases: {},
    });

    // Act
    const decision = await deliverJob(job(), deps());

    // Assess
    expect(decision).toEqual({ done: true, dropped: 'disable-finished' });
    expect(poster.requests).toHaveLength(0);
    expect(await store.get('acme', ID)).toMatchObject({ enabled: false, disabledReason: 'gone' });
    expect(publisher.events[0]?.payload.timestamp).toBe(disabledAt);
  });

  it('starts a re-enabled endpoint from a closed breaker', async () => {
    // Prepare
    state.set(ID, {
      breaker: { status: 'disabled', disabled: true, reason: 'failing', disabledAt: at(-day).toISOString() },
      leases: {},
    });
    await store.update(endpoint({ updatedAt: at(-60).toISOString(), version: 2 }), 1);
    failWith(500);

    // Act
    const decision = await deliverJob(job(), deps());

    // Assess
    expect(decision).toMatchObject({ done: true, attempt: { outcome: 'retry', endpointDisabled: false } });
    expect(state.state(ID).breaker).toEqual({
      status: 'closed',
      consecutiveFailures: 1,
      failingSince: t0.toISOString(),
    });
    expect((await store.get('acme', ID))?.enabled).toBe(true);
  });
});

describe('deliverJob: breaker and concurrency', () => {
  it('opens the breaker only after five consecutive failed attempts', async () => {
    // Prepare
    failWith(500);
    const seen: BreakerState['status'][] = [];

    // Act
    for (let i = 0; i < breakerPolicy.failureThreshold; i++) {
      await deliverJob(job({ attempt: i }), deps());
      seen.push(state.state(ID).breaker.status);
    }

    // Assess
    expect(seen).toEqual(['closed', 'closed', 'closed', 'closed', 'open']);
  });

  it('defers deliveries to an open breaker until its cool-down ends, without an attempt', async () => {
    // Prepare
    state.set(ID, {
      breaker: {
        status: 'open',
        consecutiveFailures: 5,
        failingSince: t0.toISOString(),
        cooldownSeconds: 60,
        retryAt: at(42).toISOString(),
      },
      leases: {},
    });

    // Act
    const decision = await deliverJob(job(), deps());

    // Assess
    expect(decision).toEqual({ deferSeconds: 42 });
    expect(poster.requests).toHaveLength(0);
    expect(store.attemptLog).toHaveLength(0);
  });

  it('lets one probe at a time through a half-open breaker', async () => {
    // Prepare
    state.set(ID, {
      breaker: {
        status: 'open',
        consecutiveFailures: 5,
        failingSince: t0.toISOString(),
        cooldownSeconds: 60,
        retryAt: t0.toISOString(),
      },
      leases: {},
    });
    let second: unknown;
    poster.answer = () => ({ status: 200, snippet: '', latencyMs: 1 });
    const probe = poster.post.bind(poster);
    poster.post = async (request) => {
      // While the probe is in flight, another delivery to the endpoint arrives.
      if (poster.requests.length === 0) second = await deliverJob(job({ eventId: 'evt_other' }), deps());
      return probe(request);
    };

    // Act
    const first = await deliverJob(job(), deps());

    // Assess
    expect(second).toEqual({ deferSeconds: breakerPolicy.probeLeaseSeconds });
    expect(first).toMatchObject({ done: true, attempt: { outcome: 'success' } });
    expect(poster.requests).toHaveLength(1);
    expect(state.state(ID).breaker).toEqual({ status: 'closed', consecutiveFailures: 0 });
  });

  it('defers a few seconds when every slot of the endpoint is taken', async () => {
    // Prepare
    takeEverySlot();

    // Act
    const decision = await deliverJob(job(), deps());

    // Assess
    expect(decision).toEqual({ deferSeconds: 4 });
    expect(poster.requests).toHaveLength(0);
  });

  it('waits in place for a slot another delivery gives back, rather than deferring, when it may sleep', async () => {
    // Prepare: every slot taken; the first pause frees one (a fast receiver answered).
    takeEverySlot();
    const pauses: number[] = [];
    const sleep = async (ms: number) => {
      pauses.push(ms);
      const { breaker, leases } = state.state(ID);
      const { 'busy-0': _freed, ...rest } = leases;
      state.set(ID, { breaker, leases: rest });
    };

    // Act
    const decision = await deliverJob(job(), { ...deps(), sleep });

    // Assess
    expect(decision).toMatchObject({ done: true, attempt: { outcome: 'success' } });
    expect(pauses).toHaveLength(1);
    expect(poster.requests).toHaveLength(1);
  });

  it('defers once its wait for a slot has lasted the policy’s limit', async () => {
    // Prepare
    takeEverySlot();
    let waited = 0;
    const sleep = async (ms: number) => {
      waited += ms;
    };

    // Act
    const decision = await deliverJob(job(), { ...deps(), sleep });

    // Assess
    expect(decision).toEqual({ deferSeconds: 4 });
    expect(waited).toBeGreaterThanOrEqual(deliveryPolicy.slotsFullWaitMs);
    expect(waited).toBeLessThan(deliveryPolicy.slotsFullWaitMs + 200);
    expect(poster.requests).toHaveLength(0);
  });

  it('takes a slot whose lease ran out (a crashed holder) and gives it back after the attempt', async () => {
    // Prepare
    takeEverySlot((i) => (i === 0 ? at(-1) : at(30)));
    let during: Record<string, number> = {};
    const send = poster.post.bind(poster);
    poster.post = async (request) => {
      during = { ...state.state(ID).leases };
      return send(request);
    };

    // Act
    const decision = await deliverJob(job(), deps());

    // Assess
    expect(decision).toMatchObject({ done: true });
    expect(Object.keys(during).sort()).toEqual(['busy-1', 'busy-2', 'busy-3', 'lease-0']);
    expect(Object.keys(state.state(ID).leases).sort()).toEqual(['busy-1', 'busy-2', 'busy-3']);
  });

  it('re-reads and tries again when another delivery changed the state between read and write', async () => {
    // Prepare
    let raced = false;
    state.beforeWrite = (id) => {
      if (raced) return;
      raced = true;
      state.set(id, {
        breaker: { status: 'closed', consecutiveFailures: 2, failingSince: t0.toISOString() },
        leases: { other: at(30).getTime() },
      });
    };
    failWith(500);

    // Act
    await deliverJob(job(), deps());

    // Assess: the other delivery's slot and failures are kept, this one's failure added.
    expect(state.state(ID)).toEqual({
      breaker: { status: 'closed', consecutiveFailures: 3, failingSince: t0.toISOString() },
      leases: { other: at(30).getTime() },
    });
  });
});

describe('deliverJob: failures around the attempt', () => {
  it('counts a poster that throws as a network failure, and gives the slot back', async () => {
    // Prepare
    poster.post = async () => {
      throw new Error('socket exploded');
    };

    // Act
    const decision = await deliverJob(job(), deps());

    // Assess
    expect(decision).toMatchObject({ done: true, attempt: { outcome: 'retry' } });
    expect(store.attemptLog[0]).toMatchObject({ statusCode: null, response: 'network: socket exploded' });
    expect(state.state(ID).leases).toEqual({});
  });

  it('throws when the retry cannot be queued, after logging the attempt, so the message comes back', async () => {
    // Prepare
    failWith(500);
    queue.failing = true;

    // Act
    const delivering = deliverJob(job(), deps());

    // Assess
    await expect(delivering).rejects.toThrow('webhook queue refused the batch');
    expect(store.attemptLog).toHaveLength(1);
    expect(state.state(ID).leases).toEqual({});
  });

  it('defers a few seconds, before any attempt, when the state never stops changing while it takes a slot', async () => {
    // Prepare: failing the message would hide it for the queue's whole visibility timeout (180 s).
    state.beforeWrite = (id) => state.set(id, state.state(id));
    const pauses: number[] = [];

    // Act
    const decision = await deliverJob(job(), { ...deps(), sleep: async (ms: number) => pauses.push(ms) });

    // Assess: it backed off between the lost races, then deferred.
    expect(decision).toEqual({ deferSeconds: 4 });
    expect(pauses).toHaveLength(deliveryPolicy.writeTries);
    expect(poster.requests).toHaveLength(0);
  });

  it('gives up with DeliveryStateContendedError when the state never stops changing while it records the outcome', async () => {
    // Prepare: the slot is taken, then every write loses.
    let writes = 0;
    state.beforeWrite = (id) => {
      if (++writes > 1) state.set(id, state.state(id));
    };

    // Act
    const delivering = deliverJob(job(), deps());

    // Assess
    await expect(delivering).rejects.toThrow(DeliveryStateContendedError);
    expect(poster.requests).toHaveLength(1);
  });
});

describe('deliverJob: an endpoint that cannot sign', () => {
  it('throws before taking a slot when no secret is active', async () => {
    // Prepare
    await store.update(
      endpoint({
        secrets: [
          { secret: SECRET, createdAt: '2026-12-01T00:00:00.000Z', expiresAt: '2026-12-02T00:00:00.000Z' },
        ],
        version: 2,
      }),
      1,
    );

    // Act
    const delivering = deliverJob(job(), deps());

    // Assess
    await expect(delivering).rejects.toThrow('no active webhook secret to sign with');
    expect(state.items.size).toBe(0);
    expect(poster.requests).toHaveLength(0);
  });
});
