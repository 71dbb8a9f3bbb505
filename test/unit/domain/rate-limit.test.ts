import { describe, expect, it } from 'vitest';
import { RateLimiter, secondsUntilNextUtcDay, utcDay } from '../../../lambdas/domain/send/rate-limit.ts';
import { T0 } from '../../support/builders.ts';
import { testClock } from '../../support/fakes.ts';

function setUp(maxKeys?: number) {
  const clock = testClock(T0);
  const limiter = maxKeys === undefined ? new RateLimiter(clock) : new RateLimiter(clock, maxKeys);
  return { clock, limiter };
}

/** Takes `n` tokens in a row and returns how many were granted. */
function takeMany(limiter: RateLimiter, keyId: string, rate: number, n: number): number {
  let granted = 0;
  for (let i = 0; i < n; i++) if (limiter.take(keyId, rate).ok) granted++;
  return granted;
}

describe('RateLimiter', () => {
  it('gives a token back (a request that failed), up to the bucket’s size and never beyond it', () => {
    // Prepare
    const { limiter } = setUp();
    limiter.take('key-a', 2);
    limiter.take('key-a', 2);

    // Act
    limiter.giveBack('key-a', 2);
    limiter.giveBack('key-a', 2);
    limiter.giveBack('key-a', 2);
    const granted = takeMany(limiter, 'key-a', 2, 3);

    // Assess
    expect(granted).toBe(2);
  });

  it('ignores a token given back for a key it does not hold', () => {
    // Prepare
    const { limiter } = setUp();

    // Act
    limiter.giveBack('key-new', 1);
    const granted = takeMany(limiter, 'key-new', 1, 2);

    // Assess
    expect(granted).toBe(1);
  });

  it('lets a new key make a burst of one second’s worth of requests, then refuses', () => {
    // Prepare
    const { limiter } = setUp();

    // Act
    const granted = takeMany(limiter, 'key-a', 5, 5);
    const sixth = limiter.take('key-a', 5);

    // Assess
    expect(granted).toBe(5);
    expect(sixth).toEqual({ ok: false, retryAfterSeconds: 1 });
  });

  it('refuses the second request of a key limited to one per second, with Retry-After 1', () => {
    // Prepare
    const { limiter } = setUp();

    // Act
    const first = limiter.take('key-a', 1);
    const second = limiter.take('key-a', 1);

    // Assess
    expect(first).toEqual({ ok: true });
    expect(second).toEqual({ ok: false, retryAfterSeconds: 1 });
  });

  it('refills at the key’s rate: one more request every 1/rate seconds', () => {
    // Prepare
    const { limiter, clock } = setUp();
    takeMany(limiter, 'key-a', 4, 4);

    // Act
    clock.advance(249);
    const early = limiter.take('key-a', 4);
    clock.advance(1);
    const onTime = limiter.take('key-a', 4);
    const after = limiter.take('key-a', 4);

    // Assess
    expect(early.ok).toBe(false);
    expect(onTime).toEqual({ ok: true });
    expect(after.ok).toBe(false);
  });

  it('does not spend a token on a refused request', () => {
    // Prepare
    const { limiter, clock } = setUp();
    limiter.take('key-a', 1);
    clock.advance(500);
    limiter.take('key-a', 1);

    // Act
    clock.advance(500);
    const afterOneSecond = limiter.take('key-a', 1);

    // Assess
    expect(afterOneSecond).toEqual({ ok: true });
  });

  it('never saves up more than one second’s worth, however long the key was idle', () => {
    // Prepare
    const { limiter, clock } = setUp();
    limiter.take('key-a', 3);
    clock.advance(60 * 60 * 1000);

    // Act
    const granted = takeMany(limiter, 'key-a', 3, 10);

    // Assess
    expect(granted).toBe(3);
  });

  it('keeps each key’s bucket apart', () => {
    // Prepare
    const { limiter } = setUp();
    takeMany(limiter, 'key-a', 2, 2);

    // Act
    const other = takeMany(limiter, 'key-b', 2, 3);
    const same = limiter.take('key-a', 2);

    // Assess
    expect(other).toBe(2);
    expect(same.ok).toBe(false);
  });

  it('answers Retry-After as whole seconds, at least 1', () => {
    // Prepare
    const { limiter } = setUp();
    takeMany(limiter, 'fast', 100, 100);
    takeMany(limiter, 'slow', 1, 1);

    // Act
    const fast = limiter.take('fast', 100);
    const slow = limiter.take('slow', 1);

    // Assess
    expect(fast).toEqual({ ok: false, retryAfterSeconds: 1 });
    expect(slow).toEqual({ ok: false, retryAfterSeconds: 1 });
  });

  it('takes a lowered rate at once: saved tokens never exceed the new rate', () => {
    // Prepare
    const { limiter } = setUp();
    limiter.take('key-a', 10);

    // Act
    const granted = takeMany(limiter, 'key-a', 2, 10);

    // Assess
    expect(granted).toBe(2);
  });

  it('forgets the least recently used key when it holds more keys than allowed (a fresh, full bucket)', () => {
    // Prepare
    const { limiter } = setUp(2);
    limiter.take('key-a', 1);
    limiter.take('key-b', 1);
    limiter.take('key-a', 1); // refused, but key-a is now the most recently used

    // Act
    limiter.take('key-c', 1); // evicts key-b
    const a = limiter.take('key-a', 1);
    const b = limiter.take('key-b', 1);

    // Assess
    expect(a.ok).toBe(false);
    expect(b).toEqual({ ok: true });
  });
});

describe('utcDay', () => {
  it.each([
    ['2025-03-01T00:00:00.000Z', '2025-03-01'],
    ['2025-03-01T23:59:59.999Z', '2025-03-01'],
    ['2025-02-28T23:30:00.000-02:00', '2025-03-01'],
    ['2024-12-31T23:59:59.999Z', '2024-12-31'],
  ])('counts %s as %s (UTC, whatever the offset it was written with)', (iso, day) => {
    // Act
    const result = utcDay(new Date(iso));

    // Assess
    expect(result).toBe(day);
  });
});

describe('secondsUntilNextUtcDay', () => {
  it.each([
    ['noon', '2025-03-01T12:00:00.000Z', 43_200],
    ['midnight exactly: a whole day', '2025-03-01T00:00:00.000Z', 86_400],
    ['half a second before midnight, rounded up', '2025-03-01T23:59:59.500Z', 1],
    ['a millisecond before midnight, at least 1', '2025-03-01T23:59:59.999Z', 1],
    ['the last day of a leap February', '2024-02-29T23:00:00.000Z', 3_600],
    ['New Year’s Eve', '2024-12-31T23:59:00.000Z', 60],
    ['a time written with an offset', '2025-03-01T10:00:00.000+02:00', 57_600],
  ])('answers %s', (_what, iso, seconds) => {
    // Act
    const result = secondsUntilNextUtcDay(new Date(iso));

    // Assess
    expect(result).toBe(seconds);
  });
});
