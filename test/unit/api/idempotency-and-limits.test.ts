import '../../support/quiet-powertools.ts';
import { describe, expect, it, vi } from 'vitest';
import { problem } from '../../../lambdas/domain/problem.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { messageRecord, sendBody } from '../../support/builders.ts';
import { apiHarness, type KeyOverrides } from '../../support/harness.ts';
import { contentTypeOf, httpEvent, jsonOf } from '../../support/http-events.ts';
import { problemIn } from '../../support/unit-problems.ts';

function setUp(keyOverrides: KeyOverrides = {}) {
  const h = apiHarness(keyOverrides);
  const send = (
    token: string,
    body: unknown,
    headers: Record<string, string> = {},
    route: string = Route.sendMessage,
  ) => h.api(httpEvent(route, { token, body, headers }));
  return { ...h, send };
}

const accepted = (id: string, address = 'ana@example.org') => ({
  id,
  status: 'queued',
  recipients: [{ address, status: 'queued' }],
  rewrittenFrom: null,
});

const UNQUEUED = 'Baton could not queue the message; it was not sent. Retry the request.';

const CONFLICT = problem(
  'idempotency_conflict',
  'This Idempotency-Key was used with a different request body in the last 24 hours.',
);

describe('Idempotency-Key on POST /v1/messages', () => {
  it('answers a repeat with the first response, marked replayed, and queues the message once', async () => {
    // Prepare
    const { send, token, queue, messages } = setUp();
    const headers = { 'idempotency-key': 'order-42' };
    const first = await send(token, sendBody(), headers);

    // Act
    const again = await send(token, sendBody(), headers);

    // Assess
    expect(first).toEqual({
      statusCode: 202,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(accepted('msg_1')),
    });
    expect(again).toEqual({
      statusCode: 202,
      headers: { 'content-type': 'application/json', 'idempotent-replayed': 'true' },
      body: first.body,
    });
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1']);
    expect(messages.peek('msg_2')).toBeUndefined();
  });

  it('takes the same JSON with other key order and spacing as the same body', async () => {
    // Prepare
    const { send, token, queue } = setUp();
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'order-42' };
    await send(
      token,
      '{"from":"orders@example.com","to":["ana@example.org"],"subject":"Hi","text":"x"}',
      headers,
    );

    // Act
    const again = await send(
      token,
      '{ "text": "x",\n  "subject": "Hi", "to": [ "ana@example.org" ], "from": "orders@example.com" }',
      headers,
    );

    // Assess
    expect(again.statusCode).toBe(202);
    expect(again.headers).toEqual({ 'content-type': 'application/json', 'idempotent-replayed': 'true' });
    expect(queue.jobs).toHaveLength(1);
  });

  it('matches the header name in any case', async () => {
    // Prepare
    const { api, token, queue } = setUp();
    const event = (name: string) => {
      const e = httpEvent(Route.sendMessage, { token, body: sendBody() });
      return { ...e, headers: { ...e.headers, [name]: 'order-42' } };
    };
    await api(event('Idempotency-Key'));

    // Act
    const again = await api(event('IDEMPOTENCY-KEY'));

    // Assess
    expect(again.headers).toEqual({ 'content-type': 'application/json', 'idempotent-replayed': 'true' });
    expect(queue.jobs).toHaveLength(1);
  });

  it('answers 409 to the same key with another body, and queues nothing more', async () => {
    // Prepare
    const { send, token, queue } = setUp();
    const headers = { 'idempotency-key': 'order-42' };
    await send(token, sendBody(), headers);

    // Act
    const result = await send(token, sendBody({ subject: 'Another subject' }), headers);

    // Assess
    expect(problemIn(result, 409)).toEqual(CONFLICT);
    expect(queue.jobs).toHaveLength(1);
  });

  it('replays a refused request’s problem as problem+json, marked replayed', async () => {
    // Prepare
    const { send, token, queue } = setUp();
    const headers = { 'idempotency-key': 'order-42' };
    const body = sendBody({ from: 'someone@other.org' });
    const first = await send(token, body, headers);

    // Act
    const again = await send(token, body, headers);

    // Assess
    expect(problemIn(first, 403).code).toBe('forbidden');
    expect(again).toEqual({
      statusCode: 403,
      headers: { 'content-type': 'application/problem+json', 'idempotent-replayed': 'true' },
      body: first.body,
    });
    expect(queue.jobs).toEqual([]);
  });

  it('does not keep a 503: the retry with the same key is sent and answered as new', async () => {
    // Prepare
    const { send, token, queue, messages } = setUp();
    const headers = { 'idempotency-key': 'order-42' };
    queue.failing.add('msg_1');
    const first = await send(token, sendBody(), headers);

    // Act
    const retry = await send(token, sendBody(), headers);

    // Assess
    expect(problemIn(first, 503).code).toBe('unavailable');
    expect(retry).toEqual({
      statusCode: 202,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(accepted('msg_2')),
    });
    expect(messages.peek('msg_1')?.phase).toBe('failed');
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_2']);
  });

  it('does not keep a 429 for the quota: the same key works again the next day', async () => {
    // Prepare
    const { send, token, clock, queue } = setUp({ dailyQuota: 1 });
    await send(token, sendBody({ subject: 'first' }));
    const headers = { 'idempotency-key': 'order-42' };
    const limited = await send(token, sendBody(), headers);

    // Act
    clock.set('2025-03-02T00:00:01.000Z');
    const nextDay = await send(token, sendBody(), headers);

    // Assess
    expect(problemIn(limited, 429).code).toBe('rate_limited');
    expect(nextDay.statusCode).toBe(202);
    expect(nextDay.headers).toEqual({ 'content-type': 'application/json' });
    expect(queue.jobs).toHaveLength(2);
  });

  it('sends every request without the header, even with equal bodies', async () => {
    // Prepare
    const { send, token, queue } = setUp();

    // Act
    await send(token, sendBody());
    await send(token, sendBody());

    // Assess
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_2']);
  });

  it.each([
    ['empty', ''],
    ['256 characters long', 'k'.repeat(256)],
    ['holding a control character', 'order\u000142'],
    ['holding a non-ASCII letter', 'commande-é'],
  ])('answers 400 to a key that is %s, and queues nothing', async (_what, value) => {
    // Prepare
    const { send, token, queue } = setUp();

    // Act
    const result = await send(token, sendBody(), { 'idempotency-key': value });

    // Assess
    expect(problemIn(result, 400)).toEqual(
      problem('bad_request', 'The Idempotency-Key header must be 1 to 255 printable ASCII characters.'),
    );
    expect(queue.jobs).toEqual([]);
  });

  it('runs two requests that race with one key once, and answers both with the same message', async () => {
    // Prepare
    const { send, token, queue } = setUp();
    const headers = { 'idempotency-key': 'order-42' };

    // Act
    const [a, b] = await Promise.all([send(token, sendBody(), headers), send(token, sendBody(), headers)]);

    // Assess
    expect([a?.statusCode, b?.statusCode]).toEqual([202, 202]);
    expect(jsonOf(a ?? {})).toEqual(accepted('msg_1'));
    expect(jsonOf(b ?? {})).toEqual(accepted('msg_1'));
    expect([a?.headers?.['idempotent-replayed'], b?.headers?.['idempotent-replayed']]).toEqual([
      undefined,
      'true',
    ]);
    expect(queue.jobs).toHaveLength(1);
  });

  it('scopes keys per tenant: another tenant’s request with the same key is its own', async () => {
    // Prepare
    const { send, token, addKey, queue } = setUp();
    const otherTenant = addKey({ tenant: 'tenant-b' });
    const headers = { 'idempotency-key': 'order-42' };
    await send(token, sendBody(), headers);

    // Act
    const other = await send(otherTenant, sendBody({ subject: 'Something else' }), headers);

    // Assess
    expect(other.statusCode).toBe(202);
    expect(jsonOf(other)).toEqual(accepted('msg_2'));
    expect(queue.jobs.map((j) => [j.job.id, j.job.tenant])).toEqual([
      ['msg_1', 'tenant-a'],
      ['msg_2', 'tenant-b'],
    ]);
  });

  it('shares keys between the API keys of one tenant (the key is the tenant’s, not the credential’s)', async () => {
    // Prepare
    const { send, token, addKey, queue } = setUp();
    const sameTenant = addKey({ tenant: 'tenant-a' });
    const headers = { 'idempotency-key': 'order-42' };
    await send(token, sendBody(), headers);

    // Act
    const again = await send(sameTenant, sendBody(), headers);

    // Assess
    expect(again.headers).toEqual({ 'content-type': 'application/json', 'idempotent-replayed': 'true' });
    expect(queue.jobs).toHaveLength(1);
  });

  it('does not count a replayed request in the statistics again', async () => {
    // Prepare
    const { send, token, usage } = setUp();
    const headers = { 'idempotency-key': 'order-42' };
    await send(token, sendBody(), headers);

    // Act
    await send(token, sendBody(), headers);

    // Assess
    expect(usage.stats.get('tenant-a#2025-03-01')).toEqual({ accepted: 1 });
  });

  // Regression: a deep body with an Idempotency-Key overflowed the stack (500).
  it.each([Route.sendMessage, Route.sendBatch])(
    'answers a deeply nested body with an Idempotency-Key on %s as bad input, not 500',
    async (route) => {
      // Prepare
      const { send, token } = setUp();
      const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
      const body = route === Route.sendBatch ? `{"messages":[${deep}]}` : deep;

      // Act
      const result = await send(
        token,
        body,
        { 'content-type': 'application/json', 'idempotency-key': 'k' },
        route,
      );

      // Assess
      expect(result.statusCode).toBeLessThan(500);
    },
  );
});

