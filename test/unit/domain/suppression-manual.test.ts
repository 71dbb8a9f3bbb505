import { describe, expect, it } from 'vitest';
import { manualSuppression } from '../../../lambdas/domain/suppression/requests.ts';
import { outranks } from '../../../lambdas/domain/suppression/suppression.ts';
import { suppression } from '../../support/builders.ts';
import { problemOfSync } from '../../support/problems.ts';

const NOW = new Date('2025-03-01T12:00:00.000Z');

describe('an operator’s suppression', () => {
  it('builds a permanent manual entry of the tenant that asked, from an empty body', () => {
    // Prepare / Act
    const s = manualSuppression('ana@example.org', {}, NOW, 'acme');

    // Assess
    expect(s).toEqual({
      tenant: 'acme',
      address: 'ana@example.org',
      reason: 'manual',
      detail: null,
      source: 'api',
      createdAt: NOW.toISOString(),
      expiresAt: null,
      severity: 2,
    });
  });

  it('keeps an unsubscribe and its detail', () => {
    // Prepare / Act
    const s = manualSuppression(
      'ana@example.org',
      { reason: 'unsubscribe', detail: 'by letter' },
      NOW,
      'acme',
    );

    // Assess
    expect(s).toMatchObject({ reason: 'unsubscribe', detail: 'by letter', severity: 2 });
  });

  it.each([
    ['a list', ['manual']],
    ['null', null],
    ['a string', 'manual'],
  ])('refuses %s as a body with a 422', (_what, body) => {
    // Prepare / Act
    const problem = problemOfSync(() => manualSuppression('ana@example.org', body, NOW, 'acme'));

    // Assess
    expect(problem).toMatchObject({ status: 422, code: 'invalid_request' });
  });

  it('lists every bad field at once', () => {
    // Prepare / Act
    const problem = problemOfSync(() =>
      manualSuppression(
        'ana@example.org',
        { reason: 'complaint', detail: 'x'.repeat(1001), until: 1 },
        NOW,
        'acme',
      ),
    );

    // Assess
    expect(problem).toMatchObject({
      errors: [
        { path: 'reason', message: 'must be "manual" or "unsubscribe"' },
        { path: 'detail', message: 'must be a string of at most 1000 characters' },
        { path: 'until', message: 'unknown field' },
      ],
    });
  });
});

describe('which suppression stands', () => {
  const manual = manualSuppression('ana@example.org', {}, NOW, 'acme');

  it.each([
    ['nothing', undefined, false],
    ['a complaint', suppression('ana@example.org', 'complaint'), true],
    ['a hard bounce', suppression('ana@example.org', 'hard_bounce'), true],
    ['an unsubscribe (as strong, so replaced)', suppression('ana@example.org', 'unsubscribe'), false],
    ['an older manual entry', suppression('ana@example.org', 'manual'), false],
    [
      'a soft bounce still in force',
      suppression('ana@example.org', 'soft_bounce', { expiresAt: '2025-03-02T00:00:00.000Z' }),
      false,
    ],
  ])('a manual entry over %s: the old one outranks it = %s', (_what, existing, expected) => {
    // Prepare / Act
    const result = outranks(existing, manual, NOW);

    // Assess
    expect(result).toBe(expected);
  });

  it('lets an expired stronger suppression be replaced', () => {
    // Prepare
    const lapsed = {
      ...suppression('ana@example.org', 'hard_bounce'),
      expiresAt: '2025-03-01T11:59:59.999Z',
    };

    // Act
    const result = outranks(lapsed, manual, NOW);

    // Assess
    expect(result).toBe(false);
  });
});
