import { describe, expect, it } from 'vitest';
import type { HourBucket } from '../../../lambdas/domain/guard/counters.ts';
import { evaluate } from '../../../lambdas/domain/guard/evaluate.ts';
import { type defaultGuardPolicy, resolveGuardPolicy } from '../../../lambdas/domain/guard/policy.ts';
import { actionsOf, bucket, guardInput } from '../../support/guard.ts';

interface Row {
  readonly name: string;
  readonly scope: 'tenant' | 'key';
  readonly hours: HourBucket[];
  readonly expected: ReturnType<typeof actionsOf>;
  readonly policy?: typeof defaultGuardPolicy;
}

// Every threshold of the table, just below, at and just above, all in the current hour.
const tenant = (sends: number, counts: Record<string, number>) => [bucket(0, { sends, ...counts })];
const key = tenant;
const attempts = (total: number, counter: 'suppressedHits' | 'contentRefusals', refused: number) => [
  bucket(0, { sends: total - refused, [counter]: refused }),
];

const rows: Row[] = [
  // tenant hard-bounce rate: warn 2 %, pause broadcast 4 %, hold all above 7 %
  {
    name: 'tenant bounces 1.9 %',
    scope: 'tenant',
    hours: tenant(1000, { hardBounces: 19 }),
    expected: 'none',
  },
  {
    name: 'tenant bounces 2 %',
    scope: 'tenant',
    hours: tenant(1000, { hardBounces: 20 }),
    expected: ['warn'],
  },
  {
    name: 'tenant bounces 2.1 %',
    scope: 'tenant',
    hours: tenant(1000, { hardBounces: 21 }),
    expected: ['warn'],
  },
  {
    name: 'tenant bounces 3.9 %',
    scope: 'tenant',
    hours: tenant(1000, { hardBounces: 39 }),
    expected: ['warn'],
  },
  {
    name: 'tenant bounces 4 %',
    scope: 'tenant',
    hours: tenant(1000, { hardBounces: 40 }),
    expected: ['pauseBroadcast'],
  },
  {
    name: 'tenant bounces 4.1 %',
    scope: 'tenant',
    hours: tenant(1000, { hardBounces: 41 }),
    expected: ['pauseBroadcast'],
  },
  {
    name: 'tenant bounces 6.9 %',
    scope: 'tenant',
    hours: tenant(1000, { hardBounces: 69 }),
    expected: ['pauseBroadcast'],
  },
  {
    name: 'tenant bounces 7 % (hold all is strictly above)',
    scope: 'tenant',
    hours: tenant(1000, { hardBounces: 70 }),
    expected: ['pauseBroadcast'],
  },
  {
    name: 'tenant bounces 7.1 %',
    scope: 'tenant',
    hours: tenant(1000, { hardBounces: 71 }),
    expected: ['holdAll'],
  },
  {
    name: 'tenant bounces 50 % on 499 sends (below the minimum sample)',
    scope: 'tenant',
    hours: tenant(499, { hardBounces: 250 }),
    expected: 'none',
  },
  {
    name: 'tenant bounces 10 % on 500 sends (minimum sample reached)',
    scope: 'tenant',
    hours: tenant(500, { hardBounces: 50 }),
    expected: ['holdAll'],
  },
  // tenant complaint rate: warn 0.05 %, pause broadcast 0.08 %; 1,000 sends and 3 complaints
  { name: 'complaints 0.04 %', scope: 'tenant', hours: tenant(10_000, { complaints: 4 }), expected: 'none' },
  {
    name: 'complaints 0.05 %',
    scope: 'tenant',
    hours: tenant(10_000, { complaints: 5 }),
    expected: ['warn'],
  },
  {
    name: 'complaints 0.06 %',
    scope: 'tenant',
    hours: tenant(10_000, { complaints: 6 }),
    expected: ['warn'],
  },
  {
    name: 'complaints 0.07 %',
    scope: 'tenant',
    hours: tenant(10_000, { complaints: 7 }),
    expected: ['warn'],
  },
  {
    name: 'complaints 0.08 %',
    scope: 'tenant',
    hours: tenant(10_000, { complaints: 8 }),
    expected: ['pauseBroadcast'],
  },
  {
    name: 'complaints 0.09 %',
    scope: 'tenant',
    hours: tenant(10_000, { complaints: 9 }),
    expected: ['pauseBroadcast'],
  },
  {
    name: 'complaints 0.2 % but only 2 complaints (below the minimum sample)',
    scope: 'tenant',
    hours: tenant(1000, { complaints: 2 }),
    expected: 'none',
  },
  {
    name: 'complaints 0.3 % with 3 complaints in 1,000 sends',
    scope: 'tenant',
    hours: tenant(1000, { complaints: 3 }),
    expected: ['pauseBroadcast'],
  },
  {
    name: '3 complaints in 999 sends (below the minimum sample)',
    scope: 'tenant',
    hours: tenant(999, { complaints: 3 }),
    expected: 'none',
  },
  // key hard-bounce rate: suspend at 10 %; 100 sends and 5 bounces within 24 h
  { name: 'key bounces 9.5 %', scope: 'key', hours: key(200, { hardBounces: 19 }), expected: 'none' },
  { name: 'key bounces 10 %', scope: 'key', hours: key(200, { hardBounces: 20 }), expected: ['suspendKey'] },
  {
    name: 'key bounces 10.5 %',
    scope: 'key',
    hours: key(200, { hardBounces: 21 }),
    expected: ['suspendKey'],
  },
  {
    name: 'key bounces 50 % on 99 sends (below the minimum sample)',
    scope: 'key',
    hours: key(99, { hardBounces: 50 }),
    expected: 'none',
  },
  {
    name: 'key bounces 4 % with a 1 % threshold, but 4 bounces (below the minimum of 5)',
    scope: 'key',
    hours: fourBouncesInHundredSends(),
    expected: 'none',
    policy: resolveGuardPolicy({ keyHardBounce: { actAt: 0.01 } }),
  },
  // suppressed-recipient hits: suspend at 15 % of 50 attempts in the current hour
  {
    name: 'suppressed hits 14 %',
    scope: 'key',
    hours: attempts(100, 'suppressedHits', 14),
    expected: 'none',
  },
  {
    name: 'suppressed hits 15 %',
    scope: 'key',
    hours: attempts(100, 'suppressedHits', 15),
    expected: ['suspendKey'],
  },
  {
    name: 'suppressed hits 16 %',
    scope: 'key',
    hours: attempts(100, 'suppressedHits', 16),
    expected: ['suspendKey'],
  },
  {
    name: 'suppressed hits 100 % of 49 attempts (below the minimum sample)',
    scope: 'key',
    hours: attempts(49, 'suppressedHits', 49),
    expected: 'none',
  },
  // content refusals: suspend at 20 % of 50 attempts in the current hour
  {
    name: 'content refusals 19 %',
    scope: 'key',
    hours: attempts(100, 'contentRefusals', 19),
    expected: 'none',
  },
  {
    name: 'content refusals 20 %',
    scope: 'key',
    hours: attempts(100, 'contentRefusals', 20),
    expected: ['suspendKey'],
  },
  {
    name: 'content refusals 21 %',
    scope: 'key',
    hours: attempts(100, 'contentRefusals', 21),
    expected: ['suspendKey'],
  },
  {
    name: 'content refusals 100 % of 49 attempts (below the minimum sample)',
    scope: 'key',
    hours: attempts(49, 'contentRefusals', 49),
    expected: 'none',
  },
  // volume spike: 10 × a baseline of 100/h (the floor) = 1,000 sends this hour
  { name: 'a new key at 999 sends this hour', scope: 'key', hours: key(999, {}), expected: 'none' },
  {
    name: 'a new key at 1,000 sends this hour',
    scope: 'key',
    hours: key(1000, {}),
    expected: ['throttleKey'],
  },
  {
    name: 'a new key at 1,001 sends this hour',
    scope: 'key',
    hours: key(1001, {}),
    expected: ['throttleKey'],
  },
  {
    name: 'a spike of 199 sends over a baseline of 10/h (below the minimum sample)',
    scope: 'key',
    hours: key(199, {}),
    expected: 'none',
    policy: resolveGuardPolicy({ volumeSpike: { baselineFloorPerHour: 10 } }),
  },
  {
    name: 'a spike of 200 sends over a baseline of 10/h',
    scope: 'key',
    hours: key(200, {}),
    expected: ['throttleKey'],
    policy: resolveGuardPolicy({ volumeSpike: { baselineFloorPerHour: 10 } }),
  },
];

