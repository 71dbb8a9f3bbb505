import '../../support/quiet-powertools.ts';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../../lambdas/api/openapi/document.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { sendBody } from '../../support/builders.ts';
import { apiHarness } from '../../support/harness.ts';
import { contentTypeOf, httpEvent } from '../../support/http-events.ts';
import { OpenApiContract } from '../../support/openapi.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

// Attack on the OpenAPI document's truth (issue 15): a request body the document's schema takes
// must not be refused for a reason a schema could have said, and one it refuses must get a 4xx.
// Each case is sent to the api (createApi over fakes) and checked with ajv against the document.

const doc = openApiDocument();
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(doc, 'doc');

/** The document's verdict on a request body of `route`. */
function documentTakes(route: string, body: unknown): boolean {
  const [method = '', path = ''] = route.split(' ');
  const pointer = [
    'paths',
    path,
    method.toLowerCase(),
    'requestBody',
    'content',
    'application/json',
    'schema',
  ]
    .map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1'))
    .join('/');
  const validate = ajv.getSchema(`doc#/${pointer}`);
  if (validate === undefined) throw new Error(`no request schema for ${route}`);
  return validate(body) as boolean;
}

function setUp() {
  const store = new InMemoryWebhookStore();
  const queue = new InMemoryWebhookQueue();
  const harness = apiHarness(
    {},
    { deps: () => ({ webhookEndpoints: { store, queue, allowLoopbackHttp: false } }) },
  );
  const token = harness.addKey({ scopes: ['send', 'read', 'suppressions', 'webhooks'] });
  return {
    ...harness,
    call: (route: string, body: unknown, pathParameters?: Record<string, string>) =>
      harness.api(httpEvent(route, { token, body, ...(pathParameters ? { pathParameters } : {}) })),
  };
}

describe('the request schemas say what the api refuses', () => {
  it('lists the webhook event types a registration and a change take (an unknown type is refused)', async () => {
    // Prepare
    const { call } = setUp();
    const created = await call(Route.createWebhook, { url: 'https://hooks.example.com/a' });
    const id = (JSON.parse(created.body ?? '{}') as { id: string }).id;
    const bodies = [{ url: 'https://hooks.example.com/b', events: ['message.opened'] }];

    // Act
    const create = await call(Route.createWebhook, bodies[0]);
    const update = await call(Route.updateWebhook, { events: ['message.opened'] }, { id });

    // Assess
    expect([create.statusCode, update.statusCode]).toEqual([422, 422]);
    expect(documentTakes(Route.createWebhook, bodies[0])).toBe(false);
    expect(documentTakes(Route.updateWebhook, { events: ['message.opened'] })).toBe(false);
    expect(documentTakes(Route.createWebhook, { url: 'https://x.example', events: ['message.sent'] })).toBe(
      true,
    );
  });

  it('says a subject or attachment filename with a line break is refused', async () => {
    // Prepare
    const { call } = setUp();
    const subject = sendBody({ subject: 'Hi\r\nBcc: eve@example.net' });
    const filename = sendBody({
      attachments: [{ filename: 'a\nb.txt', content: 'aGk=', contentType: 'text/plain' }],
    });

    // Act
    const answers = [await call(Route.sendMessage, subject), await call(Route.sendMessage, filename)];

    // Assess
    expect(answers.map((a) => a.statusCode)).toEqual([422, 422]);
    expect([documentTakes(Route.sendMessage, subject), documentTakes(Route.sendMessage, filename)]).toEqual([
      false,
      false,
    ]);
    expect(documentTakes(Route.sendMessage, sendBody({ subject: 'Hi – ünïcode' }))).toBe(true);
  });
});

