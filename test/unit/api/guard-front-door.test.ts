/**
 * The abuse guard at the HTTPS front door (issue 13), from the key's guard state as the key lookup
 * reads it: a throttled key is answered 429 with Retry-After before any work, a key the guard
 * suspended 403 in the guard's words, held mail 202 `held`; and the guard hears of each request.
 */
import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import { Route } from '../../../lambdas/shared/names.ts';
import { sendBody, T0 } from '../../support/builders.ts';
import { decisionOf, guardMarkOf } from '../../support/guard.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent, jsonOf } from '../../support/http-events.ts';
import { problemIn } from '../../support/unit-problems.ts';

const NOW = new Date(T0);
const broadcast = (overrides: Record<string, unknown> = {}) =>
  sendBody({ stream: 'broadcast', listUnsubscribe: 'https://example.com/u', ...overrides });

describe('createApi: a key the abuse guard throttles', () => {
  it.each([
    ['POST /v1/messages', Route.sendMessage, sendBody()],
    ['POST /v1/messages/batch', Route.sendBatch, { messages: [sendBody()] }],
  ])(
    'answers %s 429 with Retry-After until the throttle lapses, and does nothing',
    async (_, route, body) => {
      // Prepare
      const throttle = decisionOf('throttleKey', NOW);
      const { api, token, messages, queue, guard, usage } = apiHarness({ guard: guardMarkOf(throttle) });

      // Act
      const result = await api(httpEvent(route, { token, body }));

      // Assess
      expect(problemIn(result, 429)).toEqual({
        type: 'urn:baton:problem:rate_limited',
        title: 'Too many requests',
        status: 429,
        detail: `The abuse guard throttled this API key (volumeSpike): ${throttle.reason}. Retry in 3600 s.`,
        code: 'rate_limited',
      });
      expect(result.headers?.['retry-after']).toBe('3600');
      expect(messages.peek('msg_1')).toBeUndefined();
      expect(queue.jobs).toEqual([]);
      expect(guard.accepts).toEqual([]);
      expect(usage.stats.size).toBe(0);
    },
  );

  it('answers the throttle before it reads the body: even a malformed one gets 429', async () => {
    // Prepare
    const { api, token } = apiHarness({ guard: guardMarkOf(decisionOf('throttleKey', NOW)) });

    // Act
    const result = await api(httpEvent(Route.sendMessage, { token, body: '{not json' }));

    // Assess
    expect(result.statusCode).toBe(429);
  });

  it('sends again once the throttle has lapsed', async () => {
    // Prepare
    const { api, token, clock } = apiHarness({ guard: guardMarkOf(decisionOf('throttleKey', NOW)) });
    clock.advance(3_600_000);

    // Act
    const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

    // Assess
    expect(result.statusCode).toBe(202);
  });

  it('still lets the throttled key read its messages', async () => {
    // Prepare
    const { api, token, clock } = apiHarness({ guard: guardMarkOf(decisionOf('throttleKey', NOW)) });
    clock.advance(3_600_000);
    await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));
    clock.set(T0);

    // Act
    const result = await api(httpEvent(Route.getMessage, { token, pathParameters: { id: 'msg_1' } }));

    // Assess
    expect(result.statusCode).toBe(200);
  });
});

describe('createApi: a key the abuse guard suspended', () => {
  it('answers 403 whose detail names the signal, the reason and how an operator resumes it', async () => {
    // Prepare
    const suspension = decisionOf('suspendKey', NOW);
    const { api, token, key, queue } = apiHarness({ status: 'suspended', guard: guardMarkOf(suspension) });

    // Act
    const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

    // Assess
    const p = problemIn(result, 403);
    expect(p).toEqual({
      type: 'urn:baton:problem:forbidden',
      title: 'Not allowed for this API key',
      status: 403,
      detail:
        `This API key was suspended by the abuse guard (suppressedHitRate): ${suspension.reason}. ` +
        `An operator can resume it: npm run guard -- resume --key ${key.keyId} --reason "<why>".`,
      code: 'forbidden',
    });
    // No address, no secret: only the key's id, which is no secret.
    expect(p.detail).not.toContain('@');
    expect(p.detail).not.toContain(token);
    expect(queue.jobs).toEqual([]);
  });

  it('refuses its reads in the same words', async () => {
    // Prepare
    const { api, token } = apiHarness({
      status: 'suspended',
      guard: guardMarkOf(decisionOf('suspendKey', NOW)),
    });

    // Act
    const result = await api(httpEvent(Route.getMessage, { token, pathParameters: { id: 'msg_1' } }));

    // Assess
    expect(problemIn(result, 403).detail).toMatch(/^This API key was suspended by the abuse guard/);
  });

  it('admits the key again once an operator resumed it (active, nothing in force)', async () => {
    // Prepare
    const { api, token } = apiHarness({ status: 'active', guard: { key: { actions: [] } } });

    // Act
    const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

    // Assess
    expect(result.statusCode).toBe(202);
  });
});

