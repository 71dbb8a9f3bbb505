import '../../support/quiet-powertools.ts';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import type { Suppression } from '../../../lambdas/domain/suppression/suppression.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { everyFieldBody, messageRecord, suppression } from '../../support/builders.ts';
import { InMemoryMessageStore, InMemorySuppressionStore } from '../../support/fakes.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent, jsonOf } from '../../support/http-events.ts';
import {
  applyJsonMutation,
  defineOwn,
  fieldMutations,
  getAt,
  isJsonMutation,
  setAt,
} from '../../support/json-mutations.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

// Issue 3, "Bad input": thousands of generated and mutated requests thrown at the api handler
// (in-memory fakes, a clock that never moves). Whatever comes in, the answer is below 500, every
// 4xx is a problem+json of DESIGN §2, and a request answered 4xx enqueued nothing and wrote no
// message record and no suppression (on the webhook routes: no endpoint change, no replay job).
// Runs per property add up to 11,500.

/** Counts every write a request could make, so a 4xx can be shown to have made none. */
class CountingMessageStore extends InMemoryMessageStore {
  writes = 0;
  override async create(record: MessageRecord): Promise<void> {
    this.writes += 1;
    return super.create(record);
  }
  override async createMany(records: readonly MessageRecord[]): Promise<void> {
    this.writes += records.length;
    return super.createMany(records);
  }
  override async update(next: MessageRecord, expectedVersion: number, claimToken?: string): Promise<void> {
    this.writes += 1;
    return super.update(next, expectedVersion, claimToken);
  }
}

class CountingSuppressionStore extends InMemorySuppressionStore {
  writes = 0;
  override async put(s: Suppression): Promise<void> {
    this.writes += 1;
    return super.put(s);
  }
  override async putIfStronger(s: Suppression): Promise<boolean> {
    this.writes += 1;
    return super.putIfStronger(s);
  }
  override async delete(address: string): Promise<void> {
    this.writes += 1;
    return super.delete(address);
  }
}

/**
 * Cases per property add up to 11,500 in `npm test`; `npm run soak` sets BATON_FUZZ_RUNS (100,000)
 * and each property's share grows in proportion. A failure prints fast-check's seed and path.
 */
const DEFAULT_TOTAL = 11_500;
const SCALE = Math.max(1, Number(process.env.BATON_FUZZ_RUNS ?? DEFAULT_TOTAL) / DEFAULT_TOTAL);
const runs = (n: number): number => Math.ceil(n * SCALE);

/** Stats and erasure answer 501 to an authorised key until they are built (see app.test.ts). */
const NOT_YET_BUILT = new Set<string>([Route.stats, Route.eraseRecipient]);
const ROUTES = Object.values(Route);
const KNOWN_STATUSES = new Set([200, 202, 204, 207, 400, 401, 403, 404, 409, 413, 415, 422, 429]);

