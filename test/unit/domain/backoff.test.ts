import { describe, expect, it } from 'vitest';
import { backoffSeconds, PAUSED_DELAY_SECONDS } from '../../../lambdas/domain/delivery/backoff.ts';

describe('backoffSeconds', () => {
  it('waits at most the base for the first retry', () => {
    // Prepare
    const highest = () => 0.999_999;

    // Act
    const seconds = backoffSeconds(1, highest);

    // Assess
    expect(seconds).toBe(2);
  });

  it('doubles the ceiling with every attempt', () => {
    // Prepare
    const highest = () => 0.999_999;

    // Act
    const ceilings = [1, 2, 3, 4, 5].map((attempt) => backoffSeconds(attempt, highest));

    // Assess
    expect(ceilings).toEqual([2, 4, 8, 16, 32]);
  });

  it('never waits longer than the cap however many attempts failed', () => {
    // Prepare
    const highest = () => 0.999_999;

    // Act
    const seconds = backoffSeconds(40, highest);

    // Assess
    expect(seconds).toBe(900);
  });

  it('spreads retries over the whole window (full jitter)', () => {
    // Prepare
    const half = () => 0.5;

    // Act
    const seconds = backoffSeconds(4, half);

    // Assess
    expect(seconds).toBe(8);
  });

  it('waits at least one second even when the jitter draws zero', () => {
    // Prepare
    const zero = () => 0;

    // Act
    const seconds = backoffSeconds(3, zero);

    // Assess
    expect(seconds).toBe(1);
  });

  it('treats an attempt number below one as the first attempt', () => {
    // Prepare
    const highest = () => 0.999_999;

    // Act
    const seconds = [backoffSeconds(0, highest), backoffSeconds(-3, highest)];

    // Assess
    expect(seconds).toEqual([2, 2]);
  });

  it('honours a custom base and cap', () => {
    // Prepare
    const highest = () => 0.999_999;

    // Act
    const seconds = [backoffSeconds(1, highest, 5, 12), backoffSeconds(3, highest, 5, 12)];

    // Assess
    expect(seconds).toEqual([5, 12]);
  });

  it('hands a paused batch back for fifteen minutes', () => {
    // Prepare / Act
    const seconds = PAUSED_DELAY_SECONDS;

    // Assess
    expect(seconds).toBe(900);
  });
});