describe('Idempotency-Key on POST /v1/messages/batch', () => {
  it('replays the whole 207 and queues each message once', async () => {
    // Prepare
    const { send, token, queue } = setUp();
    const headers = { 'idempotency-key': 'batch-7' };
    const body = { messages: [sendBody(), sendBody({ to: ['bob@example.org'] })] };
    const first = await send(token, body, headers, Route.sendBatch);

    // Act
    const again = await send(token, body, headers, Route.sendBatch);

    // Assess
    expect(first.statusCode).toBe(207);
    expect(again).toEqual({
      statusCode: 207,
      headers: { 'content-type': 'application/json', 'idempotent-replayed': 'true' },
      body: first.body,
    });
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_2']);
  });

  // Regression (issue 11 part 6): a 207 holding per-message 503s was kept and replayed for 24 h,
  // so the retry the 503 advises never ran.
  it('keeps only the final answers of a 207: the retry re-runs just the messages answered 503, and queues each once', async () => {
    // Prepare
    const { send, token, queue } = setUp();
    const headers = { 'idempotency-key': 'batch-7' };
    const body = { messages: [sendBody(), sendBody({ to: ['bob@example.org'] })] };
    queue.failing.add('msg_1');
    const first = await send(token, body, headers, Route.sendBatch);

    // Act
    const retry = await send(token, body, headers, Route.sendBatch);
    const again = await send(token, body, headers, Route.sendBatch);

    // Assess
    expect(jsonOf(first)).toEqual({
      results: [
        { index: 0, error: problem('unavailable', UNQUEUED) },
        { index: 1, ...accepted('msg_2', 'bob@example.org') },
      ],
    });
    expect(retry).toEqual({
      statusCode: 207,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        results: [
          { index: 0, ...accepted('msg_3') },
          { index: 1, ...accepted('msg_2', 'bob@example.org') },
        ],
      }),
    });
    expect(again).toEqual({
      statusCode: 207,
      headers: { 'content-type': 'application/json', 'idempotent-replayed': 'true' },
      body: retry.body,
    });
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_2', 'msg_3']);
  });

  it('re-runs the messages past the daily quota on a retry with the same key, and admits them the next day', async () => {
    // Prepare
    const { send, token, queue, clock } = setUp({ dailyQuota: 1 });
    const headers = { 'idempotency-key': 'batch-7' };
    const body = { messages: [sendBody(), sendBody({ to: ['bob@example.org'] })] };
    const first = await send(token, body, headers, Route.sendBatch);
    const sameDay = await send(token, body, headers, Route.sendBatch);

    // Act
    clock.set('2025-03-02T00:00:01.000Z');
    const nextDay = await send(token, body, headers, Route.sendBatch);

    // Assess
    const limited = {
      index: 1,
      error: problem('rate_limited', "This API key's daily quota of 1 messages is used up."),
    };
    expect(jsonOf(first)).toEqual({ results: [{ index: 0, ...accepted('msg_1') }, limited] });
    expect(sameDay.headers).toEqual({ 'content-type': 'application/json', 'retry-after': '43200' });
    expect(jsonOf(sameDay)).toEqual(jsonOf(first));
    expect(jsonOf(nextDay)).toEqual({
      results: [
        { index: 0, ...accepted('msg_1') },
        { index: 1, ...accepted('msg_4', 'bob@example.org') },
      ],
    });
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_4']);
  });

  it('keeps the final answers when the retry of a 207 fails as a whole, and re-runs only the 503s after it', async () => {
    // Prepare
    const { send, token, queue, suppressions } = setUp();
    const headers = { 'idempotency-key': 'batch-7' };
    const body = { messages: [sendBody(), sendBody({ to: ['bob@example.org'] })] };
    queue.failing.add('msg_1');
    await send(token, body, headers, Route.sendBatch);
    vi.spyOn(suppressions, 'getMany').mockRejectedValueOnce(new TransientError('DynamoDB is unavailable'));
    const failed = await send(token, body, headers, Route.sendBatch);

    // Act
    const retry = await send(token, body, headers, Route.sendBatch);

    // Assess
    expect(problemIn(failed, 503).code).toBe('unavailable');
    expect(jsonOf(retry)).toEqual({
      results: [
        { index: 0, ...accepted('msg_4') },
        { index: 1, ...accepted('msg_2', 'bob@example.org') },
      ],
    });
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_2', 'msg_4']);
  });

  it('re-runs the 503s of a 207 once when two retries with the same key race', async () => {
    // Prepare
    const { send, token, queue } = setUp();
    const headers = { 'idempotency-key': 'batch-7' };
    const body = { messages: [sendBody(), sendBody({ to: ['bob@example.org'] })] };
    queue.failing.add('msg_1');
    await send(token, body, headers, Route.sendBatch);

    // Act
    const [a, b] = await Promise.all([
      send(token, body, headers, Route.sendBatch),
      send(token, body, headers, Route.sendBatch),
    ]);

    // Assess
    expect(jsonOf(a)).toEqual(jsonOf(b));
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_2', 'msg_3']);
  });

  it('answers 409 to the same key with another batch', async () => {
    // Prepare
    const { send, token } = setUp();
    const headers = { 'idempotency-key': 'batch-7' };
    await send(token, { messages: [sendBody()] }, headers, Route.sendBatch);

    // Act
    const result = await send(token, { messages: [sendBody(), sendBody()] }, headers, Route.sendBatch);

    // Assess
    expect(problemIn(result, 409)).toEqual(CONFLICT);
  });

  it('scopes keys per route: the same key on the single and the batch route are two requests', async () => {
    // Prepare
    const { send, token, queue } = setUp();
    const headers = { 'idempotency-key': 'same-key' };
    await send(token, sendBody(), headers);

    // Act
    const batch = await send(token, { messages: [sendBody()] }, headers, Route.sendBatch);

    // Assess
    expect(batch.statusCode).toBe(207);
    expect(batch.headers).toEqual({ 'content-type': 'application/json' });
    expect(queue.jobs).toHaveLength(2);
  });
});