function harness() {
  const messages = new CountingMessageStore().seed(messageRecord({ id: 'msg_seeded' }));
  const suppressions = new CountingSuppressionStore().seed(suppression('gone@example.org', 'complaint'));
  const { api, queue, token, addKey } = apiHarness({}, { messages, suppressions });
  const tokens = {
    valid: token,
    limited: addKey({ dailyQuota: 3, rateLimit: 2 }),
    readOnly: addKey({ scopes: ['read'] }),
    suspended: addKey({ status: 'suspended' }),
    revoked: addKey({ status: 'revoked' }),
    elsewhere: addKey({ allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'] }),
    rewrite: addKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com', tenant: 'tenant-b' }),
  };

  /** Sends one event and checks the whole contract for its answer. */
  async function check(event: APIGatewayProxyEventV2): Promise<void> {
    const before = { jobs: queue.jobs.length, records: messages.writes, suppressions: suppressions.writes };
    const result = await api(event);
    const after = { jobs: queue.jobs.length, records: messages.writes, suppressions: suppressions.writes };
    assertContract(event, result, after.jobs - before.jobs);
    if ((result.statusCode ?? 0) >= 400) {
      // A refused request changed nothing: no job, no message record, no suppression.
      expect(after).toEqual(before);
    }
  }
  return { api, check, tokens, queue };
}

function headerOf(result: APIGatewayProxyStructuredResultV2, name: string): string | undefined {
  const headers = result.headers ?? {};
  const found = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return found === undefined ? undefined : String(headers[found]);
}

function assertProblem(value: unknown, status: number): void {
  expect(value).toEqual({
    type: expect.stringMatching(/^urn:baton:problem:[a-z_]+$/),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    code: expect.any(String),
    ...(typeof value === 'object' && value !== null && 'errors' in value
      ? { errors: expect.any(Array) }
      : {}),
  });
  const p = value as { type: string; code: string; errors?: unknown[] };
  expect(p.type).toBe(`urn:baton:problem:${p.code}`);
  for (const e of p.errors ?? [])
    expect(e).toEqual({ path: expect.any(String), message: expect.any(String) });
}

function assertContract(
  event: APIGatewayProxyEventV2,
  result: APIGatewayProxyStructuredResultV2,
  jobs: number,
) {
  const status = result.statusCode ?? 0;
  const notYetBuilt = status === 501 && NOT_YET_BUILT.has(event.routeKey);
  if (!notYetBuilt) {
    expect(status, `${event.routeKey} answered ${status}: ${result.body?.slice(0, 300)}`).toBeLessThan(500);
    expect(KNOWN_STATUSES.has(status), `unexpected status ${status}`).toBe(true);
  }
  if (status >= 400) {
    expect(headerOf(result, 'content-type')).toBe('application/problem+json');
    assertProblem(JSON.parse(result.body ?? ''), status);
    if (status === 429) expect(headerOf(result, 'retry-after')).toMatch(/^[1-9][0-9]*$/);
    return;
  }
  if (status === 204) {
    expect(result.body).toBe('');
    return;
  }
  expect(headerOf(result, 'content-type')).toBe('application/json');
  const body = JSON.parse(result.body ?? '') as Record<string, unknown>;
  const replayed = headerOf(result, 'idempotent-replayed') === 'true';
  if (status === 202) {
    expect(body.id).toMatch(/^msg_\d+$/);
    expect(jobs).toBe(replayed || body.status === 'suppressed' ? 0 : 1);
  }
  if (status === 207) {
    const results = body.results as Array<Record<string, unknown>>;
    results.forEach((r, i) => {
      expect(r.index).toBe(i);
      if ('error' in r) {
        const p = r.error as { status: number };
        expect(p.status).toBeGreaterThanOrEqual(400);
        assertProblem(r.error, p.status);
      }
    });
    const queued = results.filter((r) => r.status === 'queued').length;
    expect(jobs).toBe(replayed ? 0 : queued);
  }
  if (status !== 202 && status !== 207) expect(jobs).toBe(0);
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** A complete, valid message using every field of DESIGN §2. */
const validMessage = (): Record<string, unknown> =>
  everyFieldBody({ cc: ['carl@example.org'], bcc: ['dora@example.org'], stream: 'transactional' });

const FIELD_PATHS = [
  'from',
  'to',
  'to.0',
  'cc',
  'cc.0',
  'bcc',
  'bcc.0',
  'replyTo',
  'replyTo.0',
  'subject',
  'text',
  'html',
  'attachments',
  'attachments.0',
  'attachments.0.filename',
  'attachments.0.contentType',
  'attachments.0.content',
  'attachments.0.disposition',
  'attachments.0.contentId',
  'headers',
  'headers.X-Order-Id',
  'tags',
  'tags.campaign',
  'stream',
  'listUnsubscribe',
] as const;
/** The fields holding a string in the valid message. */
const STRING_PATHS = FIELD_PATHS.filter((path) => typeof getAt(validMessage(), path) === 'string');

const INJECTIONS = [
  '\r\n',
  '\n',
  '\r',
  '\u0000',
  '\u2028',
  '\u2029',
  '\r\nBcc: victim@example.net',
  '\nX-Injected: 1',
  '%0d%0aBcc: victim@example.net',
  '\t',
  '\u0085',
  '\u202e',
];

/** Nests `value` `depth` levels deep in arrays or objects. */
function nest(value: unknown, depth: number, shape: 'array' | 'object'): unknown {
  let v = value;
  for (let i = 0; i < depth; i++) v = shape === 'array' ? [v] : { a: v };
  return v;
}

const field = fieldMutations({
  paths: FIELD_PATHS,
  textPaths: STRING_PATHS,
  replaceDepth: 3,
  hugeSize: fc.oneof(fc.integer({ min: 990, max: 1010 }), fc.integer({ min: 1_000, max: 200_000 })),
  hugeChars: ['a', 'é', '😀', ' ', 'A='],
  unicodeExtras: ['Ω <ω@example.com>', '\u{1F4A9}@example.com', '\uD800'],
});

const mutation = fc.oneof(
  field.drop,
  field.replace,
  field.retype,
  field.huge,
  field.unicode,
  fc.record({
    kind: fc.constant('inject' as const),
    path: fc.constantFrom(...STRING_PATHS),
    sequence: fc.constantFrom(...INJECTIONS),
    where: fc.constantFrom('start', 'middle', 'end'),
  }),
  fc.record({
    kind: fc.constant('deep' as const),
    path: fc.constantFrom(...FIELD_PATHS),
    // Well past the api's 64-level cap (fast-check itself overflows printing much deeper values;
    // idempotency.test.ts covers 10,000 levels directly).
    depth: fc.integer({ min: 1, max: 600 }),
    shape: fc.constantFrom('array' as const, 'object' as const),
  }),
  fc.record({
    kind: fc.constant('header' as const),
    name: fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom(
        'From',
        'bcc',
        'Content-Type',
        'X-SES-X',
        'x\r\ny',
        'X:Y',
        '',
        '__proto__',
        'constructor',
        'toString',
      ),
    ),
    value: fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom(...INJECTIONS),
      fc.jsonValue({ maxDepth: 2 }),
    ),
  }),
  fc.record({
    kind: fc.constant('unknown' as const),
    name: fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom('__proto__', 'constructor', 'prototype', 'hasOwnProperty'),
    ),
    value: fc.jsonValue({ maxDepth: 2 }),
  }),
  fc.record({
    kind: fc.constant('tag' as const),
    name: fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom('__proto__', 'baton_tenant', 'baton_message_id', 'a'.repeat(257)),
    ),
    value: fc.oneof(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 })),
  }),
  fc.record({
    kind: fc.constant('recipients' as const),
    field: fc.constantFrom('to', 'cc', 'bcc'),
    count: fc.integer({ min: 0, max: 60 }),
  }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function applyMutation(body: Record<string, unknown>, m: Mutation): void {
  if (isJsonMutation(m)) {
    applyJsonMutation(body, m);
    return;
  }
  switch (m.kind) {
    case 'inject': {
      const current = getAt(body, m.path);
      const text = typeof current === 'string' ? current : 'value';
      const middle = Math.floor(text.length / 2);
      const next =
        m.where === 'start'
          ? `${m.sequence}${text}`
          : m.where === 'end'
            ? `${text}${m.sequence}`
            : `${text.slice(0, middle)}${m.sequence}${text.slice(middle)}`;
      setAt(body, m.path, next);
      return;
    }
    case 'deep':
      setAt(body, m.path, nest(getAt(body, m.path) ?? 'x', m.depth, m.shape));
      return;
    case 'header': {
      const headers = typeof body.headers === 'object' && body.headers !== null ? body.headers : {};
      body.headers = defineOwn({ ...headers }, m.name, m.value);
      return;
    }
    case 'unknown':
      // Assigned as an own property, as JSON.parse would (a plain `body[name] =` would set the prototype).
      defineOwn(body, m.name, m.value);
      return;
    case 'tag': {
      const tags = typeof body.tags === 'object' && body.tags !== null ? body.tags : {};
      body.tags = defineOwn({ ...tags }, m.name, m.value);
      return;
    }
    case 'recipients':
      body[m.field] = Array.from({ length: m.count }, (_, i) => `r${i}@example.org`);
      return;
  }
}

const mutatedMessage = fc.array(mutation, { minLength: 1, maxLength: 4 }).map((ms) => {
  const body = validMessage();
  for (const m of ms) applyMutation(body, m);
  return body;
});

const printableAscii = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 255,
});
const idempotencyKey = fc.option(
  fc.oneof(
    // A small pool, so repeats with equal and with different bodies both happen.
    { arbitrary: fc.constantFrom('k-1', 'k-2', 'k-3'), weight: 2 },
    { arbitrary: printableAscii, weight: 3 },
    // Mostly invalid: empty, too long, control characters, non-ASCII.
    { arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 300 }), weight: 1 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 20 }), weight: 1 },
  ),
  { nil: undefined, freq: 4 },
);

