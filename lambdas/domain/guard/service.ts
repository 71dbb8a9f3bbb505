import { ConflictError } from '../../shared/errors.ts';
import { asciiDomain, domainOf } from '../address.ts';
import { type ApiKey, CONTROL } from '../keys/api-key.ts';
import type {
  Clock,
  Guard,
  GuardCounters,
  GuardFeedback,
  GuardKeyWriter,
  GuardRecipientTally,
  GuardRelease,
  GuardStateStore,
  GuardTarget,
  ReputationView,
  TenantGuardRecord,
} from '../ports.ts';
import {
  addHours,
  checkIncrement,
  GUARD_RETENTION_DAYS,
  type GuardCounter,
  type GuardCounts,
  type GuardIncrement,
  type GuardScopeRef,
  type HourBucket,
  hourOf,
  hourStart,
  scopeName,
} from './counters.ts';
import {
  applyDecisions,
  evaluate,
  type GuardBuckets,
  type GuardDecision,
  type GuardInput,
  type GuardState,
  inForce,
  measure,
  reinstate,
  type ScopeGuardState,
  type SignalReading,
  type Standing,
  standing,
} from './evaluate.ts';
import { defaultGuardPolicy, type GuardPolicy, rateRuleNames, resolveGuardPolicy } from './policy.ts';
import { isGuardScopeState, readGuardMark, suspendedByGuard, throttleFor } from './state.ts';

/**
 * The abuse guard's orchestration (issue 13): counts what the front doors accepted and what the
 * feedback reported, evaluates each key and tenant at most once a minute with the pure `evaluate`,
 * and applies what it decides to the ApiKeys table (which every request reads anyway) and to the
 * tenant's record. Domain code over ports: the wiring (adapters/guard-wiring.ts) passes the stores
 * and turns `onAction` / `onError` into the log line, the `GuardAction` metric and the alarm.
 */

/** "At most once per scope per minute" (the issue). */
export const GUARD_EVALUATION_INTERVAL_MS = 60_000;
/** The reputation view reads at most this many keys' counters per call. */
export const REPUTATION_MAX_KEYS = 100;
/** SES leaves its mailbox simulator out of the account's reputation; so does the guard, when deployed. */
export const SIMULATOR_DOMAIN = 'simulator.amazonses.com';
/** An operator's resume reason is kept on the state and shown by `keys show`: a sentence, not a file. */
export const MAX_RESUME_REASON = 500;

const DEFAULT_KNOWN_DOMAINS = 10_000;
/** The tenant's key list is a Scan: a few minutes old is fine for a key count. */
const DEFAULT_KEY_LIST_TTL_MS = 5 * 60_000;
/** Scopes and tenants remembered in process; past this the oldest are forgotten (a claim still guards). */
const MEMO_ENTRIES = 10_000;
const KEY_LISTS = 1_000;
const RESUME_ATTEMPTS = 3;
const REPUTATION_KEYS_MAX_AGE_MS = 30_000;
/**
 * How long a tenant's reputation view is answered from memory. A view reads the counters of up to
 * 100 keys (a Query each): without it, a read key polling GET /v1/reputation at its request rate
 * would have each call make 101 Queries of the Guard table, the table every count of every tenant
 * is written to. What this instance decides for the tenant meanwhile is shown at once; at most the
 * evaluation interval, when that is shorter.
 */
export const REPUTATION_VIEW_TTL_MS = 10_000;
/** Key counter reads at once, for the reputation view (a Query each). */
const READ_CONCURRENCY = 10;

/** What the guard was doing when something failed (the wiring logs it with the error). */
export interface GuardErrorContext {
  readonly operation: 'recordAccept' | 'recordFeedback' | 'recordRelease' | 'evaluate' | 'policy';
  readonly tenant?: string;
  readonly keyId?: string;
}

