import { describe, expect, it } from 'vitest';
import {
  defaultGuardPolicy,
  GuardPolicyError,
  type GuardPolicyOverride,
  hourlyBaseline,
  resolveGuardPolicy,
} from '../../../lambdas/domain/guard/policy.ts';

describe('the guard policy', () => {
  it('holds the issue’s table as its defaults', () => {
    // Assess
    expect(defaultGuardPolicy.tenantHardBounce).toMatchObject({
      scope: 'tenant',
      minimumSends: 500,
      minimumEvents: 10,
      windowHours: 168,
      warnAt: 0.02,
      actAt: 0.04,
      action: 'pauseBroadcast',
      holdAllAbove: 0.07,
    });
    expect(defaultGuardPolicy.tenantComplaint).toMatchObject({
      minimumSends: 1000,
      minimumEvents: 3,
      windowHours: 720,
      warnAt: 0.0005,
      actAt: 0.0008,
      action: 'pauseBroadcast',
    });
    expect(defaultGuardPolicy.keyHardBounce).toMatchObject({
      scope: 'key',
      minimumSends: 100,
      minimumEvents: 5,
      windowHours: 24,
      actAt: 0.1,
      action: 'suspendKey',
    });
    expect(defaultGuardPolicy.keySuppressedHits).toMatchObject({
      minimumSends: 50,
      windowHours: 1,
      actAt: 0.15,
    });
    expect(defaultGuardPolicy.keyContentRefusals).toMatchObject({
      minimumSends: 50,
      windowHours: 1,
      actAt: 0.2,
    });
    expect(defaultGuardPolicy.volumeSpike).toMatchObject({
      minimumSends: 200,
      multiple: 10,
      baselineFloorPerHour: 100,
      baselineHours: 168,
      throttleMinutes: 60,
    });
    expect(resolveGuardPolicy(undefined)).toBe(defaultGuardPolicy);
  });

  it('merges a tenant’s partial override over the defaults', () => {
    // Act
    const policy = resolveGuardPolicy({ tenantHardBounce: { actAt: 0.03 }, volumeSpike: { multiple: 20 } });

    // Assess
    expect(policy.tenantHardBounce).toEqual({ ...defaultGuardPolicy.tenantHardBounce, actAt: 0.03 });
    expect(policy.volumeSpike.multiple).toBe(20);
    expect(policy.tenantComplaint).toEqual(defaultGuardPolicy.tenantComplaint);
  });

  it.each<[string, GuardPolicyOverride | Record<string, unknown>, string]>([
    [
      'a threshold above 1',
      { keyHardBounce: { actAt: 1.5 } },
      'keyHardBounce.actAt: must be a number above 0 and at most 1, got 1.5',
    ],
    [
      'a threshold of 0',
      { tenantComplaint: { warnAt: 0 } },
      'tenantComplaint.warnAt: must be a number above 0 and at most 1, got 0',
    ],
    [
      'a negative threshold',
      { keySuppressedHits: { actAt: -0.1 } },
      'keySuppressedHits.actAt: must be a number above 0',
    ],
    [
      'a percentage instead of a fraction',
      { tenantHardBounce: { actAt: 4 } },
      'tenantHardBounce.actAt: must be a number above 0 and at most 1, got 4',
    ],
    [
      'warn at act',
      { tenantHardBounce: { warnAt: 0.04 } },
      'tenantHardBounce.warnAt: must be below actAt (0.04)',
    ],
    [
      'warn above act (act lowered alone)',
      { tenantHardBounce: { actAt: 0.01 } },
      'tenantHardBounce.warnAt: must be below actAt (0.01)',
    ],
    [
      'hold all below act',
      { tenantHardBounce: { holdAllAbove: 0.03 } },
      'tenantHardBounce.holdAllAbove: must not be below actAt (0.04)',
    ],
    [
      'hold all on a key rule',
      { keyHardBounce: { holdAllAbove: 0.5 } },
      'keyHardBounce.holdAllAbove: only a tenant rule can hold all mail',
    ],
    [
      'a zero sample',
      { tenantHardBounce: { minimumSends: 0 } },
      'tenantHardBounce.minimumSends: must be a whole number from 1',
    ],
    [
      'a fractional sample',
      { keyHardBounce: { minimumSends: 10.5 } },
      'keyHardBounce.minimumSends: must be a whole number from 1',
    ],
    [
      'negative events',
      { keyHardBounce: { minimumEvents: -1 } },
      'keyHardBounce.minimumEvents: must be a whole number of at least 0',
    ],
    [
      'a window beyond the counters’ life',
      { tenantComplaint: { windowHours: 5000 } },
      'tenantComplaint.windowHours: must be a whole number from 1 to 2160',
    ],
    [
      'a string for a number',
      { keyHardBounce: { actAt: '0.1' } },
      'keyHardBounce.actAt: must be a number above 0 and at most 1, got 0.1',
    ],
    [
      'a spike multiple of 0',
      { volumeSpike: { multiple: 0 } },
      'volumeSpike.multiple: must be a positive number, got 0',
    ],
    [
      'a probation factor above 1',
      { probation: { factor: 2 } },
      'probation.factor: must be a number above 0 and at most 1, got 2',
    ],
    ['an unknown rule (a typo)', { tenantHardBounces: { actAt: 0.05 } }, 'tenantHardBounces: unknown rule'],
    ['an unknown field', { keyHardBounce: { actAT: 0.2 } }, 'keyHardBounce.actAT: unknown or fixed field'],
    [
      'a fixed field (the action)',
      { tenantComplaint: { action: 'suspendKey' } },
      'tenantComplaint.action: unknown or fixed field',
    ],
    ['a rule that is not an object', { volumeSpike: 5 }, 'volumeSpike: must be an object'],
  ])('refuses %s with a clear error', (_name, override, message) => {
    // Act
    const attempt = () => resolveGuardPolicy(override as GuardPolicyOverride);

    // Assess
    expect(attempt).toThrow(GuardPolicyError);
    expect(attempt).toThrow(message);
  });

  it('lists every problem at once', () => {
    // Act
    let error: unknown;
    try {
      resolveGuardPolicy({ keyHardBounce: { actAt: 2, minimumSends: 0 } });
    } catch (caught) {
      error = caught;
    }

    // Assess
    expect(error).toBeInstanceOf(GuardPolicyError);
    expect((error as GuardPolicyError).problems).toHaveLength(2);
  });

  it.each([
    [{ keyPerHour: 20, tenantPerKeyPerHour: 30 }, 100],
    [{ keyPerHour: 250, tenantPerKeyPerHour: 30 }, 250],
    [{ keyPerHour: 20, tenantPerKeyPerHour: 400 }, 400],
    [{ keyPerHour: 0, tenantPerKeyPerHour: 0 }, 100],
  ])(
    'takes the largest of the key’s average, its tenant’s per key and 100/h: %j → %d',
    (averages, expected) => {
      // Act + Assess
      expect(hourlyBaseline(averages, defaultGuardPolicy.volumeSpike)).toBe(expected);
    },
  );
});
