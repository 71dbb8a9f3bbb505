import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GuardCounter, HourBucket } from '../../../lambdas/domain/guard/counters.ts';
import {
  applyDecisions,
  emptyGuardState,
  evaluate,
  type GuardDecision,
  type GuardState,
  reinstate,
} from '../../../lambdas/domain/guard/evaluate.ts';
import {
  defaultGuardPolicy,
  type GuardPolicy,
  resolveGuardPolicy,
} from '../../../lambdas/domain/guard/policy.ts';
import { actionsOf, bucket, decisionsFor, GUARD_NOW, guardInput, HOUR_MS } from '../../support/guard.ts';

/** How harsh the outcome is for one scope: none 0, warn 1, throttle / pause 2, suspend / hold all 3. */
function harshness(decisions: readonly GuardDecision[], scope: 'tenant' | 'key'): number {
  const rank = { warn: 1, throttleKey: 2, pauseBroadcast: 2, suspendKey: 3, holdAll: 3 } as const;
  return Math.max(0, ...decisions.filter((d) => d.scope === scope).map((d) => rank[d.action]));
}

type Counts = Partial<Record<GuardCounter, number>>;

/** An hour's counters with bounces, complaints and new domains no larger than the sends. */
const hourCounts = fc
  .record({
    // Small and large hours, clean and dirty ones: the edges of the samples are where it could break.
    sends: fc.oneof(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 1500 })),
    bounced: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.3, noNaN: true })),
    complaints: fc.integer({ min: 0, max: 6 }),
    suppressedHits: fc.integer({ min: 0, max: 40 }),
    contentRefusals: fc.integer({ min: 0, max: 40 }),
    newDomains: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(
    (c): Counts => ({
      sends: c.sends,
      hardBounces: Math.floor(c.sends * c.bounced),
      complaints: Math.min(c.complaints, c.sends),
      suppressedHits: c.suppressedHits,
      contentRefusals: c.contentRefusals,
      newRecipientDomains: Math.floor(c.sends * c.newDomains),
    }),
  );

/** Hours back from now (0 = current), mostly recent, some past the 24 h and 7-day windows. */
const hourBack = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 200 }));
const history = fc.array(fc.tuple(hourBack, hourCounts), { maxLength: 12 });

/** No resume, or one some hours ago (probation and the cut apply alike to both runs). */
const reinstatedHoursAgo = fc.option(fc.double({ min: 0, max: 240, noNaN: true }), { nil: undefined });

const policies: readonly GuardPolicy[] = [
  defaultGuardPolicy,
  // Smaller samples so more generated cases get past the minimum and reach every threshold.
  resolveGuardPolicy({
    tenantHardBounce: { minimumSends: 50, minimumEvents: 1 },
    tenantComplaint: { minimumSends: 100, minimumEvents: 1 },
    keyHardBounce: { minimumSends: 20, minimumEvents: 1 },
  }),
];

function toBuckets(hours: readonly (readonly [number, Counts])[]): HourBucket[] {
  return hours.map(([back, counts]) => bucket(back, counts));
}

function stateFor(hoursAgo: number | undefined): GuardState {
  if (hoursAgo === undefined) return emptyGuardState;
  const at = new Date(GUARD_NOW.getTime() - hoursAgo * HOUR_MS);
  return { tenant: reinstate(at), key: reinstate(at) };
}

function decide(
  tenant: HourBucket[],
  key: HourBucket[],
  state: GuardState,
  policy: GuardPolicy,
  keyCount: number,
) {
  return evaluate(guardInput({ tenant, key, state, policy, keyCount }));
}

