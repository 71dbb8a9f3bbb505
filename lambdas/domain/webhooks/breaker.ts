/**
 * The per-endpoint circuit breaker, as a pure state machine over a stored state and an injected clock.
 * It keeps a dead endpoint from eating the delivery function's time (every attempt to it waits for the
 * 15 s timeout) while one probe at a time finds out when it is back. Times are ISO strings so the state
 * can be stored as it is (one item per endpoint) and read by a person.
 */
import type { DeliveryOutcome } from './schedule.ts';

export const breakerPolicy = {
  /** At least this many failed attempts in a row open it: an endpoint that fails now and then stays closed. */
  failureThreshold: 5,
  /** The first cool-down, doubled after each failed probe up to the longest. */
  firstCooldownSeconds: 60,
  maxCooldownSeconds: 60 * 60,
  /**
   * How long a probe holds the half-open breaker: past the 15 s delivery timeout, so a probe whose
   * result never came back (a crashed function) does not hold the endpoint shut forever.
   */
  probeLeaseSeconds: 60,
  /** Failing without a single success this long disables the endpoint; the owner re-enables it. */
  disableAfterSeconds: 3 * 24 * 60 * 60,
} as const;

export type BreakerState =
  | {
      readonly status: 'closed';
      readonly consecutiveFailures: number;
      /** When the current run of failures began; absent after a success. */
      readonly failingSince?: string;
    }
  | {
      readonly status: 'open';
      readonly consecutiveFailures: number;
      readonly failingSince: string;
      readonly cooldownSeconds: number;
      /** When a probe may go. */
      readonly retryAt: string;
    }
  | {
      readonly status: 'half-open';
      readonly consecutiveFailures: number;
      readonly failingSince: string;
      readonly cooldownSeconds: number;
      /** When the probe in flight was let through; absent when none is. */
      readonly probeSince?: string;
    }
  | {
      readonly status: 'disabled';
      readonly disabled: true;
      /** `gone`: the endpoint answered 410; `failing`: every attempt failed for three days. */
      readonly reason: 'gone' | 'failing';
      readonly disabledAt: string;
    };

/** A new or re-enabled endpoint's breaker. */
export const closedBreaker: BreakerState = { status: 'closed', consecutiveFailures: 0 };

export interface Admission {
  readonly admitted: boolean;
  /** The state to store (a probe let through is recorded in it). */
  readonly state: BreakerState;
  /** When a refused delivery may try again; absent when the endpoint is disabled. */
  readonly retryAt?: string;
}

/** Whether a delivery to the endpoint may go now. */
export function admit(state: BreakerState, now: Date): Admission {
  const at = now.getTime();
  switch (state.status) {
    case 'closed':
      return { admitted: true, state };
    case 'disabled':
      return { admitted: false, state };
    case 'open': {
      if (at < Date.parse(state.retryAt)) return { admitted: false, state, retryAt: state.retryAt };
      const { consecutiveFailures, failingSince, cooldownSeconds } = state;
      return {
        admitted: true,
        state: {
          status: 'half-open',
          consecutiveFailures,
          failingSince,
          cooldownSeconds,
          probeSince: now.toISOString(),
        },
      };
    }
    case 'half-open': {
      if (state.probeSince !== undefined) {
        const leaseEnds = Date.parse(state.probeSince) + breakerPolicy.probeLeaseSeconds * 1000;
        if (at < leaseEnds) return { admitted: false, state, retryAt: new Date(leaseEnds).toISOString() };
      }
      return { admitted: true, state: { ...state, probeSince: now.toISOString() } };
    }
  }
}

/**
 * The state after an attempt's outcome. A result that comes back while open or half-open may be an
 * attempt let through before the breaker opened; it counts the same, since any success proves the
 * endpoint is back and any failure is one more.
 */
export function record(state: BreakerState, outcome: DeliveryOutcome, now: Date): BreakerState {
  if (state.status === 'disabled') return state;
  const disabledAt = now.toISOString();
  if (outcome === 'disable') return { status: 'disabled', disabled: true, reason: 'gone', disabledAt };
  if (outcome === 'success') return closedBreaker;

  const consecutiveFailures = state.consecutiveFailures + 1;
  const failingSince = state.failingSince ?? disabledAt;
  if (now.getTime() - Date.parse(failingSince) >= breakerPolicy.disableAfterSeconds * 1000) {
    return { status: 'disabled', disabled: true, reason: 'failing', disabledAt };
  }
  switch (state.status) {
    case 'closed':
      if (consecutiveFailures < breakerPolicy.failureThreshold) {
        return { status: 'closed', consecutiveFailures, failingSince };
      }
      return opened(consecutiveFailures, failingSince, breakerPolicy.firstCooldownSeconds, now);
    case 'open':
      return { ...state, consecutiveFailures };
    case 'half-open':
      return opened(
        consecutiveFailures,
        failingSince,
        Math.min(state.cooldownSeconds * 2, breakerPolicy.maxCooldownSeconds),
        now,
      );
  }
}

function opened(
  consecutiveFailures: number,
  failingSince: string,
  cooldownSeconds: number,
  now: Date,
): BreakerState {
  const retryAt = new Date(now.getTime() + cooldownSeconds * 1000).toISOString();
  return { status: 'open', consecutiveFailures, failingSince, cooldownSeconds, retryAt };
}
