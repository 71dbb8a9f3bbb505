import { describe, expect, it } from 'vitest';
import {
  admit,
  type BreakerState,
  breakerPolicy,
  closedBreaker,
  record,
} from '../../../lambdas/domain/webhooks/breaker.ts';

const t0 = new Date('2026-12-06T00:00:00Z');
const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000);
const iso = (seconds: number): string => at(seconds).toISOString();
const day = 24 * 3600;

const closed = (consecutiveFailures: number, failingSince?: number): BreakerState =>
  failingSince === undefined
    ? { status: 'closed', consecutiveFailures }
    : { status: 'closed', consecutiveFailures, failingSince: iso(failingSince) };
const open = (
  cooldownSeconds: number,
  openedAt: number,
  failingSince = 0,
  consecutiveFailures = 5,
): BreakerState => ({
  status: 'open',
  consecutiveFailures,
  failingSince: iso(failingSince),
  cooldownSeconds,
  retryAt: iso(openedAt + cooldownSeconds),
});
const halfOpen = (cooldownSeconds: number, probeSince?: number, failingSince = 0): BreakerState => ({
  status: 'half-open',
  consecutiveFailures: 5,
  failingSince: iso(failingSince),
  cooldownSeconds,
  ...(probeSince === undefined ? {} : { probeSince: iso(probeSince) }),
});

describe('admit', () => {
  const rows: {
    name: string;
    state: BreakerState;
    now: number;
    expected: { admitted: boolean; state: BreakerState; retryAt?: string };
  }[] = [
    {
      name: 'a closed breaker admits',
      state: closedBreaker,
      now: 10,
      expected: { admitted: true, state: closedBreaker },
    },
    {
      name: 'a closed breaker with some failures admits',
      state: closed(4, 0),
      now: 10,
      expected: { admitted: true, state: closed(4, 0) },
    },
    {
      name: 'an open breaker refuses during the cool-down',
      state: open(60, 100),
      now: 159,
      expected: { admitted: false, state: open(60, 100), retryAt: iso(160) },
    },
    {
      name: 'an open breaker lets one probe through once the cool-down is over',
      state: open(60, 100),
      now: 160,
      expected: { admitted: true, state: halfOpen(60, 160) },
    },
    {
      name: 'a half-open breaker with no probe in flight admits one',
      state: halfOpen(120),
      now: 500,
      expected: { admitted: true, state: halfOpen(120, 500) },
    },
    {
      name: 'a half-open breaker makes others wait while the probe is in flight',
      state: halfOpen(120, 500),
      now: 510,
      expected: {
        admitted: false,
        state: halfOpen(120, 500),
        retryAt: iso(500 + breakerPolicy.probeLeaseSeconds),
      },
    },
    {
      name: 'a half-open breaker admits a new probe when the last one was lost',
      state: halfOpen(120, 500),
      now: 500 + breakerPolicy.probeLeaseSeconds,
      expected: { admitted: true, state: halfOpen(120, 500 + breakerPolicy.probeLeaseSeconds) },
    },
    {
      name: 'a disabled endpoint admits nothing',
      state: { status: 'disabled', disabled: true, reason: 'gone', disabledAt: iso(0) },
      now: 10 * day,
      expected: {
        admitted: false,
        state: { status: 'disabled', disabled: true, reason: 'gone', disabledAt: iso(0) },
      },
    },
  ];
  it.each(rows)('$name', ({ state, now, expected }) => {
    // Act
    const decision = admit(state, at(now));

    // Assess
    expect(decision).toEqual(expected);
  });
});

