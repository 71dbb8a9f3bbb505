import '../../support/quiet-powertools.ts';
import { describe, expect, it, vi } from 'vitest';
import type { StatsView } from '../../../lambdas/domain/reporting/stats.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { sendBody, statsRow } from '../../support/builders.ts';
import { apiHarness } from '../../support/harness.ts';
import { contentTypeOf, httpEvent, jsonOf } from '../../support/http-events.ts';
import { problemIn } from '../../support/unit-problems.ts';

// GET /v1/stats through createApi over the fakes; the clock stands at T0 (2025-03-01T12:00Z).

describe('GET /v1/stats', () => {
  it('answers per-day counts and rates of the key’s tenant, with totals', async () => {
    // Prepare
    const { api, token, usage } = apiHarness({ tenant: 'shop' });
    await usage.addStats('shop', '2025-02-28', { accepted: 4, sent: 4, delivered: 3, bounced: 1 });
    await usage.addStats('shop', '2025-03-01', { accepted: 1, sent: 1, complained: 1 });

    // Act
    const result = await api(
      httpEvent(Route.stats, { token, query: { from: '2025-02-28', to: '2025-03-01' } }),
    );

    // Assess
    expect([result.statusCode, contentTypeOf(result)]).toEqual([200, 'application/json']);
    expect(jsonOf(result)).toEqual({
      from: '2025-02-28',
      to: '2025-03-01',
      days: [
        {
          date: '2025-02-28',
          ...statsRow({ accepted: 4, sent: 4, delivered: 3, bounced: 1, bounceRate: 0.25 }),
        },
        { date: '2025-03-01', ...statsRow({ accepted: 1, sent: 1, complained: 1, complaintRate: 1 }) },
      ],
      totals: statsRow({
        accepted: 5,
        sent: 5,
        delivered: 3,
        bounced: 1,
        complained: 1,
        bounceRate: 0.2,
        complaintRate: 0.2,
      }),
    });
  });

  it('reads the week ending today (UTC) when no range is given, in one read', async () => {
    // Prepare
    const { api, token, usage } = apiHarness();

    // Act
    const result = await api(httpEvent(Route.stats, { token }));

    // Assess
    const view = jsonOf(result) as StatsView;
    expect([result.statusCode, view.from, view.to, view.days.length]).toEqual([
      200,
      '2025-02-23',
      '2025-03-01',
      7,
    ]);
    expect(view.days.every((d) => d.accepted === 0 && d.bounceRate === 0)).toBe(true);
    expect(usage.statReads).toEqual([
      ['2025-02-23', '2025-02-24', '2025-02-25', '2025-02-26', '2025-02-27', '2025-02-28', '2025-03-01'],
    ]);
  });

  it('never shows another tenant’s counts', async () => {
    // Prepare
    const { api, token, usage } = apiHarness({ tenant: 'shop' });
    await usage.addStats('blog', '2025-03-01', { accepted: 9, sent: 9 });

    // Act
    const result = await api(httpEvent(Route.stats, { token, query: { from: '2025-03-01' } }));

    // Assess
    expect(jsonOf(result)).toEqual({
      from: '2025-03-01',
      to: '2025-03-01',
      days: [{ date: '2025-03-01', ...statsRow() }],
      totals: statsRow(),
    });
  });

  it('shows what the api counted for a message it accepted', async () => {
    // Prepare
    const { api, token } = apiHarness();
    await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

    // Act
    const result = await api(httpEvent(Route.stats, { token, query: { from: '2025-03-01' } }));

    // Assess
    expect((jsonOf(result) as StatsView).totals).toEqual(statsRow({ accepted: 1 }));
  });

  it.each([
    ['from is not a calendar date', { from: '2025-02-30' }, 'from', 'must be a calendar date YYYY-MM-DD'],
    ['to is not a calendar date', { to: '2025-3-1' }, 'to', 'must be a calendar date YYYY-MM-DD'],
    [
      'from is after to',
      { from: '2025-03-02', to: '2025-03-01' },
      'from',
      'must not be after to (2025-03-01)',
    ],
    [
      'the range is longer than 93 days',
      { from: '2024-11-28', to: '2025-03-01' },
      'from',
      'the range may span at most 93 days',
    ],
    ['a parameter is unknown', { form: '2025-02-01' }, 'form', 'unknown query parameter'],
  ])('answers 422 naming the parameter when %s, without reading', async (_why, query, path, message) => {
    // Prepare
    const { api, token, usage } = apiHarness();

    // Act
    const result = await api(httpEvent(Route.stats, { token, query }));

    // Assess
    expect(problemIn(result, 422)).toEqual({
      type: 'urn:baton:problem:invalid_request',
      title: 'Invalid request',
      status: 422,
      detail: 'The statistics query is not valid.',
      code: 'invalid_request',
      errors: [{ path, message }],
    });
    expect(usage.statReads).toEqual([]);
  });

  it('answers 401 without a key, before looking at the query', async () => {
    // Prepare
    const { api } = apiHarness();

    // Act
    const result = await api(httpEvent(Route.stats, { query: { from: 'nonsense' } }));

    // Assess
    expect(problemIn(result, 401).code).toBe('unauthorized');
  });

  it('answers 403 to a key without the read scope', async () => {
    // Prepare
    const { api, token, usage } = apiHarness({ scopes: ['send', 'suppressions'] });

    // Act
    const result = await api(httpEvent(Route.stats, { token }));

    // Assess
    expect(problemIn(result, 403).detail).toBe('This API key lacks the "read" scope for this request.');
    expect(usage.statReads).toEqual([]);
  });

  it('answers 503 with Retry-After when the Stats table cannot answer', async () => {
    // Prepare
    const { api, token, usage } = apiHarness();
    vi.spyOn(usage, 'getStats').mockRejectedValueOnce(
      new TransientError('reading the daily statistics failed: ProvisionedThroughputExceededException'),
    );

    // Act
    const result = await api(httpEvent(Route.stats, { token }));

    // Assess
    expect(problemIn(result, 503).code).toBe('unavailable');
    expect(result.headers?.['retry-after']).toBe('1');
  });
});
