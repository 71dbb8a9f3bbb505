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

const ACTIONS: ReadonlySet<string> = new Set([
  'warn',
  'pauseBroadcast',
  'holdAll',
  'suspendKey',
  'throttleKey',
]);

/** A decision as the readers below need it: an action they know, its words, a readable `until`. */
function isDecision(value: unknown): value is GuardDecision {
  if (typeof value !== 'object' || value === null) return false;
  const d = value as Record<string, unknown>;
  return (
    typeof d.action === 'string' &&
    ACTIONS.has(d.action) &&
    typeof d.signal === 'string' &&
    typeof d.reason === 'string' &&
    (d.until === undefined || (typeof d.until === 'string' && !Number.isNaN(Date.parse(d.until))))
  );
}

/** True for a scope's state as the guard writes it: a list of decisions it can read. */
export function isGuardScopeState(value: unknown): value is ScopeGuardState {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const s = value as Record<string, unknown>;
  return (
    Array.isArray(s.actions) &&
    s.actions.every(isDecision) &&
    (s.reinstatedAt === undefined ||
      (typeof s.reinstatedAt === 'string' && !Number.isNaN(Date.parse(s.reinstatedAt))))
  );
}

/**
 * The guard mark of a key item as stored, checked: a scope whose state is not one the guard wrote
 * (hand-edited, a half-written item, an older shape) reads as no state, and is named in `problems`
 * for the caller to report. Every request of the key reads the mark: a corrupt one must cost the
 * key its guard state (and the guard re-decides at its next evaluation), never every request a 500.
 */
export function readGuardMark(raw: unknown): {
  readonly mark: KeyGuardMark | undefined;
  readonly problems: readonly string[];
} {
  if (raw === undefined) return { mark: undefined, problems: [] };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { mark: undefined, problems: ['guard is not a map'] };
  }
  const stored = raw as Record<string, unknown>;
  const problems: string[] = [];
  const scope = (name: 'key' | 'tenant'): ScopeGuardState | undefined => {
    const value = stored[name];
    if (value === undefined) return undefined;
    if (isGuardScopeState(value)) return value;
    problems.push(`guard.${name} is not a guard state (an actions list of decisions)`);
    return undefined;
  };
  const key = scope('key');
  const tenant = scope('tenant');
  if (problems.length === 0) return { mark: raw as KeyGuardMark, problems };
  return {
    mark: { ...(key === undefined ? {} : { key }), ...(tenant === undefined ? {} : { tenant }) },
    problems,
  };
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
  return strongest(
    readGuardMark(guard).mark?.tenant,
    lane === 'broadcast' ? ['holdAll', 'pauseBroadcast'] : ['holdAll'],
    now,
  );
}

/** The key's throttle in force now (429 with Retry-After over HTTPS, 451 4.7.1 over SMTP). */
export function throttleFor(guard: KeyGuardMark | undefined, now: Date): GuardDecision | undefined {
  return strongest(readGuardMark(guard).mark?.key, ['throttleKey'], now);
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
  return readGuardMark(guard).mark?.key?.actions.find((d) => d.action === 'suspendKey');
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