describe('monotonicity of the guard', () => {
  it('never decides more mildly for one more hard bounce, complaint, suppressed hit or content refusal (key and tenant, any hour)', () => {
    fc.assert(
      fc.property(
        history,
        history,
        reinstatedHoursAgo,
        fc.constantFrom(...policies),
        fc.integer({ min: 1, max: 5 }),
        hourBack,
        fc.constantFrom(
          'hardBounces' as const,
          'complaints' as const,
          'suppressedHits' as const,
          'contentRefusals' as const,
        ),
        (keyHours, otherKeysHours, resumed, policy, keyCount, hourBack, counter) => {
          // Prepare: the tenant's buckets hold its key's and others'; the new event lands in both.
          const key = toBuckets(keyHours);
          const tenant = [...key, ...toBuckets(otherKeysHours)];
          const event = bucket(hourBack, { [counter]: 1 });
          const state = stateFor(resumed);

          // Act
          const before = decide(tenant, key, state, policy, keyCount);
          const after = decide([...tenant, event], [...key, event], state, policy, keyCount);

          // Assess
          expect(harshness(after, 'tenant')).toBeGreaterThanOrEqual(harshness(before, 'tenant'));
          expect(harshness(after, 'key')).toBeGreaterThanOrEqual(harshness(before, 'key'));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('does not let one more bounce shorten the sample to a milder one (the minimum of bounces gates, never extends, the walk)', () => {
    // Prepare: a key with 20 clean sends now and 4 bounces in 15 sends an hour ago.
    const policy = resolveGuardPolicy({ keyHardBounce: { minimumSends: 20, minimumEvents: 1 } });
    const key = [bucket(1, { sends: 15, hardBounces: 4 }), bucket(0, { sends: 20 })];
    const withBounce = [...key, bucket(0, { hardBounces: 1 })];

    // Act
    const before = decisionsFor('key', { tenant: [], key, policy });
    const after = evaluate(guardInput({ tenant: [], key: withBounce, policy })).filter(
      (d) => d.scope === 'key',
    );

    // Assess: the sample is the last 20 sends either way; 0 bounces decide nothing, 1 in 20 is 5 %.
    expect(actionsOf(before)).toBe('none');
    expect(actionsOf(after)).toBe('none');
    expect(harshness(after, 'key')).toBeGreaterThanOrEqual(harshness(before, 'key'));
  });

  it('never decides more harshly for one more send at fixed event counts, once every rate’s sample is reached in the current hour', () => {
    // What holds: with the counters in the current hour and every minimum sample reached there,
    // a send only lowers each rate. Excluded on purpose: a volume spike (a send can start one),
    // a send that reaches a minimum sample, and a send in a recent hour that shortens the sample
    // (next test).
    const noSpike = resolveGuardPolicy({ volumeSpike: { multiple: 1_000_000 } });
    fc.assert(
      fc.property(hourCounts, reinstatedHoursAgo, (counts, resumed) => {
        // Prepare
        const current: Counts = {
          ...counts,
          sends: Math.max(counts.sends ?? 0, 1000),
          complaints: Math.max(counts.complaints ?? 0, 3),
          hardBounces: Math.max(counts.hardBounces ?? 0, 10),
        };
        const state = stateFor(resumed === undefined ? undefined : Math.max(resumed, 1));
        const before = [bucket(0, current)];
        const after = [bucket(0, { ...current, sends: (current.sends ?? 0) + 1 })];

        // Act
        const was = decide(before, before, state, noSpike, 1);
        const is = decide(after, after, state, noSpike, 1);

        // Assess
        expect(harshness(is, 'tenant')).toBeLessThanOrEqual(harshness(was, 'tenant'));
        expect(harshness(is, 'key')).toBeLessThanOrEqual(harshness(was, 'key'));
      }),
      { numRuns: 500 },
    );
  });

  it('takes the most recent sample: a send in this hour can leave a clean older hour out (by design)', () => {
    // Prepare: 499 sends with 30 bounces now, 1,000 clean sends an hour ago.
    const older = bucket(1, { sends: 1000 });

    // Act
    const diluted = evaluate(guardInput({ tenant: [older, bucket(0, { sends: 499, hardBounces: 30 })] }));
    const recent = evaluate(guardInput({ tenant: [older, bucket(0, { sends: 500, hardBounces: 30 })] }));

    // Assess: 30 / 1,499 = 2 % (warn) became 30 / 500 = 6 % (pause): the recent list is the bad one.
    expect(actionsOf(diluted)).toEqual(['warn']);
    expect(actionsOf(recent)).toEqual(['pauseBroadcast']);
  });
});

describe('idempotence of the guard', () => {
  it('decides nothing new when evaluated again with its decisions applied, and never steps down', () => {
    fc.assert(
      fc.property(
        history,
        history,
        history,
        reinstatedHoursAgo,
        fc.constantFrom(...policies),
        (keyHours, otherKeysHours, laterHours, resumed, policy) => {
          // Prepare
          const key = toBuckets(keyHours);
          const tenant = [...key, ...toBuckets(otherKeysHours)];
          const first = decide(tenant, key, stateFor(resumed), policy, 2);
          const state = applyDecisions(stateFor(resumed), first);
          const later = toBuckets(laterHours);

          // Act
          const again = decide(tenant, key, state, policy, 2);
          const changed = decide([...tenant, ...later], [...key, ...later], state, policy, 2);

          // Assess: a new decision is always stronger than what its scope has in force.
          expect(again).toEqual([]);
          for (const scope of ['tenant', 'key'] as const) {
            const inForce = harshness(first, scope);
            const fresh = changed.filter((d) => d.scope === scope);
            if (inForce > 1) for (const d of fresh) expect(harshness([d], scope)).toBeGreaterThan(inForce);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
