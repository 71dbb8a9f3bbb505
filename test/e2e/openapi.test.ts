import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, describe, expect, it } from 'vitest';
import { Route } from '../../lambdas/shared/names.ts';
import { seedApiKey } from '../support/e2e-keys.ts';
import { receipt, type TestBaton, withTestBaton } from '../support/local-baton.ts';
import { type CheckedResponse, ContractViolationError, OpenApiContract } from '../support/openapi.ts';
import { WebhookReceiver } from '../support/webhooks.ts';

// Issue 15 end to end: local mode serves its OpenAPI document without a key, an independent
// validator accepts it, and every route answers as it documents: each real answer's status is one
// its operation lists, and its body validates against the schema documented for that status.
// The tests run in order on one local mode; the last one checks every route was called.

let baton: TestBaton;
withTestBaton((started) => {
  baton = started;
});

let contract: OpenApiContract;
let receiver: WebhookReceiver | undefined;
afterAll(async () => {
  await receiver?.close();
});

const SIMULATOR = 'success@simulator.amazonses.com';
const UNKNOWN_ID = 'msg_01ZZZZZZZZZZZZZZZZZZZZZZZZ';

/** `route` answered through the contract; `path` fills its parameters. */
function call(
  route: string,
  path: string,
  init: RequestInit & { json?: unknown; auth?: string | null } = {},
): Promise<CheckedResponse> {
  const [method = 'GET'] = route.split(' ');
  return contract.call(route, baton.request(path, { method, ...init }));
}

describe('GET /openapi.json', () => {
  it('serves the committed document without a key, and an independent validator accepts it', async () => {
    // Act
    const res = await fetch(`${baton.url}/openapi.json`);
    const document = (await res.json()) as Record<string, unknown>;
    const result = await new Validator().validate(structuredClone(document));

    // Assess
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'application/json']);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(document).toEqual(JSON.parse(readFileSync('docs/openapi.json', 'utf8')));
    contract = new OpenApiContract(document);
    contract.check(Route.openapi, res.status, res.headers.get('content-type'), document);
  });
});

