import {
  GUARD_COUNTERS,
  type GuardCounter,
  type GuardCounts,
  type GuardScope,
  type HourBucket,
  hourOf,
  hourStart,
  isHour,
  MS_PER_HOUR,
} from './counters.ts';
import {
  type GuardAction,
  type GuardPolicy,
  type GuardSignal,
  hourlyBaseline,
  type RateRule,
  type RateRuleName,
  rateRuleNames,
} from './policy.ts';

/**
 * The abuse guard's decision (issue 13): from hourly counters, the state already in force and the
 * policy, what to do now. Pure (the clock is a parameter), so the same function can run after
 * each feedback batch, on a schedule or in a test replay, and evaluating twice decides once.
 */

const MINUTE_MS = 60_000;
/**
 * A warning changes nothing Baton does, so it lapses after a day rather than waiting for an operator:
 * the standing recovers with the rate, and a rate still high warns again, once a day.
 */
const WARNING_HOURS = 24;

/**
 * The buckets are what the counter store returns (`HourBucket`, counters.ts): one scope's counts for
 * one UTC hour. A missing counter is 0 (an atomic ADD never wrote it). `sends` are the recipients
 * accepted for sending; recipients refused at the door are counted in `suppressedHits` /
 * `contentRefusals` only. `hardBounces` already leave out `OnAccountSuppressionList` (the counter does).
 */
export interface GuardBuckets {
  readonly tenant: {
    readonly tenantId: string;
    readonly hours: readonly HourBucket[];
    /** The tenant's keys, for its average per key in the baseline (at least 1 is assumed). */
    readonly keyCount: number;
  };
  /** Absent: only the tenant's signals are evaluated. */
  readonly key?: { readonly keyId: string; readonly hours: readonly HourBucket[] };
}

/** What is in force for one scope, and since when its window runs. */
export interface ScopeGuardState {
  /** Decisions in force (applied earlier). One past its `until` (throttle, warning) no longer is. */
  readonly actions: readonly GuardDecision[];
  /** When an operator last resumed the scope: no rate is taken over anything counted before. */
  readonly reinstatedAt?: string;
  /**
   * The counters of the hour bucket holding `reinstatedAt`, read when the scope was resumed, so
   * the rest of that hour still counts. Without it, that whole hour is left out.
   */
  readonly countsAtReinstatement?: GuardCounts;
  /** The operator's reason for the resume (GuardService.resume), for `keys show` and the audit trail. */
  readonly resumedReason?: string;
}

export interface GuardState {
  readonly tenant: ScopeGuardState;
  readonly key?: ScopeGuardState;
}

export const emptyGuardState: GuardState = { tenant: { actions: [] } };

/** The hours a rate was taken over: [from, to), `hours` buckets. */
export interface SampleWindow {
  readonly from: string;
  readonly to: string;
  readonly hours: number;
}

export interface GuardSample {
  /** The denominator: sends, or attempts (sends plus recipients refused at the door). */
  readonly sends: number;
  readonly over: 'sends' | 'attempts';
  /** The counted events (bounces, complaints, ...). For a volume spike, the sends to new domains. */
  readonly events: number;
}

export interface GuardDecision {
  readonly scope: GuardScope;
  readonly tenantId: string;
  /** Set for a key-scope decision. */
  readonly keyId?: string;
  readonly action: GuardAction;
  readonly signal: GuardSignal;
  /** A fraction for a rate signal; sends in the current hour for a volume spike. */
  readonly rate: number;
  /** What `rate` was compared with (already lowered by the probation factor after a resume). */
  readonly threshold: number;
  readonly sample: GuardSample;
  readonly window: SampleWindow;
  readonly probation: boolean;
  readonly decidedAt: string;
  /** For `throttleKey` and `warn`: when it lapses. Other actions last until an operator resumes. */
  readonly until?: string;
  /** The decision in words, for `GET /v1/reputation` and `keys show`. */
  readonly reason: string;
}

