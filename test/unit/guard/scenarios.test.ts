import { describe, expect, it } from 'vitest';
import { type HourBucket, hourOf, hourStart } from '../../../lambdas/domain/guard/counters.ts';
import {
  applyDecisions,
  emptyGuardState,
  evaluate,
  type GuardDecision,
  type GuardState,
  standing,
} from '../../../lambdas/domain/guard/evaluate.ts';
import { resolveGuardPolicy } from '../../../lambdas/domain/guard/policy.ts';
import {
  actionsOf,
  bucket,
  decisionsFor,
  everyHour,
  GUARD_NOW,
  guardDecision,
  guardInput,
  HOUR_MS,
} from '../../support/guard.ts';

const MINUTE_MS = 60_000;
/** 10:00:00, the start of the hour in which each replay below begins. */
const HOUR_START = hourStart(hourOf(GUARD_NOW));

interface Replay {
  /** Minutes into the hour at which the first action came, and the sends by then. */
  readonly firstAction:
    | { readonly minute: number; readonly sends: number; readonly decision: GuardDecision }
    | undefined;
  readonly state: GuardState;
}

/**
 * Replays a key sending `perMinute` messages a minute from 10:00 for `minutes` minutes on top of
 * `history`, evaluating once a minute (the "at most once per scope per minute") and
 * applying what is decided, as the wiring will.
 */
function replayKey(options: {
  readonly history: readonly HourBucket[];
  readonly perMinute: number;
  readonly newDomainsPerMinute: number;
  readonly minutes: number;
  readonly keyCount?: number;
  readonly tenantHistory?: readonly HourBucket[];
}): Replay {
  let state: GuardState = emptyGuardState;
  let firstAction: Replay['firstAction'];
  for (let minute = 1; minute <= options.minutes; minute++) {
    const now = new Date(HOUR_START.getTime() + minute * MINUTE_MS);
    const current = bucket(
      0,
      { sends: options.perMinute * minute, newRecipientDomains: options.newDomainsPerMinute * minute },
      now,
    );
    const key = [...options.history, current];
    const tenant = [...(options.tenantHistory ?? options.history), current];
    const decisions = evaluate(guardInput({ tenant, key, state, now, keyCount: options.keyCount ?? 1 }));
    const forKey = decisions.filter((d) => d.scope === 'key');
    if (firstAction === undefined && forKey[0] !== undefined) {
      firstAction = { minute, sends: options.perMinute * minute, decision: forKey[0] };
    }
    state = applyDecisions(state, decisions);
  }
  return { firstAction, state };
}

describe('the key baseline', () => {
  it('does not throttle a new key for its first few hundred messages', () => {
    // Act: a brand-new key (no history) sends 900 in its first hour.
    const { firstAction } = replayKey({ history: [], perMinute: 15, newDomainsPerMinute: 15, minutes: 60 });

    // Assess
    expect(firstAction).toBeUndefined();
  });

  it('uses the tenant’s average per key, so a new key of a busy tenant inherits its pace', () => {
    // Prepare: a tenant of 4 keys sending 2,000/h together for a week: 500/h per key.
    const tenantHistory = everyHour(168, 1, { sends: 2000 });

    // Act: a new key of that tenant sends 4,800 in its first hour (80 a minute).
    const { firstAction } = replayKey({
      history: [],
      tenantHistory,
      keyCount: 4,
      perMinute: 80,
      newDomainsPerMinute: 0,
      minutes: 60,
    });

    // Assess: 10 × 500 = 5,000 is not reached.
    expect(firstAction).toBeUndefined();
  });

  it('takes the key’s own average over the 168 hours before this one (this hour left out)', () => {
    // Prepare: a week at 200/h: a baseline of 200, so 2,000 this hour is 10 ×.
    const week = everyHour(168, 1, { sends: 200 });
    const at = (sends: number) => decisionsFor('key', { tenant: [], key: [...week, bucket(0, { sends })] });

    // Act + Assess
    expect(actionsOf(at(1999))).toBe('none');
    expect(at(2000)[0]).toMatchObject({ action: 'throttleKey', threshold: 2000 });
    expect(at(2000)[0]?.reason).toContain("10 × the key's hourly baseline of 200");
  });

  it('suspends a spike only with a key signal whose own minimum sample is reached', () => {
    // Prepare: 6 % bounces in a spike, but the rule asks for 100 bounces before a rate counts.
    const policy = resolveGuardPolicy({ keyHardBounce: { minimumEvents: 100 } });
    const key = [bucket(0, { sends: 1000, hardBounces: 60 })];

    // Act
    const decisions = decisionsFor('key', { tenant: [], key, policy });

    // Assess
    expect(actionsOf(decisions)).toEqual(['throttleKey']);
  });

  it('throttles (not suspends) a key that spikes to its usual domains', () => {
    // Act: two weeks at ~20/h, then 3,000/h to domains it already knew.
    const { firstAction } = replayKey({
      history: everyHour(336, 1, { sends: 20 }),
      perMinute: 50,
      newDomainsPerMinute: 0,
      minutes: 60,
    });

    // Assess: the baseline is the floor, 100/h; 10 × 100 sends reached at minute 20.
    expect(firstAction).toMatchObject({ minute: 20, sends: 1000 });
    expect(firstAction?.decision).toMatchObject({
      action: 'throttleKey',
      signal: 'volumeSpike',
      until: new Date(HOUR_START.getTime() + 80 * MINUTE_MS).toISOString(),
    });
  });

  it('suspends a stolen key within the hour: two weeks at ~20/h, then 3,000/h to new domains', () => {
    // Act
    const { firstAction, state } = replayKey({
      history: everyHour(336, 1, { sends: 20 }),
      perMinute: 50,
      newDomainsPerMinute: 45,
      minutes: 60,
    });

    // Assess: stopped after 1,000 messages (20 minutes at 3,000/h), not throttled first.
    expect(firstAction).toMatchObject({ minute: 20, sends: 1000 });
    expect(firstAction?.decision).toMatchObject({
      action: 'suspendKey',
      signal: 'volumeSpike',
      keyId: 'k-1',
    });
    expect(firstAction?.decision.reason).toContain('recipient domains new to the key');
    expect(standing(state, [])).toBe('suspended');
    expect(state.key?.actions.map((a) => a.action)).toEqual(['suspendKey']);
  });

  it('suspends a throttled key when bounces then come in above half the key threshold', () => {
    // Prepare: a spike to known domains, with 6 % of the hour's sends already bounced.
    const now = new Date(HOUR_START.getTime() + 30 * MINUTE_MS);
    const key = [...everyHour(336, 1, { sends: 20 }, now), bucket(0, { sends: 1500, hardBounces: 90 }, now)];
    const throttled = applyDecisions(
      emptyGuardState,
      evaluate(guardInput({ tenant: [], key: [...key.slice(0, -1), bucket(0, { sends: 1500 }, now)], now })),
    );

    // Act
    const decisions = evaluate(guardInput({ tenant: [], key, state: throttled, now })).filter(
      (d) => d.scope === 'key',
    );

    // Assess
    expect(throttled.key?.actions.map((a) => a.action)).toEqual(['throttleKey']);
    expect(actionsOf(decisions)).toEqual(['suspendKey']);
    expect(decisions[0]?.reason).toContain("the key's hard-bounce rate 6 %");
  });
});

