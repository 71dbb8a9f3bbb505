import { describe, expect, it } from 'vitest';
import type { CheckResult } from '../../../lambdas/domain/doctor/checks.ts';
import { compareRuns } from '../../../lambdas/domain/doctor/regression.ts';

const result = (id: CheckResult['id'], status: CheckResult['status']): CheckResult => ({
  id,
  status,
  detail: '',
  fix: '',
});

describe('compareRuns', () => {
  it('counts a check that passed and fails now as regressed', () => {
    // Act
    const comparison = compareRuns({ dkim_cnames: 'pass', dmarc_record: 'warn' }, [
      result('dkim_cnames', 'fail'),
      result('dmarc_record', 'fail'),
    ]);

    // Assess
    expect(comparison.regressed).toEqual(['dkim_cnames']);
  });

  it('keeps a regressed check regressed on the next runs until it passes again', () => {
    // Prepare
    const first = compareRuns({ mail_from_mx: 'pass' }, [result('mail_from_mx', 'fail')]);

    // Act
    const second = compareRuns(first.next, [result('mail_from_mx', 'fail')]);
    const fixed = compareRuns(second.next, [result('mail_from_mx', 'pass')]);

    // Assess
    expect(second.regressed).toEqual(['mail_from_mx']);
    expect(fixed.regressed).toEqual([]);
    expect(fixed.next).toEqual({ mail_from_mx: 'pass' });
  });

  it('does not count checks failing since the first run', () => {
    // Act
    const comparison = compareRuns(undefined, [result('spf_record', 'fail'), result('bimi', 'pass')]);

    // Assess
    expect(comparison).toEqual({ regressed: [], next: { spf_record: 'fail', bimi: 'pass' } });
  });
});
