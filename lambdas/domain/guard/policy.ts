/**
 * The abuse guard's policy: which signal is watched at which scope, over how large a sample, and
 * what is done at which rate (issue 13; docs/guard.md explains each row). Data, so a tenant can
 * carry an override and the reputation view can show the figures that applied.
 */

import type { GuardCounter, GuardScope } from './counters.ts';

/** What a decision does. `warn` only records and tells; the others change what Baton sends. */
export type GuardAction = 'warn' | 'pauseBroadcast' | 'holdAll' | 'suspendKey' | 'throttleKey';

export type RateSignal = 'hardBounceRate' | 'complaintRate' | 'suppressedHitRate' | 'contentRefusalRate';
export type GuardSignal = RateSignal | 'volumeSpike';

/**
 * A rate watched over a sample: walk back hour buckets from the current one until at least
 * `minimumSends` of the denominator and `minimumEvents` of the counted events are seen, within
 * `windowHours` buckets (1 = the current hour only). Thresholds are fractions (0.04 = 4 %).
 */
export interface RateRule {
  readonly signal: RateSignal;
  readonly scope: GuardScope;
  /** The counter over the denominator. */
  readonly counter: Extract<
    GuardCounter,
    'hardBounces' | 'complaints' | 'suppressedHits' | 'contentRefusals'
  >;
  /**
   * `sends`: recipients accepted for sending. `attempts`: every recipient a key tried, so also
   * those refused at the door (suppressed, content refused), which `sends` leaves out.
   */
  readonly over: 'sends' | 'attempts';
  readonly minimumSends: number;
  readonly minimumEvents: number;
  readonly windowHours: number;
  /** At or above: a `warn` decision. `null`: this rule never warns. */
  readonly warnAt: number | null;
  /** At or above: `action`. */
  readonly actAt: number;
  readonly action: 'pauseBroadcast' | 'suspendKey';
  /** Strictly above (the issue: "hold all applies above 7 %"): hold all of the tenant's mail. */
  readonly holdAllAbove: number | null;
}

/**
 * A key sending far above its usual volume: at least `minimumSends` this hour and at least
 * `multiple` × its hourly baseline. The baseline is the largest of the key's own hourly average
 * over `baselineHours`, its tenant's average per key over the same hours, and
 * `baselineFloorPerHour` (so a new key is not throttled for its first few hundred messages).
 */
export interface VolumeSpikeRule {
  readonly minimumSends: number;
  readonly multiple: number;
  readonly baselineFloorPerHour: number;
  readonly baselineHours: number;
  readonly throttleMinutes: number;
  /**
   * A spike is a suspension, not a throttle, when another key signal is above: a rate signal at or
   * above this fraction of its act threshold (with its minimum sample reached), or ...
   */
  readonly suspendWithSignalAtFraction: number;
  /** ... at least this share of this hour's sends went to recipient domains new to the key. */
  readonly suspendWithNewDomainShare: number;
}

/** After an operator resumes a scope: for `hours`, every threshold is multiplied by `factor`. */
export interface ProbationRule {
  readonly hours: number;
  readonly factor: number;
}

export interface GuardPolicy {
  readonly tenantHardBounce: RateRule;
  readonly tenantComplaint: RateRule;
  readonly keyHardBounce: RateRule;
  readonly keySuppressedHits: RateRule;
  readonly keyContentRefusals: RateRule;
  readonly volumeSpike: VolumeSpikeRule;
  readonly probation: ProbationRule;
}

export type RateRuleName =
  | 'tenantHardBounce'
  | 'tenantComplaint'
  | 'keyHardBounce'
  | 'keySuppressedHits'
  | 'keyContentRefusals';
export const rateRuleNames: readonly RateRuleName[] = [
  'tenantHardBounce',
  'tenantComplaint',
  'keyHardBounce',
  'keySuppressedHits',
  'keyContentRefusals',
];

/** What a tenant may override: figures only; which signal, scope and action a row has is fixed. */
export type RateRuleOverride = Partial<
  Pick<RateRule, 'minimumSends' | 'minimumEvents' | 'windowHours' | 'warnAt' | 'actAt' | 'holdAllAbove'>
>;
export type GuardPolicyOverride = {
  readonly [K in RateRuleName]?: RateRuleOverride;
} & {
  readonly volumeSpike?: Partial<VolumeSpikeRule>;
  readonly probation?: Partial<ProbationRule>;
};

const DAY_HOURS = 24;

