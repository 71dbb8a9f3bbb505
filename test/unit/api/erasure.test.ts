import '../../support/quiet-powertools.ts';
import { describe, expect, it, vi } from 'vitest';
import { ERASURE_BUDGET_MS } from '../../../lambdas/api/app.ts';
import { TombstoneAwareSuppressions } from '../../../lambdas/domain/erasure/erasure.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { logger } from '../../../lambdas/shared/observability.ts';
import { messageRecord, recipient, sendBody, suppression, T0 } from '../../support/builders.ts';
import { InMemoryErasureQueue, InMemorySoftBounceStore } from '../../support/fakes.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent, jsonOf } from '../../support/http-events.ts';
import { ANA, ANA_KEY, keyOf } from '../../support/unit-erasure.ts';
import { problemIn } from '../../support/unit-problems.ts';

/** createApi wired as lambdas/api/handler.ts wires it: tombstone-aware checks, erasure on the raw table. */
function setUp() {
  const erasureQueue = new InMemoryErasureQueue();
  let ids = 0;
  const h = apiHarness(
    {},
    {
      deps: ({ messages, suppressions: table, clock }) => ({
        suppressions: new TombstoneAwareSuppressions(table, keyOf),
        // Kept apart from the msg_1, msg_2... records the tests seed.
        newId: () => {
          ids += 1;
          return `msg_new${ids}`;
        },
        erasure: {
          messages,
          suppressions: table,
          softBounces: new InMemorySoftBounceStore(),
          queue: erasureQueue,
          keyOf,
          clock,
          segments: 2,
        },
      }),
    },
  );
  const readOnly = h.addKey({ scopes: ['send', 'read'] });
  const erase = (address = ANA, as = h.token) =>
    h.api(httpEvent(Route.eraseRecipient, { token: as, pathParameters: { address } }));
  return { ...h, table: h.suppressions, erase, erasureQueue, readOnly };
}