describe('POST /v1/messages/batch', () => {
  it('answers 207 with {results} in request order, with the problem of each refused message', async () => {
    // Prepare
    const { send, token, queue } = setUp();

    // Act
    const result = await send(
      token,
      { messages: [sendBody(), sendBody({ from: 'x@other.org' }), sendBody({ to: ['bob@example.org'] })] },
      {},
      Route.sendBatch,
    );

    // Assess
    expect(result.statusCode).toBe(207);
    expect(contentTypeOf(result)).toBe('application/json');
    expect(jsonOf(result)).toEqual({
      results: [
        { index: 0, ...accepted('msg_1') },
        {
          index: 1,
          error: problem(
            'forbidden',
            'This API key may not send from the domain other.org; allowed: example.com.',
          ),
        },
        { index: 2, ...accepted('msg_2', 'bob@example.org') },
      ],
    });
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_2']);
  });

  it.each([
    ['no messages', { messages: [] }],
    ['101 messages', { messages: Array.from({ length: 101 }, () => sendBody()) }],
    ['messages that are not an array', { messages: {} }],
    ['an unknown field next to messages', { messages: [sendBody()], extra: 1 }],
    ['an array instead of an object', [sendBody()]],
  ])('answers 422 to a batch with %s, and queues nothing', async (_what, body) => {
    // Prepare
    const { send, token, queue } = setUp();

    // Act
    const result = await send(token, body, {}, Route.sendBatch);

    // Assess
    expect(problemIn(result, 422).code).toBe('invalid_request');
    expect(queue.jobs).toEqual([]);
  });

  it('accepts a batch of exactly 100 messages', async () => {
    // Prepare
    const { send, token, queue } = setUp();

    // Act
    const result = await send(
      token,
      { messages: Array.from({ length: 100 }, (_, i) => sendBody({ to: [`u${i}@example.org`] })) },
      {},
      Route.sendBatch,
    );

    // Assess
    expect(result.statusCode).toBe(207);
    expect(queue.jobs).toHaveLength(100);
  });
});

