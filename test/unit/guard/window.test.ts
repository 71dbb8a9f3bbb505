import { describe, expect, it } from 'vitest';
import {
  applyDecisions,
  emptyGuardState,
  evaluate,
  measure,
  reinstate,
} from '../../../lambdas/domain/guard/evaluate.ts';
import {
  actionsOf,
  bucket,
  decisionsFor,
  everyHour,
  GUARD_NOW,
  guardInput,
  HOUR_MS,
} from '../../support/guard.ts';

describe('the sample: walking back hour buckets', () => {
  it('reaches the minimum sample by walking back hours, and stops there', () => {
    // Prepare: five hours of 100 sends at 5 % bounces, then a clean week before them.
    const tenant = [...everyHour(100, 5, { sends: 100 }), ...everyHour(4, 0, { sends: 100, hardBounces: 5 })];

    // Act
    const [decision] = evaluate(guardInput({ tenant }));

    // Assess: the most recent 500 sends, not diluted by the clean hours before them.
    expect(decision).toMatchObject({
      action: 'pauseBroadcast',
      rate: 0.05,
      sample: { sends: 500, events: 25 },
    });
    expect(decision?.window).toEqual({
      from: '2026-03-02T06:00:00.000Z',
      to: GUARD_NOW.toISOString(),
      hours: 5,
    });
  });

  it('counts nothing beyond the maximum window (the 25th hour back for a key)', () => {
    // Prepare: 24 quiet hours (96 sends), then a dirty hour just outside the 24 h window.
    const quiet = everyHour(23, 0, { sends: 4 });
    const outside = [bucket(24, { sends: 100, hardBounces: 50 }), ...quiet];
    const inside = [bucket(23, { sends: 100, hardBounces: 50 }), ...everyHour(22, 0, { sends: 4 })];

    // Act
    const beyond = decisionsFor('key', { tenant: [], key: outside });
    const within = decisionsFor('key', { tenant: [], key: inside });

    // Assess
    expect(actionsOf(beyond)).toBe('none');
    expect(actionsOf(within)).toEqual(['suspendKey']);
  });

  it('walks back up to 7 days for a tenant (the 168th hour counts, the 169th does not)', () => {
    // Prepare: 3 sends an hour is too few alone; one heavy bouncing hour at the edge decides.
    const edge = (back: number) => [
      bucket(back, { sends: 400, hardBounces: 60 }),
      ...everyHour(back - 1, 0, { sends: 1 }),
    ];

    // Act
    const at167 = evaluate(guardInput({ tenant: edge(167) }));
    const at168 = evaluate(guardInput({ tenant: edge(168) }));

    // Assess: 400 + 167 sends reach 500 only when hour 167 is counted.
    expect(actionsOf(at167)).toEqual(['holdAll']);
    expect(actionsOf(at168)).toBe('none');
  });

  it('decides nothing while the minimum sample is not reached, and reports the rate as unreached', () => {
    // Prepare
    const input = guardInput({ tenant: [bucket(0, { sends: 300, hardBounces: 30 })] });

    // Act
    const decisions = evaluate(input);
    const bounce = measure(input).find((r) => r.rule === 'tenantHardBounce');

    // Assess
    expect(decisions).toEqual([]);
    expect(bounce).toMatchObject({ rate: 0.1, sampleReached: false, level: 'none', sample: { sends: 300 } });
  });

  it('ignores buckets dated after now (a clock ahead elsewhere)', () => {
    // Prepare
    const input = guardInput({ tenant: [], key: [bucket(-1, { sends: 100, contentRefusals: 100 })] });

    // Act
    const decisions = evaluate(input);

    // Assess
    expect(decisions).toEqual([]);
  });

  it('adds up buckets of the same hour and reads corrupted counters as zero', () => {
    // Prepare
    const key = [
      bucket(0, { sends: 30, contentRefusals: 10 }),
      bucket(0, { sends: 30, contentRefusals: 10 }),
      bucket(0, { sends: Number.NaN, contentRefusals: -50 }),
      { hour: 'not an hour', counts: { sends: 1000 } },
    ];

    // Act
    const refusals = measure(guardInput({ tenant: [], key })).find((r) => r.rule === 'keyContentRefusals');

    // Assess
    expect(refusals).toMatchObject({ rate: 0.25, sample: { sends: 80, events: 20 }, level: 'act' });
  });
});