describe('the request schemas say which fields go together', () => {
  it.each([
    [Route.updateWebhook, {}],
    [Route.replayWebhook, {}],
    [Route.replayWebhook, { since: '2025-03-01T11:00:00Z', eventId: 'evt_1' }],
    [Route.guardRelease, { tenant: 'dev', reason: 'r' }],
    [Route.guardRelease, { tenant: 'dev', reason: 'r', all: true, ids: ['msg_1'] }],
    [Route.guardCancel, { tenant: 'dev', reason: 'r', all: true, lane: 'broadcast' }],
    [Route.guardResume, { reason: 'r' }],
    [Route.guardResume, { reason: 'r', tenant: 'dev', keyId: 'abcdefgh' }],
    [Route.createWebhook, { url: 'https://hooks.example.com/b', description: 'two\nlines' }],
    [Route.updateWebhook, { description: 'a\u0007bell' }],
  ])('%s %j: refused by the api (422) and by the document', async (route, body) => {
    // Prepare
    const store = new InMemoryWebhookStore();
    const queue = new InMemoryWebhookQueue();
    const h = apiHarness(
      {},
      { deps: () => ({ webhookEndpoints: { store, queue, allowLoopbackHttp: false } }) },
    );
    const token = h.addKey({ scopes: ['admin', 'webhooks'] });
    const created = await h.api(
      httpEvent(Route.createWebhook, { token, body: { url: 'https://hooks.example.com/a' } }),
    );
    const id = (JSON.parse(created.body ?? '{}') as { id: string }).id;

    // Act
    const result = await h.api(httpEvent(route, { token, body, pathParameters: { id } }));

    // Assess
    expect(result.statusCode).toBe(422);
    expect(documentTakes(route, body)).toBe(false);
  });

  it.each([
    [Route.updateWebhook, { enabled: false }],
    [Route.replayWebhook, { eventId: 'evt_1' }],
    [Route.replayWebhook, { since: '2025-03-01T11:00:00Z' }],
    [Route.guardRelease, { tenant: 'dev', reason: 'r', ids: ['msg_1'] }],
    [Route.guardRelease, { tenant: 'dev', reason: 'r', lane: 'broadcast' }],
    [Route.guardCancel, { tenant: 'dev', reason: 'r', all: true }],
    [Route.guardResume, { reason: 'r', tenant: 'dev' }],
    [Route.guardResume, { reason: 'r', keyId: 'abcdefgh' }],
  ])('%s %j: taken by the document', (route, body) => {
    // Assess
    expect(documentTakes(route, body)).toBe(true);
  });
});

describe('the JSON send form says the rules across its fields', () => {
  const inline = { filename: 'logo.png', content: 'aGk=', contentType: 'image/png', disposition: 'inline' };
  it.each([
    ['no recipient', sendBody({ to: undefined })],
    ['an empty recipient list', sendBody({ to: [] })],
    ['no body text', sendBody({ text: undefined })],
    ['an empty text and no html', sendBody({ text: '' })],
    ['broadcast without listUnsubscribe', sendBody({ stream: 'broadcast' })],
    ['an inline attachment without contentId', sendBody({ attachments: [inline] })],
    [
      'eleven tags',
      sendBody({ tags: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`t${i}`, 'v'])) }),
    ],
    ['a tag name with a space', sendBody({ tags: { 'order id': '1' } })],
    ['a reserved tag name', sendBody({ tags: { baton_lane: 'x' } })],
    ['a tag value with a dot', sendBody({ tags: { order: '1.5' } })],
    [
      'attachment content that is no base64',
      sendBody({ attachments: [{ filename: 'a.txt', content: 'hi there!' }] }),
    ],
    ['a raw message that is no base64', { raw: 'From: a@example.com' }],
    ['a reserved header', sendBody({ headers: { 'Reply-To': 'eve@example.net' } })],
    ['a reserved header in another case', sendBody({ headers: { 'rEsEnT-To': 'eve@example.net' } })],
    ['a header name with a colon', sendBody({ headers: { 'X-A:b': 'v' } })],
    ['a header value with a line break', sendBody({ headers: { 'X-A': 'v\r\nBcc: eve@example.net' } })],
    ['a raw message with padding inside', { raw: 'aG==aGk=' }],
  ])('%s: refused by the api (422) and by the document', async (_, body) => {
    // Prepare
    const { call } = setUp();

    // Act
    const result = await call(Route.sendMessage, body);
    const inBatch = await call(Route.sendBatch, { messages: [body] });

    // Assess
    expect(result.statusCode).toBe(422);
    expect((JSON.parse(inBatch.body ?? '{}') as { results: object[] }).results[0]).toHaveProperty('error');
    expect(documentTakes(Route.sendMessage, body)).toBe(false);
  });

  it.each([
    ['cc only', sendBody({ to: undefined, cc: 'ana@example.org' })],
    ['bcc only', sendBody({ to: undefined, bcc: ['ana@example.org'] })],
    ['html only', sendBody({ text: undefined, html: '<p>Hi</p>' })],
    ['an empty text beside html', sendBody({ text: '', html: '<p>Hi</p>' })],
    [
      'broadcast with listUnsubscribe',
      sendBody({ stream: 'broadcast', listUnsubscribe: 'https://example.com/u' }),
    ],
    ['an inline attachment with contentId', sendBody({ attachments: [{ ...inline, contentId: 'logo' }] })],
    [
      'custom headers',
      sendBody({ headers: { 'X-Order': '42', 'List-Id': 'shop.example.com', Keywords: 'a' } }),
    ],
    [
      'wrapped base64 attachment content',
      sendBody({ attachments: [{ filename: 'a.txt', content: 'aGVs\r\nbG8=' }] }),
    ],
    [
      'ten tags',
      sendBody({ tags: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`t${i}`, 'v-1_A'])) }),
    ],
  ])('%s: taken by the api (202) and by the document', async (_, body) => {
    // Prepare
    const { call } = setUp();

    // Act
    const result = await call(Route.sendMessage, body);

    // Assess
    expect(result.statusCode, result.body).toBe(202);
    expect(documentTakes(Route.sendMessage, body)).toBe(true);
  });
});

