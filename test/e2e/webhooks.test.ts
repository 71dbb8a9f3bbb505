import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it } from 'vitest';
import {
  WEBHOOK_EVENT_TYPES,
  type WebhookEventType,
  webhookEventId,
} from '../../lambdas/domain/webhooks/events.ts';
import { WEBHOOK_PAYLOAD_SCHEMAS } from '../../lambdas/domain/webhooks/payload-schemas.ts';
import { seedApiKey } from '../support/e2e-keys.ts';
import { receipt, type TestBaton, waitFor, withTestBaton } from '../support/local-baton.ts';
import { type ReceivedWebhook, WebhookReceiver } from '../support/webhooks.ts';

// Issue 14 end to end through local mode: the api's webhook routes, the producers (api, senders,
// feedback), the webhook queue and the delivery function in their processes, against a real
// receiver on 127.0.0.1 that verifies every delivery with the `standardwebhooks` package. Each test
// but the first has a tenant of its own, so its receiver gets its own events only.

let baton: TestBaton;
withTestBaton((started) => {
  baton = started;
});

const receivers: WebhookReceiver[] = [];
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
});

const SIMULATOR = 'simulator.amazonses.com';

/** An endpoint as the routes show it; `secret` only in the answers to create and rotate-secret. */
interface EndpointView {
  readonly id: string;
  readonly url: string;
  readonly events: WebhookEventType[];
  readonly description: string;
  readonly enabled: boolean;
  readonly disabledReason: 'gone' | 'failing' | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly secret?: string;
}

interface AttemptView {
  readonly eventId: string;
  readonly type: string;
  readonly attempt: number;
  readonly at: string;
  readonly statusCode: number | null;
  readonly latencyMs: number;
  readonly response: string;
  readonly outcome: string;
  readonly nextAttemptAt?: string;
}

/** A key of a tenant of its own that may send, read and manage webhooks. */
const tenantKey = (tenant: string): Promise<string> =>
  seedApiKey(baton, { tenant, scopes: ['send', 'read', 'suppressions', 'webhooks'] });

async function newReceiver(): Promise<WebhookReceiver> {
  const receiver = await WebhookReceiver.start();
  receivers.push(receiver);
  return receiver;
}

async function call(path: string, init: RequestInit & { json?: unknown; auth?: string | null } = {}) {
  const res = await baton.request(path, init);
  const text = await res.text();
  return { res, status: res.status, text, body: (text === '' ? undefined : JSON.parse(text)) as unknown };
}

/**
 * Registers the receiver's URL (with `auth`, the development key when undefined), gives the
 * receiver the secret, and waits out the producers' endpoint cache (1 s in local mode) so the next
 * state change reaches the new endpoint.
 */
async function register(
  receiver: WebhookReceiver,
  auth: string | undefined,
  fields: Record<string, unknown> = {},
): Promise<EndpointView & { secret: string }> {
  const created = await call('/v1/webhooks', {
    json: { url: receiver.url(), description: 'e2e receiver', ...fields },
    ...(auth === undefined ? {} : { auth }),
  });
  expect(created.status, created.text).toBe(201);
  const view = created.body as EndpointView & { secret: string };
  receiver.secrets = [view.secret];
  await new Promise((r) => setTimeout(r, 1_200));
  return view;
}

/** POST /v1/messages to one recipient; the message id. */
async function send(to: string, auth: string | undefined, tags: Record<string, string>): Promise<string> {
  const sent = await call('/v1/messages', {
    json: receipt(to, { tags }),
    ...(auth === undefined ? {} : { auth }),
  });
  expect(sent.status, sent.text).toBe(202);
  return (sent.body as { id: string }).id;
}

const idOf = (r: ReceivedWebhook): string => String(r.headers['webhook-id']);

/** The verified deliveries about one message, in arrival order. */
const aboutMessage = (receiver: WebhookReceiver, messageId: string): ReceivedWebhook[] =>
  receiver.verified().filter((r) => r.payload?.data.messageId === messageId);

/** Waits until a verified, acknowledged delivery of each type arrived for the message; the first of each. */
async function arrive(
  receiver: WebhookReceiver,
  messageId: string,
  types: readonly WebhookEventType[],
  timeoutMs = 15_000,
): Promise<Map<WebhookEventType, ReceivedWebhook>> {
  const firstOk = (type: WebhookEventType) =>
    aboutMessage(receiver, messageId).find((r) => r.payload?.type === type && r.status === 200);
  await receiver.waitFor(() => types.every((t) => firstOk(t) !== undefined), timeoutMs);
  return new Map(types.map((t) => [t, firstOk(t) as ReceivedWebhook]));
}

