import { describe, expect, it } from 'vitest';
import { measure, reinstate } from '../../../lambdas/domain/guard/evaluate.ts';
import { actionsOf, bucket, decisionsFor, GUARD_NOW, guardInput, HOUR_MS } from '../../support/guard.ts';

// Inputs the wiring could get wrong; each must leave the guard watching, never blind.
describe('the guard under odd inputs', () => {
  it.each([Number.NaN, 0, -3, Number.POSITIVE_INFINITY])(
    'still sees a spike when the tenant’s key count is %d',
    (keyCount) => {
      // Prepare: a key with no history sending 5,000 this hour.
      const key = [bucket(0, { sends: 5000 })];

      // Act
      const decisions = decisionsFor('key', { tenant: key, key, keyCount });

      // Assess
      expect(actionsOf(decisions)).toEqual(['throttleKey']);
    },
  );

  it('treats a resume dated after now (a clock ahead) as a resume now, not as a blind window', () => {
    // Prepare: resumed "two hours from now"; 30 % content refusals in this hour after it.
    const state = {
      tenant: { actions: [] },
      key: reinstate(new Date(GUARD_NOW.getTime() + 2 * HOUR_MS), {}),
    };
    const key = [bucket(0, { sends: 70, contentRefusals: 30 })];

    // Act
    const decisions = decisionsFor('key', { tenant: [], key, state });
    const reading = measure(guardInput({ tenant: [], key, state })).find(
      (r) => r.rule === 'keyContentRefusals',
    );

    // Assess
    expect(actionsOf(decisions)).toEqual(['suspendKey']);
    expect(reading?.probation).toBe(true);
  });
});