export interface GuardServiceDeps {
  readonly counters: GuardCounters;
  readonly state: GuardStateStore;
  readonly keys: GuardKeyWriter;
  readonly clock: Clock;
  /**
   * Each decision applied (a key suspended or throttled, a tenant paused, held or warned): the wiring
   * logs it (no addresses: a decision carries none) and emits the `GuardAction` metric (dimensions
   * Action, Scope). Called after the decision is stored. Must not throw.
   */
  readonly onAction?: (decision: GuardDecision) => void;
  /**
   * A failure the guard absorbed: anything in `recordAccept` (a guard failure must never refuse or
   * lose mail), an evaluation that failed after the counting succeeded, an invalid stored override
   * (the defaults apply). Must not throw.
   */
  readonly onError?: (error: unknown, context: GuardErrorContext) => void;
  /** Count recipients at the SES mailbox simulator (local mode, BATON_GUARD_COUNT_SIMULATOR=1). @default false */
  readonly countSimulator?: boolean;
  /** @default 60_000 */
  readonly evaluateEveryMs?: number;
  /** (key, domain) pairs remembered as counted, so a known domain costs no write. @default 10_000 */
  readonly knownDomainsLimit?: number;
  /** How long a tenant's key list (for its key count) is reused. @default 300_000 */
  readonly keyListTtlMs?: number;
}

/** A tenant's stored guard state that is not one the guard wrote (read as no state). */
export class GuardStateCorruptError extends Error {
  override readonly name = 'GuardStateCorruptError';
}

/** An operator's resume without a usable reason (empty, too long, or with control characters). */
export class GuardResumeReasonError extends Error {
  override readonly name = 'GuardResumeReasonError';
}

/** A Map that forgets its least recently used entries past `limit`. */
class Lru<K, V> {
  readonly #entries = new Map<K, V>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = Math.max(1, Math.floor(limit));
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  delete(key: K): void {
    this.#entries.delete(key);
  }

  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.#limit) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }
}

interface TenantContext {
  readonly tenant: string;
  readonly record: TenantGuardRecord | undefined;
  readonly policy: GuardPolicy;
}

const noActions: ScopeGuardState = { actions: [] };

export class GuardService implements Guard {
  readonly #deps: GuardServiceDeps;
  readonly #intervalMs: number;
  readonly #keyListTtlMs: number;
  /** `keyId \0 domain` of the pairs already counted (the store's event marker keeps them once anyway). */
  readonly #knownDomains: Lru<string, true>;
  /** scopeName → when this instance last asked to evaluate it. */
  readonly #lastEvaluated = new Lru<string, number>(MEMO_ENTRIES);
  readonly #keyLists = new Lru<string, { readonly at: number; readonly keys: ApiKey[] }>(KEY_LISTS);
  readonly #views = new Lru<string, { readonly at: number; readonly view: ReputationView }>(KEY_LISTS);

  constructor(deps: GuardServiceDeps) {
    this.#deps = deps;
    this.#intervalMs = deps.evaluateEveryMs ?? GUARD_EVALUATION_INTERVAL_MS;
    this.#keyListTtlMs = deps.keyListTtlMs ?? DEFAULT_KEY_LIST_TTL_MS;
    this.#knownDomains = new Lru(deps.knownDomainsLimit ?? DEFAULT_KNOWN_DOMAINS);
  }