describe('record', () => {
  const rows: {
    name: string;
    state: BreakerState;
    outcome: Parameters<typeof record>[1];
    now: number;
    expected: BreakerState;
  }[] = [
    {
      name: 'a success keeps a closed breaker closed',
      state: closedBreaker,
      outcome: 'success',
      now: 10,
      expected: closedBreaker,
    },
    {
      name: 'a success resets the failure count',
      state: closed(4, 0),
      outcome: 'success',
      now: 10,
      expected: closedBreaker,
    },
    {
      name: 'a first failure starts the streak',
      state: closedBreaker,
      outcome: 'retry',
      now: 10,
      expected: closed(1, 10),
    },
    {
      name: 'a 429 counts as a failure',
      state: closed(1, 10),
      outcome: 'retry-after',
      now: 20,
      expected: closed(2, 10),
    },
    {
      name: 'a fourth consecutive failure keeps it closed',
      state: closed(3, 0),
      outcome: 'retry',
      now: 30,
      expected: closed(4, 0),
    },
    {
      name: 'a fifth consecutive failure opens it for the first cool-down',
      state: closed(4, 0),
      outcome: 'retry',
      now: 40,
      expected: open(breakerPolicy.firstCooldownSeconds, 40),
    },
    {
      name: 'a late failure while open keeps the cool-down',
      state: open(60, 100),
      outcome: 'retry',
      now: 120,
      expected: open(60, 100, 0, 6),
    },
    {
      name: 'a late success while open closes it',
      state: open(60, 100),
      outcome: 'success',
      now: 120,
      expected: closedBreaker,
    },
    {
      name: 'a probe success closes it',
      state: halfOpen(240, 500),
      outcome: 'success',
      now: 505,
      expected: closedBreaker,
    },
    {
      name: 'a probe failure re-opens it for twice the cool-down',
      state: halfOpen(240, 500),
      outcome: 'retry',
      now: 505,
      expected: open(480, 505, 0, 6),
    },
    {
      name: 'a probe failure never waits more than the longest cool-down',
      state: halfOpen(breakerPolicy.maxCooldownSeconds, 500),
      outcome: 'retry',
      now: 505,
      expected: open(breakerPolicy.maxCooldownSeconds, 505, 0, 6),
    },
    {
      name: 'a 410 disables a closed endpoint at once',
      state: closedBreaker,
      outcome: 'disable',
      now: 10,
      expected: { status: 'disabled', disabled: true, reason: 'gone', disabledAt: iso(10) },
    },
    {
      name: 'a 410 from a probe disables the endpoint',
      state: halfOpen(60, 500),
      outcome: 'disable',
      now: 505,
      expected: { status: 'disabled', disabled: true, reason: 'gone', disabledAt: iso(505) },
    },
    {
      name: 'a failure just short of three days of failing keeps it enabled',
      state: halfOpen(3600, 3 * day - 10, 0),
      outcome: 'retry',
      now: 3 * day - 1,
      expected: open(3600, 3 * day - 1, 0, 6),
    },
    {
      name: 'a probe failure after three days of failing disables it',
      state: halfOpen(3600, 3 * day - 10, 0),
      outcome: 'retry',
      now: 3 * day,
      expected: { status: 'disabled', disabled: true, reason: 'failing', disabledAt: iso(3 * day) },
    },
    {
      name: 'a late failure while open after three days disables it',
      state: open(3600, 3 * day - 100),
      outcome: 'retry-after',
      now: 3 * day + 5,
      expected: { status: 'disabled', disabled: true, reason: 'failing', disabledAt: iso(3 * day + 5) },
    },
    {
      name: 'a disabled endpoint stays disabled whatever comes back',
      state: { status: 'disabled', disabled: true, reason: 'failing', disabledAt: iso(0) },
      outcome: 'success',
      now: 10,
      expected: { status: 'disabled', disabled: true, reason: 'failing', disabledAt: iso(0) },
    },
  ];
  it.each(rows)('$name', ({ state, outcome, now, expected }) => {
    // Act
    const next = record(state, outcome, at(now));

    // Assess
    expect(next).toEqual(expected);
  });

  it('never opens for an endpoint that fails now and then', () => {
    // Prepare: four failures, a success, for a week of hourly attempts
    let state: BreakerState = closedBreaker;
    const statuses = new Set<string>();

    // Act
    for (let hour = 0; hour < 7 * 24; hour += 1) {
      const outcome = hour % 5 === 4 ? 'success' : 'retry';
      expect(admit(state, at(hour * 3600)).admitted).toBe(true);
      state = record(state, outcome, at(hour * 3600));
      statuses.add(state.status);
    }

    // Assess
    expect([...statuses]).toEqual(['closed']);
  });

  it('cools down 1 min, doubling to 1 h, while an endpoint keeps failing, then disables it after three days', () => {
    // Prepare
    let state: BreakerState = closedBreaker;
    let now = 0;
    const cooldowns: number[] = [];

    // Act: five failures open it; afterwards every admitted probe fails
    for (let i = 0; i < 5; i += 1) state = record(state, 'retry', at(now));
    while (state.status !== 'disabled') {
      const decision = admit(state, at(now));
      if (!decision.admitted) {
        now = (Date.parse(decision.retryAt ?? '') - t0.getTime()) / 1000;
        continue;
      }
      state = record(decision.state, 'retry', at(now + 1));
      if (state.status === 'open') cooldowns.push(state.cooldownSeconds);
    }

    // Assess
    expect(cooldowns.slice(0, 8)).toEqual([120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    expect(state).toEqual({
      status: 'disabled',
      disabled: true,
      reason: 'failing',
      disabledAt: expect.any(String),
    });
    const disabledAfter =
      (Date.parse(state.status === 'disabled' ? state.disabledAt : '') - t0.getTime()) / 1000;
    expect(disabledAfter).toBeGreaterThanOrEqual(3 * day);
    expect(disabledAfter).toBeLessThan(3 * day + 3600 + breakerPolicy.probeLeaseSeconds);
  });
});
