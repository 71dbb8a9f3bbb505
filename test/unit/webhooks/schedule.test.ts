import { describe, expect, it } from 'vitest';
import {
  type DeliveryOutcome,
  maxDelaySeconds,
  nextAttempt,
  outcomeOf,
  parseRetryAfter,
  retryWindowSeconds,
} from '../../../lambdas/domain/webhooks/schedule.ts';

const first = new Date('2026-12-06T00:00:00Z');
const at = (seconds: number): Date => new Date(first.getTime() + seconds * 1000);
const constant = (value: number) => () => value;
const hour = 3600;

describe('nextAttempt', () => {
  // The schedule: 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then 12 h steps; jitter is ±10 % at most.
  const rows = [
    { after: 1, base: 5 },
    { after: 2, base: 300 },
    { after: 3, base: 1800 },
    { after: 4, base: 2 * hour },
    { after: 5, base: 5 * hour },
    { after: 6, base: 10 * hour },
    { after: 7, base: 12 * hour },
  ].flatMap(({ after, base }) => [
    { after, base, random: 0, expected: Math.round(base * 0.9) },
    { after, base, random: 0.5, expected: base },
    { after, base, random: 0.999, expected: Math.min(Math.round(base * 1.0998), maxDelaySeconds) },
  ]);
  it.each(rows)(
    'waits $expected s after attempt $after with random $random (base $base s)',
    ({ after, random, expected }) => {
      // Prepare: the attempt failed a moment after the first one, far from the three-day limit
      const now = at(60);

      // Act
      const next = nextAttempt({ attempt: after, firstAttemptAt: first, now, random: constant(random) });

      // Assess
      expect(next).toEqual({ delaySeconds: expected });
    },
  );

  it('never waits longer than SQS visibility allows, whatever the jitter', () => {
    // Act
    const next = nextAttempt({ attempt: 9, firstAttemptAt: first, now: at(hour), random: constant(0.999) });

    // Assess
    expect(next).toEqual({ delaySeconds: 12 * hour });
  });

  const spans = [0, 0.5, 0.999].map((random) => ({ random }));
  it.each(spans)('gives up about three days after the first attempt (random $random)', ({ random }) => {
    // Prepare
    let now = first;
    let attempt = 1;
    const delays: number[] = [];

    // Act: every attempt fails at once
    for (;;) {
      const next = nextAttempt({ attempt, firstAttemptAt: first, now, random: constant(random) });
      if ('giveUp' in next) break;
      delays.push(next.delaySeconds);
      now = at((now.getTime() - first.getTime()) / 1000 + next.delaySeconds);
      attempt += 1;
    }

    // Assess
    const span = (now.getTime() - first.getTime()) / 1000;
    expect(span).toBeLessThanOrEqual(retryWindowSeconds);
    expect(span).toBeGreaterThan(retryWindowSeconds - 12 * hour);
    expect(Math.max(...delays)).toBeLessThanOrEqual(maxDelaySeconds);
    expect(Math.min(...delays)).toBeGreaterThan(0);
    expect(attempt).toBeGreaterThanOrEqual(11);
    expect(attempt).toBeLessThanOrEqual(13);
  });

  it('lands the last attempt on the three-day mark rather than skipping the remainder', () => {
    // Prepare: a failure 66 h in, when a full 12 h step would overshoot
    const now = at(66 * hour);

    // Act
    const next = nextAttempt({ attempt: 11, firstAttemptAt: first, now, random: constant(0.5) });

    // Assess
    expect(next).toEqual({ delaySeconds: 6 * hour });
  });

  const late = [
    { name: 'at the three-day mark', now: at(retryWindowSeconds) },
    { name: 'after it', now: at(retryWindowSeconds + 1) },
    { name: 'with less than an hour left', now: at(retryWindowSeconds - hour + 1) },
  ];
  it.each(late)('gives up $name', ({ now }) => {
    // Act
    const next = nextAttempt({ attempt: 12, firstAttemptAt: first, now, random: constant(0.5) });

    // Assess
    expect(next).toEqual({ giveUp: true });
  });

  const retryAfter = [
    { name: 'longer than the schedule', attempt: 1, retryAfterSeconds: 120, expected: { delaySeconds: 120 } },
    {
      name: 'shorter than the schedule',
      attempt: 3,
      retryAfterSeconds: 10,
      expected: { delaySeconds: 1800 },
    },
    {
      name: 'beyond SQS visibility',
      attempt: 1,
      retryAfterSeconds: 48 * hour,
      expected: { delaySeconds: 12 * hour },
    },
    { name: 'of zero', attempt: 1, retryAfterSeconds: 0, expected: { delaySeconds: 5 } },
  ];
  it.each(retryAfter)('honours a Retry-After $name', ({ attempt, retryAfterSeconds, expected }) => {
    // Act
    const next = nextAttempt({
      attempt,
      firstAttemptAt: first,
      now: at(60),
      retryAfterSeconds,
      random: constant(0.5),
    });

    // Assess
    expect(next).toEqual(expected);
  });

  it('gives up when a Retry-After reaches past the three-day mark', () => {
    // Act
    const next = nextAttempt({
      attempt: 10,
      firstAttemptAt: first,
      now: at(70 * hour),
      retryAfterSeconds: 3 * hour,
      random: constant(0.5),
    });

    // Assess
    expect(next).toEqual({ giveUp: true });
  });

  const invalid = [
    {
      name: 'an attempt of 0',
      attempt: 0,
      random: 0.5,
      message: 'the attempt number must be an integer from 1, not 0',
    },
    {
      name: 'a fractional attempt',
      attempt: 1.5,
      random: 0.5,
      message: 'the attempt number must be an integer from 1, not 1.5',
    },
    {
      name: 'a random of 1',
      attempt: 1,
      random: 1,
      message: 'random() must return a number in [0, 1), not 1',
    },
    {
      name: 'a negative random',
      attempt: 1,
      random: -0.1,
      message: 'random() must return a number in [0, 1), not -0.1',
    },
  ];
  it.each(invalid)('refuses $name', ({ attempt, random, message }) => {
    // Act
    const next = () => nextAttempt({ attempt, firstAttemptAt: first, now: at(60), random: constant(random) });

    // Assess
    expect(next).toThrow(message);
  });
});

