import { describe, expect, it } from 'vitest';
import { GUARD_ASSUMPTIONS, type GuardUnits, guardCost, loadPrices } from '../../../bench/cost.ts';

/** Units as the guard section measures them on dynalite (failed conditional writes billed 1 WRU). */
const units: GuardUnits = {
  acceptBatchWru: 2,
  acceptSingleWru: 2,
  domainCheckWru: 1,
  claimWru: 1,
  evaluationRru: 20,
  feedbackEventWru: 2.2,
};

describe('the guard’s cost per 1M messages', () => {
  const prices = loadPrices();
  const wru = prices.prices.dynamoWriteRequestUnitPerMillion.usd / 1e6;
  const rru = prices.prices.dynamoReadRequestUnitPerMillion.usd / 1e6;

  it('adds the accept path per request, domain checks, evaluations per minute and counted feedback events', () => {
    // Act
    const cost = guardCost(units, prices, 'batch');

    // Assess
    const a = GUARD_ASSUMPTIONS;
    const claims = a.evaluationMinutesPerMillion * 2 * a.claimAttemptsPerScopeMinute;
    expect(cost.parts).toEqual({
      'accept: key + tenant buckets': (1e6 / a.batchSize) * 2 * wru,
      'accept: new-domain checks': 1e6 * a.domainChecksPerMessage * 1 * wru,
      'evaluation: claims and reads, per minute': a.evaluationMinutesPerMillion * 20 * rru + claims * wru,
      'feedback: markers and adds': 1e6 * a.countedEventsPerMessage * 2.2 * wru,
    });
    expect(cost.total).toBeCloseTo(
      Object.values(cost.parts).reduce((x, y) => x + y, 0),
      12,
    );
  });

  it('costs more per message when every request holds one message', () => {
    expect(guardCost(units, prices, 'single').total).toBeGreaterThan(guardCost(units, prices, 'batch').total);
  });
});