/** The table. docs/guard.md shows it with the reasons. */
export const defaultGuardPolicy: GuardPolicy = {
  tenantHardBounce: {
    signal: 'hardBounceRate',
    scope: 'tenant',
    counter: 'hardBounces',
    over: 'sends',
    minimumSends: 500,
    minimumEvents: 10,
    windowHours: 7 * DAY_HOURS,
    warnAt: 0.02,
    actAt: 0.04,
    action: 'pauseBroadcast',
    holdAllAbove: 0.07,
  },
  tenantComplaint: {
    signal: 'complaintRate',
    scope: 'tenant',
    counter: 'complaints',
    over: 'sends',
    minimumSends: 1000,
    minimumEvents: 3,
    windowHours: 30 * DAY_HOURS,
    warnAt: 0.0005,
    actAt: 0.0008,
    action: 'pauseBroadcast',
    holdAllAbove: null,
  },
  keyHardBounce: {
    signal: 'hardBounceRate',
    scope: 'key',
    counter: 'hardBounces',
    over: 'sends',
    minimumSends: 100,
    minimumEvents: 5,
    windowHours: DAY_HOURS,
    warnAt: null,
    actAt: 0.1,
    action: 'suspendKey',
    holdAllAbove: null,
  },
  keySuppressedHits: {
    signal: 'suppressedHitRate',
    scope: 'key',
    counter: 'suppressedHits',
    over: 'attempts',
    minimumSends: 50,
    minimumEvents: 0,
    windowHours: 1,
    warnAt: null,
    actAt: 0.15,
    action: 'suspendKey',
    holdAllAbove: null,
  },
  keyContentRefusals: {
    signal: 'contentRefusalRate',
    scope: 'key',
    counter: 'contentRefusals',
    over: 'attempts',
    minimumSends: 50,
    minimumEvents: 0,
    windowHours: 1,
    warnAt: null,
    actAt: 0.2,
    action: 'suspendKey',
    holdAllAbove: null,
  },
  volumeSpike: {
    minimumSends: 200,
    multiple: 10,
    baselineFloorPerHour: 100,
    baselineHours: 7 * DAY_HOURS,
    throttleMinutes: 60,
    suspendWithSignalAtFraction: 0.5,
    suspendWithNewDomainShare: 0.5,
  },
  probation: { hours: 7 * DAY_HOURS, factor: 0.5 },
};