  async recordAccept(key: ApiKey, recipients: readonly GuardRecipientTally[]): Promise<void> {
    try {
      const now = this.#deps.clock();
      const hour = hourOf(now);
      const counts: Record<'sends' | 'suppressedHits' | 'contentRefusals', number> = {
        sends: 0,
        suppressedHits: 0,
        contentRefusals: 0,
      };
      const newDomains = new Set<string>();
      for (const { address, outcome } of recipients) {
        const domain = recipientDomain(address);
        if (!this.#counts(domain)) continue;
        if (outcome === 'queued') {
          counts.sends++;
          if (
            domain.ascii !== undefined &&
            this.#knownDomains.get(domainPair(key.keyId, domain.ascii)) === undefined
          ) {
            newDomains.add(domain.ascii);
          }
        } else if (outcome === 'suppressed') counts.suppressedHits++;
        else if (outcome === 'refused') counts.contentRefusals++;
        // `held`: accepted but not sent; it becomes a send when an operator releases it.
      }
      const totals = nonZero(counts);
      if (Object.keys(totals).length === 0) return;
      const keyScope: GuardScopeRef = { kind: 'key', keyId: key.keyId };
      const increments: GuardIncrement[] = [
        { scope: keyScope, hour, counts: totals },
        { scope: { kind: 'tenant', tenant: key.tenant }, hour, counts: totals },
        // Once per (key, domain) ever (within the counters' retention): the store keeps the marker.
        ...[...newDomains].map((domain) => ({
          scope: keyScope,
          hour,
          counts: { newRecipientDomains: 1 },
          eventId: `domain:${domain}`,
        })),
      ];
      await this.#deps.counters.add(increments);
      for (const domain of newDomains) this.#knownDomains.set(domainPair(key.keyId, domain), true);
      await this.#evaluateTenant(key.tenant, [key]);
    } catch (error) {
      this.#report(error, { operation: 'recordAccept', tenant: key.tenant, keyId: key.keyId });
    }
  }

  async recordRelease(released: readonly GuardRelease[]): Promise<void> {
    try {
      const hour = hourOf(this.#deps.clock());
      const increments = released.flatMap((r): GuardIncrement[] => {
        const n = r.recipients.filter((address) => this.#counts(recipientDomain(address))).length;
        if (n === 0) return [];
        // Once per message: a release run again after a crash enqueues it again, but counts nothing.
        const counted = { hour, counts: { releasedSends: n }, eventId: `release:${r.messageId}` };
        return [
          { scope: { kind: 'tenant', tenant: r.tenant }, ...counted },
          ...(r.keyId === undefined ? [] : [{ scope: { kind: 'key' as const, keyId: r.keyId }, ...counted }]),
        ];
      });
      if (increments.length > 0) await this.#deps.counters.add(increments);
    } catch (error) {
      this.#report(error, { operation: 'recordRelease', tenant: released[0]?.tenant ?? '' });
    }
  }

  async recordFeedback(events: readonly GuardFeedback[]): Promise<void> {
    const now = this.#deps.clock();
    const increments: GuardIncrement[] = [];
    const scopes = new Map<string, Set<string>>();
    for (const event of events) {
      if (!this.#counts(recipientDomain(event.recipient))) continue;
      // An unreadable time must not fail the batch on every redelivery: count it now.
      const at = Number.isFinite(event.at?.getTime?.()) ? event.at : now;
      const counts: GuardCounts = { [feedbackCounter[event.kind]]: 1 };
      const hour = hourOf(at);
      const tenantIncrement: GuardIncrement = {
        scope: { kind: 'tenant', tenant: event.tenant },
        hour,
        counts,
        eventId: event.eventId,
      };
      if (!this.#countable(tenantIncrement, event)) continue;
      increments.push(tenantIncrement);
      const keys = scopes.get(event.tenant) ?? new Set<string>();
      scopes.set(event.tenant, keys);
      if (event.keyId === undefined) continue;
      const keyIncrement: GuardIncrement = { ...tenantIncrement, scope: { kind: 'key', keyId: event.keyId } };
      if (!this.#countable(keyIncrement, event)) continue;
      increments.push(keyIncrement);
      keys.add(event.keyId);
    }
    if (increments.length === 0) return;
    // Throws (TransientError): the feedback is retried, and the event ids keep it counted once.
    await this.#deps.counters.add(increments);
    for (const [tenant, keyIds] of scopes) {
      try {
        await this.#evaluateTenant(tenant, [...keyIds]);
      } catch (error) {
        // Counted already: the next evaluation (a minute later at most, with the next event) sees it.
        this.#report(error, { operation: 'evaluate', tenant });
      }
    }
  }

  async resume(target: GuardTarget, reason: string): Promise<ScopeGuardState> {
    const why = checkReason(reason);
    const now = this.#deps.clock();
    const scope: GuardScopeRef =
      target.kind === 'key'
        ? { kind: 'key', keyId: target.keyId }
        : { kind: 'tenant', tenant: target.tenant };
    // The counts of this hour so far: what came before the resume is not held against the scope.
    const current = await this.#deps.counters.read(scope, hourOf(now), hourOf(now));
    const state: ScopeGuardState = { ...reinstate(now, sumCounts(current)), resumedReason: why };
    if (target.kind === 'key') {
      const resumed = await this.#deps.keys.setKeyGuard(target.keyId, state, 'active');
      this.#replaceKey(resumed.tenant, resumed);
      return state;
    }
    for (let attempt = 1; ; attempt++) {
      const record = await this.#deps.state.tenant(target.tenant);
      const next: TenantGuardRecord = {
        ...(record ?? { tenant: target.tenant }),
        state,
        version: (record?.version ?? 0) + 1,
      };
      if (await this.#deps.state.putTenant(next)) break;
      if (attempt >= RESUME_ATTEMPTS) {
        throw new ConflictError(`the guard state of tenant ${target.tenant} kept changing; resume again`);
      }
    }
    this.#rememberKeys(target.tenant, await this.#deps.keys.markTenant(target.tenant, state));
    return state;
  }

  async reputation(tenant: string): Promise<ReputationView> {
    const cached = this.#views.get(tenant);
    // Never longer than the evaluation interval (shortened by the tests of local mode).
    const ttl = Math.min(REPUTATION_VIEW_TTL_MS, this.#intervalMs);
    if (cached !== undefined && this.#deps.clock().getTime() - cached.at < ttl) {
      return cached.view;
    }
    const view = await this.#reputation(tenant);
    this.#views.set(tenant, { at: this.#deps.clock().getTime(), view });
    return view;
  }

  async #reputation(tenant: string): Promise<ReputationView> {
    // Evaluate the tenant first, when due: otherwise a tenant signal completed inside the interval
    // after the last evaluation (the last bounce of a storm) would show its rate here but act only
    // at the tenant's next event, and the view would show a standing its own rates contradict. Key
    // signals are evaluated by the key's own requests and feedback.
    try {
      await this.#evaluateTenant(tenant, []);
    } catch (error) {
      this.#report(error, { operation: 'evaluate', tenant });
    }
    const now = this.#deps.clock();
    const context = await this.#context(tenant);
    const tenantState = context.record?.state ?? noActions;
    // A Scan: reused for half a minute, so a tenant polling its reputation costs no Scan per call.
    const all = await this.#keyList(tenant, now, REPUTATION_KEYS_MAX_AGE_MS);
    const live = all.filter((k) => k.status !== 'revoked').sort((a, b) => a.keyId.localeCompare(b.keyId));
    const shown = live.slice(0, REPUTATION_MAX_KEYS);
    const policy = context.policy;
    const tenantBuckets: GuardBuckets['tenant'] = {
      tenantId: tenant,
      hours: await this.#read({ kind: 'tenant', tenant }, tenantHours(policy, true), now),
      keyCount: Math.max(1, live.length),
    };

    const rates: Record<string, number | null> = {};
    const sample: Record<string, ReputationView['sample'][string]> = {};
    const window: Record<string, ReputationView['window'][string]> = {};
    const show = (name: string, reading: SignalReading) => {
      rates[name] = reading.rate;
      sample[name] = { ...reading.sample, reached: reading.sampleReached };
      window[name] = reading.window;
    };
    for (const reading of measure({
      buckets: { tenant: tenantBuckets },
      state: { tenant: tenantState },
      policy,
      now,
    })) {
      show(reading.rule, reading);
    }

    const keyHourList = await inBatches(shown, READ_CONCURRENCY, (key) =>
      this.#read({ kind: 'key', keyId: key.keyId }, keyHours(policy), now),
    );
    let worst: Standing = standing({ tenant: tenantState }, [], now);
    const reasons = actionsInForce(tenantState, now).map((d) => d.reason);
    const keys: ReputationView['keys'][number][] = [];
    shown.forEach((key, i) => {
      const keyState = keyGuardState(key) ?? noActions;
      const state: GuardState = { tenant: tenantState, key: keyState };
      const buckets: GuardBuckets = {
        tenant: tenantBuckets,
        key: { keyId: key.keyId, hours: keyHourList[i] ?? [] },
      };
      for (const reading of measure({ buckets, state, policy, now })) {
        if (reading.scope === 'key') show(`${reading.rule}:${key.keyId}`, reading);
      }
      worst = worse(worst, standing({ tenant: noActions, key: keyState }, [], now));
      reasons.push(...actionsInForce(keyState, now).map((d) => d.reason));
      const suspension = suspendedByGuard(key);
      const throttle = throttleFor(key.guard, now);
      keys.push({
        keyId: key.keyId,
        status: key.status === 'active' && throttle !== undefined ? 'throttled' : key.status,
        reason: suspension?.reason ?? throttle?.reason ?? null,
      });
    });
    if (live.length > shown.length) {
      reasons.push(
        `only ${shown.length} of its ${live.length} keys are read and shown here; the others are watched all the same`,
      );
    }
    return { standing: worst, rates, sample, window, keys, reasons };
  }

  // ---- evaluation ---------------------------------------------------------------------------

  /**
   * Evaluates the tenant and the given keys of it that are due (each at most once a minute): the
   * tenant's decisions are applied first, then each key's, with the tenant's state as it now is.
   */
  async #evaluateTenant(tenant: string, keyHints: readonly (ApiKey | string)[]): Promise<void> {
    const now = this.#deps.clock();
    const tenantDue = await this.#claim({ kind: 'tenant', tenant }, now);
    const dueKeys: ApiKey[] = [];
    for (const hint of keyHints) {
      const keyId = typeof hint === 'string' ? hint : hint.keyId;
      if (!this.#memoAllows({ kind: 'key', keyId }, now)) continue;
      const key = typeof hint === 'string' ? await this.#findKey(tenant, keyId, now) : hint;
      // A revoked key is never acted on; a key of another tenant is not this tenant's to judge.
      if (key === undefined || key.status === 'revoked' || key.tenant !== tenant) continue;
      if (await this.#claim({ kind: 'key', keyId }, now)) dueKeys.push(key);
    }
    if (!tenantDue && dueKeys.length === 0) return;

    let context = await this.#context(tenant);
    const tenantHistory = await this.#read(
      { kind: 'tenant', tenant },
      tenantHours(context.policy, dueKeys.length > 0),
      now,
    );
    const keyList = dueKeys.length > 0 ? await this.#keyList(tenant, now) : this.#cachedKeys(tenant);
    const tenantBuckets: GuardBuckets['tenant'] = {
      tenantId: tenant,
      hours: tenantHistory,
      keyCount: Math.max(1, (keyList ?? []).filter((k) => k.status !== 'revoked').length),
    };

    if (tenantDue) context = await this.#applyTenant(context, tenantBuckets, keyHints, keyList, now);
    const tenantState = context.record?.state ?? noActions;
    for (const key of dueKeys) {
      const hours = await this.#read({ kind: 'key', keyId: key.keyId }, keyHours(context.policy), now);
      const input = (state: ScopeGuardState | undefined) => ({
        buckets: { tenant: tenantBuckets, key: { keyId: key.keyId, hours } },
        state: { tenant: tenantState, ...(state === undefined ? {} : { key: state }) },
        policy: context.policy,
        now,
      });
      if (keyDecisionsCaughtUp(input, keyGuardState(key), hours, now).length === 0) continue;
      // About to act: the key read by the front door may be a minute old, so act on a fresh read.
      const fresh = (await this.#refreshKeys(tenant, now)).find((k) => k.keyId === key.keyId);
      if (fresh === undefined || fresh.status === 'revoked') continue;
      const decisions = keyDecisionsCaughtUp(input, keyGuardState(fresh), hours, now);
      if (decisions.length === 0) continue;
      const next = applyDecisions(
        { tenant: tenantState, key: keyGuardState(fresh) ?? noActions },
        decisions,
      ).key;
      const suspend = decisions.some((d) => d.action === 'suspendKey');
      const written = await this.#deps.keys.setKeyGuard(
        key.keyId,
        next ?? noActions,
        suspend ? 'suspended' : undefined,
      );
      this.#replaceKey(tenant, written);
      for (const decision of decisions) this.#tell(decision);
    }
  }

  /**
   * The tenant's new decisions, stored (versioned: on a conflict, re-read and decide once more) and
   * copied onto each of its keys. Also copies the state onto keys that do not carry it yet (a key
   * created after a pause, a copy that failed half-way), so enforcement catches up within a minute.
   */
  async #applyTenant(
    context: TenantContext,
    buckets: GuardBuckets['tenant'],
    keyHints: readonly (ApiKey | string)[],
    keyList: readonly ApiKey[] | undefined,
    now: Date,
  ): Promise<TenantContext> {
    let current = context;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const state = current.record?.state ?? noActions;
      const decisions = tenantDecisions(buckets, state, current.policy, now);
      if (decisions.length === 0) break;
      const next: TenantGuardRecord = {
        ...(current.record ?? { tenant: current.tenant }),
        state: applyDecisions({ tenant: state }, decisions).tenant,
        version: (current.record?.version ?? 0) + 1,
      };
      if (await this.#deps.state.putTenant(next)) {
        // In force from here (the record is the source of truth): told even if the copy below fails,
        // which the next evaluation repairs.
        for (const decision of decisions) this.#tell(decision);
        this.#rememberKeys(current.tenant, await this.#deps.keys.markTenant(current.tenant, next.state));
        return { ...current, record: next };
      }
      current = await this.#context(current.tenant);
      if (attempt === 2) {
        this.#report(new ConflictError('the tenant guard record kept changing during an evaluation'), {
          operation: 'evaluate',
          tenant: current.tenant,
        });
      }
    }
    const record = current.record;
    if (record !== undefined) {
      const stored = fingerprint(record.state);
      const carried = [...keyHints.filter((k): k is ApiKey => typeof k !== 'string'), ...(keyList ?? [])];
      if (
        carried.some(
          // Revoked keys too: the sender reads the tenant's hold of their queued mail from them.
          (k) => fingerprint(readGuardMark(k.guard).mark?.tenant) !== stored,
        )
      ) {
        this.#rememberKeys(record.tenant, await this.#deps.keys.markTenant(record.tenant, record.state));
      }
    }
    return current;
  }

  /** The tenant's record and policy; an invalid stored override is reported and the defaults apply. */
  async #context(tenant: string): Promise<TenantContext> {
    const stored = await this.#deps.state.tenant(tenant);
    // A state the guard did not write (hand-edited, an older shape) reads as none, reported: every
    // evaluation of the tenant would fail on it otherwise, and its signals never be acted on.
    let record = stored;
    if (stored !== undefined && !isGuardScopeState(stored.state)) {
      this.#report(
        new GuardStateCorruptError(
          `the stored guard state of tenant ${tenant} is not one the guard wrote; read as none`,
        ),
        { operation: 'evaluate', tenant },
      );
      record = { ...stored, state: noActions };
    }
    let policy = defaultGuardPolicy;
    try {
      policy = resolveGuardPolicy(record?.override);
    } catch (error) {
      this.#report(error, { operation: 'policy', tenant });
    }
    return { tenant, record, policy };
  }

  #memoAllows(scope: GuardScopeRef, now: Date): boolean {
    const last = this.#lastEvaluated.get(scopeName(scope));
    return last === undefined || now.getTime() - last >= this.#intervalMs;
  }

