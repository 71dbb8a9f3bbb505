import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seedApiKey } from '../support/e2e-keys.ts';
import {
  expectSentOnce,
  lanesDrained,
  messageReaches,
  receipt,
  sesSendsOf,
  type TestBaton,
  withTestBaton,
} from '../support/local-baton.ts';
import { expectProblem } from '../support/problems.ts';

// Issue 3 parts 8, 9 and 11 over HTTP against local mode: the real api handler in its function
// processes, DynamoDB (dynalite) for idempotency records and quotas, SQS, the sender and the SES
// stand-in. Every test uses its own recipients (`success+<label>@`) so they can share one instance.

let baton: TestBaton;

withTestBaton((started) => {
  baton = started;
});

async function post(path: string, json: unknown, headers: Record<string, string> = {}, auth?: string) {
  const res = await baton.request(path, { json, headers, ...(auth !== undefined ? { auth } : {}) });
  return { res, body: (await res.json()) as Record<string, unknown> };
}

const delivered = (id: string) => messageReaches(baton, id, 'delivered');

describe('Idempotency-Key over HTTP', () => {
  it('answers a repeated request with the same id and sends the message once', async () => {
    // Prepare
    const body = receipt('success+idem-repeat@simulator.amazonses.com');
    const headers = { 'idempotency-key': 'e2e-repeat-1' };
    const first = await post('/v1/messages', body, headers);

    // Act
    const second = await post('/v1/messages', body, headers);

    // Assess
    expect(first.res.status).toBe(202);
    expect(first.res.headers.get('idempotent-replayed')).toBeNull();
    expect(second.res.status).toBe(202);
    expect(second.res.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body).toEqual(first.body);
    const id = String(first.body.id);
    await delivered(id);
    await expectSentOnce(baton, id);
  });

  it('turns five parallel requests with one key into one message, answered to all five', async () => {
    // Prepare
    const to = 'success+idem-parallel@simulator.amazonses.com';
    const headers = { 'idempotency-key': 'e2e-parallel-1' };

    // Act
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => post('/v1/messages', receipt(to), headers)),
    );

    // Assess
    expect(answers.map((a) => a.res.status)).toEqual([202, 202, 202, 202, 202]);
    const ids = new Set(answers.map((a) => a.body.id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.res.headers.get('idempotent-replayed') === 'true')).toHaveLength(4);
    const id = String(answers[0]?.body.id);
    await delivered(id);
    await expectSentOnce(baton, id);
    expect(baton.ses.sent().filter((s) => s.recipients.includes(to))).toHaveLength(1);
  });

  it('answers 409 to the same key with another body, and sends nothing for it', async () => {
    // Prepare
    const headers = { 'idempotency-key': 'e2e-conflict-1' };
    await post('/v1/messages', receipt('success+idem-first@simulator.amazonses.com'), headers);

    // Act
    const other = await post('/v1/messages', receipt('success+idem-other@simulator.amazonses.com'), headers);

    // Assess
    expectProblem(other.res, other.body, {
      type: 'urn:baton:problem:idempotency_conflict',
      title: 'Idempotency key reused with a different body',
      status: 409,
      detail: 'This Idempotency-Key was used with a different request body in the last 24 hours.',
      code: 'idempotency_conflict',
    });
    // Anything the 409 had queued would have reached SES by the time the lanes are empty.
    await lanesDrained(baton);
    expect(
      baton.ses.sent().some((s) => s.recipients.includes('success+idem-other@simulator.amazonses.com')),
    ).toBe(false);
  });

  it('answers 400 to an Idempotency-Key longer than 255 characters', async () => {
    // Act
    const { res, body } = await post('/v1/messages', receipt('success+idem-long@simulator.amazonses.com'), {
      'idempotency-key': 'k'.repeat(256),
    });

    // Assess
    expect(res.status).toBe(400);
    expect(body).toMatchObject({ code: 'bad_request', status: 400 });
  });
});