async function endpoint(id: string, auth?: string): Promise<EndpointView> {
  const got = await call(`/v1/webhooks/${id}`, auth === undefined ? {} : { auth });
  expect(got.status, got.text).toBe(200);
  return got.body as EndpointView;
}

async function attempts(id: string, auth?: string): Promise<AttemptView[]> {
  const got = await call(`/v1/webhooks/${id}/deliveries`, auth === undefined ? {} : { auth });
  expect(got.status, got.text).toBe(200);
  return (got.body as { items: AttemptView[] }).items;
}

/** The endpoints of a list answer, whichever name the list is under. */
const listed = (body: unknown): EndpointView[] => {
  const b = body as { webhooks?: EndpointView[]; data?: EndpointView[]; items?: EndpointView[] };
  return b.webhooks ?? b.data ?? b.items ?? [];
};

describe('webhooks in local mode', () => {
  it('delivers signed message.queued, sent, delivered and bounced events within seconds of sending, with the development key', async () => {
    // Prepare: docs/webhooks.md's story, a loopback endpoint registered with the development key.
    const receiver = await newReceiver();
    const created = await register(receiver, undefined);
    expect(created).toMatchObject({
      id: expect.stringMatching(/^wh_[A-Za-z0-9]{24}$/),
      url: receiver.url(),
      events: expect.arrayContaining([...WEBHOOK_EVENT_TYPES]),
      description: 'e2e receiver',
      enabled: true,
      disabledReason: null,
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    const delivered = `success+wh-readme@${SIMULATOR}`;
    const bounced = `bounce+wh-readme@${SIMULATOR}`;

    // Act
    const started = Date.now();
    const deliveredId = await send(delivered, undefined, { order: 'wh-readme-1' });
    const bouncedId = await send(bounced, undefined, { order: 'wh-readme-2' });
    const good = await arrive(receiver, deliveredId, ['message.queued', 'message.sent', 'message.delivered']);
    const bad = await arrive(receiver, bouncedId, ['message.queued', 'message.sent', 'message.bounced']);
    const elapsed = Date.now() - started;

    // Assess: every request verified, each body as its schema says, the id the event's own.
    expect(receiver.received.filter((r) => !r.verified)).toEqual([]);
    expect(elapsed).toBeLessThan(15_000);
    const check = (
      r: ReceivedWebhook,
      messageId: string,
      recipient: string,
      tags: Record<string, string>,
    ) => {
      const payload = r.payload as { type: WebhookEventType; data: Record<string, unknown> };
      expect(WEBHOOK_PAYLOAD_SCHEMAS[payload.type].safeParse(payload).error?.issues ?? []).toEqual([]);
      expect(payload.data).toMatchObject({ messageId, recipient, tags, stream: 'transactional' });
      expect(idOf(r)).toBe(webhookEventId(messageId, Number(payload.data.sequence), recipient));
      expect(r.method).toBe('POST');
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      // Never the body, the subject or the From address.
      expect(r.body).not.toMatch(/Thanks for your order|Your receipt|orders@example\.com/);
      return Number(payload.data.sequence);
    };
    const goodSequence = [...good.values()].map((r) =>
      check(r, deliveredId, delivered, { order: 'wh-readme-1' }),
    );
    const badSequence = [...bad.values()].map((r) => check(r, bouncedId, bounced, { order: 'wh-readme-2' }));
    expect(goodSequence).toEqual([...goodSequence].sort((a, b) => a - b));
    expect(new Set(goodSequence).size).toBe(3);
    expect(badSequence).toEqual([...badSequence].sort((a, b) => a - b));
    expect(bad.get('message.bounced')?.payload?.data).toMatchObject({
      kind: 'hard',
      type: 'Permanent',
      subType: 'General',
    });
  });

  it('lists, reads, updates and deletes endpoints, never showing the secret again, and delivers only the subscribed types', async () => {
    // Prepare
    const token = await tenantKey('wh-crud');
    const receiver = await newReceiver();
    const created = await register(receiver, token, { events: ['message.delivered'] });

    // Act
    const list = await call('/v1/webhooks', { auth: token });
    const one = await endpoint(created.id, token);
    const patched = await call(`/v1/webhooks/${created.id}`, {
      method: 'PATCH',
      json: { events: ['message.delivered', 'message.bounced'] },
      auth: token,
    });
    await new Promise((r) => setTimeout(r, 1_200));
    const messageId = await send(`success+wh-crud@${SIMULATOR}`, token, { order: 'wh-crud' });
    await arrive(receiver, messageId, ['message.delivered']);
    // Queued and sent happened before delivered: had they been sent to this endpoint, they would
    // have arrived by now, as delivered did.
    await new Promise((r) => setTimeout(r, 2_000));
    const removed = await call(`/v1/webhooks/${created.id}`, { method: 'DELETE', auth: token });
    const gone = await call(`/v1/webhooks/${created.id}`, { auth: token });

    // Assess
    expect(list.status, list.text).toBe(200);
    expect(listed(list.body).map((e) => e.id)).toEqual([created.id]);
    expect(list.text).not.toContain(created.secret);
    expect(one).toMatchObject({ id: created.id, url: receiver.url(), events: ['message.delivered'] });
    expect(one).not.toHaveProperty('secret');
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ id: created.id, events: ['message.delivered', 'message.bounced'] });
    expect(patched.text).not.toContain(created.secret);
    expect(receiver.verified().map((r) => r.payload?.type)).toEqual(['message.delivered']);
    expect(removed.status, removed.text).toBe(204);
    expect(gone.status).toBe(404);
  });

  it('replays an event by id and every event since a time, with the same webhook-id and body', async () => {
    // Prepare
    const token = await tenantKey('wh-replay');
    const receiver = await newReceiver();
    const created = await register(receiver, token);
    const since = new Date(Date.now() - 1_000).toISOString();
    const messageId = await send(`success+wh-replay@${SIMULATOR}`, token, { order: 'wh-replay' });
    const first = await arrive(receiver, messageId, ['message.queued', 'message.sent', 'message.delivered']);
    const original = first.get('message.delivered') as ReceivedWebhook;
    const copies = (id: string) => receiver.verified().filter((r) => idOf(r) === id);

    // Act: one event by its id.
    const byId = await call(`/v1/webhooks/${created.id}/replay`, {
      json: { eventId: idOf(original) },
      auth: token,
    });
    await receiver.waitFor(() => copies(idOf(original)).length >= 2);

    // Assess
    expect(byId.status, byId.text).toBe(202);
    expect(byId.body).toMatchObject({ replayed: 1, truncated: false });
    const replayed = copies(idOf(original))[1] as ReceivedWebhook;
    expect(replayed.body).toBe(original.body);
    expect(replayed.verified).toBe(true);

    // Act: everything since before the message.
    const bySince = await call(`/v1/webhooks/${created.id}/replay`, { json: { since }, auth: token });
    const ids = [...first.values()].map(idOf);
    await receiver.waitFor(() => ids.every((id) => copies(id).length >= (id === idOf(original) ? 3 : 2)));

    // Assess
    expect(bySince.status, bySince.text).toBe(202);
    expect(bySince.body).toMatchObject({ replayed: expect.any(Number), truncated: false });
    expect((bySince.body as { replayed: number }).replayed).toBeGreaterThanOrEqual(3);
    for (const event of first.values()) {
      expect(copies(idOf(event)).every((copy) => copy.body === event.body)).toBe(true);
    }
  });

  it('retries a delivery the receiver answered 500 about five seconds later, with the same webhook-id, and logs both attempts', async () => {
    // Prepare: every event's first delivery fails (three in a row: below the breaker's five).
    const token = await tenantKey('wh-retry');
    const receiver = await newReceiver();
    const seen = new Map<string, number[]>();
    receiver.answer = ({ headers }) => {
      const id = String(headers['webhook-id']);
      const times = seen.get(id) ?? [];
      times.push(Date.now());
      seen.set(id, times);
      return times.length === 1 ? { status: 500, body: 'try again later' } : { status: 200 };
    };
    const created = await register(receiver, token);

    // Act
    const messageId = await send(`success+wh-retry@${SIMULATOR}`, token, { order: 'wh-retry' });
    const events = await arrive(receiver, messageId, ['message.delivered'], 30_000);

    // Assess: the retry is the same event, about 5 s (±10 %) after the failure.
    const retried = events.get('message.delivered') as ReceivedWebhook;
    const all = receiver.received.filter((r) => idOf(r) === idOf(retried));
    expect(all.map((r) => r.status)).toEqual([500, 200]);
    expect(all.map((r) => r.verified)).toEqual([true, true]);
    expect(all[0]?.body).toBe(all[1]?.body);
    const [failedAt = 0, retriedAt = 0] = seen.get(idOf(retried)) ?? [];
    expect(retriedAt - failedAt).toBeGreaterThanOrEqual(4_000);
    expect(retriedAt - failedAt).toBeLessThan(12_000);

    // Assess: the deliveries log, newest first, has both attempts with their status codes.
    const log = await waitFor('both attempts in the deliveries log', async () => {
      const found = (await attempts(created.id, token)).filter((a) => a.eventId === idOf(retried));
      return found.length >= 2 ? found : undefined;
    });
    expect(log).toEqual([
      expect.objectContaining({ attempt: 2, statusCode: 200, outcome: 'success', type: 'message.delivered' }),
      expect.objectContaining({
        attempt: 1,
        statusCode: 500,
        outcome: 'retry',
        response: expect.stringContaining('try again later'),
        nextAttemptAt: expect.any(String),
      }),
    ]);
    const everything = await attempts(created.id, token);
    const times = everything.map((a) => Date.parse(a.at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(everything.every((a) => a.latencyMs >= 0)).toBe(true);
  });

  it('disables an endpoint that answers 410 Gone, delivers nothing more to it, and PATCH enabled turns it back on', async () => {
    // Prepare
    const token = await tenantKey('wh-gone');
    const receiver = await newReceiver();
    receiver.answer = () => ({ status: 410 });
    const created = await register(receiver, token);

    // Act
    const firstId = await send(`success+wh-gone-1@${SIMULATOR}`, token, { order: 'wh-gone' });
    const disabled = await waitFor('the endpoint to be disabled', async () => {
      const view = await endpoint(created.id, token);
      return view.enabled ? undefined : view;
    });

    // Assess
    expect(disabled).toMatchObject({ enabled: false, disabledReason: 'gone' });
    expect(receiver.verified().length).toBeGreaterThanOrEqual(1);
    const log = await waitFor('the 410 in the deliveries log', async () => {
      const found = (await attempts(created.id, token)).find((a) => a.statusCode === 410);
      return found;
    });
    expect(log.outcome).toBe('disabled');

    // Act: what the first message still had in flight settles; a second message then finds no endpoint.
    await waitFor('the first message to be delivered', async () => {
      const view = await call(`/v1/messages/${firstId}`, { auth: token });
      return (view.body as { status: string }).status === 'delivered' ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 3_000));
    const before = receiver.received.length;
    const secondId = await send(`success+wh-gone-2@${SIMULATOR}`, token, { order: 'wh-gone' });
    await waitFor('the second message to be delivered', async () => {
      const view = await call(`/v1/messages/${secondId}`, { auth: token });
      return (view.body as { status: string }).status === 'delivered' ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 3_000));

    // Assess
    expect(receiver.received.length).toBe(before);

    // Act: the owner turns it back on, and the receiver answers again.
    receiver.answer = () => ({ status: 200 });
    const enabled = await call(`/v1/webhooks/${created.id}`, {
      method: 'PATCH',
      json: { enabled: true },
      auth: token,
    });
    await new Promise((r) => setTimeout(r, 1_200));
    const thirdId = await send(`success+wh-gone-3@${SIMULATOR}`, token, { order: 'wh-gone' });

    // Assess
    expect(enabled.status, enabled.text).toBe(200);
    expect(enabled.body).toMatchObject({ enabled: true, disabledReason: null });
    await arrive(receiver, thirdId, ['message.delivered']);
  });

  it('signs with both the old and the new secret after rotate-secret', async () => {
    // Prepare
    const token = await tenantKey('wh-rotate');
    const receiver = await newReceiver();
    const created = await register(receiver, token);
    const oldSecret = created.secret;

    // Act
    const rotated = await call(`/v1/webhooks/${created.id}/rotate-secret`, { method: 'POST', auth: token });
    const newSecret = (rotated.body as { secret: string }).secret;
    receiver.secrets = [newSecret];
    await new Promise((r) => setTimeout(r, 1_200));
    const messageId = await send(`success+wh-rotate@${SIMULATOR}`, token, { order: 'wh-rotate' });
    const events = await arrive(receiver, messageId, ['message.queued', 'message.sent', 'message.delivered']);

    // Assess
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body).toMatchObject({ id: created.id, url: receiver.url(), enabled: true });
    expect(newSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(newSecret).not.toBe(oldSecret);
    for (const r of events.values()) {
      const headers = {
        'webhook-id': idOf(r),
        'webhook-timestamp': String(r.headers['webhook-timestamp']),
        'webhook-signature': String(r.headers['webhook-signature']),
      };
      expect(headers['webhook-signature'].split(' ')).toEqual([
        expect.stringMatching(/^v1,[A-Za-z0-9+/]{43}=$/),
        expect.stringMatching(/^v1,[A-Za-z0-9+/]{43}=$/),
      ]);
      expect(new Webhook(oldSecret).verify(r.body, headers)).toEqual(r.payload);
      expect(new Webhook(newSecret).verify(r.body, headers)).toEqual(r.payload);
    }
    const shown = await call(`/v1/webhooks/${created.id}`, { auth: token });
    expect(shown.text).not.toContain(oldSecret);
    expect(shown.text).not.toContain(newSecret);
  });

  it.each([
    ['http://10.0.0.1/x', /must use https/],
    ['https://10.0.0.1/x', /10\.0\.0\.1 is a private address/],
    ['https://167772161/x', /10\.0\.0\.1 is a private address/],
    ['https://0xa9.0xfe.0xa9.0xfe/latest/meta-data/', /instance metadata address/],
    ['https://100.64.0.1/hooks', /carrier-grade NAT/],
    ['https://[::ffff:192.168.1.1]/hooks', /IPv4-mapped address of 192\.168\.1\.1, is a private address/],
    ['https://user:secret@example.com/hooks', /must not carry credentials/],
    ['https://intranet.internal/hooks', /not a public DNS name/],
  ])('refuses %s with a 422 problem naming the reason, and stores nothing', async (url, reason) => {
    // Prepare
    const token = await tenantKey('wh-ssrf');

    // Act
    const refused = await call('/v1/webhooks', { json: { url }, auth: token });
    const list = await call('/v1/webhooks', { auth: token });

    // Assess
    expect(refused.status, refused.text).toBe(422);
    expect(refused.res.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.text).toMatch(reason);
    expect(listed(list.body)).toEqual([]);
  });

  it('accepts http://localhost in local mode, for a receiver on the developer’s machine', async () => {
    // Prepare
    const token = await tenantKey('wh-localhost');

    // Act
    const created = await call('/v1/webhooks', {
      json: { url: 'http://localhost:4000/webhooks' },
      auth: token,
    });

    // Assess
    expect(created.status, created.text).toBe(201);
    const id = (created.body as EndpointView).id;
    expect((await call(`/v1/webhooks/${id}`, { method: 'DELETE', auth: token })).status).toBe(204);
  });

  it("hides a tenant's endpoint and events from another tenant's key", async () => {
    // Prepare: two tenants, each with a receiver.
    const owner = await tenantKey('wh-owner');
    const stranger = await tenantKey('wh-stranger');
    const ownerReceiver = await newReceiver();
    const strangerReceiver = await newReceiver();
    const owned = await register(ownerReceiver, owner);
    await register(strangerReceiver, stranger);

    // Act
    const answers = await Promise.all([
      call(`/v1/webhooks/${owned.id}`, { auth: stranger }),
      call(`/v1/webhooks/${owned.id}`, { method: 'PATCH', json: { enabled: false }, auth: stranger }),
      call(`/v1/webhooks/${owned.id}/rotate-secret`, { method: 'POST', auth: stranger }),
      call(`/v1/webhooks/${owned.id}/deliveries`, { auth: stranger }),
      call(`/v1/webhooks/${owned.id}/replay`, { json: { since: new Date(0).toISOString() }, auth: stranger }),
      call(`/v1/webhooks/${owned.id}`, { method: 'DELETE', auth: stranger }),
    ]);
    const strangersList = await call('/v1/webhooks', { auth: stranger });
    const messageId = await send(`success+wh-owner@${SIMULATOR}`, owner, { order: 'wh-owner' });
    await arrive(ownerReceiver, messageId, ['message.queued', 'message.sent', 'message.delivered']);
    await new Promise((r) => setTimeout(r, 1_000));

    // Assess
    expect(answers.map((a) => a.status)).toEqual([404, 404, 404, 404, 404, 404]);
    expect(listed(strangersList.body).map((e) => e.id)).not.toContain(owned.id);
    expect(await endpoint(owned.id, owner)).toMatchObject({ enabled: true });
    expect(strangerReceiver.received).toEqual([]);
  });

  it('refuses a key without the webhooks scope', async () => {
    // Prepare
    const token = await seedApiKey(baton, { tenant: 'wh-noscope', scopes: ['send', 'read'] });

    // Act
    const created = await call('/v1/webhooks', { json: { url: 'http://127.0.0.1:9/x' }, auth: token });
    const list = await call('/v1/webhooks', { auth: token });

    // Assess
    expect([created.status, list.status]).toEqual([403, 403]);
  });
});