  /** True when this instance may evaluate the scope now: not within the interval here, and the store agrees. */
  async #claim(scope: GuardScopeRef, now: Date): Promise<boolean> {
    if (!this.#memoAllows(scope, now)) return false;
    this.#lastEvaluated.set(scopeName(scope), now.getTime());
    return this.#deps.state.claimEvaluation(scope, now, this.#intervalMs);
  }

  /** The scope's last `hours` hour buckets up to now, never more than the counters keep. */
  #read(scope: GuardScopeRef, hours: number, now: Date): Promise<HourBucket[]> {
    const n = Math.max(1, Math.min(hours, GUARD_RETENTION_DAYS * 24));
    const to = hourOf(now);
    return this.#deps.counters.read(scope, addHours(to, -(n - 1)), to);
  }

  // ---- the tenant's keys (a Scan behind keysOf, so cached) -----------------------------------

  #cachedKeys(tenant: string): ApiKey[] | undefined {
    return this.#keyLists.get(tenant)?.keys;
  }

  async #keyList(tenant: string, now: Date, maxAgeMs = this.#keyListTtlMs): Promise<ApiKey[]> {
    const cached = this.#keyLists.get(tenant);
    if (cached !== undefined && now.getTime() - cached.at < maxAgeMs) return cached.keys;
    return this.#refreshKeys(tenant, now);
  }

  async #refreshKeys(tenant: string, now: Date): Promise<ApiKey[]> {
    const keys = await this.#deps.keys.keysOf(tenant);
    this.#rememberKeys(tenant, keys, now);
    return this.#cachedKeys(tenant) ?? [];
  }

  async #findKey(tenant: string, keyId: string, now: Date): Promise<ApiKey | undefined> {
    return (await this.#keyList(tenant, now)).find((k) => k.keyId === keyId);
  }

  /** Only the tenant's own keys are kept: another tenant's key in a list (a filter bug) is never shown or judged. */
  #rememberKeys(tenant: string, keys: readonly ApiKey[], now = this.#deps.clock()): void {
    this.#views.delete(tenant);
    this.#keyLists.set(tenant, { at: now.getTime(), keys: keys.filter((k) => k.tenant === tenant) });
  }

  #replaceKey(tenant: string, key: ApiKey): void {
    this.#views.delete(tenant);
    const cached = this.#keyLists.get(tenant);
    if (cached === undefined) return;
    this.#keyLists.set(tenant, {
      at: cached.at,
      keys: cached.keys.map((k) => (k.keyId === key.keyId ? key : k)),
    });
  }

  // ---- small helpers ------------------------------------------------------------------------

  /**
   * False (and reported) for an increment the counters would refuse (no tenant, an empty event id, a
   * key id no key has): thrown from `add`, it would fail the whole batch on every redelivery.
   */
  #countable(increment: GuardIncrement, event: GuardFeedback): boolean {
    try {
      checkIncrement(increment);
      return true;
    } catch (error) {
      const keyId = typeof event.keyId === 'string' ? event.keyId.slice(0, 64) : undefined;
      this.#report(error, {
        operation: 'recordFeedback',
        tenant: String(event.tenant).slice(0, 64),
        ...(keyId === undefined ? {} : { keyId }),
      });
      return false;
    }
  }

  #counts(domain: RecipientDomain): boolean {
    return this.#deps.countSimulator === true || !domain.simulator;
  }

  #tell(decision: GuardDecision): void {
    try {
      this.#deps.onAction?.(decision);
    } catch {
      // An observer's failure must not undo an applied decision.
    }
  }

  #report(error: unknown, context: GuardErrorContext): void {
    try {
      this.#deps.onError?.(error, context);
    } catch {
      // Nothing more to do: the guard never fails the mail for its own sake.
    }
  }
}