describe('createApi: mail the abuse guard holds', () => {
  it('answers 202 with the message held', async () => {
    // Prepare
    const { api, token, held, queue } = apiHarness({ guard: guardMarkOf(decisionOf('pauseBroadcast', NOW)) });

    // Act
    const result = await api(httpEvent(Route.sendMessage, { token, body: broadcast() }));

    // Assess
    expect(result.statusCode).toBe(202);
    expect(jsonOf(result)).toEqual({
      id: 'msg_1',
      status: 'held',
      recipients: [{ address: 'ana@example.org', status: 'held' }],
      rewrittenFrom: null,
    });
    expect(held.entries.size).toBe(1);
    expect(queue.jobs).toEqual([]);
  });

  it('answers a batch 207 with each message queued or held by its lane', async () => {
    // Prepare
    const { api, token } = apiHarness({ guard: guardMarkOf(decisionOf('pauseBroadcast', NOW)) });

    // Act
    const result = await api(
      httpEvent(Route.sendBatch, { token, body: { messages: [sendBody(), broadcast()] } }),
    );

    // Assess
    expect(result.statusCode).toBe(207);
    const { results } = jsonOf(result) as { results: Array<{ status: string }> };
    expect(results.map((r) => r.status)).toEqual(['queued', 'held']);
  });
});

describe('createApi: what the abuse guard hears', () => {
  it('tells it once per batch request: sends, holds and content refusals per recipient', async () => {
    // Prepare
    const { api, token, key, guard } = apiHarness({ guard: guardMarkOf(decisionOf('pauseBroadcast', NOW)) });
    const exe = [{ filename: 'setup.exe', content: 'TVqQAAMAAAAEAAAA' }];

    // Act
    await api(
      httpEvent(Route.sendBatch, {
        token,
        body: {
          messages: [
            sendBody({ to: ['ana@example.org'] }),
            broadcast({ to: ['bob@example.org'] }),
            sendBody({ to: ['carl@example.org', 'dora@example.org'], attachments: exe }),
          ],
        },
      }),
    );

    // Assess
    expect(guard.accepts).toEqual([
      {
        keyId: key.keyId,
        tenant: 'tenant-a',
        recipients: [
          { address: 'ana@example.org', outcome: 'queued' },
          { address: 'bob@example.org', outcome: 'held' },
          { address: 'carl@example.org', outcome: 'refused' },
          { address: 'dora@example.org', outcome: 'refused' },
        ],
      },
    ]);
  });

  it('tells it of a single message refused for its content', async () => {
    // Prepare
    const { api, token, guard } = apiHarness();

    // Act
    const result = await api(
      httpEvent(Route.sendMessage, {
        token,
        body: sendBody({ headers: { 'X-Note': 'a\r\nBcc: x@example.net' } }),
      }),
    );

    // Assess
    expect(result.statusCode).toBe(422);
    expect(guard.accepts.map((a) => a.recipients)).toEqual([
      [{ address: 'ana@example.org', outcome: 'refused' }],
    ]);
  });

  it('tells it nothing of a request that is not a message (malformed JSON)', async () => {
    // Prepare
    const { api, token, guard } = apiHarness();

    // Act
    await api(httpEvent(Route.sendMessage, { token, body: '{not json' }));

    // Assess
    expect(guard.accepts).toEqual([]);
  });
});