describe('per-key request rate', () => {
  it('answers the second request within the second 429 with Retry-After, and the one after a second 202', async () => {
    // Prepare
    const { send, token, clock } = setUp({ rateLimit: 1 });
    const first = await send(token, sendBody());

    // Act
    const second = await send(token, sendBody());
    clock.advance(1_000);
    const third = await send(token, sendBody());

    // Assess
    expect(first.statusCode).toBe(202);
    expect(problemIn(second, 429)).toEqual(
      problem('rate_limited', 'This API key may make 1 requests per second.'),
    );
    expect(second.headers).toEqual({ 'content-type': 'application/problem+json', 'retry-after': '1' });
    expect(third.statusCode).toBe(202);
  });

  it('counts every route the key calls, reads included', async () => {
    // Prepare
    const { api, send, token, messages } = setUp({ rateLimit: 1 });
    messages.seed(messageRecord({ id: 'msg_9' }));
    await api(httpEvent(Route.getMessage, { token, pathParameters: { id: 'msg_9' } }));

    // Act
    const result = await send(token, sendBody());

    // Assess
    expect(problemIn(result, 429).code).toBe('rate_limited');
  });

  it('limits each key on its own', async () => {
    // Prepare
    const { send, token, addKey } = setUp({ rateLimit: 1 });
    const other = addKey({ rateLimit: 1 });
    await send(token, sendBody());

    // Act
    const result = await send(other, sendBody());

    // Assess
    expect(result.statusCode).toBe(202);
  });

  it('refuses a rate-limited request before it uses quota, records or the queue', async () => {
    // Prepare
    const { send, token, usage, queue, key } = setUp({ rateLimit: 1, dailyQuota: 10 });
    await send(token, sendBody());

    // Act
    await send(token, sendBody());

    // Assess
    expect(usage.quota.get(`${key.keyId}#2025-03-01`)).toBe(1);
    expect(queue.jobs).toHaveLength(1);
  });

  it('gives the request back when it is answered 503, so the advised retry is not rate limited', async () => {
    // Prepare
    const { send, token, queue, suppressions } = setUp({ rateLimit: 1 });
    queue.failing.add('msg_1');
    const unqueued = await send(token, sendBody());
    vi.spyOn(suppressions, 'getMany').mockRejectedValueOnce(new TransientError('DynamoDB is unavailable'));
    const unread = await send(token, sendBody());

    // Act
    const retry = await send(token, sendBody());

    // Assess
    expect(problemIn(unqueued, 503).code).toBe('unavailable');
    expect(problemIn(unread, 503).code).toBe('unavailable');
    expect(retry.statusCode).toBe(202);
  });

  it.each([
    ['4xx (refused)', () => undefined, { not: 'a message' }],
    [
      '500 (a fault in Baton a client might trigger at will, not a dependency)',
      (h: ReturnType<typeof setUp>) =>
        vi.spyOn(h.suppressions, 'getMany').mockRejectedValueOnce(new Error('a bug')),
      sendBody(),
    ],
  ])('does not give back a request answered %s', async (_, arrange, body) => {
    // Prepare
    const h = setUp({ rateLimit: 1 });
    arrange(h);
    await h.send(h.token, body);

    // Act
    const next = await h.send(h.token, sendBody());

    // Assess
    expect(problemIn(next, 429).code).toBe('rate_limited');
  });

  it('does not limit a key without a rate', async () => {
    // Prepare
    const { send, token } = setUp();

    // Act
    const results = await Promise.all(Array.from({ length: 20 }, () => send(token, sendBody())));

    // Assess
    expect(results.map((r) => r.statusCode)).toEqual(Array.from({ length: 20 }, () => 202));
  });
});

