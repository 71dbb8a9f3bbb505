import { describe, expect, it } from 'vitest';
import {
  addHours,
  hourOf,
  hoursBetween,
  hoursToRead,
  isHour,
} from '../../../lambdas/domain/guard/counters.ts';
import { InMemoryGuardCounters } from '../../support/fakes.ts';
import { guardCountersContract } from '../../support/guard-counters-contract.ts';

describe('guard hours', () => {
  it('names the UTC hour an instant falls in, the last millisecond of an hour still in it', () => {
    expect(hourOf(new Date('2026-03-01T10:59:59.999Z'))).toBe('2026-03-01T10');
    expect(hourOf(new Date('2026-03-01T11:00:00.000Z'))).toBe('2026-03-01T11');
    expect(hourOf(new Date('2026-03-01T01:30:00+02:00'))).toBe('2026-02-28T23');
  });

  it.each([
    ['2026-03-01T10', true],
    ['2028-02-29T23', true],
    ['2026-02-29T00', false],
    ['2026-03-01T24', false],
    ['2026-03-01T9', false],
    ['2026-03-01T10:00', false],
    ['2026-03-01 10', false],
    ['', false],
  ])('knows whether %j is an hour (%s)', (value, expected) => {
    expect(isHour(value)).toBe(expected);
  });

  it('steps over day, month and year boundaries both ways', () => {
    expect(addHours('2026-12-31T23', 1)).toBe('2027-01-01T00');
    expect(addHours('2026-03-01T00', -1)).toBe('2026-02-28T23');
    expect(addHours('2026-03-01T00', -24 * 30)).toBe('2026-01-30T00');
  });

  it('lists every hour of a range, both ends included', () => {
    expect(hoursBetween('2026-02-28T22', '2026-03-01T01')).toEqual([
      '2026-02-28T22',
      '2026-02-28T23',
      '2026-03-01T00',
      '2026-03-01T01',
    ]);
    expect(hoursBetween('2026-03-01T01', '2026-03-01T00')).toEqual([]);
  });

  it('reads up to the hour limit and refuses one hour more', () => {
    expect(hoursToRead('2026-03-01T00', addHours('2026-03-01T00', 839), 840)).toHaveLength(840);
    expect(() => hoursToRead('2026-03-01T00', addHours('2026-03-01T00', 840), 840)).toThrow(
      'a read covers at most 840 hours, not 841',
    );
  });
});

describe('InMemoryGuardCounters (the fake keeps the adapter contract)', () => {
  const store = new InMemoryGuardCounters();
  guardCountersContract(() => store);
});
