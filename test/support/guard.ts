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

/** A decision as `evaluate` makes it: by default the guard suspending key `k1` of `acme` for suppressed hits. */
export function guardDecision(overrides: Partial<GuardDecision> = {}): GuardDecision {
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
