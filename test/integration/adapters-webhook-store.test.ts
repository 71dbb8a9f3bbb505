import '../support/quiet-powertools.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoWebhookStore } from '../../lambdas/adapters/webhook-store.ts';
import type {
  DeliveryAttempt,
  StoredWebhookEvent,
  WebhookEndpoint,
} from '../../lambdas/domain/webhooks/endpoint.ts';
import {
  registerEndpoint,
  replayEvents,
  rotateSecret,
  updateEndpoint,
} from '../../lambdas/domain/webhooks/operations.ts';
import { ConflictError, InvalidCursorError } from '../../lambdas/shared/errors.ts';
import { startDynamo } from '../../local/emulators/dynamodb.ts';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { createPkSkTable, credentials, documentClient, region } from '../support/emulators.ts';
import { InMemoryWebhookQueue } from '../support/webhooks.ts';

// The Webhooks table's key schema (pk (S) / sk (S), TTL on expiresAt), created on dynalite as the
// stack declares it, so the adapter's keys, conditions, queries and cursors run against real
// DynamoDB semantics.
const TABLE = 'Webhooks';
const NOW = new Date('2026-05-04T10:00:00.000Z');
const DAY_SECONDS = 86_400;

let dynamo: LocalEmulator;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let store: DynamoWebhookStore;

beforeAll(async () => {
  dynamo = await startDynamo({ port: 0 });
  client = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials });
  doc = documentClient(client);
  await createPkSkTable(client, TABLE);
  store = new DynamoWebhookStore(doc, TABLE, () => NOW);
});

afterAll(async () => {
  client?.destroy();
  await dynamo?.stop();
});

let serial = 0;
/** A fresh, valid endpoint id (`wh_` and 24 base62 characters). */
const endpointId = (): string => `wh_${String(++serial).padStart(24, '0')}`;

const endpoint = (overrides: Partial<WebhookEndpoint> = {}): WebhookEndpoint => ({
  id: endpointId(),
  tenant: 'acme',
  url: 'https://hooks.example.com/baton',
  events: ['message.delivered', 'message.bounced'],
  description: 'CRM',
  enabled: true,
  disabledReason: null,
  secrets: [{ secret: `whsec_${'A'.repeat(43)}=`, createdAt: NOW.toISOString() }],
  createdAt: NOW.toISOString(),
  updatedAt: NOW.toISOString(),
  version: 1,
  ...overrides,
});

const event = (tenant: string, id: string, timestamp: string): StoredWebhookEvent => ({
  id,
  tenant,
  type: 'message.delivered',
  timestamp,
  body: JSON.stringify({ type: 'message.delivered', timestamp, data: { id } }),
});

const attempt = (
  endpointId: string,
  at: string,
  overrides: Partial<DeliveryAttempt> = {},
): DeliveryAttempt => ({
  tenant: 'acme',
  endpointId,
  eventId: 'evt_1',
  type: 'message.delivered',
  attempt: 1,
  at,
  statusCode: 500,
  latencyMs: 12,
  response: 'oops',
  outcome: 'retry',
  nextAttemptAt: '2026-05-04T10:00:05.000Z',
  ...overrides,
});

const rawItem = async (pk: string, sk: string) =>
  (await doc.send(new GetCommand({ TableName: TABLE, Key: { pk, sk }, ConsistentRead: true }))).Item;