/** One signal as measured now, whether or not it led to a decision (the reputation view's rates). */
export interface SignalReading {
  readonly scope: GuardScope;
  readonly rule: RateRuleName | 'volumeSpike';
  readonly signal: GuardSignal;
  /** `null` when nothing was counted at all. */
  readonly rate: number | null;
  readonly sample: GuardSample;
  readonly window: SampleWindow;
  /** False: the minimum sample was not reached within the window, so the rate decides nothing. */
  readonly sampleReached: boolean;
  /** The highest step the reading reaches: none, warn, act (the rule's action) or holdAll. */
  readonly level: 'none' | 'warn' | 'act' | 'holdAll';
  readonly threshold: number;
  readonly probation: boolean;
}

export interface GuardInput {
  readonly buckets: GuardBuckets;
  readonly state: GuardState;
  readonly policy: GuardPolicy;
  readonly now: Date;
}

/** Every signal of the tenant (and of the key, when given), measured at `now`. */
export function measure(input: GuardInput): SignalReading[] {
  return analyse(input).readings;
}

/**
 * The new decisions at `now`: at most one action per scope (the strongest), and a warning per
 * signal only while no action is in force. Nothing already in force comes back, so evaluating
 * again with the decisions applied returns nothing new.
 */
export function evaluate(input: GuardInput): GuardDecision[] {
  const { candidates } = analyse(input);
  const { state, now } = input;
  return [
    ...select(candidates.tenant, state.tenant.actions, now),
    ...select(candidates.key, state.key?.actions ?? [], now),
  ];
}

/** The state with `decisions` in force (a newer throttle replaces an older one). */
export function applyDecisions(state: GuardState, decisions: readonly GuardDecision[]): GuardState {
  const add = (scope: ScopeGuardState, mine: readonly GuardDecision[]): ScopeGuardState => {
    if (mine.length === 0) return scope;
    const replaced = new Set(mine.map((d) => `${d.action}/${d.signal}`));
    return {
      ...scope,
      actions: [...scope.actions.filter((a) => !replaced.has(`${a.action}/${a.signal}`)), ...mine],
    };
  };
  const tenant = add(
    state.tenant,
    decisions.filter((d) => d.scope === 'tenant'),
  );
  const keyDecisions = decisions.filter((d) => d.scope === 'key');
  if (state.key === undefined && keyDecisions.length === 0) return { tenant };
  return { tenant, key: add(state.key ?? { actions: [] }, keyDecisions) };
}

/**
 * An operator's resume: nothing is in force any more, the window restarts at `at`, and probation
 * (the policy's reduced thresholds) runs from there. `countsAtReinstatement` are the counters of
 * the current hour bucket as read now, so the rest of this hour is still watched.
 */
export function reinstate(at: Date, countsAtReinstatement?: GuardCounts): ScopeGuardState {
  return countsAtReinstatement === undefined
    ? { actions: [], reinstatedAt: at.toISOString() }
    : { actions: [], reinstatedAt: at.toISOString(), countsAtReinstatement };
}

export type Standing = 'good' | 'warning' | 'broadcast_paused' | 'held' | 'suspended';

/**
 * The standing shown by the reputation view: the worst of what is in force and what was just
 * decided. A throttled key is a warning (it still sends, slower); with `now`, a throttle that has
 * ended no longer counts. For a tenant's view pass its state without `key`.
 */
export function standing(state: GuardState, decisions: readonly GuardDecision[], now?: Date): Standing {
  const all = [...state.tenant.actions, ...(state.key?.actions ?? []), ...decisions].filter(
    (d) => now === undefined || inForce(d, now),
  );
  const has = (action: GuardAction) => all.some((d) => d.action === action);
  if (has('suspendKey')) return 'suspended';
  if (has('holdAll')) return 'held';
  if (has('pauseBroadcast')) return 'broadcast_paused';
  if (has('warn') || has('throttleKey')) return 'warning';
  return 'good';
}

// How strong an action is, to keep one action per scope and never step down.
const severity: Readonly<Record<GuardAction, number>> = {
  warn: 1,
  throttleKey: 2,
  pauseBroadcast: 2,
  suspendKey: 3,
  holdAll: 3,
};