describe('POST /v1/messages/batch over HTTP', () => {
  it('answers 207 in request order for good, invalid and suppressed messages, and delivers every good one', async () => {
    // Prepare
    const blocked = 'blocked+batch@simulator.amazonses.com';
    const put = await baton.request(`/v1/suppressions/${encodeURIComponent(blocked)}`, {
      method: 'PUT',
      json: { reason: 'manual', detail: 'e2e' },
    });
    expect(put.status).toBe(200);
    const messages = [
      receipt('success+batch-1@simulator.amazonses.com'),
      receipt('not an address'),
      receipt(blocked),
      receipt('success+batch-2@simulator.amazonses.com', {
        stream: 'broadcast',
        listUnsubscribe: 'https://example.com/u',
      }),
      receipt('success+batch-3@simulator.amazonses.com', { from: 'ceo@bank.example' }),
    ];

    // Act
    const { res, body } = await post('/v1/messages/batch', { messages });

    // Assess
    expect(res.status).toBe(207);
    const results = body.results as Array<Record<string, unknown>>;
    expect(results).toEqual([
      {
        index: 0,
        id: expect.stringMatching(/^msg_[0-9A-Z]{26}$/),
        status: 'queued',
        recipients: [{ address: 'success+batch-1@simulator.amazonses.com', status: 'queued' }],
        rewrittenFrom: null,
      },
      { index: 1, error: expect.objectContaining({ code: 'invalid_message', status: 422 }) },
      {
        index: 2,
        id: expect.stringMatching(/^msg_/),
        status: 'suppressed',
        recipients: [{ address: blocked, status: 'suppressed', reason: 'manual' }],
        rewrittenFrom: null,
      },
      {
        index: 3,
        id: expect.stringMatching(/^msg_/),
        status: 'queued',
        recipients: [{ address: 'success+batch-2@simulator.amazonses.com', status: 'queued' }],
        rewrittenFrom: null,
      },
      { index: 4, error: expect.objectContaining({ code: 'forbidden', status: 403 }) },
    ]);
    const goodIds = [results[0]?.id, results[3]?.id].map(String);
    for (const id of goodIds) await delivered(id);
    await lanesDrained(baton);
    await baton.ses.settled();
    expect(goodIds.map((id) => sesSendsOf(baton, id).length)).toEqual([1, 1]);
    expect(sesSendsOf(baton, String(results[2]?.id))).toEqual([]);
    expect(existsSync(join(baton.outboxDir, `${String(results[2]?.id)}.eml`))).toBe(false);
  });

  it('applies a tenant’s own suppression to that tenant’s batch only: another tenant’s batch to the address is sent', async () => {
    // Prepare: the development key's tenant suppresses the address; another tenant has a key too.
    const blocked = 'success+batch-scoped@simulator.amazonses.com';
    const put = await baton.request(`/v1/suppressions/${encodeURIComponent(blocked)}`, {
      method: 'PUT',
      json: { reason: 'unsubscribe' },
    });
    expect(put.status).toBe(200);
    const other = await seedApiKey(baton, { tenant: 'batch-other' });

    // Act
    const own = await post('/v1/messages/batch', { messages: [receipt(blocked)] });
    const theirs = await post('/v1/messages/batch', { messages: [receipt(blocked)] }, {}, other);

    // Assess
    const [ownResult] = own.body.results as Array<{ status: string }>;
    const [theirResult] = theirs.body.results as Array<{ id: string; status: string }>;
    expect([ownResult?.status, theirResult?.status]).toEqual(['suppressed', 'queued']);
    await lanesDrained(baton);
    await baton.ses.settled();
    expect(sesSendsOf(baton, String(theirResult?.id))).toHaveLength(1);
  });

  it('replays a batch sent twice with one Idempotency-Key and sends its messages once', async () => {
    // Prepare
    const batch = { messages: [receipt('success+batch-idem@simulator.amazonses.com')] };
    const headers = { 'idempotency-key': 'e2e-batch-1' };
    const first = await post('/v1/messages/batch', batch, headers);

    // Act
    const second = await post('/v1/messages/batch', batch, headers);

    // Assess
    expect(second.res.status).toBe(207);
    expect(second.res.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body).toEqual(first.body);
    const id = String((first.body.results as Array<{ id: string }>)[0]?.id);
    await delivered(id);
    await expectSentOnce(baton, id);
  });
});

