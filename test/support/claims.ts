import { expect } from 'vitest';
import type { MessageRecord } from '../../lambdas/domain/message.ts';
import type { MessageStore } from '../../lambdas/domain/ports.ts';

type Claims = Pick<MessageStore, 'claim' | 'get'>;

/** Claims `id` and fails the test unless the claim was taken; returns the token and the claimed record. */
export async function mustClaim(
  store: Claims,
  id: string,
  at: Date,
  leaseMs: number,
): Promise<{ token: string; record: MessageRecord }> {
  const result = await store.claim(id, at, leaseMs);
  if (result.outcome !== 'claimed') throw new Error(`expected a claim on ${id}, got ${result.outcome}`);
  return result;
}

/**
 * Races `count` claims on one message at `at`. Fails the test unless exactly one was claimed and
 * every other answered busy; returns the winner's token and the record as stored afterwards.
 */
export async function raceClaims(
  store: Claims,
  id: string,
  at: Date,
  leaseMs: number,
  count = 20,
): Promise<{ token: string; stored: MessageRecord | undefined }> {
  const results = await Promise.all(Array.from({ length: count }, () => store.claim(id, at, leaseMs)));
  const outcomes = results.map((r) => r.outcome);
  expect(outcomes.filter((o) => o === 'claimed')).toHaveLength(1);
  expect(outcomes.filter((o) => o === 'busy')).toHaveLength(count - 1);
  const winner = results.find((r) => r.outcome === 'claimed');
  if (winner?.outcome !== 'claimed') throw new Error(`no claim on ${id} won`);
  return { token: winner.token, stored: await store.get(id) };
}
