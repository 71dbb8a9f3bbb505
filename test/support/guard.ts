import {
  addHours,
  type GuardCounts,
  type HourBucket,
  hourOf,
  MS_PER_HOUR,
} from '../../lambdas/domain/guard/counters.ts';
import {
  emptyGuardState,
  evaluate,
  type GuardDecision,
  type GuardInput,
  type GuardState,
} from '../../lambdas/domain/guard/evaluate.ts';
import { defaultGuardPolicy, type GuardAction, type GuardPolicy } from '../../lambdas/domain/guard/policy.ts';
import type { KeyGuardMark } from '../../lambdas/domain/guard/state.ts';

/** Half past ten: the current hour bucket started at 10:00. */
export const GUARD_NOW = new Date('2026-03-02T10:30:00.000Z');
export const HOUR_MS = MS_PER_HOUR;

/** The hour bucket `hoursBack` hours before the one holding `now` (0 = the current hour). */
export function bucket(hoursBack: number, counts: GuardCounts, now: Date = GUARD_NOW): HourBucket {
  return { hour: addHours(hourOf(now), -hoursBack), counts };
}

/** The same counts in every hour from `fromBack` down to `toBack` hours back (inclusive). */
export function everyHour(
  fromBack: number,
  toBack: number,
  counts: GuardCounts,
  now: Date = GUARD_NOW,
): HourBucket[] {
  const hours: HourBucket[] = [];
  for (let back = fromBack; back >= toBack; back--) hours.push(bucket(back, counts, now));
  return hours;
}

export interface GuardCase {
  readonly tenant?: readonly HourBucket[];
  /** Given: the key's signals are evaluated too. */
  readonly key?: readonly HourBucket[];
  readonly keyCount?: number;
  readonly state?: GuardState;
  readonly policy?: GuardPolicy;
  readonly now?: Date;
}

/** A GuardInput for tenant `t-1` (and key `k-1`), defaults everywhere else. */
export function guardInput(c: GuardCase): GuardInput {
  return {
    buckets: {
      tenant: { tenantId: 't-1', hours: c.tenant ?? c.key ?? [], keyCount: c.keyCount ?? 1 },
      ...(c.key === undefined ? {} : { key: { keyId: 'k-1', hours: c.key } }),
    },
    state: c.state ?? emptyGuardState,
    policy: c.policy ?? defaultGuardPolicy,
    now: c.now ?? GUARD_NOW,
  };
}

/** The actions decided, in order ('none' when nothing), which is what most tables compare. */
export function actionsOf(decisions: readonly GuardDecision[]): GuardAction[] | 'none' {
  return decisions.length === 0 ? 'none' : decisions.map((d) => d.action);
}

/** What `evaluate` decides for one scope of the case. */
export function decisionsFor(scope: 'tenant' | 'key', c: GuardCase): GuardDecision[] {
  return evaluate(guardInput(c)).filter((d) => d.scope === scope);
}

/** A decision in force, as the guard would have applied it (tenant `tenant-a`, a pause of broadcast by default). */
export function guardDecision(overrides: Partial<GuardDecision> = {}): GuardDecision {
  return {
    scope: 'tenant',
    tenantId: 'tenant-a',
    action: 'pauseBroadcast',
    signal: 'hardBounceRate',
    rate: 0.05,
    threshold: 0.04,
    sample: { sends: 800, over: 'sends', events: 40 },
    window: { from: '2025-02-27T12:00:00.000Z', to: '2025-03-01T12:00:00.000Z', hours: 48 },
    probation: false,
    decidedAt: '2025-03-01T11:00:00.000Z',
    reason: 'hard bounces at 5.0 % of 800 sends over 48 h (pause at 4 %)',
    ...overrides,
  };
}

/**
 * What the guard decides at `now` for `action`, from counts that lead to it: real decisions with
 * their real words, as the guard writes them onto keys (for the front doors' and sender's tests).
 * `suspendKey`: a key hitting suppressed recipients (20 % of 50 attempts); `throttleKey`: a key
 * sending 1,500 in the current hour with no history; `pauseBroadcast` / `holdAll`: a tenant's
 * hard bounces at 5 % / 8 % over 1,000 sends.
 */
export function decisionOf(action: Exclude<GuardAction, 'warn'>, now: Date): GuardDecision {
  const cases: Record<typeof action, { scope: 'tenant' | 'key'; c: GuardCase }> = {
    suspendKey: { scope: 'key', c: { key: [bucket(0, { sends: 40, suppressedHits: 10 }, now)], now } },
    throttleKey: { scope: 'key', c: { key: [bucket(0, { sends: 1_500 }, now)], now } },
    pauseBroadcast: {
      scope: 'tenant',
      c: { tenant: [bucket(0, { sends: 1_000, hardBounces: 50 }, now)], now },
    },
    holdAll: { scope: 'tenant', c: { tenant: [bucket(0, { sends: 1_000, hardBounces: 80 }, now)], now } },
  };
  const { scope, c } = cases[action];
  const found = decisionsFor(scope, c).find((d) => d.action === action);
  if (!found) throw new Error(`the guard did not decide ${action} for its case`);
  return found;
}

/** The guard state of a key under `decisions`: the key's own (suspend, throttle) and its tenant's (hold). */
export function guardMarkOf(...decisions: readonly GuardDecision[]): KeyGuardMark {
  const key = decisions.filter((d) => d.scope === 'key');
  const tenant = decisions.filter((d) => d.scope === 'tenant');
  return {
    ...(key.length > 0 ? { key: { actions: key } } : {}),
    ...(tenant.length > 0 ? { tenant: { actions: tenant } } : {}),
  };
}

/**
 * A decision in force, as the guard writes it onto a key's `guard` mark: `guardDecision`'s figures
 * for `action`, key `key-1` for the key actions, a one-hour window decided at `now` (GUARD_NOW).
 */
export function guardDecisionFor(
  action: GuardAction,
  overrides: Partial<GuardDecision> = {},
  now: Date = GUARD_NOW,
): GuardDecision {
  const keyScope = action === 'suspendKey' || action === 'throttleKey';
  return guardDecision({
    scope: keyScope ? 'key' : 'tenant',
    ...(keyScope ? { keyId: 'key-1' } : {}),
    action,
    window: { from: new Date(now.getTime() - HOUR_MS).toISOString(), to: now.toISOString(), hours: 1 },
    decidedAt: now.toISOString(),
    reason: `hard-bounce rate 5.0 % over 800 sends (${action} at 4 %)`,
    ...overrides,
  });
}

/** A decision as `evaluate` makes it: by default the guard suspending key `k1` of `acme` for suppressed hits. */
export function keySuspensionDecision(overrides: Partial<GuardDecision> = {}): GuardDecision {
  return {
    scope: 'key',
    tenantId: 'acme',
    keyId: 'k1',
    action: 'suspendKey',
    signal: 'suppressedHitRate',
    rate: 0.2,
    threshold: 0.15,
    sample: { sends: 60, over: 'attempts', events: 12 },
    window: { from: '2026-03-02T10:00:00.000Z', to: GUARD_NOW.toISOString(), hours: 1 },
    probation: false,
    decidedAt: GUARD_NOW.toISOString(),
    reason: 'the key’s suppressed-recipient hits 20 % are at or above 15 %',
    ...overrides,
  };
}
