/**
 * A key item's `guard` mark that the guard did not write (hand-edited, half-written, an older
 * shape) reads as no mark for that scope, and is named so the adapter reports it: every request of
 * the key reads the mark, so a corrupt one must never answer them all 500.
 */
import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import { holdFor, readGuardMark, throttleFor } from '../../../lambdas/domain/guard/state.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { sendBody, T0 } from '../../support/builders.ts';
import { decisionOf, guardMarkOf } from '../../support/guard.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent } from '../../support/http-events.ts';

const NOW = new Date(T0);

const corrupt: Array<[string, unknown]> = [
  ['a tenant state without actions', { tenant: {} }],
  ['a key state without actions', { key: {} }],
  ['actions that are not a list', { tenant: { actions: 'holdAll' } }],
  ['actions that are a map', { key: { actions: { 0: { action: 'throttleKey' } } } }],
  ['actions holding null and a number', { tenant: { actions: [null] }, key: { actions: [5] } }],
  ['a decision of an unknown action', { key: { actions: [{ action: 'nuke', signal: 's', reason: 'r' }] } }],
  [
    'a decision whose until is not a time',
    { key: { actions: [{ ...decisionOf('throttleKey', NOW), until: 7 }] } },
  ],
  ['a mark that is a string', 'held'],
  ['a mark that is a list', [{ actions: [] }]],
];

describe('a corrupt guard mark on a key', () => {
  it.each(corrupt)(
    '%s: the key still sends over HTTPS, both lanes, and reads its reputation',
    async (_, guard) => {
      // Prepare
      const { api, token } = apiHarness({ guard: guard as never });

      // Act
      const transactional = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));
      const broadcast = await api(
        httpEvent(Route.sendMessage, {
          token,
          body: sendBody({ stream: 'broadcast', listUnsubscribe: 'https://example.com/u' }),
        }),
      );
      const reputation = await api(httpEvent(Route.reputation, { token }));

      // Assess
      expect([transactional.statusCode, broadcast.statusCode, reputation.statusCode]).toEqual([
        202, 202, 200,
      ]);
    },
  );

  it.each(corrupt)('%s: reads as no state for that scope, and is named', (_, guard) => {
    // Act
    const { mark, problems } = readGuardMark(guard);

    // Assess
    expect(problems.length).toBeGreaterThan(0);
    expect(holdFor(guard as never, 'broadcast', NOW)).toBeUndefined();
    expect(throttleFor(guard as never, NOW)).toBeUndefined();
    expect(mark?.key?.actions ?? []).toEqual([]);
    expect(mark?.tenant?.actions ?? []).toEqual([]);
  });

  it('keeps the scope that is sound: a corrupt key state does not lift the tenant’s hold', () => {
    // Prepare
    const hold = decisionOf('holdAll', NOW);
    const guard = { ...guardMarkOf(hold), key: { actions: 'x' } };

    // Act
    const { mark, problems } = readGuardMark(guard);

    // Assess
    expect(problems).toEqual(['guard.key is not a guard state (an actions list of decisions)']);
    expect(mark).toEqual(guardMarkOf(hold));
    expect(holdFor(guard as never, 'transactional', NOW)).toEqual(hold);
  });

  it('reads a sound mark as it is, with nothing to report', () => {
    // Prepare
    const guard = guardMarkOf(decisionOf('throttleKey', NOW), decisionOf('pauseBroadcast', NOW));

    // Act / Assess
    expect(readGuardMark(guard)).toEqual({ mark: guard, problems: [] });
    expect(readGuardMark(undefined)).toEqual({ mark: undefined, problems: [] });
  });
});