/** A policy override that cannot be applied; `problems` names each bad field by its path. */
export class GuardPolicyError extends Error {
  override readonly name: string = 'GuardPolicyError';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`invalid guard policy: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

const rateFields: readonly (keyof RateRuleOverride)[] = [
  'minimumSends',
  'minimumEvents',
  'windowHours',
  'warnAt',
  'actAt',
  'holdAllAbove',
];
const spikeFields: readonly (keyof VolumeSpikeRule)[] = [
  'minimumSends',
  'multiple',
  'baselineFloorPerHour',
  'baselineHours',
  'throttleMinutes',
  'suspendWithSignalAtFraction',
  'suspendWithNewDomainShare',
];
const probationFields: readonly (keyof ProbationRule)[] = ['hours', 'factor'];

/** No window longer than this: buckets expire (TTL) and a longer walk would read nothing. */
export const MAX_WINDOW_HOURS = 90 * DAY_HOURS;

/**
 * The tenant's policy: the defaults with its override merged in, then checked as a whole (an
 * override of `actAt` alone must still sit above the default `warnAt`). Unknown fields are refused
 * rather than ignored, so a typo cannot silently leave the default in force.
 */
export function resolveGuardPolicy(
  override: GuardPolicyOverride | undefined,
  base: GuardPolicy = defaultGuardPolicy,
): GuardPolicy {
  const problems: string[] = [];
  if (override === undefined) return base;
  if (!isObject(override)) throw new GuardPolicyError(['the override must be an object']);
  const known = new Set<string>([...rateRuleNames, 'volumeSpike', 'probation']);
  for (const name of Object.keys(override)) if (!known.has(name)) problems.push(`${name}: unknown rule`);

  const merged: { -readonly [K in keyof GuardPolicy]: GuardPolicy[K] } = { ...base };
  for (const name of rateRuleNames) {
    const part = pickKnown(override[name], rateFields, name, problems);
    merged[name] = { ...base[name], ...part };
  }
  merged.volumeSpike = {
    ...base.volumeSpike,
    ...pickKnown(override.volumeSpike, spikeFields, 'volumeSpike', problems),
  };
  merged.probation = {
    ...base.probation,
    ...pickKnown(override.probation, probationFields, 'probation', problems),
  };

  problems.push(...validateGuardPolicy(merged));
  if (problems.length > 0) throw new GuardPolicyError(problems);
  return merged;
}

/** Every reason `policy` cannot be used, by path (empty when it can). */
export function validateGuardPolicy(policy: GuardPolicy): string[] {
  const problems: string[] = [];
  for (const name of rateRuleNames) {
    const rule = policy[name];
    positiveInteger(rule.minimumSends, `${name}.minimumSends`, problems);
    nonNegativeInteger(rule.minimumEvents, `${name}.minimumEvents`, problems);
    positiveInteger(rule.windowHours, `${name}.windowHours`, problems, MAX_WINDOW_HOURS);
    fraction(rule.actAt, `${name}.actAt`, problems);
    if (rule.warnAt !== null) {
      fraction(rule.warnAt, `${name}.warnAt`, problems);
      if (rule.warnAt >= rule.actAt) problems.push(`${name}.warnAt: must be below actAt (${rule.actAt})`);
    }
    if (rule.holdAllAbove !== null) {
      if (rule.scope !== 'tenant')
        problems.push(`${name}.holdAllAbove: only a tenant rule can hold all mail`);
      fraction(rule.holdAllAbove, `${name}.holdAllAbove`, problems);
      if (rule.holdAllAbove < rule.actAt)
        problems.push(`${name}.holdAllAbove: must not be below actAt (${rule.actAt})`);
    }
  }
  const spike = policy.volumeSpike;
  positiveInteger(spike.minimumSends, 'volumeSpike.minimumSends', problems);
  positiveNumber(spike.multiple, 'volumeSpike.multiple', problems);
  positiveNumber(spike.baselineFloorPerHour, 'volumeSpike.baselineFloorPerHour', problems);
  positiveInteger(spike.baselineHours, 'volumeSpike.baselineHours', problems, MAX_WINDOW_HOURS);
  positiveInteger(spike.throttleMinutes, 'volumeSpike.throttleMinutes', problems);
  fraction(spike.suspendWithSignalAtFraction, 'volumeSpike.suspendWithSignalAtFraction', problems);
  fraction(spike.suspendWithNewDomainShare, 'volumeSpike.suspendWithNewDomainShare', problems);
  nonNegativeInteger(policy.probation.hours, 'probation.hours', problems);
  fraction(policy.probation.factor, 'probation.factor', problems);
  return problems;
}

function pickKnown<T extends object>(
  part: unknown,
  fields: readonly (keyof T)[],
  path: string,
  problems: string[],
): Partial<T> {
  if (part === undefined) return {};
  if (!isObject(part)) {
    problems.push(`${path}: must be an object`);
    return {};
  }
  const allowed = new Set<string>(fields.map(String));
  const picked: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(part)) {
    if (!allowed.has(field)) problems.push(`${path}.${field}: unknown or fixed field`);
    else if (value !== undefined) picked[field] = value;
  }
  return picked as Partial<T>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A threshold: a rate strictly above 0 (0 would act on a clean record) and at most 1. */
function fraction(value: unknown, path: string, problems: string[]): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 1) {
    problems.push(`${path}: must be a number above 0 and at most 1, got ${String(value)}`);
  }
}

function positiveNumber(value: unknown, path: string, problems: string[]): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    problems.push(`${path}: must be a positive number, got ${String(value)}`);
  }
}

function positiveInteger(
  value: unknown,
  path: string,
  problems: string[],
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    problems.push(`${path}: must be a whole number from 1 to ${max}, got ${String(value)}`);
  }
}

function nonNegativeInteger(value: unknown, path: string, problems: string[]): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    problems.push(`${path}: must be a whole number of at least 0, got ${String(value)}`);
  }
}

/**
 * A key's hourly baseline for the volume-spike rule: the largest of its own hourly average, its
 * tenant's average per key, and the floor. The floor is what lets a new key (no history, a tenant
 * of one) send its first few hundred messages without being throttled.
 */
export function hourlyBaseline(
  averages: { readonly keyPerHour: number; readonly tenantPerKeyPerHour: number },
  rule: VolumeSpikeRule,
): number {
  return Math.max(averages.keyPerHour, averages.tenantPerKeyPerHour, rule.baselineFloorPerHour);
}
