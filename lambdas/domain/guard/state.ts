import type { Lane } from '../../shared/names.ts';
import { type GuardDecision, inForce, type ScopeGuardState } from './evaluate.ts';

/**
 * The abuse guard's state as the front doors and senders see it: denormalised onto every ApiKeys
 * item, which each request reads anyway (cached at most 60 s), so enforcing the guard adds no read
 * to the hot path (issue 13's constraint).
 *
 * - `key`: the key's own state. The key item is its source of truth.
 * - `tenant`: a copy of the tenant's state, whose source of truth is the tenant's item in the Guard
 *   table; the guard writes it to each of the tenant's keys whenever it changes.
 */
export interface KeyGuardMark {
  readonly key?: ScopeGuardState;
  readonly tenant?: ScopeGuardState;
}

function strongest(
  state: ScopeGuardState | undefined,
  actions: readonly GuardDecision['action'][],
  now: Date,
): GuardDecision | undefined {
  for (const action of actions) {
    const found = state?.actions.find((d) => d.action === action && inForce(d, now));
    if (found) return found;
  }
  return undefined;
}

/**
 * The tenant decision that holds mail of `lane` now: hold all (every lane), else pause broadcast
 * (the broadcast lane only). Undefined: the lane's mail flows.
 */
export function holdFor(guard: KeyGuardMark | undefined, lane: Lane, now: Date): GuardDecision | undefined {
  return strongest(guard?.tenant, lane === 'broadcast' ? ['holdAll', 'pauseBroadcast'] : ['holdAll'], now);
}

/** The key's throttle in force now (429 with Retry-After over HTTPS, 451 4.7.1 over SMTP). */
export function throttleFor(guard: KeyGuardMark | undefined, now: Date): GuardDecision | undefined {
  return strongest(guard?.key, ['throttleKey'], now);
}

/** Seconds until the throttle lapses, at least 1: the Retry-After of a throttled request. */
export function retryAfterSeconds(throttle: GuardDecision, now: Date): number {
  return Math.max(
    1,
    Math.ceil(((throttle.until ? Date.parse(throttle.until) : now.getTime()) - now.getTime()) / 1000),
  );
}

/** The guard's suspension of the key, when it was the guard that suspended it (its reason names the signal). */
export function guardSuspension(guard: KeyGuardMark | undefined): GuardDecision | undefined {
  return guard?.key?.actions.find((d) => d.action === 'suspendKey');
}

/**
 * The suspension of a key the abuse guard suspended (its status `suspended` and its own state
 * holding the guard's suspendKey decision); undefined for an active key or one an operator
 * suspended.
 */
export function suspendedByGuard(key: {
  readonly status: string;
  readonly guard?: KeyGuardMark;
}): GuardDecision | undefined {
  return key.status === 'suspended' ? guardSuspension(key.guard) : undefined;
}