describe('a bad list import (tenant counters)', () => {
  /**
   * 800 broadcast sends in batches of 50, with `bouncePerMille`‰ of each batch bouncing, evaluated
   * after each batch; returns what was decided after each.
   */
  function importList(bouncePerMille: number) {
    let state: GuardState = emptyGuardState;
    const steps: { sends: number; bounces: number; actions: ReturnType<typeof actionsOf> }[] = [];
    let bounces = 0;
    for (let sends = 50; sends <= 800; sends += 50) {
      bounces = Math.floor((sends * bouncePerMille) / 1000);
      const now = new Date(HOUR_START.getTime() + (sends / 50) * MINUTE_MS);
      const tenant = [bucket(0, { sends, hardBounces: bounces }, now)];
      const decisions = evaluate(guardInput({ tenant, state, now }));
      steps.push({ sends, bounces, actions: actionsOf(decisions) });
      state = applyDecisions(state, decisions);
    }
    return { steps, state };
  }

  it('pauses broadcast at 5 % bounces once the sample is reached, and only once', () => {
    // Act
    const { steps, state } = importList(50);

    // Assess: the sample (500 sends, 10 bounces) is reached with the 500th send.
    const acted = steps.filter((s) => s.actions !== 'none');
    expect(acted).toEqual([{ sends: 500, bounces: 25, actions: ['pauseBroadcast'] }]);
    expect(standing(state, [])).toBe('broadcast_paused');
    expect(state.tenant.actions[0]?.reason).toContain('transactional mail still flows');
  });

  it('holds all of the tenant’s mail above 7 %', () => {
    // Act
    const { steps, state } = importList(80);

    // Assess
    const acted = steps.filter((s) => s.actions !== 'none');
    expect(acted).toEqual([{ sends: 500, bounces: 40, actions: ['holdAll'] }]);
    expect(standing(state, [])).toBe('held');
  });

  it('escalates a broadcast pause to hold all when the rate climbs above 7 %', () => {
    // Prepare
    const paused = applyDecisions(
      emptyGuardState,
      evaluate(guardInput({ tenant: [bucket(0, { sends: 800, hardBounces: 40 })] })),
    );

    // Act
    const decisions = evaluate(
      guardInput({ tenant: [bucket(0, { sends: 800, hardBounces: 60 })], state: paused }),
    );

    // Assess
    expect(actionsOf(decisions)).toEqual(['holdAll']);
    expect(standing(applyDecisions(paused, decisions), [])).toBe('held');
  });
});