// Thousands of generated cases: the unit tier's 5 s is a hang guard for one example, not for
// a property, and a loaded 2-core machine takes twice its usual time.
describe('the api handler under bad input (issue 3, "Bad input")', { timeout: 60_000 * SCALE }, () => {
  it('answers JSON-ish bodies of any shape on every body-taking route within the contract', async () => {
    // Prepare
    const { check, tokens } = harness();
    const request = fc.record({
      route: fc.constantFrom(Route.sendMessage, Route.sendBatch, Route.putSuppression),
      body: fc.oneof(
        fc.json({ maxDepth: 4 }),
        fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ messages: [v] })),
        fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 5 }).map((m) => JSON.stringify({ messages: m })),
        fc
          .dictionary(
            fc.constantFrom(
              'from',
              'to',
              'cc',
              'bcc',
              'subject',
              'text',
              'html',
              'headers',
              'tags',
              'stream',
            ),
            fc.jsonValue({ maxDepth: 3 }),
          )
          .map((m) => JSON.stringify(m)),
      ),
      key: idempotencyKey,
    });

    // Act / Assess
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        await check(
          httpEvent(r.route, {
            token: tokens.valid,
            headers: {
              'content-type': 'application/json',
              ...(r.key !== undefined ? { 'idempotency-key': r.key } : {}),
            },
            body: r.body,
            pathParameters: { address: 'ana@example.org' },
          }),
        );
      }),
      { numRuns: runs(2_500) },
    );
  });

  it('answers mutations of a valid message (dropped, replaced, retyped, huge, injected, nested fields) within the contract', async () => {
    // Prepare
    const { check, tokens } = harness();
    const request = fc.record({
      message: mutatedMessage,
      asBatch: fc.boolean(),
      key: idempotencyKey,
      token: fc.constantFrom(tokens.valid, tokens.valid, tokens.rewrite),
    });

    // Act / Assess
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const body = r.asBatch ? { messages: [validMessage(), r.message] } : r.message;
        await check(
          httpEvent(r.asBatch ? Route.sendBatch : Route.sendMessage, {
            token: r.token,
            body,
            ...(r.key !== undefined ? { headers: { 'idempotency-key': r.key } } : {}),
          }),
        );
      }),
      { numRuns: runs(3_000) },
    );
  });

  it('answers raw bytes that are not JSON within the contract', async () => {
    // Prepare
    const { check, tokens } = harness();
    const request = fc.record({
      route: fc.constantFrom(Route.sendMessage, Route.sendBatch, Route.putSuppression),
      bytes: fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(
          Uint8Array.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), // BOM + {}
          Uint8Array.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]), // UTF-16 {}
          Buffer.from('{"from": "a@example.com", "to": ["b@example.org"], "subject": "s", "text": "t"'),
          Buffer.from('null'),
          Buffer.from('   '),
        ),
      ),
      encoding: fc.constantFrom('base64', 'latin1', 'utf8'),
      contentType: fc.option(fc.constantFrom('application/json', 'application/octet-stream'), {
        nil: undefined,
      }),
    });

    // Act / Assess
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const body = Buffer.from(r.bytes).toString(r.encoding as BufferEncoding);
        await check(
          httpEvent(r.route, {
            token: tokens.valid,
            body,
            isBase64Encoded: r.encoding === 'base64',
            headers: r.contentType === undefined ? {} : { 'content-type': r.contentType },
            pathParameters: { address: 'ana@example.org' },
          }),
        );
      }),
      { numRuns: runs(1_000) },
    );
  });

  it('answers random Content-Type, Authorization and Idempotency-Key headers within the contract', async () => {
    // Prepare
    const { check, tokens } = harness();
    const valid = tokens.valid;
    const authorization = fc.option(
      fc.oneof(
        fc.constantFrom(...Object.values(tokens)).map((t) => `Bearer ${t}`),
        fc.constantFrom(
          `bearer ${valid}`,
          `Bearer  ${valid}  `,
          `Bearer ${valid} extra`,
          `Basic ${valid}`,
          `Bearer ${valid.slice(0, -1)}`,
          `Bearer ${valid}x`,
          `Bearer ${valid.replace('bt_', 'BT_')}`,
          'Bearer',
          'Bearer ',
          '',
          'Bearer bt__',
          `Bearer ${'x'.repeat(5_000)}`,
        ),
        fc.string({ maxLength: 60 }).map((s) => `Bearer ${s}`),
        fc.string({ unit: 'binary', maxLength: 60 }),
      ),
      { nil: undefined, freq: 6 },
    );
    const contentType = fc.option(
      fc.oneof(
        fc.constantFrom(
          'application/json',
          'application/json; charset=utf-8',
          'APPLICATION/JSON',
          'application/problem+json',
          'application/vnd.api+json',
          'application/jsonx',
          'text/json',
          'text/plain',
          'multipart/form-data; boundary=x',
          'application/x-www-form-urlencoded',
          '',
          ';',
          'application/json;',
          ' application/json ',
        ),
        fc.string({ maxLength: 40 }),
      ),
      { nil: undefined, freq: 4 },
    );
    const bodies = [
      JSON.stringify(validMessage()),
      JSON.stringify({ ...validMessage(), subject: 'other' }),
      JSON.stringify({ messages: [validMessage()] }),
      '{"reason":"manual"}',
      '{',
    ];
    const request = fc.record({
      route: fc.constantFrom(
        Route.sendMessage,
        Route.sendBatch,
        Route.putSuppression,
        Route.getMessage,
        Route.listSuppressions,
      ),
      authorization,
      contentType,
      key: idempotencyKey,
      body: fc.constantFrom(...bodies),
      sourceIp: fc.oneof(
        fc.constantFrom('198.51.100.7', '10.1.2.3', '2001:db8::1', '::1', 'not-an-ip', ''),
        fc.ipV4(),
        fc.ipV6(),
      ),
      extra: fc.dictionary(
        fc.string({ minLength: 1, maxLength: 12 }).map((s) => s.toLowerCase()),
        fc.string({ maxLength: 20 }),
        { maxKeys: 3 },
      ),
    });

    // Act / Assess
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = { ...r.extra };
        if (r.authorization !== undefined) headers.authorization = r.authorization;
        else delete headers.authorization;
        if (r.contentType !== undefined) headers['content-type'] = r.contentType;
        else delete headers['content-type'];
        if (r.key !== undefined) headers['idempotency-key'] = r.key;
        else delete headers['idempotency-key'];
        await check(
          httpEvent(r.route, {
            headers,
            body: r.body,
            sourceIp: r.sourceIp,
            pathParameters: { id: 'msg_seeded', address: 'ana@example.org' },
          }),
        );
      }),
      { numRuns: runs(2_500) },
    );
  });

  it('answers any route, method, path, path parameter and query within the contract', async () => {
    // Prepare
    const { check, tokens } = harness();
    const pathValue = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.emailAddress(),
      fc.constantFrom(
        '%',
        '%E0%A4%A',
        '%40',
        'ana%40example.org',
        'GONE@EXAMPLE.ORG',
        'gone@example.org',
        'msg_seeded',
        'msg_1',
        '..%2F..',
        '\u0000',
        'a@b@c',
      ),
    );
    const request = fc.record({
      route: fc.constantFrom(...ROUTES),
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'get'),
      path: fc.oneof(fc.webPath(), fc.string({ maxLength: 40 })),
      params: fc.record({ id: pathValue, address: pathValue }, { requiredKeys: [] }),
      query: fc.dictionary(
        fc.oneof(fc.constantFrom('limit', 'cursor', 'from', 'to'), fc.string({ maxLength: 8 })),
        fc.oneof(
          fc.string({ maxLength: 20 }),
          fc.constantFrom(
            '0',
            '1',
            '1000',
            '1001',
            '-1',
            '1.5',
            '1e3',
            'NaN',
            ' 5',
            '2025-13-40',
            '!!',
            '__proto__',
          ),
          fc.base64String({ maxLength: 20 }),
        ),
        { maxKeys: 3 },
      ),
      body: fc.option(fc.oneof(fc.json({ maxDepth: 2 }), fc.string({ maxLength: 30 })), { nil: undefined }),
      token: fc.constantFrom(tokens.valid, tokens.readOnly, tokens.limited, tokens.rewrite),
    });

    // Act / Assess
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        await check(
          httpEvent(r.route, {
            token: r.token,
            method: r.method,
            path: r.path,
            pathParameters: r.params as Record<string, string>,
            query: r.query,
            ...(r.body !== undefined ? { body: r.body } : {}),
          }),
        );
      }),
      { numRuns: runs(1_500) },
    );
  });

  it('answers any body on the webhook routes within the contract, and a refused one changes nothing', async () => {
    // Prepare: one endpoint of the key's tenant and one event to replay, so ids can hit.
    const store = new InMemoryWebhookStore();
    const webhookQueue = new InMemoryWebhookQueue();
    const { api, addKey } = apiHarness(
      {},
      { deps: () => ({ webhookEndpoints: { store, queue: webhookQueue, allowLoopbackHttp: false } }) },
    );
    const token = addKey({ scopes: ['webhooks'] });
    const created = await api(
      httpEvent(Route.createWebhook, { token, body: { url: 'https://hooks.example.com/baton' } }),
    );
    const id = (jsonOf(created) as { id: string }).id;
    const timestamp = '2026-05-01T00:00:00.000Z';
    await store.append([
      {
        id: 'evt_1',
        tenant: 'tenant-a',
        type: 'message.delivered',
        timestamp,
        body: '{"type":"message.delivered"}',
      },
    ]);
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom(
        'https://hooks.example.com/x',
        'http://10.0.0.1/',
        'https://169.254.169.254/',
        'https://u:p@hooks.example.com/',
        `https://${'a'.repeat(3_000)}.example.com/`,
        'message.delivered',
        ['message.delivered', 'message.opened'],
        [],
        '2026-01-01T00:00:00Z',
        'yesterday',
        'evt_1',
        'a\u0000b',
        true,
      ),
    );
    const request = fc.record({
      route: fc.constantFrom(Route.createWebhook, Route.updateWebhook, Route.replayWebhook),
      body: fc.oneof(
        fc.json({ maxDepth: 3 }),
        fc
          .dictionary(
            fc.constantFrom('url', 'events', 'description', 'enabled', 'since', 'eventId', 'x'),
            value,
          )
          .map((b) => JSON.stringify(b)),
      ),
      id: fc.oneof(fc.constant(id), fc.string({ maxLength: 30 })),
    });
    const snapshot = () => JSON.stringify([[...store.endpoints.entries()], webhookQueue.jobs.length]);

    // Act / Assess
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const before = snapshot();
        const result = await api(httpEvent(r.route, { token, body: r.body, pathParameters: { id: r.id } }));
        const status = result.statusCode ?? 0;
        expect(status, `${r.route} answered ${status}: ${result.body?.slice(0, 300)}`).toBeLessThan(500);
        expect([200, 201, 202, 400, 404, 409, 413, 415, 422].includes(status), `unexpected ${status}`).toBe(
          true,
        );
        if (status >= 400) {
          expect(headerOf(result, 'content-type')).toBe('application/problem+json');
          assertProblem(JSON.parse(result.body ?? ''), status);
          expect(snapshot()).toBe(before);
        } else {
          expect(headerOf(result, 'content-type')).toBe('application/json');
        }
      }),
      { numRuns: runs(1_000) },
    );
  });

  it('answers bodies near and above the size limits within the contract', async () => {
    // Prepare
    const { check, tokens } = harness();
    const sizes = [
      ['a 6 MB + 1 byte request', JSON.stringify({ ...validMessage(), text: 'a'.repeat(6 * 1024 * 1024) })],
      [
        'a request of multibyte characters over 6 MB',
        JSON.stringify({ ...validMessage(), text: 'é'.repeat(3 * 1024 * 1024 + 1) }),
      ],
      [
        'a 4.5 MB attachment',
        JSON.stringify({
          ...validMessage(),
          attachments: [
            {
              filename: 'big.bin',
              contentType: 'application/octet-stream',
              content: Buffer.alloc(4_500_000).toString('base64').slice(0, 6_000_000),
            },
          ],
        }),
      ],
      [
        '100 messages of 60 KB in one batch',
        JSON.stringify({
          messages: Array.from({ length: 100 }, () => ({ ...validMessage(), text: 'b'.repeat(60_000) })),
        }),
      ],
      [
        '51 recipients',
        JSON.stringify({ ...validMessage(), to: Array.from({ length: 49 }, (_, i) => `r${i}@example.org`) }),
      ],
      ['a 6 MB base64 body', Buffer.from('a'.repeat(6 * 1024 * 1024 + 10)).toString('base64')],
    ] as const;

    // Act / Assess
    for (const [what, body] of sizes) {
      const isBase64Encoded = what === 'a 6 MB base64 body';
      for (const route of [Route.sendMessage, Route.sendBatch]) {
        await expect(
          check(
            httpEvent(route, {
              token: tokens.valid,
              body,
              isBase64Encoded,
              headers: { 'content-type': 'application/json', 'idempotency-key': what },
            }),
          ),
          what,
        ).resolves.toBeUndefined();
      }
    }
  });
});