describe('every route answers as the document says', () => {
  it('checks an answer the document does not describe as a violation', () => {
    // Act / Assess
    expect(() => contract.check(Route.health, 200, 'application/json', { status: 'down' })).toThrow(
      ContractViolationError,
    );
    expect(() => contract.check(Route.getMessage, 418, 'application/json', {})).toThrow(
      /answered 418, which it does not document/,
    );
  });

  it('GET /health', async () => {
    // Act
    const health = await call(Route.health, '/health', { auth: null });

    // Assess
    expect(health.status).toBe(200);
  });

  it('sends a message and reads it back; refuses a bad one, no key, bad JSON, a non-JSON body and a reused key', async () => {
    // Act
    const sent = await call(Route.sendMessage, '/v1/messages', {
      json: receipt(SIMULATOR),
      headers: { 'idempotency-key': 'openapi-e2e-1' },
    });
    const id = (sent.body as { id: string }).id;
    const read = await call(Route.getMessage, `/v1/messages/${id}`);
    const replayed = await call(Route.sendMessage, '/v1/messages', {
      json: receipt(SIMULATOR),
      headers: { 'idempotency-key': 'openapi-e2e-1' },
    });
    const reused = await call(Route.sendMessage, '/v1/messages', {
      json: receipt(SIMULATOR, { subject: 'Another' }),
      headers: { 'idempotency-key': 'openapi-e2e-1' },
    });
    const invalid = await call(Route.sendMessage, '/v1/messages', { json: { to: ['x'] } });
    const anonymous = await call(Route.sendMessage, '/v1/messages', { json: receipt(SIMULATOR), auth: null });
    const malformed = await call(Route.sendMessage, '/v1/messages', {
      method: 'POST',
      body: '{"from":',
      headers: { 'content-type': 'application/json' },
    });
    const notJson = await call(Route.sendMessage, '/v1/messages', {
      method: 'POST',
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    const missing = await call(Route.getMessage, `/v1/messages/${UNKNOWN_ID}`);

    // Assess
    expect([sent.status, read.status, replayed.status, replayed.headers.get('idempotent-replayed')]).toEqual([
      202,
      200,
      202,
      'true',
    ]);
    expect((read.body as { id: string }).id).toBe(id);
    expect([reused.status, invalid.status, anonymous.status, malformed.status, notJson.status]).toEqual([
      409, 422, 401, 400, 415,
    ]);
    expect(missing.status).toBe(404);
  });

  it('answers a batch 207 with each message accepted or refused, and a bad batch 422', async () => {
    // Act
    const batch = await call(Route.sendBatch, '/v1/messages/batch', {
      json: { messages: [receipt(SIMULATOR), { from: 'nobody' }] },
    });
    const empty = await call(Route.sendBatch, '/v1/messages/batch', { json: { messages: [] } });

    // Assess
    expect(batch.status).toBe(207);
    expect(
      (batch.body as { results: Array<Record<string, unknown>> }).results.map((r) => 'error' in r),
    ).toEqual([false, true]);
    expect(empty.status).toBe(422);
  });

  it('suppresses, looks up, lists and lifts an address; refuses a bad address, body and limit', async () => {
    // Prepare
    const address = `/v1/suppressions/${encodeURIComponent('gone@example.org')}`;

    // Act
    const put = await call(Route.putSuppression, address, { method: 'PUT', json: { reason: 'manual' } });
    const got = await call(Route.getSuppression, address);
    const listed = await call(Route.listSuppressions, '/v1/suppressions?limit=10');
    const lifted = await call(Route.deleteSuppression, address);
    const gone = await call(Route.getSuppression, address);
    const badBody = await call(Route.putSuppression, address, {
      method: 'PUT',
      json: { reason: 'complaint' },
    });
    const badAddress = await call(Route.getSuppression, '/v1/suppressions/not-an-address');
    const badLimit = await call(Route.listSuppressions, '/v1/suppressions?limit=0');
    const badDelete = await call(Route.deleteSuppression, '/v1/suppressions/not-an-address');

    // Assess
    expect([put.status, got.status, listed.status, lifted.status, gone.status]).toEqual([
      200, 200, 200, 204, 404,
    ]);
    expect([badBody.status, badAddress.status, badLimit.status, badDelete.status]).toEqual([
      422, 422, 422, 422,
    ]);
  });

  it('answers statistics and reputation; refuses a bad range and a key without the scope', async () => {
    // Prepare
    const sendOnly = await seedApiKey(baton, { tenant: 'openapi', scopes: ['send'] });

    // Act
    const stats = await call(Route.stats, '/v1/stats');
    const badRange = await call(Route.stats, '/v1/stats?from=yesterday');
    const reputation = await call(Route.reputation, '/v1/reputation');
    const forbidden = await call(Route.reputation, '/v1/reputation', { auth: sendOnly });

    // Assess
    expect([stats.status, badRange.status, reputation.status, forbidden.status]).toEqual([
      200, 422, 200, 403,
    ]);
  });

  it('erases a recipient and refuses a bad address', async () => {
    // Act
    const erased = await call(
      Route.eraseRecipient,
      `/v1/recipients/${encodeURIComponent('erase@example.org')}`,
      {
        method: 'DELETE',
      },
    );
    const bad = await call(Route.eraseRecipient, '/v1/recipients/nope', { method: 'DELETE' });

    // Assess
    expect([erased.status, bad.status]).toEqual([202, 422]);
  });

  it('runs the guard operator routes with the admin key; refuses a bad query, an unknown key and a tenant key', async () => {
    // Prepare
    const tenantKey = await seedApiKey(baton, { tenant: 'openapi' });
    const selection = { tenant: 'dev', all: true, reason: 'openapi e2e' };

    // Act
    const held = await call(Route.guardHeld, '/v1/guard/held?tenant=dev');
    const noTenant = await call(Route.guardHeld, '/v1/guard/held');
    const released = await call(Route.guardRelease, '/v1/guard/release', { json: selection });
    const cancelled = await call(Route.guardCancel, '/v1/guard/cancel', { json: selection });
    const badCancel = await call(Route.guardCancel, '/v1/guard/cancel', { json: { tenant: 'dev' } });
    const resumed = await call(Route.guardResume, '/v1/guard/resume', {
      json: { tenant: 'openapi', reason: 'openapi e2e' },
    });
    const unknownKey = await call(Route.guardResume, '/v1/guard/resume', {
      json: { keyId: 'zzzzzzzz', reason: 'openapi e2e' },
    });
    const notAdmin = await call(Route.guardRelease, '/v1/guard/release', {
      json: selection,
      auth: tenantKey,
    });

    // Assess
    expect([held.status, noTenant.status, released.status, cancelled.status, badCancel.status]).toEqual([
      200, 422, 200, 200, 422,
    ]);
    expect([resumed.status, unknownKey.status, notAdmin.status]).toEqual([200, 404, 403]);
  });

  it('registers, lists, reads, changes, rotates, lists attempts of, replays to and deletes a webhook endpoint', async () => {
    // Prepare
    receiver = await WebhookReceiver.start();

    // Act
    const created = await call(Route.createWebhook, '/v1/webhooks', {
      json: { url: receiver.url(), events: ['message.sent'] },
    });
    const id = (created.body as { id: string }).id;
    const listed = await call(Route.listWebhooks, '/v1/webhooks');
    const got = await call(Route.getWebhook, `/v1/webhooks/${id}`);
    const changed = await call(Route.updateWebhook, `/v1/webhooks/${id}`, {
      method: 'PATCH',
      json: { description: 'openapi e2e' },
    });
    const rotated = await call(Route.rotateWebhookSecret, `/v1/webhooks/${id}/rotate-secret`, {
      method: 'POST',
    });
    const attempts = await call(Route.webhookDeliveries, `/v1/webhooks/${id}/deliveries?limit=5`);
    const replayed = await call(Route.replayWebhook, `/v1/webhooks/${id}/replay`, {
      json: { since: new Date(Date.now() - 60_000).toISOString() },
    });
    const deleted = await call(Route.deleteWebhook, `/v1/webhooks/${id}`, { method: 'DELETE' });

    // Assess
    expect([created.status, listed.status, got.status, changed.status, rotated.status]).toEqual([
      201, 200, 200, 200, 200,
    ]);
    expect([attempts.status, replayed.status, deleted.status]).toEqual([200, 202, 204]);
  });

  it('refuses a refused URL, a bad body, a bad query and an unknown endpoint on the webhook routes', async () => {
    // Act
    const refused = await call(Route.createWebhook, '/v1/webhooks', {
      json: { url: 'http://192.0.2.1/hooks' },
    });
    const badBody = await call(Route.createWebhook, '/v1/webhooks', { json: { events: ['message.sent'] } });
    const badQuery = await call(Route.webhookDeliveries, '/v1/webhooks/whe_unknown/deliveries?limit=0');
    const none = { method: 'GET' };
    const unknown = [
      await call(Route.getWebhook, '/v1/webhooks/whe_unknown', none),
      await call(Route.updateWebhook, '/v1/webhooks/whe_unknown', {
        method: 'PATCH',
        json: { enabled: false },
      }),
      await call(Route.rotateWebhookSecret, '/v1/webhooks/whe_unknown/rotate-secret', { method: 'POST' }),
      await call(Route.webhookDeliveries, '/v1/webhooks/whe_unknown/deliveries', none),
      await call(Route.replayWebhook, '/v1/webhooks/whe_unknown/replay', { json: { eventId: 'x' } }),
      await call(Route.deleteWebhook, '/v1/webhooks/whe_unknown', { method: 'DELETE' }),
    ];
    const anonymous = await call(Route.listWebhooks, '/v1/webhooks', { auth: null });

    // Assess
    expect([refused.status, badBody.status, badQuery.status, anonymous.status]).toEqual([422, 422, 422, 401]);
    expect(unknown.map((r) => r.status)).toEqual([404, 404, 404, 404, 404, 404]);
  });

  it('answers 429 with Retry-After to a key past its request rate', async () => {
    // Prepare
    const limited = await seedApiKey(baton, { tenant: 'openapi', rateLimit: 1 });

    // Act
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await call(Route.stats, '/v1/stats', { auth: limited }));
    const refused = answers.find((a) => a.status === 429);

    // Assess
    expect(refused?.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('checked every answer of this file at the gateway too (the audit of startTestBaton), with none off the document', () => {
    // Assess
    expect(baton.audit.checked).toBeGreaterThanOrEqual(contract.seen.size);
    expect(baton.audit.violations).toEqual([]);
  });

  it('called every route of the api, each with a success and a problem (but health and the document)', () => {
    // Prepare
    const routes = Object.values(Route).filter((r) => r !== Route.fallback);
    const seen = [...contract.seen];

    // Assess
    for (const route of routes) {
      expect(
        seen.filter((s) => s.startsWith(`${route} 2`)),
        `${route} success`,
      ).not.toEqual([]);
      if (route !== Route.health && route !== Route.openapi) {
        expect(
          seen.filter((s) => s.startsWith(`${route} `) && /^[45]/.test(s.slice(route.length + 1))),
          `${route} problem`,
        ).not.toEqual([]);
      }
    }
  });
});