describe('idempotence and standing', () => {
  const bouncing = [bucket(0, { sends: 1000, hardBounces: 50 })];

  it('returns no new action when the state already has it', () => {
    // Prepare
    const first = evaluate(guardInput({ tenant: bouncing }));

    // Act
    const again = evaluate(guardInput({ tenant: bouncing, state: applyDecisions(emptyGuardState, first) }));

    // Assess
    expect(actionsOf(first)).toEqual(['pauseBroadcast']);
    expect(again).toEqual([]);
  });

  it('never steps down: a milder rate under a stronger action decides nothing, not even a warning', () => {
    // Prepare
    const held = applyDecisions(
      emptyGuardState,
      evaluate(guardInput({ tenant: [bucket(0, { sends: 1000, hardBounces: 80 })] })),
    );

    // Act
    const decisions = evaluate(
      guardInput({ tenant: [bucket(0, { sends: 1000, hardBounces: 30 })], state: held }),
    );

    // Assess
    expect(
      actionsOf(evaluate(guardInput({ tenant: [bucket(0, { sends: 1000, hardBounces: 30 })] }))),
    ).toEqual(['warn']);
    expect(decisions).toEqual([]);
  });

  it('warns once per signal', () => {
    // Prepare: bounces at 3 %; then complaints join at 0.06 %.
    const warned = applyDecisions(
      emptyGuardState,
      evaluate(guardInput({ tenant: [bucket(0, { sends: 10_000, hardBounces: 300 })] })),
    );

    // Act
    const same = evaluate(
      guardInput({ tenant: [bucket(0, { sends: 10_000, hardBounces: 300 })], state: warned }),
    );
    const other = evaluate(
      guardInput({ tenant: [bucket(0, { sends: 10_000, hardBounces: 300, complaints: 6 })], state: warned }),
    );

    // Assess
    expect(same).toEqual([]);
    expect(other.map((d) => [d.action, d.signal])).toEqual([['warn', 'complaintRate']]);
  });

  it('lets a warning lapse after a day: the standing recovers, and a rate still high warns again', () => {
    // Prepare: bounces at 3 % warn at 10:30.
    const tenant = (now: Date) => [bucket(0, { sends: 1000, hardBounces: 30 }, now)];
    const warned = applyDecisions(emptyGuardState, evaluate(guardInput({ tenant: tenant(GUARD_NOW) })));
    const nextDay = new Date(GUARD_NOW.getTime() + 24 * HOUR_MS);
    const justBefore = new Date(nextDay.getTime() - 1);

    // Act
    const sameDay = evaluate(guardInput({ tenant: tenant(justBefore), state: warned, now: justBefore }));
    const again = evaluate(guardInput({ tenant: tenant(nextDay), state: warned, now: nextDay }));

    // Assess
    expect(warned.tenant.actions[0]).toMatchObject({ action: 'warn', until: nextDay.toISOString() });
    expect(sameDay).toEqual([]);
    expect(actionsOf(again)).toEqual(['warn']);
    expect(standing(warned, [], justBefore)).toBe('warning');
    expect(standing(warned, [], nextDay)).toBe('good');
  });

  it('throttles again once a throttle has ended and the spike goes on', () => {
    // Prepare: throttled at 10:30 until 11:30; at 11:45 the key sends 1,200 in the hour.
    const spiking = (now: Date) => [bucket(0, { sends: 1200 }, now)];
    const throttled = applyDecisions(
      emptyGuardState,
      evaluate(guardInput({ tenant: [], key: spiking(GUARD_NOW) })),
    );
    const later = new Date(GUARD_NOW.getTime() + 75 * MINUTE_MS);
    const during = new Date(GUARD_NOW.getTime() + 59 * MINUTE_MS);

    // Act
    const whileThrottled = evaluate(
      guardInput({ tenant: [], key: spiking(during), state: throttled, now: during }),
    );
    const afterwards = evaluate(
      guardInput({ tenant: [], key: spiking(later), state: throttled, now: later }),
    );

    // Assess
    expect(whileThrottled.filter((d) => d.scope === 'key')).toEqual([]);
    expect(actionsOf(afterwards.filter((d) => d.scope === 'key'))).toEqual(['throttleKey']);
    expect(standing(throttled, [], GUARD_NOW)).toBe('warning');
    expect(standing(throttled, [], later)).toBe('good');
  });

  it.each([
    [[], 'good'],
    [['warn'], 'warning'],
    [['throttleKey'], 'warning'],
    [['warn', 'pauseBroadcast'], 'broadcast_paused'],
    [['pauseBroadcast', 'holdAll'], 'held'],
    [['holdAll', 'suspendKey'], 'suspended'],
  ] as const)('reads %j as the standing %s', (actions, expected) => {
    // Prepare
    const decisions = actions.map((action) => guardDecision({ action }));

    // Act + Assess: the same whether in force already or just decided.
    expect(standing(emptyGuardState, decisions)).toBe(expected);
    expect(standing(applyDecisions(emptyGuardState, decisions), [])).toBe(expected);
  });
});