describe('DynamoWebhookStore endpoints', () => {
  it('keeps an endpoint under tenant#<tenant> / endpoint#<id> and reads it back as it was given', async () => {
    // Prepare
    const e = endpoint();

    // Act
    await store.create(e);

    // Assess
    expect(await store.get('acme', e.id)).toEqual(e);
    expect(await rawItem('tenant#acme', `endpoint#${e.id}`)).toMatchObject({ id: e.id, version: 1 });
  });

  it('refuses to create an endpoint whose id exists already (ConflictError), leaving the first', async () => {
    // Prepare
    const first = endpoint();
    await store.create(first);

    // Act
    const again = store.create({ ...first, url: 'https://other.example.com/' });

    // Assess
    await expect(again).rejects.toThrow(ConflictError);
    expect((await store.get('acme', first.id))?.url).toBe(first.url);
  });

  it('lists every endpoint of the tenant, enabled or not, and none of another tenant', async () => {
    // Prepare
    const a1 = endpoint({ tenant: 'list-a' });
    const a2 = endpoint({ tenant: 'list-a', enabled: false, disabledReason: 'gone' });
    const b1 = endpoint({ tenant: 'list-b' });
    for (const e of [a1, a2, b1]) await store.create(e);

    // Act
    const listed = await store.list('list-a');

    // Assess
    expect(listed.map((e) => e.id).sort()).toEqual([a1.id, a2.id].sort());
    expect(await store.list('list-c')).toEqual([]);
  });

  it('never reads another tenant’s endpoint by id, nor deletes it', async () => {
    // Prepare
    const theirs = endpoint({ tenant: 'other' });
    await store.create(theirs);

    // Act
    const read = await store.get('acme', theirs.id);
    const deleted = await store.delete('acme', theirs.id);

    // Assess
    expect(read).toBeUndefined();
    expect(deleted).toBe(false);
    expect(await store.get('other', theirs.id)).toEqual(theirs);
  });

  it('answers undefined for an id that is not shaped like an endpoint id, without asking DynamoDB', async () => {
    // Act / Assess
    expect(await store.get('acme', 'x'.repeat(5_000))).toBeUndefined();
    expect(await store.delete('acme', 'x'.repeat(5_000))).toBe(false);
  });

  it('updates only while the stored version is the expected one (ConflictError otherwise)', async () => {
    // Prepare
    const e = endpoint();
    await store.create(e);
    const next = { ...e, url: 'https://new.example.com/', version: 2 };

    // Act
    await store.update(next, 1);
    const stale = store.update({ ...e, description: 'stale', version: 2 }, 1);

    // Assess
    await expect(stale).rejects.toThrow(ConflictError);
    expect(await store.get('acme', e.id)).toEqual(next);
  });

  it('refuses to update an endpoint that does not exist (ConflictError), creating nothing', async () => {
    // Prepare
    const ghost = endpoint({ version: 2 });

    // Act
    const updated = store.update(ghost, 1);

    // Assess
    await expect(updated).rejects.toThrow(ConflictError);
    expect(await store.get('acme', ghost.id)).toBeUndefined();
  });

  it('deletes an endpoint once: true, then false', async () => {
    // Prepare
    const e = endpoint();
    await store.create(e);

    // Act
    const first = await store.delete('acme', e.id);
    const second = await store.delete('acme', e.id);

    // Assess
    expect([first, second]).toEqual([true, false]);
    expect(await store.get('acme', e.id)).toBeUndefined();
  });
});