/** True while `decision` holds: it has no `until`, or its `until` is still ahead of `now`. */
export function inForce(decision: GuardDecision, now: Date): boolean {
  return decision.until === undefined || Date.parse(decision.until) > now.getTime();
}

function select(
  candidates: readonly GuardDecision[],
  active: readonly GuardDecision[],
  now: Date,
): GuardDecision[] {
  const live = active.filter((a) => inForce(a, now));
  const inForceSeverity = Math.max(
    0,
    ...live.filter((a) => a.action !== 'warn').map((a) => severity[a.action]),
  );
  const actions = candidates.filter((c) => c.action !== 'warn');
  // Stable: among equally strong actions, the first in the policy table wins.
  const strongest = actions.reduce<GuardDecision | undefined>(
    (best, c) => (best === undefined || severity[c.action] > severity[best.action] ? c : best),
    undefined,
  );
  if (strongest !== undefined && severity[strongest.action] > inForceSeverity) return [strongest];
  if (strongest !== undefined || inForceSeverity > 0) return [];
  const warned = new Set(live.filter((a) => a.action === 'warn').map((a) => a.signal));
  return candidates.filter((c) => c.action === 'warn' && !warned.has(c.signal));
}

interface Analysis {
  readonly readings: SignalReading[];
  readonly candidates: { readonly tenant: GuardDecision[]; readonly key: GuardDecision[] };
}

function analyse({ buckets, state, policy, now }: GuardInput): Analysis {
  const readings: SignalReading[] = [];
  const candidates = { tenant: [] as GuardDecision[], key: [] as GuardDecision[] };
  const tenantId = buckets.tenant.tenantId;
  const tenantHours = new HourSeries(buckets.tenant.hours, state.tenant, now);
  const keyHours = buckets.key === undefined ? undefined : new HourSeries(buckets.key.hours, state.key, now);
  const keyId = buckets.key?.keyId;

  const keyRates: { readonly reading: SignalReading; readonly rule: RateRule }[] = [];
  for (const name of rateRuleNames) {
    const rule = policy[name];
    const series = rule.scope === 'tenant' ? tenantHours : keyHours;
    if (series === undefined) continue;
    const reading = readRate(name, rule, series, factor(series, policy, now));
    readings.push(reading);
    if (rule.scope === 'key') keyRates.push({ reading, rule });
    const decision = decide(reading, rule, { tenantId, keyId, now });
    if (decision !== undefined) candidates[rule.scope].push(decision);
  }

  if (keyHours !== undefined && keyId !== undefined) {
    const spike = readSpike(keyHours, tenantHours, buckets.tenant.keyCount, policy, now);
    readings.push(spike.reading);
    if (spike.reading.level === 'act') {
      candidates.key.push(spikeDecision(spike, keyRates, policy, { tenantId, keyId, now }));
    }
  }
  return { readings, candidates };
}

/** The probation factor for a scope at `now` (1 outside probation). */
function factor(series: HourSeries, policy: GuardPolicy, now: Date): number {
  const since = series.reinstatedAtMs;
  if (since === undefined) return 1;
  return now.getTime() < since + policy.probation.hours * MS_PER_HOUR ? policy.probation.factor : 1;
}

/**
 * A scope's buckets, by hour, cut at its reinstatement. Counts are sanitised: a negative, fractional
 * or non-numeric counter (a corrupted item) reads as what it can be, never as a reason to throw and
 * leave the scope unwatched.
 */
class HourSeries {
  readonly #byHour = new Map<number, Record<GuardCounter, number>>();
  readonly currentHour: number;
  readonly reinstatedAtMs: number | undefined;
  readonly #snapshot: GuardCounts | undefined;
  readonly now: Date;