describe('daily quota over HTTP', () => {
  it('answers the message beyond the quota 429 with Retry-After in seconds to UTC midnight', async () => {
    // Prepare
    const { send, token, queue } = setUp({ dailyQuota: 2 });
    await send(token, sendBody());
    await send(token, sendBody());

    // Act
    const third = await send(token, sendBody());

    // Assess
    expect(problemIn(third, 429)).toEqual(
      problem('rate_limited', "This API key's daily quota of 2 messages is used up."),
    );
    expect(third.headers).toEqual({ 'content-type': 'application/problem+json', 'retry-after': '43200' });
    expect(queue.jobs).toHaveLength(2);
  });

  it('answers a batch beyond the quota 207 with a 429 problem for each message that did not fit', async () => {
    // Prepare
    const { send, token, queue } = setUp({ dailyQuota: 2 });

    // Act
    const result = await send(
      token,
      {
        messages: [sendBody(), sendBody({ to: ['bob@example.org'] }), sendBody({ to: ['cleo@example.org'] })],
      },
      {},
      Route.sendBatch,
    );

    // Assess
    expect(result.statusCode).toBe(207);
    expect(jsonOf(result)).toEqual({
      results: [
        { index: 0, ...accepted('msg_1') },
        { index: 1, ...accepted('msg_2', 'bob@example.org') },
        { index: 2, error: problem('rate_limited', "This API key's daily quota of 2 messages is used up.") },
      ],
    });
    expect(queue.jobs).toHaveLength(2);
  });
});