describe('each rule’s maximum window', () => {
  // One bucket holding the whole sample, the last hour inside the window or the first outside.
  it.each([
    {
      rule: 'tenantHardBounce',
      scope: 'tenant',
      window: 168,
      counts: { sends: 500, hardBounces: 25 },
      action: 'pauseBroadcast',
    },
    {
      rule: 'tenantComplaint',
      scope: 'tenant',
      window: 720,
      counts: { sends: 1000, complaints: 3 },
      action: 'pauseBroadcast',
    },
    {
      rule: 'keyHardBounce',
      scope: 'key',
      window: 24,
      counts: { sends: 100, hardBounces: 10 },
      action: 'suspendKey',
    },
    {
      rule: 'keySuppressedHits',
      scope: 'key',
      window: 1,
      counts: { sends: 40, suppressedHits: 10 },
      action: 'suspendKey',
    },
    {
      rule: 'keyContentRefusals',
      scope: 'key',
      window: 1,
      counts: { sends: 40, contentRefusals: 10 },
      action: 'suspendKey',
    },
    { rule: 'volumeSpike', scope: 'key', window: 1, counts: { sends: 1000 }, action: 'throttleKey' },
  ] as const)(
    '$rule: counts the hour $window − 1 back, not the hour $window back',
    ({ scope, window, counts, action }) => {
      // Prepare
      const at = (back: number) =>
        scope === 'tenant' ? { tenant: [bucket(back, counts)] } : { tenant: [], key: [bucket(back, counts)] };

      // Act
      const inside = decisionsFor(scope, at(window - 1));
      const outside = decisionsFor(scope, at(window));

      // Assess
      expect(actionsOf(inside)).toEqual([action]);
      expect(actionsOf(outside)).toBe('none');
    },
  );
});

describe('hour boundaries (a fake clock)', () => {
  const refusing = [bucket(0, { sends: 40, contentRefusals: 20 }, new Date('2026-03-02T10:00:00.000Z'))];

  it('counts the current hour up to its last millisecond', () => {
    // Act
    const decisions = decisionsFor('key', {
      tenant: [],
      key: refusing,
      now: new Date('2026-03-02T10:59:59.999Z'),
    });

    // Assess
    expect(decisions[0]).toMatchObject({ action: 'suspendKey', signal: 'contentRefusalRate' });
    expect(decisions[0]?.window).toMatchObject({ from: '2026-03-02T10:00:00.000Z', hours: 1 });
  });

  it('starts an empty current hour at the hour, so a current-hour signal resets', () => {
    // Act
    const decisions = decisionsFor('key', {
      tenant: [],
      key: refusing,
      now: new Date('2026-03-02T11:00:00.000Z'),
    });

    // Assess
    expect(decisions).toEqual([]);
  });

  it('lets a 24 h window slide past a bucket at the hour it turns 24 hours old', () => {
    // Prepare: the bouncing bucket is the 10:00 one.
    const key = [bucket(0, { sends: 100, hardBounces: 20 }, new Date('2026-03-02T10:00:00.000Z'))];
    const at = (iso: string) => decisionsFor('key', { tenant: [], key, now: new Date(iso) });

    // Act + Assess
    expect(actionsOf(at('2026-03-03T09:59:59.999Z'))).toEqual(['suspendKey']);
    expect(actionsOf(at('2026-03-03T10:00:00.000Z'))).toBe('none');
  });
});