const feedbackCounter: Readonly<Record<GuardFeedback['kind'], GuardCounter>> = {
  hardBounce: 'hardBounces',
  transientBounce: 'transientBounces',
  complaint: 'complaints',
};

interface RecipientDomain {
  /** Lower-case punycode; undefined when the domain does not parse (not counted as a new domain). */
  readonly ascii: string | undefined;
  readonly simulator: boolean;
}

function recipientDomain(address: string): RecipientDomain {
  // A trailing dot is the same domain (the DNS root), so it cannot sneak the simulator in.
  const raw = domainOf(String(address).trim()).replace(/\.$/, '');
  const parsed = asciiDomain(raw);
  const ascii = parsed.ok ? parsed.value.toLowerCase() : undefined;
  return { ascii, simulator: (ascii ?? raw) === SIMULATOR_DOMAIN };
}

function domainPair(keyId: string, domain: string): string {
  return `${keyId}\u0000${domain}`;
}

function nonZero(counts: Readonly<Record<string, number>>): GuardCounts {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0)) as GuardCounts;
}

function sumCounts(buckets: readonly HourBucket[]): GuardCounts {
  const sum: Partial<Record<GuardCounter, number>> = {};
  for (const bucket of buckets) {
    for (const [counter, n] of Object.entries(bucket.counts) as [GuardCounter, number][]) {
      if (typeof n === 'number' && Number.isFinite(n) && n > 0) sum[counter] = (sum[counter] ?? 0) + n;
    }
  }
  return sum;
}

