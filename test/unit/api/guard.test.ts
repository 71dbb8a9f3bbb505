import '../../support/quiet-powertools.ts';
import { describe, expect, it, vi } from 'vitest';
import { heldEntry, markHeld } from '../../../lambdas/domain/guard/hold.ts';
import { ApiKeyNotFoundError, type Scope } from '../../../lambdas/domain/keys/api-key.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { type Lane, Route } from '../../../lambdas/shared/names.ts';
import { messageRecord, sendJob } from '../../support/builders.ts';
import { guardDecision } from '../../support/guard.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent, jsonOf } from '../../support/http-events.ts';
import { problemIn } from '../../support/unit-problems.ts';

// The abuse guard's routes through createApi over the fakes: GET /v1/reputation for a tenant's
// own keys, the held-mail and resume routes for operators (the admin scope) only.

function guardApi(scopes: Scope[] = ['admin']) {
  const h = apiHarness({ tenant: 'ops', scopes });
  const { held } = h;
  /** A held message of tenant `shop`, sent with `keyId`. */
  const hold = async (id: string, lane: Lane = 'broadcast', keyId?: string): Promise<MessageRecord> => {
    const record = markHeld(
      messageRecord({ id, tenant: 'shop', stream: lane, ...(keyId ? { keyId } : {}) }),
      guardDecision({ tenantId: 'shop', action: lane === 'broadcast' ? 'pauseBroadcast' : 'holdAll' }),
      h.clock(),
    ) as MessageRecord;
    h.messages.seed(record);
    await held.keep(heldEntry(record, record.hold ?? expect.fail('no hold')), sendJob(undefined, id, 'shop'));
    return record;
  };
  return { ...h, hold };
}

const release = (token: string, body: unknown) => httpEvent(Route.guardRelease, { token, body });

describe('GET /v1/reputation', () => {
  it('answers the guard’s view of the key’s own tenant', async () => {
    // Prepare
    const { api, token, guard } = guardApi(['read']);
    const view = {
      standing: 'broadcast_paused' as const,
      rates: { tenantHardBounce: 0.05 },
      sample: {},
      window: {},
      keys: [{ keyId: 'abcdefgh', status: 'active', reason: null }],
      reasons: ['hard bounces at 5.0 %'],
    };
    const asked = vi.spyOn(guard, 'reputation').mockResolvedValueOnce(view);

    // Act
    const result = await api(httpEvent(Route.reputation, { token, query: { tenant: 'other' } }));

    // Assess
    expect([result.statusCode, jsonOf(result)]).toEqual([200, view]);
    expect(asked).toHaveBeenCalledWith('ops');
  });

  it('needs the read scope', async () => {
    // Prepare
    const { api, token } = guardApi(['send']);

    // Act
    const result = await api(httpEvent(Route.reputation, { token }));

    // Assess
    expect(problemIn(result, 403).detail).toMatch(/"read" scope/);
  });
});