describe('DynamoWebhookStore event log', () => {
  it('keeps each event twice (by time and by id) under events#<tenant>, with a TTL of WEBHOOK_LOG_DAYS from now', async () => {
    // Prepare
    const e = event('log-a', 'evt_layout', '2026-05-04T09:59:00.000Z');

    // Act
    await store.append([e]);

    // Assess
    const expiresAt = NOW.getTime() / 1000 + 30 * DAY_SECONDS;
    expect(await rawItem('events#log-a', 'id#evt_layout')).toMatchObject({ ...e, expiresAt });
    expect(await rawItem('events#log-a', 'at#2026-05-04T09:59:00.000Z#evt_layout')).toMatchObject({
      ...e,
      expiresAt,
    });
    expect(await store.event('log-a', 'evt_layout')).toEqual(e);
  });

  it('answers undefined for an event id too long to be a key, without asking DynamoDB', async () => {
    // Act / Assess
    expect(await store.event('owner', 'é'.repeat(600))).toBeUndefined();
  });

  it('reads an event by id for its own tenant only', async () => {
    // Prepare
    await store.append([event('owner', 'evt_private', '2026-05-04T09:00:00.000Z')]);

    // Act / Assess
    expect(await store.event('intruder', 'evt_private')).toBeUndefined();
    expect((await store.event('owner', 'evt_private'))?.id).toBe('evt_private');
  });

  it('appends more than one BatchWrite’s worth of events, and the same event twice changes nothing', async () => {
    // Prepare
    const events = Array.from({ length: 30 }, (_, i) =>
      event(
        'bulk',
        `evt_${String(i).padStart(3, '0')}`,
        `2026-05-04T08:00:${String(i).padStart(2, '0')}.000Z`,
      ),
    );

    // Act
    await store.append(events);
    await store.append(events.slice(0, 3));
    const page = await store.since('bulk', new Date('2026-05-04T00:00:00.000Z'), { limit: 100 });

    // Assess
    expect(page.events).toEqual(events);
    expect(page.cursor).toBeUndefined();
  });

  it('pages the events since a time, oldest first, with an opaque cursor, and skips older ones and other tenants', async () => {
    // Prepare
    const old = event('paged', 'evt_old', '2026-05-01T00:00:00.000Z');
    const newer = [1, 2, 3, 4, 5].map((i) => event('paged', `evt_${i}`, `2026-05-03T0${i}:00:00.000Z`));
    await store.append([old, ...newer, event('elsewhere', 'evt_x', '2026-05-03T03:30:00.000Z')]);

    // Act
    const first = await store.since('paged', new Date('2026-05-02T00:00:00.000Z'), { limit: 2 });
    const second = await store.since('paged', new Date('2026-05-02T00:00:00.000Z'), {
      limit: 2,
      ...(first.cursor ? { cursor: first.cursor } : {}),
    });
    const third = await store.since('paged', new Date('2026-05-02T00:00:00.000Z'), {
      limit: 2,
      ...(second.cursor ? { cursor: second.cursor } : {}),
    });

    // Assess
    expect(first.events.map((e) => e.id)).toEqual(['evt_1', 'evt_2']);
    expect(second.events.map((e) => e.id)).toEqual(['evt_3', 'evt_4']);
    expect(third).toEqual({ events: [newer[4]] });
    expect(first.cursor).not.toContain('at#');
  });

  it('includes an event stamped exactly at `since`, and orders timestamps without milliseconds by time', async () => {
    // Prepare
    await store.append([
      event('edge', 'evt_b', '2026-05-03T10:00:00Z'),
      event('edge', 'evt_a', '2026-05-03T10:00:00.500Z'),
      event('edge', 'evt_early', '2026-05-03T09:59:59.999Z'),
    ]);

    // Act
    const page = await store.since('edge', new Date('2026-05-03T10:00:00.000Z'));

    // Assess
    expect(page.events.map((e) => e.id)).toEqual(['evt_b', 'evt_a']);
  });

  it.each([
    ['garbage', 'not a cursor!'],
    ['another listing’s position', Buffer.from('id#evt_1').toString('base64url')],
    ['another tenant’s position', Buffer.from('{"t":"someone","s":"at#x"}').toString('base64url')],
  ])('refuses %s as a cursor (InvalidCursorError)', async (_what, cursor) => {
    // Act
    const page = store.since('paged', new Date('2026-05-02T00:00:00.000Z'), { cursor });

    // Assess
    await expect(page).rejects.toThrow(InvalidCursorError);
  });
});