/** The hours a tenant evaluation reads: its longest window, and the key baseline's when keys are evaluated. */
function tenantHours(policy: GuardPolicy, withKeys: boolean): number {
  const windows = rateRuleNames.filter((n) => policy[n].scope === 'tenant').map((n) => policy[n].windowHours);
  return Math.max(...windows, withKeys ? policy.volumeSpike.baselineHours + 1 : 1);
}

/** The hours a key evaluation reads: its longest window, and the baseline's hours plus the current one. */
function keyHours(policy: GuardPolicy): number {
  const windows = rateRuleNames.filter((n) => policy[n].scope === 'key').map((n) => policy[n].windowHours);
  return Math.max(...windows, policy.volumeSpike.baselineHours + 1);
}

function tenantDecisions(
  buckets: GuardBuckets['tenant'],
  state: ScopeGuardState,
  policy: GuardPolicy,
  now: Date,
): GuardDecision[] {
  return evaluateScope({ buckets: { tenant: buckets }, state: { tenant: state }, policy, now }, 'tenant');
}

function keyDecisions(input: GuardInput): GuardDecision[] {
  return evaluateScope(input, 'key');
}

/** Earlier hours of a key evaluated again as of their last instant (see keyDecisionsCaughtUp). */
const CATCH_UP_HOURS = 2;