/** 100 sends with 4 bounces over two hours: the sends are there, the bounces are not. */
function fourBouncesInHundredSends(): HourBucket[] {
  return [bucket(1, { sends: 60, hardBounces: 4 }), bucket(0, { sends: 40 })];
}

describe('guard thresholds', () => {
  it.each(rows)('$name → $expected', ({ scope, hours, expected, policy }) => {
    // Prepare: only the scope under test has counters (a key's rows give the tenant nothing).
    const input =
      scope === 'tenant'
        ? guardInput({ tenant: hours, ...(policy === undefined ? {} : { policy }) })
        : guardInput({ tenant: [], key: hours, ...(policy === undefined ? {} : { policy }) });

    // Act
    const decisions = evaluate(input).filter((d) => d.scope === scope);

    // Assess
    expect(actionsOf(decisions)).toEqual(expected);
  });

  it('names the signal, the rate, the sample and the window in the reason', () => {
    // Prepare
    const input = guardInput({
      tenant: [bucket(1, { sends: 400, hardBounces: 10 }), bucket(0, { sends: 400, hardBounces: 30 })],
    });

    // Act
    const [decision] = evaluate(input);

    // Assess
    expect(decision).toMatchObject({
      scope: 'tenant',
      tenantId: 't-1',
      action: 'pauseBroadcast',
      signal: 'hardBounceRate',
      rate: 0.05,
      threshold: 0.04,
      sample: { sends: 800, events: 40, over: 'sends' },
      window: { from: '2026-03-02T09:00:00.000Z', to: '2026-03-02T10:30:00.000Z', hours: 2 },
      probation: false,
    });
    expect(decision?.reason).toBe(
      "the tenant's hard-bounce rate 5 % (40 hard bounces in 800 sends, over 2 hours since " +
        '2026-03-02T09:00:00.000Z) is at or above 4 %: ' +
        "the tenant's broadcast mail is held until an operator resumes it; transactional mail still flows",
    );
  });
});