describe('the batch', () => {
  // DESIGN §2: one bad message never fails the others. The document describes the messages a
  // client should send (`oneOf` the two forms, pinned in openapi.test.ts); the items' description
  // says how the api answers one that fits neither, and this holds it to that.
  it('answers a batch with a message the document refuses 207, that message’s problem in its place, as the items’ description says', async () => {
    // Prepare
    const { call } = setUp();
    const body = { messages: [sendBody(), { from: 'nobody' }] };
    const items = (
      doc.components as {
        schemas: Record<string, { properties: { messages: { items: { description: string } } } }>;
      }
    ).schemas.SendBatch?.properties.messages.items;

    // Act
    const result = await call(Route.sendBatch, body);

    // Assess
    expect(documentTakes(Route.sendBatch, body)).toBe(false);
    expect(result.statusCode).toBe(207);
    const results = (JSON.parse(result.body ?? '{}') as { results: Array<{ error?: { status: number } }> })
      .results;
    expect(results[0]?.error).toBeUndefined();
    expect(results[1]?.error?.status).toBe(422);
    expect(items?.description).toContain('answered with its problem in `results` (207)');
  });
});

// --- every status the api answers is one its operation documents ------------------------------

const contract = new OpenApiContract(doc);
const ROUTES = Object.values(Route).filter((r) => r !== Route.fallback);
const BODY_ROUTES = ROUTES.filter((r) => {
  const [method = '', path = ''] = r.split(' ');
  const op = (doc.paths as Record<string, Record<string, { requestBody?: unknown }>>)[path]?.[
    method.toLowerCase()
  ];
  return op?.requestBody !== undefined;
});
const PARAMS = { id: 'whe_1', address: 'ana@example.org' };

/** What the document does not describe in the api's answer to `route`. */
function undocumented(route: string, result: APIGatewayProxyStructuredResultV2): string[] {
  const body = result.body ? (JSON.parse(result.body) as unknown) : undefined;
  const headers = result.headers ?? {};
  return contract.problems(route, result.statusCode ?? 200, contentTypeOf(result) ?? null, body, headers);
}