describe('reinstatement and probation', () => {
  it('never takes a rate across a resume: what bounced before it no longer counts', () => {
    // Prepare: the key was suspended for 20 % bounces, then resumed an hour and a half ago.
    const key = [bucket(3, { sends: 100, hardBounces: 20 }), bucket(0, { sends: 60 })];
    const suspended = applyDecisions(emptyGuardState, decisionsFor('key', { tenant: [], key }));
    const resumed = { ...suspended, key: reinstate(new Date(GUARD_NOW.getTime() - 1.5 * HOUR_MS)) };

    // Act
    const decisions = decisionsFor('key', { tenant: [], key, state: resumed });
    const reading = measure(guardInput({ tenant: [], key, state: resumed })).find(
      (r) => r.rule === 'keyHardBounce',
    );

    // Assess
    expect(actionsOf(decisionsFor('key', { tenant: [], key }))).toEqual(['suspendKey']);
    expect(decisions).toEqual([]);
    expect(reading).toMatchObject({
      sampleReached: false,
      sample: { sends: 60, events: 0 },
      probation: true,
    });
  });

  it('keeps counting the rest of the resume hour from the counters read at the resume', () => {
    // Prepare: 100 refusals before the resume at 10:10, then 60 attempts with 15 refusals after it.
    const key = [bucket(0, { sends: 45 + 10, contentRefusals: 100 + 15 })];
    const resumedAt = new Date('2026-03-02T10:10:00.000Z');
    const withSnapshot = {
      tenant: { actions: [] },
      key: reinstate(resumedAt, { sends: 10, contentRefusals: 100 }),
    };
    const withoutSnapshot = { tenant: { actions: [] }, key: reinstate(resumedAt) };

    // Act
    const counted = decisionsFor('key', { tenant: [], key, state: withSnapshot });
    const skipped = decisionsFor('key', { tenant: [], key, state: withoutSnapshot });

    // Assess: 15 of 60 is 25 %, above the 20 % threshold (and its probation half).
    expect(counted[0]).toMatchObject({ action: 'suspendKey', rate: 0.25, sample: { sends: 60, events: 15 } });
    expect(counted[0]?.window.from).toBe(resumedAt.toISOString());
    expect(skipped).toEqual([]);
  });

  it('subtracts the counters read at a resume made at the very start of the hour', () => {
    // Prepare: 100 refusals counted in the tick of 10:00:00.000, the resume in that same tick,
    // then 60 clean attempts.
    const key = [bucket(0, { sends: 60 + 10, contentRefusals: 100 })];
    const resumedAt = new Date('2026-03-02T10:00:00.000Z');
    const state = { tenant: { actions: [] }, key: reinstate(resumedAt, { sends: 10, contentRefusals: 100 }) };

    // Act
    const reading = measure(guardInput({ tenant: [], key, state })).find(
      (r) => r.rule === 'keyContentRefusals',
    );

    // Assess: only what came after the resume counts.
    expect(reading).toMatchObject({ rate: 0, sample: { sends: 60, events: 0 } });
    expect(decisionsFor('key', { tenant: [], key, state })).toEqual([]);
  });

  it('counts nothing from the hours before the resume hour, with or without the counters read at the resume', () => {
    // Prepare: a suspension's bounces two hours back; 60 clean sends since the resume at 10:10.
    const key = [bucket(2, { sends: 100, hardBounces: 40 }), bucket(0, { sends: 70 })];
    const state = {
      tenant: { actions: [] },
      key: reinstate(new Date('2026-03-02T10:10:00.000Z'), { sends: 10 }),
    };

    // Act
    const reading = measure(guardInput({ tenant: [], key, state })).find((r) => r.rule === 'keyHardBounce');

    // Assess: the walk stops at the resume hour.
    expect(reading).toMatchObject({
      sampleReached: false,
      sample: { sends: 60, events: 0 },
      window: { hours: 1 },
    });
  });

  it('halves every threshold during probation, and only during it', () => {
    // Prepare: 6 % key bounces after a resume: under 10 %, over its half. Probation: 7 days.
    const state = { tenant: { actions: [] }, key: reinstate(new Date('2026-02-20T00:00:00.000Z')) };
    const at = (iso: string) => {
      const now = new Date(iso);
      return decisionsFor('key', {
        tenant: [],
        key: [bucket(0, { sends: 100, hardBounces: 6 }, now)],
        state,
        now,
      });
    };

    // Act
    const lastProbationMoment = at('2026-02-26T23:59:59.999Z');
    const afterProbation = at('2026-02-27T00:00:00.000Z');

    // Assess
    expect(lastProbationMoment[0]).toMatchObject({ action: 'suspendKey', threshold: 0.05, probation: true });
    expect(lastProbationMoment[0]?.reason).toContain(
      'is at or above 5 % (lowered: probation after a resume)',
    );
    expect(afterProbation).toEqual([]);
  });

  it('halves the tenant thresholds after a tenant resume', () => {
    // Prepare: 2.5 % bounces: a warning normally, a broadcast pause in probation (2 %).
    const tenant = [bucket(0, { sends: 1000, hardBounces: 25 })];
    const state = { tenant: reinstate(new Date(GUARD_NOW.getTime() - 2 * HOUR_MS)) };

    // Act
    const normal = evaluate(guardInput({ tenant }));
    const probation = evaluate(guardInput({ tenant, state }));

    // Assess
    expect(actionsOf(normal)).toEqual(['warn']);
    expect(actionsOf(probation)).toEqual(['pauseBroadcast']);
  });
});

describe('released mail', () => {
  it('counts in every rate’s sends, so the bounces it brings are taken over it', () => {
    // Prepare: 100 new sends and 400 released ones, 12 hard bounces: 2.4 % of 500, not 12 % of 100.
    const tenant = [bucket(0, { sends: 100, releasedSends: 400, hardBounces: 12 })];

    // Act
    const [reading] = measure(guardInput({ tenant })).filter((r) => r.rule === 'tenantHardBounce');

    // Assess
    expect(reading).toMatchObject({ rate: 12 / 500, sampleReached: true, level: 'warn' });
  });

  it('is no volume spike: a release of a thousand held messages does not throttle the key', () => {
    // Prepare
    const key = [bucket(0, { sends: 150, releasedSends: 1_000 })];

    // Act
    const decisions = decisionsFor('key', { key });

    // Assess
    expect(decisions).toEqual([]);
  });
});