describe('outcomeOf', () => {
  const rows: { status: number | 'timeout' | 'network'; expected: DeliveryOutcome }[] = [
    { status: 200, expected: 'success' },
    { status: 201, expected: 'success' },
    { status: 204, expected: 'success' },
    { status: 299, expected: 'success' },
    { status: 410, expected: 'disable' },
    { status: 429, expected: 'retry-after' },
    { status: 503, expected: 'retry-after' },
    { status: 100, expected: 'retry' },
    { status: 301, expected: 'retry' },
    { status: 302, expected: 'retry' },
    { status: 307, expected: 'retry' },
    { status: 308, expected: 'retry' },
    { status: 400, expected: 'retry' },
    { status: 401, expected: 'retry' },
    { status: 404, expected: 'retry' },
    { status: 500, expected: 'retry' },
    { status: 502, expected: 'retry' },
    { status: 504, expected: 'retry' },
    { status: 'timeout', expected: 'retry' },
    { status: 'network', expected: 'retry' },
  ];
  it.each(rows)('treats $status as $expected', ({ status, expected }) => {
    // Act
    const outcome = outcomeOf(status);

    // Assess
    expect(outcome).toBe(expected);
  });
});

describe('parseRetryAfter', () => {
  const now = new Date('2026-12-06T12:00:00Z');
  const rows = [
    { header: '120', expected: 120 },
    { header: ' 0 ', expected: 0 },
    { header: 'Sun, 06 Dec 2026 12:05:00 GMT', expected: 300 },
    { header: 'Sun, 06 Dec 2026 11:00:00 GMT', expected: 0 },
    { header: '-5', expected: undefined },
    { header: '1.5', expected: undefined },
    { header: 'soon', expected: undefined },
    { header: '', expected: undefined },
    { header: null, expected: undefined },
  ];
  it.each(rows)('reads $header as $expected seconds', ({ header, expected }) => {
    // Act
    const seconds = parseRetryAfter(header, now);

    // Assess
    expect(seconds).toBe(expected);
  });
});