describe('the statuses the api answers are documented', () => {
  it.each([
    ['no key', {}],
    ['a key of another scope', { scopes: [] }],
  ])('on every keyed route, with %s', async (_, key) => {
    // Prepare
    const { api, addKey } = apiHarness();
    const token = 'scopes' in key ? addKey({ scopes: ['send'] }) : undefined;

    // Act
    const found: string[] = [];
    for (const route of ROUTES.filter((r) => r !== Route.health && r !== Route.openapi)) {
      const asked =
        token !== undefined && route.startsWith('POST /v1/messages') ? addKey({ scopes: ['read'] }) : token;
      const result = await api(
        httpEvent(route, { ...(asked ? { token: asked } : {}), pathParameters: PARAMS, body: {} }),
      );
      found.push(...undocumented(route, result));
    }

    // Assess
    expect(found).toEqual([]);
  });

  it('on every keyed route, when a dependency is unavailable (503 with Retry-After) or fails (500)', async () => {
    // Prepare
    const failing = (error: Error) =>
      apiHarness({}, { deps: () => ({ keys: { get: async () => Promise.reject(error) } as never }) });
    const found: string[] = [];

    // Act
    for (const error of [new TransientError('throttled'), new Error('bug')]) {
      const { api, token } = failing(error);
      for (const route of ROUTES.filter((r) => r !== Route.health && r !== Route.openapi)) {
        const result = await api(httpEvent(route, { token, pathParameters: PARAMS, body: {} }));
        found.push(...undocumented(route, result));
      }
    }

    // Assess
    expect(found).toEqual([]);
  });

  it('on every route with a body: not JSON (415), too large (413), malformed (400)', async () => {
    // Prepare
    const { api, addKey } = apiHarness();
    const token = addKey({ scopes: ['send', 'read', 'suppressions', 'admin', 'webhooks'] });
    const bodies = [
      { headers: { 'content-type': 'text/plain' }, body: 'hello' },
      { headers: { 'content-type': 'application/json' }, body: `"${'x'.repeat(6 * 1024 * 1024)}"` },
      { headers: { 'content-type': 'application/json' }, body: '{"a":' },
    ];
    const found: string[] = [];

    // Act
    for (const route of BODY_ROUTES) {
      for (const request of bodies) {
        const result = await api(httpEvent(route, { token, pathParameters: PARAMS, ...request }));
        found.push(...undocumented(route, result));
      }
    }

    // Assess
    expect(found).toEqual([]);
  });

  it('on the webhook and erasure routes of a deployment without them (501)', async () => {
    // Prepare
    const { api, addKey } = apiHarness();
    const token = addKey({ scopes: ['webhooks', 'suppressions'] });
    const found: string[] = [];

    // Act
    for (const route of ROUTES.filter((r) => r.includes('/v1/webhooks') || r === Route.eraseRecipient)) {
      const body = route.startsWith('PATCH')
        ? { enabled: true }
        : route === Route.createWebhook
          ? { url: 'https://hooks.example.com/a' }
          : route === Route.replayWebhook
            ? { eventId: 'evt_1' }
            : undefined;
      const result = await api(
        httpEvent(route, { token, pathParameters: PARAMS, ...(body ? { body } : {}) }),
      );
      expect(result.statusCode, route).toBe(501);
      found.push(...undocumented(route, result));
    }

    // Assess
    expect(found).toEqual([]);
  });

  it('on every keyed route, to a key past its request rate (429)', async () => {
    // Prepare
    const { api, addKey } = apiHarness();
    const found: string[] = [];

    // Act
    for (const route of ROUTES.filter((r) => r !== Route.health && r !== Route.openapi)) {
      const token = addKey({ scopes: ['send', 'read', 'suppressions', 'admin', 'webhooks'], rateLimit: 1 });
      await api(httpEvent(route, { token, pathParameters: PARAMS, body: {} }));
      const result = await api(httpEvent(route, { token, pathParameters: PARAMS, body: {} }));
      expect(result.statusCode, route).toBe(429);
      found.push(...undocumented(route, result));
    }

    // Assess
    expect(found).toEqual([]);
  });
});

describe('the send routes answer their refusals as documented', () => {
  it('a key past its daily quota: 429 with Retry-After, also when the same Idempotency-Key comes again', async () => {
    // Prepare
    const { api, addKey } = apiHarness();
    const token = addKey({ scopes: ['send'], dailyQuota: 1 });
    const send = (key: string, route: string = Route.sendMessage) =>
      api(
        httpEvent(route, {
          token,
          headers: { 'idempotency-key': key },
          body: route === Route.sendBatch ? { messages: [sendBody(), sendBody()] } : sendBody(),
        }),
      );
    const found: string[] = [];

    // Act
    await send('first');
    const answers: Array<[string, APIGatewayProxyStructuredResultV2]> = [
      [Route.sendMessage, await send('second')],
      [Route.sendMessage, await send('second')],
      [Route.sendBatch, await send('third', Route.sendBatch)],
      [Route.sendBatch, await send('third', Route.sendBatch)],
    ];
    for (const [route, result] of answers) found.push(...undocumented(route, result));

    // Assess
    expect(answers.map(([, r]) => r.statusCode)).toEqual([429, 429, 207, 207]);
    expect(answers.map(([, r]) => r.headers?.['retry-after'])).toEqual([
      expect.stringMatching(/^\d+$/),
      expect.stringMatching(/^\d+$/),
      expect.stringMatching(/^\d+$/),
      expect.stringMatching(/^\d+$/),
    ]);
    expect(found).toEqual([]);
  });
});