describe('the operator’s guard routes', () => {
  const adminRoutes = [
    [Route.guardHeld, { query: { tenant: 'shop' } }],
    [Route.guardRelease, { body: { tenant: 'shop', all: true, reason: 'mine' } }],
    [Route.guardCancel, { body: { tenant: 'shop', all: true, reason: 'mine' } }],
    [Route.guardResume, { body: { tenant: 'shop', reason: 'mine' } }],
  ] as const;

  it.each(
    adminRoutes.flatMap(([route, request]) =>
      (['send', 'read', 'suppressions'] as const).map((scope) => [route, scope, request] as const),
    ),
  )('%s refuses a key with only the %s scope, changing nothing', async (route, scope, request) => {
    // Prepare: the tenant's own key, as a thief holding it would use it.
    const { api, guard, held, messages, hold, addKey } = guardApi();
    await hold('msg_1');
    const token = addKey({
      tenant: 'shop',
      scopes: ['send', 'read', 'suppressions'].filter((s) => s === scope) as Scope[],
    });

    // Act
    const result = await api(httpEvent(route, { token, ...request }));

    // Assess
    expect(problemIn(result, 403).detail).toMatch(/"admin" scope/);
    expect([held.entries.size, messages.peek('msg_1')?.phase, guard.resumes]).toEqual([1, 'held', []]);
  });

  it('lists a tenant’s held mail for an operator, a page at a time', async () => {
    // Prepare
    const { api, token, hold } = guardApi();
    await hold('msg_1', 'broadcast', 'abcdefgh');
    await hold('msg_2', 'transactional');

    // Act
    const first = await api(httpEvent(Route.guardHeld, { token, query: { tenant: 'shop', limit: '1' } }));
    const page = jsonOf(first) as { items: Array<{ id: string }>; nextCursor: string | null };
    const second = await api(
      httpEvent(Route.guardHeld, { token, query: { tenant: 'shop', cursor: page.nextCursor ?? '' } }),
    );
    const broadcast = await api(
      httpEvent(Route.guardHeld, { token, query: { tenant: 'shop', lane: 'broadcast' } }),
    );

    // Assess
    expect(first.statusCode).toBe(200);
    expect(page).toMatchObject({
      tenant: 'shop',
      items: [
        { id: 'msg_1', lane: 'broadcast', keyId: 'abcdefgh', action: 'pauseBroadcast', expired: false },
      ],
      nextCursor: expect.any(String),
    });
    expect(jsonOf(second)).toMatchObject({ items: [{ id: 'msg_2' }], nextCursor: null });
    expect((jsonOf(broadcast) as { items: unknown[] }).items).toHaveLength(1);
  });

  it.each([
    ['no tenant', {}, 'tenant', 'is required'],
    ['an unknown lane', { tenant: 'shop', lane: 'bulk' }, 'lane', 'must be one of transactional, broadcast'],
    ['a limit out of range', { tenant: 'shop', limit: '0' }, 'limit', 'must be an integer from 1 to 1000'],
    ['an unknown parameter', { tenant: 'shop', state: 'x' }, 'state', 'unknown query parameter'],
  ])('answers 422 for a held listing with %s', async (_why, query, path, message) => {
    // Prepare
    const { api, token } = guardApi();

    // Act
    const result = await api(httpEvent(Route.guardHeld, { token, query }));

    // Assess
    expect(problemIn(result, 422).errors).toContainEqual({ path, message });
  });

  it('releases held mail once: a second release sends nothing twice', async () => {
    // Prepare
    const { api, token, queue, messages, hold } = guardApi();
    await hold('msg_1');

    // Act
    const first = await api(release(token, { tenant: 'shop', ids: ['msg_1'], reason: 'list cleaned' }));
    const second = await api(release(token, { tenant: 'shop', ids: ['msg_1'], reason: 'list cleaned' }));

    // Assess
    expect([first.statusCode, jsonOf(first)]).toEqual([
      200,
      {
        tenant: 'shop',
        counts: { released: 1, cancelled: 0, expired: 0, held: 0, missing: 0, deferred: 0 },
        outcomes: [{ id: 'msg_1', outcome: 'released', lane: 'broadcast' }],
        complete: true,
      },
    ]);
    expect(jsonOf(second)).toMatchObject({
      outcomes: [{ id: 'msg_1', outcome: 'missing', reason: 'no held message with this id' }],
    });
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1']);
    expect(messages.peek('msg_1')?.phase).toBe('queued');
  });

  it('releases no faster than the lane’s rate within the request’s budget, and says what is left', async () => {
    // Prepare: the default 1 recipient/s and a 6.5 s budget: seven go (at 0 s ... 6 s).
    const { api, token, queue, hold } = guardApi();
    for (let n = 1; n <= 10; n++) await hold(`msg_${n}`);

    // Act
    const first = await api(release(token, { tenant: 'shop', lane: 'broadcast', reason: 'ok' }));

    // Assess
    expect(jsonOf(first)).toMatchObject({ counts: { released: 7, deferred: 3 }, complete: false });
    expect(queue.jobs).toHaveLength(7);
  });

  it('cancels within the request’s budget: what it did not reach is deferred, still held, and the next cancel takes it', async () => {
    // Prepare: each record write takes 1 s of the 6.5 s budget.
    const { api, token, messages, clock, hold } = guardApi();
    for (let n = 1; n <= 10; n++) await hold(`msg_${n}`);
    const update = messages.update.bind(messages);
    vi.spyOn(messages, 'update').mockImplementation(async (...args) => {
      clock.advance(1_000);
      return update(...args);
    });
    const cancel = () =>
      api(httpEvent(Route.guardCancel, { token, body: { tenant: 'shop', all: true, reason: 'spam run' } }));

    // Act
    const first = await cancel();
    const second = await cancel();

    // Assess
    expect(jsonOf(first)).toMatchObject({ counts: { cancelled: 7, deferred: 3 }, complete: false });
    expect(jsonOf(second)).toMatchObject({ counts: { cancelled: 3, deferred: 0 }, complete: true });
  });

  it('takes at most 1,000 held messages per request, so the answer stays small whatever a tenant holds', async () => {
    // Prepare
    const { api, token, hold } = guardApi();
    for (let n = 1; n <= 1_005; n++) await hold(`msg_${n}`);

    // Act
    const result = await api(release(token, { tenant: 'shop', all: true, reason: 'ok' }));

    // Assess
    const body = jsonOf(result) as { outcomes: unknown[]; complete: boolean };
    expect(body.outcomes).toHaveLength(1_000);
    expect(body.complete).toBe(false);
  });

  it('cancels held mail with the operator’s reason', async () => {
    // Prepare
    const { api, token, messages, held, hold } = guardApi();
    await hold('msg_1');

    // Act
    const result = await api(
      httpEvent(Route.guardCancel, { token, body: { tenant: 'shop', all: true, reason: 'spam run' } }),
    );

    // Assess
    expect(jsonOf(result)).toMatchObject({
      counts: { cancelled: 1 },
      outcomes: [{ id: 'msg_1', outcome: 'cancelled' }],
    });
    expect(messages.peek('msg_1')?.recipients[0]?.reason).toBe('cancelled by an operator: spam run');
    expect(held.entries.size).toBe(0);
  });

  it.each([
    [
      'no selection',
      { tenant: 'shop', reason: 'r' },
      'ids',
      'give exactly one of ids (a list of message ids), lane, or all: true',
    ],
    [
      'two selections',
      { tenant: 'shop', all: true, lane: 'broadcast', reason: 'r' },
      'all',
      'give exactly one of ids (a list of message ids), lane, or all: true',
    ],
    ['all that is not true', { tenant: 'shop', all: 'yes', reason: 'r' }, 'all', 'must be true'],
    [
      'no reason',
      { tenant: 'shop', all: true },
      'reason',
      'is required: say why, it is kept on each message and in the log',
    ],
    [
      'a blank reason',
      { tenant: 'shop', all: true, reason: '  ' },
      'reason',
      'must be one line of 1 to 500 characters',
    ],
    [
      'a reason of two lines',
      { tenant: 'shop', all: true, reason: 'ok\nforged log line' },
      'reason',
      'must be one line of 1 to 500 characters',
    ],
    [
      'an id that is not one',
      { tenant: 'shop', ids: ['msg_1', '../x'], reason: 'r' },
      'ids[1]',
      'must be a message id (msg_...)',
    ],
    [
      'an empty id list',
      { tenant: 'shop', ids: [], reason: 'r' },
      'ids',
      'must be a list of 1 to 1000 message ids',
    ],
    [
      'a bad tenant',
      { tenant: 'a b', all: true, reason: 'r' },
      'tenant',
      'must be 1-64 letters, digits, "_" or "-"',
    ],
    ['an unknown field', { tenant: 'shop', all: true, reason: 'r', force: true }, 'force', 'unknown field'],
    ['a body that is not an object', ['shop'], '(body)', 'must be an object'],
  ])(
    'answers 422 naming the field when release or cancel has %s, changing nothing',
    async (_why, body, path, message) => {
      // Prepare
      const { api, token, held, hold } = guardApi();
      await hold('msg_1');

      // Act
      const released = await api(release(token, body));
      const cancelled = await api(httpEvent(Route.guardCancel, { token, body }));

      // Assess
      expect(problemIn(released, 422).errors).toContainEqual({ path, message });
      expect(problemIn(cancelled, 422).errors).toContainEqual({ path, message });
      expect(held.entries.size).toBe(1);
    },
  );

  it.each([
    [Route.guardRelease, { tenant: 'shop', all: true }],
    [Route.guardCancel, { tenant: 'shop', all: true }],
    [Route.guardResume, { tenant: 'shop' }],
  ])(
    'answers 400 on %s for a reason that is not well-formed Unicode (a lone surrogate), and changes nothing',
    async (route, body) => {
      // Prepare
      const { api, token, guard, hold, messages } = guardApi();
      await hold('msg_1');

      // Act: JSON.parse turns the escape into a lone surrogate, which no UTF-8 store can keep.
      const result = await api(
        httpEvent(route, {
          token,
          body: JSON.stringify({ ...body, reason: 'rotated \ud800 key' }).replace('\\ud800', '\ud800'),
        }),
      );

      // Assess
      expect(problemIn(result, 422).errors).toEqual([{ path: 'reason', message: expect.any(String) }]);
      expect(messages.peek('msg_1')?.phase).toBe('held');
      expect(guard.resumes).toEqual([]);
    },
  );

  it('answers 400 for a body that is not JSON', async () => {
    // Prepare
    const { api, token } = guardApi();

    // Act
    const result = await api(release(token, '{"tenant":'));

    // Assess
    expect(problemIn(result, 400).code).toBe('malformed_json');
  });

  it.each([
    [
      { tenant: 'shop', reason: 'list cleaned' },
      { kind: 'tenant', tenant: 'shop' },
    ],
    [
      { keyId: 'abcdefgh1', reason: 'rotated' },
      { kind: 'key', keyId: 'abcdefgh1' },
    ],
  ])('resumes a tenant or a key with a reason: %o', async (body, target) => {
    // Prepare
    const { api, token, guard } = guardApi();

    // Act
    const result = await api(httpEvent(Route.guardResume, { token, body }));

    // Assess
    expect(result.statusCode).toBe(200);
    expect(jsonOf(result)).toMatchObject({ target, state: { actions: [] } });
    expect(guard.resumes).toEqual([{ target, reason: body.reason }]);
  });

  it.each([
    [
      'both a tenant and a key',
      { tenant: 'shop', keyId: 'abcdefgh', reason: 'r' },
      'keyId',
      'give exactly one of tenant or keyId',
    ],
    ['neither', { reason: 'r' }, 'tenant', 'give exactly one of tenant or keyId'],
    [
      'a whole token as key id',
      { keyId: 'bt_abcdefgh_secret', reason: 'r' },
      'keyId',
      'must be a key id (8-32 lower-case letters and digits)',
    ],
    [
      'no reason',
      { tenant: 'shop' },
      'reason',
      'is required: say why, it is kept on each message and in the log',
    ],
  ])('answers 422 for a resume with %s', async (_why, body, path, message) => {
    // Prepare
    const { api, token, guard } = guardApi();

    // Act
    const result = await api(httpEvent(Route.guardResume, { token, body }));

    // Assess
    expect(problemIn(result, 422).errors).toContainEqual({ path, message });
    expect(guard.resumes).toEqual([]);
  });

  it('answers 404 for a resume of a key that does not exist', async () => {
    // Prepare
    const { api, token, guard } = guardApi();
    vi.spyOn(guard, 'resume').mockRejectedValueOnce(new ApiKeyNotFoundError('abcdefgh'));

    // Act
    const result = await api(
      httpEvent(Route.guardResume, { token, body: { keyId: 'abcdefgh', reason: 'r' } }),
    );

    // Assess
    expect(problemIn(result, 404).detail).toBe('No API key has the id abcdefgh.');
  });
});