/**
 * The key's decisions now, after evaluating it as of the end of the last CATCH_UP_HOURS earlier
 * hours it sent in. Evaluation runs at most once a minute, so what a key sends in the minute after
 * an evaluation is seen at the next one; when that falls in the next hour, the rules of the
 * current hour (suppressed hits, content refusals, a volume spike) start afresh there, and a burst
 * in the last minute of an hour would never be acted on. Events skipped that way lie within two
 * intervals of an evaluation (the claim, or this instance's memo), so only the hour of the last
 * evaluation and the one after it can hold them: the two most recent earlier hours with counts.
 * A decision of an earlier hour that has lapsed by now (a throttle whose hour has passed) is left
 * out; evaluating never steps down, so an hour already acted on decides nothing again. Only the
 * strongest decisions are returned (the last evaluation that decided anything). The buckets are
 * those read for the key anyway: no extra read.
 */
function keyDecisionsCaughtUp(
  input: (state: ScopeGuardState | undefined) => GuardInput,
  state: ScopeGuardState | undefined,
  hours: readonly HourBucket[],
  now: Date,
): GuardDecision[] {
  const current = hourOf(now);
  const earlier = [...new Set(hours.map((b) => b.hour).filter((h) => h < current))]
    .sort()
    .slice(-CATCH_UP_HOURS);
  let latest = state;
  let strongest: GuardDecision[] = [];
  for (const hour of earlier) {
    const endOfHour = new Date(hourStart(addHours(hour, 1)).getTime() - 1);
    const decisions = keyDecisions({ ...input(latest), now: endOfHour }).filter((d) => inForceAt(d, now));
    if (decisions.length === 0) continue;
    strongest = decisions;
    latest = applyDecisions({ tenant: noActions, key: latest ?? noActions }, decisions).key;
  }
  const decisions = keyDecisions(input(latest));
  return decisions.length > 0 ? decisions : strongest;
}

