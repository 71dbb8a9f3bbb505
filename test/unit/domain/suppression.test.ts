import { describe, expect, it } from 'vitest';
import {
  isActive,
  SEVERITY,
  suppressedReason,
  toSuppressionView,
} from '../../../lambdas/domain/suppression/suppression.ts';
import { suppression } from '../../support/builders.ts';

describe('suppressions', () => {
  it('ranks complaint above hard bounce above manual and unsubscribe above soft bounce', () => {
    // Prepare / Act
    const order = (['complaint', 'hard_bounce', 'manual', 'unsubscribe', 'soft_bounce'] as const).map(
      (r) => SEVERITY[r],
    );

    // Assess
    expect(order).toEqual([4, 3, 2, 2, 1]);
  });

  it('keeps a permanent suppression active forever', () => {
    // Prepare
    const s = suppression('ana@example.org', 'hard_bounce');

    // Act
    const active = isActive(s, new Date('2100-01-01T00:00:00Z'));

    // Assess
    expect(active).toBe(true);
  });

  it('lets a soft bounce suppression lapse at its expiry time', () => {
    // Prepare
    const s = suppression('ana@example.org', 'soft_bounce', { expiresAt: '2025-03-02T00:00:00.000Z' });

    // Act
    const before = isActive(s, new Date('2025-03-01T23:59:59.999Z'));
    const at = isActive(s, new Date('2025-03-02T00:00:00.000Z'));

    // Assess
    expect(before).toBe(true);
    expect(at).toBe(false);
  });

  it('explains a suppressed recipient in words, with the detail', () => {
    // Prepare
    const s = suppression('ana@example.org', 'complaint', { detail: 'feedback type: abuse' });

    // Act
    const reason = suppressedReason(s);

    // Assess
    expect(reason).toBe(
      'suppressed (complaint): the recipient marked earlier mail as spam: feedback type: abuse',
    );
  });

  it('explains a suppression without detail', () => {
    // Prepare
    const s = suppression('ana@example.org', 'manual');

    // Act
    const reason = suppressedReason(s);

    // Assess
    expect(reason).toBe('suppressed (manual): the address was suppressed by an operator');
  });

  it('shows the API only the public fields', () => {
    // Prepare
    const s = suppression('ana@example.org', 'hard_bounce', {
      detail: 'permanent bounce (General)',
      source: 'msg_1',
      evidence: { sesMessageId: 'ses-1' },
    });

    // Act
    const view = toSuppressionView(s);

    // Assess
    expect(view).toEqual({
      address: 'ana@example.org',
      reason: 'hard_bounce',
      detail: 'permanent bounce (General)',
      source: 'msg_1',
      createdAt: '2025-03-01T12:00:00.000Z',
      expiresAt: null,
      scope: 'global',
    });
  });
});