describe('DELETE /v1/recipients/{address}', () => {
  it('answers 202 with the number of the tenant’s message records it erased the address from', async () => {
    // Prepare
    const { erase, messages } = setUp();
    messages.seed(
      messageRecord({ id: 'msg_1', recipients: [recipient('Ana@Example.org', 'delivered')] }),
      messageRecord({ id: 'msg_2', recipients: [recipient('bob@example.org'), recipient(ANA, 'bounced')] }),
      messageRecord({ id: 'msg_3', recipients: [recipient('bob@example.org')] }),
      messageRecord({ id: 'msg_4', tenant: 'tenant-b', recipients: [recipient(ANA)] }),
    );

    // Act
    const result = await erase('ANA@example.org');

    // Assess
    expect(result).toEqual({
      statusCode: 202,
      headers: { 'content-type': 'application/json' },
      body: '{"erased":2}',
    });
    expect(messages.peek('msg_1')?.recipients.map((r) => r.address)).toEqual([ANA_KEY]);
    expect(messages.peek('msg_2')?.recipients.map((r) => r.address)).toEqual(['bob@example.org', ANA_KEY]);
    expect(messages.peek('msg_4')?.recipients.map((r) => r.address)).toEqual([ANA]);
  });

  it('answers {"erased": 0} the second time, keeping the tombstone', async () => {
    // Prepare
    const { erase, messages, table } = setUp();
    messages.seed(messageRecord({ recipients: [recipient(ANA, 'delivered')] }));
    await erase();

    // Act
    const again = await erase();

    // Assess
    expect([again.statusCode, jsonOf(again)]).toEqual([202, { erased: 0 }]);
    expect(table.peek(ANA_KEY, 'tenant-a')?.detail).toBe('erased');
  });

  it('shows the erased record through the status API without the address', async () => {
    // Prepare
    const { api, erase, messages, token } = setUp();
    messages.seed(messageRecord({ recipients: [recipient(ANA, 'delivered')] }));
    await erase();

    // Act
    const result = await api(httpEvent(Route.getMessage, { token, pathParameters: { id: 'msg_1' } }));

    // Assess
    expect(result.statusCode).toBe(200);
    expect(result.body).toContain(ANA_KEY);
    expect(result.body?.toLowerCase()).not.toContain(ANA);
  });

  it('suppresses the erased address for good: a new message to it is recorded suppressed under the pseudonym, never queued', async () => {
    // Prepare
    const { api, erase, queue, token, messages } = setUp();
    await erase();

    // Act
    const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody({ to: [ANA] }) }));

    // Assess
    expect([result.statusCode, jsonOf(result)]).toEqual([
      202,
      {
        id: 'msg_new1',
        status: 'suppressed',
        recipients: [{ address: ANA, status: 'suppressed', reason: 'manual' }],
        rewrittenFrom: null,
      },
    ]);
    expect(queue.jobs).toEqual([]);
    const record = JSON.stringify(messages.peek('msg_new1'));
    expect(record).toContain(ANA_KEY);
    expect(record.toLowerCase()).not.toContain(ANA);
  });

  it('still answers GET /v1/suppressions/{address} for the erased address, with nothing new in it, and leaves global evidence to the other tenants', async () => {
    // Prepare
    const { api, erase, table, token } = setUp();
    table.seed(suppression(ANA, 'complaint', { detail: 'abuse', source: 'msg_7' }));
    await erase();

    // Act
    const result = await api(httpEvent(Route.getSuppression, { token, pathParameters: { address: ANA } }));

    // Assess
    expect([result.statusCode, jsonOf(result)]).toEqual([
      200,
      {
        address: ANA,
        reason: 'complaint',
        detail: 'abuse',
        source: 'msg_7',
        createdAt: T0,
        expiresAt: null,
        scope: 'tenant',
      },
    ]);
    expect(table.peek(ANA)?.reason).toBe('complaint');
    expect(table.peek(ANA_KEY, 'tenant-a')?.reason).toBe('complaint');
  });

  it('lists the tenant’s tombstone under the pseudonym; a global bounce stays listed for every tenant', async () => {
    // Prepare
    const { api, erase, table, token } = setUp();
    table.seed(suppression(ANA, 'hard_bounce'), suppression('bob@example.org', 'complaint'));
    await erase();

    // Act
    const result = await api(httpEvent(Route.listSuppressions, { token }));

    // Assess
    const page = jsonOf(result) as { items: Array<{ address: string; reason: string }> };
    expect(page.items.map((s) => [s.address, s.reason])).toEqual([
      [ANA, 'hard_bounce'],
      ['bob@example.org', 'complaint'],
      [ANA_KEY, 'hard_bounce'],
    ]);
  });

  it('keeps a later manual suppression of the erased address on its tombstone', async () => {
    // Prepare
    const { api, erase, table, token } = setUp();
    await erase();

    // Act
    const result = await api(
      httpEvent(Route.putSuppression, {
        token,
        pathParameters: { address: ANA },
        body: { reason: 'unsubscribe', detail: 'asked again' },
      }),
    );

    // Assess
    expect(result.statusCode).toBe(200);
    expect(table.peek(ANA, 'tenant-a')).toBeUndefined();
    expect(table.peek(ANA_KEY, 'tenant-a')?.reason).toBe('unsubscribe');
  });

  it('refuses with 403 a tenant that lifts its erasure when a complaint about its own mail landed on the tombstone', async () => {
    // Prepare: the tenant erases ana, then her complaint about its earlier mail arrives (the
    // feedback function puts it on the tenant's tombstone, not under the address).
    const { api, erase, table, token, queue } = setUp();
    await erase();
    await new TombstoneAwareSuppressions(table, keyOf).putIfStronger(
      suppression(ANA, 'complaint'),
      'tenant-a',
    );

    // Act
    const lifted = await api(httpEvent(Route.deleteSuppression, { token, pathParameters: { address: ANA } }));
    const sent = await api(httpEvent(Route.sendMessage, { token, body: sendBody({ to: [ANA] }) }));

    // Assess: a complaint is lifted by an operator only, wherever it is kept.
    expect(problemIn(lifted, 403).code).toBe('forbidden');
    expect(table.peek(ANA_KEY, 'tenant-a')?.reason).toBe('complaint');
    expect(jsonOf(sent)).toMatchObject({ status: 'suppressed' });
    expect(queue.jobs).toEqual([]);
  });

  it('answers 202 with "complete": false when the scan continues on the erasure queue', async () => {
    // Prepare: each page takes 4 s, so the second round of pages starts after the budget.
    const { erase, messages, clock, erasureQueue } = setUp();
    messages.scanPageSize = 1;
    messages.onScanPage = () => clock.advance(ERASURE_BUDGET_MS / 2 + 1);
    messages.seed(
      ...['msg_a', 'msg_b', 'msg_c', 'msg_d'].map((id) =>
        messageRecord({ id, recipients: [recipient(ANA)] }),
      ),
    );

    // Act
    const result = await erase();

    // Assess
    expect([result.statusCode, jsonOf(result)]).toEqual([202, { erased: 2, complete: false }]);
    expect(erasureQueue.jobs.map((j) => [j.key, j.erased, j.round])).toEqual([[ANA_KEY, 2, 1]]);
  });

  it('logs the pseudonym’s prefix and never the address', async () => {
    // Prepare
    const { erase, messages } = setUp();
    messages.seed(messageRecord({ recipients: [recipient(ANA, 'delivered')] }));
    const info = vi.spyOn(logger, 'info');

    // Act
    await erase();

    // Assess
    expect(info).toHaveBeenCalledWith('recipient erased', {
      erasedKey: ANA_KEY.slice(0, 'erased:'.length + 8),
      records: 1,
      complete: true,
    });
    expect(JSON.stringify(info.mock.calls).toLowerCase()).not.toContain('ana@');
    info.mockRestore();
  });

  it('needs the suppressions scope', async () => {
    // Prepare
    const { erase, messages, readOnly, table } = setUp();
    messages.seed(messageRecord({ recipients: [recipient(ANA)] }));

    // Act
    const result = await erase(ANA, readOnly);

    // Assess
    expect(problemIn(result, 403).detail).toBe(
      'This API key lacks the "suppressions" scope for this request.',
    );
    expect(messages.peek('msg_1')?.version).toBe(1);
    expect(table.peek(ANA_KEY)).toBeUndefined();
  });

  it('answers 422 for a path that holds no email address', async () => {
    // Prepare
    const { erase } = setUp();

    // Act
    const result = await erase('not-an-address');

    // Assess
    expect(problemIn(result, 422)).toMatchObject({
      code: 'invalid_request',
      errors: [{ path: 'address', message: 'must be an email address like name@example.com' }],
    });
  });

  it('answers 503 when the rest of the scan cannot be queued, so the client retries', async () => {
    // Prepare
    const { erase, messages, clock, erasureQueue } = setUp();
    messages.scanPageSize = 1;
    messages.onScanPage = () => clock.advance(ERASURE_BUDGET_MS);
    messages.seed(
      ...['msg_a', 'msg_b', 'msg_c'].map((id) => messageRecord({ id, recipients: [recipient(ANA)] })),
    );
    vi.spyOn(erasureQueue, 'enqueue').mockRejectedValueOnce(
      new TransientError('queueing the rest of an erasure failed'),
    );

    // Act
    const result = await erase();

    // Assess
    expect(problemIn(result, 503).code).toBe('unavailable');
  });
});