function inForceAt(decision: GuardDecision, now: Date): boolean {
  return decision.until === undefined || Date.parse(decision.until) > now.getTime();
}

function evaluateScope(input: GuardInput, scope: 'tenant' | 'key'): GuardDecision[] {
  return evaluate(input).filter((d) => d.scope === scope);
}

/**
 * The key's guard state, with a guard suspension dropped when the key is no longer suspended: an
 * operator made it active again outside `resume` (`keys resume`), and the key's status is what every
 * door enforces. The window is not restarted then, so a signal still above suspends it again.
 */
function keyGuardState(key: ApiKey): ScopeGuardState | undefined {
  // A corrupt stored state reads as none: the evaluation then writes a good one over it.
  const state = readGuardMark(key.guard).mark?.key;
  if (state === undefined || key.status === 'suspended') return state;
  const actions = state.actions.filter((d) => d.action !== 'suspendKey');
  return actions.length === state.actions.length ? state : { ...state, actions };
}

function actionsInForce(state: ScopeGuardState, now: Date): GuardDecision[] {
  return state.actions.filter((d) => inForce(d, now));
}

const standingOrder: readonly Standing[] = ['good', 'warning', 'broadcast_paused', 'held', 'suspended'];

function worse(a: Standing, b: Standing): Standing {
  return standingOrder.indexOf(b) > standingOrder.indexOf(a) ? b : a;
}

/** What identifies a scope's state, whatever order a store gives the fields back in. */
function fingerprint(state: ScopeGuardState | undefined): string {
  return JSON.stringify([
    state?.reinstatedAt ?? null,
    (state?.actions ?? []).map((d) => [d.action, d.signal, d.decidedAt]),
  ]);
}

/** Runs `read` over `items`, `size` at a time, results in order. */
async function inBatches<T, R>(
  items: readonly T[],
  size: number,
  read: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    results.push(...(await Promise.all(items.slice(i, i + size).map(read))));
  }
  return results;
}

/** The reason, trimmed; GuardResumeReasonError unless it is 1-500 characters of plain text. */
function checkReason(reason: unknown): string {
  const trimmed = typeof reason === 'string' ? reason.trim() : '';
  if (trimmed === '')
    throw new GuardResumeReasonError('a resume needs a reason (why the scope may send again)');
  if (trimmed.length > MAX_RESUME_REASON) {
    throw new GuardResumeReasonError(`a resume reason is at most ${MAX_RESUME_REASON} characters`);
  }
  if (CONTROL.test(trimmed) || !trimmed.isWellFormed()) {
    throw new GuardResumeReasonError('a resume reason is one line of plain text, without control characters');
  }
  return trimmed;
}