describe('the list queries take what the document says, and only that', () => {
  it.each([
    [Route.listSuppressions, {}],
    [Route.guardHeld, { tenant: 'dev' }],
    [Route.webhookDeliveries, {}],
  ])(
    '%s refuses a limit that is no integer as written (hex, exponent, sign, spaces)',
    async (route, query) => {
      // Prepare
      const store = new InMemoryWebhookStore();
      const queue = new InMemoryWebhookQueue();
      const h = apiHarness(
        {},
        { deps: () => ({ webhookEndpoints: { store, queue, allowLoopbackHttp: false } }) },
      );
      const token = h.addKey({ scopes: ['admin', 'read', 'webhooks'] });
      const created = await h.api(
        httpEvent(Route.createWebhook, { token, body: { url: 'https://hooks.example.com/a' } }),
      );
      const id = (JSON.parse(created.body ?? '{}') as { id: string }).id;
      const limits = ['0x10', '1e2', ' 5', '+5', '5 '];

      // Act
      const statuses: number[] = [];
      for (const limit of limits) {
        const result = await h.api(
          httpEvent(route, { token, query: { ...query, limit }, pathParameters: { id } }),
        );
        statuses.push(result.statusCode ?? 0);
      }
      const valid = await h.api(
        httpEvent(route, { token, query: { ...query, limit: '10' }, pathParameters: { id } }),
      );

      // Assess
      expect(statuses).toEqual(limits.map(() => 422));
      expect(valid.statusCode).toBe(200);
    },
  );
});

describe('the fallback ($default)', () => {
  it('answers a path or method the document does not list with a 404 problem the document describes', async () => {
    // Prepare
    const { api, token } = apiHarness();
    const info = (doc as { info: { description: string } }).info;

    // Act
    const wrongMethod = await api(httpEvent(Route.fallback, { token, method: 'PUT', path: '/v1/messages' }));
    const unknownPath = await api(httpEvent(Route.fallback, { method: 'GET', path: '/v2/anything' }));

    // Assess
    for (const result of [wrongMethod, unknownPath]) {
      expect([result.statusCode, contentTypeOf(result)]).toEqual([404, 'application/problem+json']);
      expect(ajv.getSchema('doc#/components/schemas/Problem')?.(JSON.parse(result.body ?? ''))).toBe(true);
    }
    expect(info.description).toMatch(/not listed here.*404.*not_found/s);
  });
});

describe('the scopes the document names', () => {
  it('are the ones each route takes: a key with one scope is refused (403) exactly where the document does not name it', async () => {
    // Prepare
    const { api, addKey } = apiHarness();
    const scopes = ['send', 'read', 'suppressions', 'admin', 'webhooks'] as const;
    const paths = doc.paths as Record<string, Record<string, { 'x-baton-scopes': string[] }>>;
    const wrong: string[] = [];

    // Act
    for (const route of ROUTES.filter((r) => r !== Route.health && r !== Route.openapi)) {
      const [method = '', path = ''] = route.split(' ');
      const named = paths[path]?.[method.toLowerCase()]?.['x-baton-scopes'] ?? [];
      for (const scope of scopes) {
        const token = addKey({ scopes: [scope] });
        const result = await api(httpEvent(route, { token, pathParameters: PARAMS, body: {} }));
        const forbidden = result.statusCode === 403;
        if (forbidden === named.includes(scope)) wrong.push(`${route} ${scope}: ${result.statusCode}`);
      }
    }

    // Assess
    expect(wrong).toEqual([]);
  });
});