describe('DynamoWebhookStore delivery attempts', () => {
  it('keeps an attempt under endpoint#<id> / attempt#<at>#<eventId>#<attempt> with a TTL', async () => {
    // Prepare
    const id = endpointId();
    const a = attempt(id, '2026-05-04T09:00:00.000Z', { eventId: 'evt_k', attempt: 3 });

    // Act
    await store.record(a);

    // Assess
    expect(await rawItem(`endpoint#${id}`, 'attempt#2026-05-04T09:00:00.000Z#evt_k#3')).toMatchObject({
      ...a,
      expiresAt: NOW.getTime() / 1000 + 30 * DAY_SECONDS,
    });
  });

  it('lists an endpoint’s attempts newest first, paged with a cursor', async () => {
    // Prepare
    const id = endpointId();
    const made = [1, 2, 3, 4, 5].map((i) => attempt(id, `2026-05-04T0${i}:00:00.000Z`, { attempt: i }));
    for (const a of made) await store.record(a);

    // Act
    const first = await store.attempts('acme', id, { limit: 2 });
    const second = await store.attempts('acme', id, {
      limit: 2,
      ...(first.cursor ? { cursor: first.cursor } : {}),
    });
    const third = await store.attempts('acme', id, {
      limit: 2,
      ...(second.cursor ? { cursor: second.cursor } : {}),
    });

    // Assess
    expect(first.attempts.map((a) => a.attempt)).toEqual([5, 4]);
    expect(second.attempts.map((a) => a.attempt)).toEqual([3, 2]);
    expect(third).toEqual({ attempts: [made[0]] });
  });

  it('never returns the attempts of another tenant’s endpoint', async () => {
    // Prepare
    const theirs = endpointId();
    await store.record(attempt(theirs, '2026-05-04T01:00:00.000Z', { tenant: 'other' }));

    // Act
    const page = await store.attempts('acme', theirs);

    // Assess
    expect(page).toEqual({ attempts: [] });
    expect((await store.attempts('other', theirs)).attempts).toHaveLength(1);
  });

  it('refuses a cursor it did not hand out (InvalidCursorError)', async () => {
    // Act
    const page = store.attempts('acme', endpointId(), { cursor: Buffer.from('at#x').toString('base64url') });

    // Assess
    await expect(page).rejects.toThrow(InvalidCursorError);
  });
});

describe('DynamoWebhookStore replay budget', () => {
  it('never lets racing takes pass the limit, gives back, and starts afresh in the next window', async () => {
    // Prepare
    const id = endpointId();
    const hour = new Date('2026-05-04T10:00:00.000Z');

    // Act: twelve takes of 300 against a limit of 1000, at once.
    const taken = await Promise.all(Array.from({ length: 12 }, () => store.takeReplay(id, hour, 300, 1000)));
    const givenBack = await store.takeReplay(id, hour, -100, 1000);
    const afterBack = await store.takeReplay(id, hour, 300, 1000);
    const nextHour = await store.takeReplay(id, new Date('2026-05-04T11:00:00.000Z'), 300, 1000);

    // Assess
    expect(taken.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(givenBack).toBe(-100);
    expect(afterBack).toBe(100);
    expect(nextHour).toBe(300);
  });
});

describe('the webhook operations over the Webhooks table', () => {
  it('registers, updates, rotates and replays since a time, with versions and secrets as stored', async () => {
    // Prepare
    const queue = new InMemoryWebhookQueue();
    const deps = { store, queue, clock: () => NOW, allowLoopbackHttp: false };
    await store.append([
      event('ops', 'evt_ops_1', '2026-05-04T09:00:00.000Z'),
      event('ops', 'evt_ops_2', '2026-05-04T09:30:00.000Z'),
    ]);

    // Act
    const created = await registerEndpoint(deps, 'ops', {
      url: 'https://hooks.example.com/ops',
      events: ['message.delivered'],
      description: '',
    });
    await updateEndpoint(deps, 'ops', created.id, { description: 'ops team' });
    const rotated = await rotateSecret(deps, 'ops', created.id);
    const outcome = await replayEvents(deps, 'ops', created.id, {
      since: new Date('2026-05-04T09:15:00.000Z'),
    });

    // Assess
    const stored = await store.get('ops', created.id);
    expect(stored).toMatchObject({ description: 'ops team', version: 3 });
    expect(stored?.secrets.map((s) => s.secret)).toEqual([rotated.secret, created.secret]);
    expect(outcome).toEqual({ replayed: 1, truncated: false });
    expect(queue.jobs.map((j) => j.eventId)).toEqual(['evt_ops_2']);
  });
});