// Issue 11 part 6: a 207 with per-message 429s was kept whole and replayed for 24 h.
describe('Idempotency-Key on a batch answered in part', () => {
  it('re-runs only the messages past the quota when the same batch is retried, and sends each message once', async () => {
    // Prepare: two keys of one tenant share its Idempotency-Keys but not their quotas.
    const tight = await seedApiKey(baton, { tenant: 'e2e-idem-part', dailyQuota: 1 });
    const roomy = await seedApiKey(baton, { tenant: 'e2e-idem-part', dailyQuota: 5 });
    const batch = {
      messages: [
        receipt('success+idem-part-1@simulator.amazonses.com'),
        receipt('success+idem-part-2@simulator.amazonses.com'),
      ],
    };
    const headers = { 'idempotency-key': 'e2e-batch-part' };
    const first = await post('/v1/messages/batch', batch, headers, tight);

    // Act
    const retry = await post('/v1/messages/batch', batch, headers, roomy);
    const again = await post('/v1/messages/batch', batch, headers, roomy);

    // Assess
    const [kept, limited] = first.body.results as Array<Record<string, unknown>>;
    expect(limited).toMatchObject({ index: 1, error: { status: 429, code: 'rate_limited' } });
    const results = retry.body.results as Array<Record<string, unknown>>;
    expect(retry.res.status).toBe(207);
    expect(retry.res.headers.get('idempotent-replayed')).toBeNull();
    expect(results[0]).toEqual(kept);
    expect(results[1]).toMatchObject({ index: 1, status: 'queued' });
    expect(again.res.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(retry.body);
    for (const r of results) await expectSentOnce(baton, String(r.id));
  });

  it('lets one of five parallel retries re-run the messages past the quota; all five answer the same, each message sent once', async () => {
    // Prepare
    const tight = await seedApiKey(baton, { tenant: 'e2e-idem-race', dailyQuota: 1 });
    const roomy = await seedApiKey(baton, { tenant: 'e2e-idem-race', dailyQuota: 5 });
    const batch = {
      messages: [1, 2, 3].map((i) => receipt(`success+idem-race-${i}@simulator.amazonses.com`)),
    };
    const headers = { 'idempotency-key': 'e2e-batch-race' };
    await post('/v1/messages/batch', batch, headers, tight);

    // Act
    const retries = await Promise.all(
      Array.from({ length: 5 }, () => post('/v1/messages/batch', batch, headers, roomy)),
    );

    // Assess
    const results = retries[0]?.body.results as Array<Record<string, unknown>>;
    expect(results.map((r) => r.status)).toEqual(['queued', 'queued', 'queued']);
    for (const retry of retries) expect(retry.body).toEqual(retries[0]?.body);
    for (const r of results) await expectSentOnce(baton, String(r.id));
  });
});

describe('limits over HTTP', () => {
  it('answers the third message of a key with a daily quota of 2 with 429 and Retry-After', async () => {
    // Prepare
    const token = await seedApiKey(baton, { tenant: 'e2e-quota', dailyQuota: 2 });
    const to = 'success+quota@simulator.amazonses.com';
    const first = await post('/v1/messages', receipt(to), {}, token);
    const second = await post('/v1/messages', receipt(to), {}, token);

    // Act
    const third = await post('/v1/messages', receipt(to), {}, token);

    // Assess
    expect([first.res.status, second.res.status]).toEqual([202, 202]);
    expectProblem(third.res, third.body, {
      type: 'urn:baton:problem:rate_limited',
      title: 'Too many requests',
      status: 429,
      detail: "This API key's daily quota of 2 messages is used up.",
      code: 'rate_limited',
    });
    const retryAfter = Number(third.res.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    const now = new Date();
    const toMidnight =
      (Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) - now.getTime()) / 1000;
    // Seconds to the next UTC midnight, as the api computed them a moment ago.
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(Math.abs(retryAfter - toMidnight)).toBeLessThanOrEqual(60);
  });

  it('answers a rapid second request of a key limited to 1 request per second with 429 and Retry-After', async () => {
    // Prepare
    const token = await seedApiKey(baton, { tenant: 'e2e-rate', rateLimit: 1 });
    const to = 'success+rate@simulator.amazonses.com';
    const first = await post('/v1/messages', receipt(to), {}, token);

    // Act
    const second = await post('/v1/messages', receipt(to), {}, token);

    // Assess
    expect(first.res.status).toBe(202);
    expectProblem(second.res, second.body, {
      type: 'urn:baton:problem:rate_limited',
      title: 'Too many requests',
      status: 429,
      detail: 'This API key may make 1 requests per second.',
      code: 'rate_limited',
    });
    expect(second.res.headers.get('retry-after')).toBe('1');
  });
});

describe('bad input over HTTP', () => {
  // Regression: a deep body with an Idempotency-Key overflowed the stack (500).
  it('answers a deeply nested body with an Idempotency-Key with a 4xx problem, not 500', async () => {
    // Act
    const res = await baton.request('/v1/messages', {
      method: 'POST',
      body: `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
      headers: { 'content-type': 'application/json', 'idempotency-key': 'e2e-deep' },
    });

    // Assess
    expect(res.status).toBeLessThan(500);
  });

  // Regression: a cursor we never handed out reached DynamoDB and came back as a 500.
  it.each([
    ['one that decodes to nothing', '!!'],
    ['one too long for a DynamoDB key', 'QQ'.repeat(3_000)],
  ])('answers a suppression list cursor that is %s with a 4xx problem, not 500', async (_what, cursor) => {
    // Act
    const res = await baton.request(`/v1/suppressions?cursor=${cursor}`);

    // Assess
    expect(res.status).toBeLessThan(500);
  });

  // Regression: an id longer than DynamoDB's key limit came back as a 500.
  it('answers 404 to a message id too long to be one, not 500', async () => {
    // Act
    const res = await baton.request(`/v1/messages/msg_${'x'.repeat(3_000)}`);

    // Assess
    expect(res.status).toBe(404);
  });

  // Regression: a 207 larger than a DynamoDB item could not be kept for replay.
  it('answers (and would replay) a batch whose 207 body is larger than a DynamoDB item', async () => {
    // Prepare
    const failing = {
      ...receipt('x'),
      to: Array.from({ length: 50 }, (_, i) => `bad address ${i}`),
      cc: Array.from({ length: 50 }, (_, i) => `bad${i}`),
    };
    const batch = {
      messages: [
        receipt('success+big-batch@simulator.amazonses.com'),
        ...Array.from({ length: 99 }, () => failing),
      ],
    };
    const headers = { 'idempotency-key': 'e2e-big-batch' };

    // Act
    const first = await post('/v1/messages/batch', batch, headers);

    // Assess
    expect(first.res.status).toBe(207);
    const again = await post('/v1/messages/batch', batch, headers);
    expect(again.res.status).toBe(207);
    expect(again.body).toEqual(first.body);
  });
});