  constructor(hours: readonly HourBucket[], state: ScopeGuardState | undefined, now: Date) {
    this.now = now;
    this.currentHour = hourStart(hourOf(now)).getTime();
    const reinstated = state?.reinstatedAt === undefined ? Number.NaN : Date.parse(state.reinstatedAt);
    // A resume dated after now (the operator's clock ahead) is a resume now: taken as written it
    // would leave every bucket out, and the scope unwatched, until that time.
    this.reinstatedAtMs = Number.isFinite(reinstated) ? Math.min(reinstated, now.getTime()) : undefined;
    this.#snapshot = state?.countsAtReinstatement;
    for (const bucket of hours) {
      if (!isHour(bucket.hour)) continue;
      const hour = hourStart(bucket.hour).getTime();
      // Buckets of the same hour add up (an adapter may shard a hot hour).
      const sum = this.#byHour.get(hour) ?? zero();
      for (const counter of GUARD_COUNTERS) sum[counter] += clean(bucket.counts?.[counter]);
      this.#byHour.set(hour, sum);
    }
  }

  /**
   * The counters of the bucket starting at `hour` (never after the current one: callers walk back
   * from it), or `undefined` when that hour lies before the reinstatement and must not be counted.
   */
  at(hour: number): Record<GuardCounter, number> | undefined {
    const counts = this.#byHour.get(hour) ?? zero();
    const since = this.reinstatedAtMs;
    // A resume at the very start of the hour with the hour's counters read still subtracts them:
    // what they hold was counted before the resume, in that same millisecond or clock tick.
    if (since === undefined || hour > since || (hour === since && this.#snapshot === undefined))
      return counts;
    if (hour + MS_PER_HOUR <= since) return undefined;
    // The reinstatement's own hour: only what came after it, when the resume read the counters.
    if (this.#snapshot === undefined) return undefined;
    const after = zero();
    for (const counter of GUARD_COUNTERS)
      after[counter] = Math.max(0, counts[counter] - clean(this.#snapshot[counter]));
    return after;
  }

  /** Where a window that reached back to `hour` starts: the hour, or the reinstatement within it. */
  windowStart(hour: number): number {
    const since = this.reinstatedAtMs;
    return since !== undefined && since > hour && since < hour + MS_PER_HOUR ? since : hour;
  }
}

function zero(): Record<GuardCounter, number> {
  return Object.fromEntries(GUARD_COUNTERS.map((counter) => [counter, 0])) as Record<GuardCounter, number>;
}

function clean(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

function denominator(counts: Record<GuardCounter, number>, over: 'sends' | 'attempts'): number {
  const sends = counts.sends + counts.releasedSends;
  return over === 'sends' ? sends : sends + counts.suppressedHits + counts.contentRefusals;
}

/**
 * Walks back from the current hour, adding buckets until the minimum number of sends is reached
 * (the most recent sample that is large enough), never further than the rule's window or the
 * reinstatement. The minimum number of events is a gate on that sample, not a reason to walk on:
 * walking until enough bounces are found would let one more bounce shorten the sample to a milder
 * one, and the guard must never decide more mildly because a bounce arrived.
 */
function readRate(name: RateRuleName, rule: RateRule, series: HourSeries, f: number): SignalReading {
  let sends = 0;
  let events = 0;
  let hours = 0;
  let from = series.currentHour;
  let reached = false;
  for (let i = 0; i < rule.windowHours; i++) {
    const hour = series.currentHour - i * MS_PER_HOUR;
    const counts = series.at(hour);
    if (counts === undefined) break;
    sends += denominator(counts, rule.over);
    events += counts[rule.counter];
    hours++;
    from = series.windowStart(hour);
    if (sends >= rule.minimumSends) {
      reached = events >= rule.minimumEvents;
      break;
    }
  }
  const rate = sends > 0 ? events / sends : null;
  const warnAt = rule.warnAt === null ? null : rule.warnAt * f;
  const actAt = rule.actAt * f;
  const holdAllAbove = rule.holdAllAbove === null ? null : rule.holdAllAbove * f;
  let level: SignalReading['level'] = 'none';
  let threshold = warnAt ?? actAt;
  if (reached && rate !== null) {
    if (holdAllAbove !== null && rate > holdAllAbove) [level, threshold] = ['holdAll', holdAllAbove];
    else if (rate >= actAt) [level, threshold] = ['act', actAt];
    else if (warnAt !== null && rate >= warnAt) level = 'warn';
  }
  return {
    scope: rule.scope,
    rule: name,
    signal: rule.signal,
    rate,
    sample: { sends, over: rule.over, events },
    window: windowOf(from, series.now, Math.max(hours, 1)),
    sampleReached: reached,
    level,
    threshold,
    probation: f !== 1,
  };
}

function windowOf(from: number, now: Date, hours: number): SampleWindow {
  return { from: new Date(from).toISOString(), to: now.toISOString(), hours };
}

interface Subject {
  readonly tenantId: string;
  readonly keyId: string | undefined;
  readonly now: Date;
}

function decide(reading: SignalReading, rule: RateRule, subject: Subject): GuardDecision | undefined {
  if (reading.level === 'none' || reading.rate === null) return undefined;
  const action: GuardAction =
    reading.level === 'holdAll' ? 'holdAll' : reading.level === 'act' ? rule.action : 'warn';
  const comparison = reading.level === 'holdAll' ? 'above' : 'at or above';
  const reason =
    `${describeReading(reading)} is ${comparison} ${percent(reading.threshold)}` +
    `${reading.probation ? ' (lowered: probation after a resume)' : ''}: ${actionWords(action, reading.scope)}`;
  const until = action === 'warn' ? new Date(subject.now.getTime() + WARNING_HOURS * MS_PER_HOUR) : undefined;
  return decision(subject, reading.scope, action, reading, reason, until);
}

function decision(
  subject: Subject,
  scope: GuardScope,
  action: GuardAction,
  reading: SignalReading,
  reason: string,
  until?: Date,
): GuardDecision {
  return {
    scope,
    tenantId: subject.tenantId,
    ...(scope === 'key' && subject.keyId !== undefined ? { keyId: subject.keyId } : {}),
    action,
    signal: reading.signal,
    rate: reading.rate ?? 0,
    threshold: reading.threshold,
    sample: reading.sample,
    window: reading.window,
    probation: reading.probation,
    decidedAt: subject.now.toISOString(),
    ...(until === undefined ? {} : { until: until.toISOString() }),
    reason,
  };
}

interface SpikeReading {
  readonly reading: SignalReading;
  readonly baseline: number;
}

/** This hour's sends against the key's baseline (averaged over the hours before this one). */
function readSpike(
  keyHours: HourSeries,
  tenantHours: HourSeries,
  keyCount: number,
  policy: GuardPolicy,
  now: Date,
): SpikeReading {
  const rule = policy.volumeSpike;
  const f = factor(keyHours, policy, now);
  const current = keyHours.at(keyHours.currentHour) ?? zero();
  // A fixed divisor: a young key's short history reads as a low average, never as a high one.
  const average = (series: HourSeries) => {
    let total = 0;
    for (let i = 1; i <= rule.baselineHours; i++)
      total += series.at(series.currentHour - i * MS_PER_HOUR)?.sends ?? 0;
    return total / rule.baselineHours;
  };
  const baseline = hourlyBaseline(
    // A key count that is not a positive number (an unset field) must not turn the baseline into
    // NaN, which no number of sends would ever reach.
    {
      keyPerHour: average(keyHours),
      tenantPerKeyPerHour: average(tenantHours) / Math.max(1, clean(keyCount)),
    },
    rule,
  );
  const threshold = rule.multiple * f * baseline;
  const reached = current.sends >= rule.minimumSends;
  return {
    baseline,
    reading: {
      scope: 'key',
      rule: 'volumeSpike',
      signal: 'volumeSpike',
      rate: current.sends,
      sample: { sends: current.sends, over: 'sends', events: current.newRecipientDomains },
      window: windowOf(keyHours.windowStart(keyHours.currentHour), now, 1),
      sampleReached: reached,
      level: reached && current.sends >= threshold ? 'act' : 'none',
      threshold,
      probation: f !== 1,
    },
  };
}

/** Throttle for a while; suspend when the spike comes with another key signal above. */
function spikeDecision(
  spike: SpikeReading,
  keyRates: readonly { readonly reading: SignalReading; readonly rule: RateRule }[],
  policy: GuardPolicy,
  subject: Subject,
): GuardDecision {
  const rule = policy.volumeSpike;
  const { reading } = spike;
  const f = reading.probation ? policy.probation.factor : 1;
  const raised = keyRates
    .filter(
      ({ reading: r, rule: rateRule }) =>
        r.sampleReached && r.rate !== null && r.rate >= rule.suspendWithSignalAtFraction * rateRule.actAt * f,
    )
    .map(({ reading: r }) => r);
  const newDomainShare = reading.sample.sends > 0 ? reading.sample.events / reading.sample.sends : 0;
  const alongside = raised.map(describeReading);
  if (newDomainShare >= rule.suspendWithNewDomainShare) {
    alongside.push(
      `${percent(newDomainShare)} of this hour's sends went to recipient domains new to the key (${reading.sample.events} new domains)`,
    );
  }
  const spikeWords =
    `${reading.rate} sends in the current hour (since ${reading.window.from}) reach ${round(reading.threshold)}, ` +
    `${round(rule.multiple * f)} × the key's hourly baseline of ${round(spike.baseline)}` +
    `${reading.probation ? ' (lowered: probation after a resume)' : ''}`;
  if (alongside.length > 0) {
    return decision(
      subject,
      'key',
      'suspendKey',
      reading,
      `volume spike: ${spikeWords}, with ${alongside.join('; and ')}: ${actionWords('suspendKey', 'key')}`,
    );
  }
  const until = new Date(subject.now.getTime() + rule.throttleMinutes * MINUTE_MS);
  return decision(
    subject,
    'key',
    'throttleKey',
    reading,
    `volume spike: ${spikeWords}: the key is throttled until ${until.toISOString()}`,
    until,
  );
}

const signalWords: Readonly<Record<GuardSignal, { label: string; events: string }>> = {
  hardBounceRate: { label: 'hard-bounce rate', events: 'hard bounces' },
  complaintRate: { label: 'complaint rate', events: 'complaints' },
  suppressedHitRate: { label: 'suppressed-recipient hits', events: 'suppressed recipients' },
  contentRefusalRate: { label: 'content refusals', events: 'refused recipients' },
  volumeSpike: { label: 'volume', events: 'new recipient domains' },
};

/** "hard-bounce rate 5 % (40 hard bounces in 800 sends, over the last 12 hours since ...)" */
export function describeReading(reading: SignalReading): string {
  const words = signalWords[reading.signal];
  const where = reading.scope === 'key' ? "the key's" : "the tenant's";
  const window =
    reading.window.hours === 1
      ? `in the current hour (since ${reading.window.from})`
      : `over ${reading.window.hours} hours since ${reading.window.from}`;
  const rate = reading.rate === null ? 'not measured' : percent(reading.rate);
  return `${where} ${words.label} ${rate} (${reading.sample.events} ${words.events} in ${reading.sample.sends} ${reading.sample.over}, ${window})`;
}

function actionWords(action: GuardAction, scope: GuardScope): string {
  switch (action) {
    case 'warn':
      return scope === 'tenant'
        ? "a warning; the tenant's mail still flows"
        : 'a warning; the key still sends';
    case 'pauseBroadcast':
      return "the tenant's broadcast mail is held until an operator resumes it; transactional mail still flows";
    case 'holdAll':
      return "all of the tenant's mail is held until an operator resumes it";
    case 'suspendKey':
      return 'the key is suspended until an operator resumes it';
    case 'throttleKey':
      return 'the key is throttled';
  }
}

/** 0.0008 → "0.08 %", 0.05 → "5 %". */
export function percent(rate: number): string {
  return `${Number((rate * 100).toFixed(3))} %`;
}

function round(value: number): number {
  return Number(value.toFixed(1));
}
