import type { Lane } from '../shared/names.ts';
import type { ErasureJob } from './erasure/erasure.ts';
import type { SoftBounceState } from './feedback/soft-bounce.ts';
import type { GuardIncrement, GuardScopeRef, HourBucket } from './guard/counters.ts';
import type { GuardSample, SampleWindow, ScopeGuardState, Standing } from './guard/evaluate.ts';
import type { HeldEntry } from './guard/hold.ts';
import type { GuardPolicyOverride } from './guard/policy.ts';
import type { ApiKey } from './keys/api-key.ts';
import type { MessageRecord, SendJob } from './message.ts';
import type { Suppression } from './suppression/suppression.ts';

/**
 * What the domain needs from the outside world. Adapters implement these over AWS; tests pass
 * in-memory fakes. Keeping them here means domain code never imports an SDK.
 */

export interface ApiKeyReader {
  get(keyId: string): Promise<ApiKey | undefined>;
}

/**
 * Every key at once (with its hash, as `get` gives it), for what a key id cannot answer: which
 * key an SMTP connection is by its source address (domain/keys/relay.ts). A paginated Scan
 * behind it, so callers cache it (CachedKeyDirectory).
 */
export interface ApiKeyDirectory {
  list(): Promise<ApiKey[]>;
}

export type ClaimResult =
  | { readonly outcome: 'claimed'; readonly record: MessageRecord; readonly token: string }
  /** Already sent or finished: a duplicate delivery of the queue message; acknowledge it. */
  | { readonly outcome: 'done'; readonly record: MessageRecord }
  /**
   * Another live attempt holds the claim, or a given-up message still waits for SES's evidence of
   * an uncertain attempt (`waitsForClaim`): try again after `claimUntil`.
   */
  | { readonly outcome: 'busy'; readonly record: MessageRecord }
  | { readonly outcome: 'missing' };

export interface MessageStore {
  create(record: MessageRecord): Promise<void>;
  /** Writes new records with batched writes (fresh ids, so no existence check is needed). */
  createMany(records: readonly MessageRecord[]): Promise<void>;
  /**
   * `consistent: false` reads at half the price and may return a slightly older version: fine as a
   * first read before a versioned write, whose conflict makes the caller re-read. @default true
   */
  get(id: string, options?: { readonly consistent?: boolean }): Promise<MessageRecord | undefined>;
  /** Finds the Baton message by the id SES gave it (identity notifications carry no tags). */
  findBySesMessageId(sesMessageId: string): Promise<MessageRecord | undefined>;
  /**
   * Takes the send claim: succeeds when the message is queued, or when a previous holder's claim
   * has expired (it died). Conditional on Baton's message id, never the SQS message id.
   */
  claim(id: string, now: Date, leaseMs: number): Promise<ClaimResult>;
  /** Gives a claim back early (a transient failure), so the retry need not wait for the lease. */
  release(id: string, token: string): Promise<void>;
  /**
   * Replaces the mutable part of the record if nobody else wrote since `expectedVersion` (and, with
   * a claim token, only while the claim is still ours). Throws ConflictError otherwise.
   */
  update(next: MessageRecord, expectedVersion: number, claimToken?: string): Promise<void>;
}

/**
 * The suppression list (see domain/suppression/suppression.ts for scopes). Reads and deletes take the tenant
 * whose entries count besides the global ones; without a tenant only global entries are read or
 * deleted. A write lands in the scope its suppression names (`tenant`, or global).
 */
export interface SuppressionStore {
  /**
   * One batched read of the global entry and, with `tenant`, that tenant's entry of each address
   * (normalised); the stronger answers for the address; absent = not suppressed.
   */
  getMany(addresses: readonly string[], tenant?: string): Promise<Map<string, Suppression>>;
  get(address: string, tenant?: string): Promise<Suppression | undefined>;
  /**
   * Writes unless an equal or stronger suppression is there already (in its scope). True when it
   * wrote. `evidenceOf`: the tenant whose message the (global) evidence is about; when that tenant
   * erased the address, a tombstone-aware store puts the evidence on its tombstone instead, so
   * the plain address is not stored again because of that tenant's mail.
   */
  putIfStronger(s: Suppression, evidenceOf?: string): Promise<boolean>;
  put(s: Suppression): Promise<void>;
  /** Deletes the tenant's entry of the address, or with no tenant the global one. */
  delete(address: string, tenant?: string): Promise<void>;
  /** The global entries and, with `tenant`, that tenant's; never another tenant's. */
  list(
    limit: number,
    cursor?: string,
    tenant?: string,
  ): Promise<{ items: Suppression[]; nextCursor: string | null }>;
}

export interface JobQueue {
  enqueue(lane: Lane, job: SendJob): Promise<void>;
  /**
   * Enqueues many jobs with as few requests as the queue allows (SQS SendMessageBatch). The
   * result has one entry per job, in order: undefined when queued, the error when not.
   */
  enqueueMany(
    items: ReadonlyArray<{ readonly lane: Lane; readonly job: SendJob }>,
  ): Promise<Array<Error | undefined>>;
}

export interface OutboundMail {
  readonly raw: Uint8Array;
  /** Envelope sender (the From address); SES uses the identity's MAIL FROM for bounces. */
  readonly from: string;
  readonly to: readonly string[];
  readonly cc: readonly string[];
  readonly bcc: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  /**
   * Epoch ms by which SES must have answered (the invocation's deadline, less the time to record
   * the outcome). A call still unanswered then is abandoned as a lost answer; none is made past it.
   */
  readonly answerBy?: number;
}

export interface Mailer {
  /** Returns SES's message id. Throws TransientError, PermanentError or SendingPausedError. */
  send(mail: OutboundMail): Promise<string>;
}

export type Clock = () => Date;

/** Daily counters: per-key quota usage and per-tenant statistics (the Stats table). */
export interface UsageStore {
  /**
   * Adds `count` to the key's usage for the day if the total stays within `quota`, atomically.
   * Returns false (and changes nothing) when it would not.
   */
  consumeQuota(keyId: string, day: string, count: number, quota: number): Promise<boolean>;
  /**
   * Gives back what `consumeQuota` took for messages that were not accepted after all. Never
   * throws: a batch gives back after others of its messages were queued, and failing it then
   * would make the client send those again; a failure is logged and the quota stays used.
   */
  refundQuota(keyId: string, day: string, count: number): Promise<void>;
  /** Messages counted for the key today (to admit part of a batch). */
  quotaUsed(keyId: string, day: string): Promise<number>;
  /**
   * Atomically adds to the tenant's counters for the day. Never throws: statistics must not undo
   * an accepted message (the client would retry and send it twice); failures are logged.
   */
  addStats(tenant: string, day: string, counts: StatCounts): Promise<void>;
  /**
   * The tenant's counters for each of `days` (`YYYY-MM-DD`) that has any; a day without an item is
   * absent from the map. Batched reads. Throws TransientError when the table cannot answer.
   */
  getStats(tenant: string, days: readonly string[]): Promise<Map<string, StatCounts>>;
}

export const STAT_COUNTERS = [
  'accepted',
  'rejected',
  'suppressed',
  'sent',
  'delivered',
  'bounced',
  'complained',
  'failed',
] as const;
export type StatCounter = (typeof STAT_COUNTERS)[number];
/** Some of the counters of one tenant and day. */
export type StatCounts = Readonly<Partial<Record<StatCounter, number>>>;

/** A stored first response to an Idempotency-Key. */
export interface IdempotencyRecord {
  readonly pk: string;
  readonly bodyHash: string;
  /**
   * `done`: the response is final and every repeat gets it. `partial`: the response holds parts a
   * retry could change (a 207 with per-message 429 or 5xx); a repeat takes the key back
   * (`resume`) and runs only those parts again.
   */
  readonly state: 'in_progress' | 'done' | 'partial';
  /** Epoch ms until which an in-progress holder is presumed alive. */
  readonly lockUntil: number;
  /** Epoch seconds; the record (and the key's meaning) lapses after 24 h. */
  readonly expiresAt: number;
  /**
   * Who holds the key (a random token per request). When the answer to `begin` is lost and the
   * SDK's retry finds the record, the request recognises its own lock instead of waiting it out.
   */
  readonly owner?: string;
  readonly response?: { readonly status: number; readonly body: unknown };
}

export interface IdempotencyStore {
  /** Creates the record unless a live one exists. True when this request now owns the key. */
  begin(record: IdempotencyRecord, nowSeconds: number): Promise<boolean>;
  get(pk: string): Promise<IdempotencyRecord | undefined>;
  /** Takes over an in-progress record whose holder's lock has run out; `owner` becomes its holder. */
  takeOver(pk: string, expiredLock: number, lockUntil: number, owner: string): Promise<boolean>;
  /**
   * Keeps the response: final (`done`), or `partial` (a later repeat may `resume` it). Does nothing
   * to a key that was released meanwhile.
   */
  complete(pk: string, response: { status: number; body: unknown }, partial?: boolean): Promise<void>;
  /**
   * Takes a `partial` record back into progress (its response stays) if `expectedOwner` still
   * holds it, i.e. nobody resumed it since it was read; `owner` becomes its holder. True if taken.
   */
  resume(pk: string, expectedOwner: string, lockUntil: number, owner: string): Promise<boolean>;
  /** Forgets the key (the request failed in a way a retry may fix). */
  release(pk: string): Promise<void>;
}

/** Transient-bounce counters per address (see soft-bounce.ts). */
export interface SoftBounceStore {
  get(address: string): Promise<SoftBounceState | undefined>;
  /** Writes the state if nobody changed it since `state.version` (0: if it did not exist). Throws ConflictError. */
  put(state: SoftBounceState): Promise<void>;
}

/** One page of a parallel-segment scan of the Messages table. */
export interface MessagePage {
  readonly records: MessageRecord[];
  /** Where the segment goes on (an opaque position); undefined once the segment is finished. */
  readonly next: string | undefined;
}

/**
 * Walks the whole Messages table, one segment of a parallel scan at a time, for erasure: there is
 * no index by recipient, so finding an address's records means reading every record of the tenant.
 */
export interface MessageScanner {
  /**
   * One page (at most 1 MB read) of `segment` out of `totalSegments`, holding only `tenant`'s
   * records, starting after the position `after` (from a previous page's `next`).
   * Throws InvalidCursorError for a position this scanner did not hand out.
   */
  scanTenant(tenant: string, segment: number, totalSegments: number, after?: string): Promise<MessagePage>;
}

/** Where an erasure that ran out of time continues (the erasure worker's queue). */
export interface ErasureQueue {
  enqueue(job: ErasureJob): Promise<void>;
}

/**
 * The abuse guard's hourly counters per key and per tenant (domain/guard/counters.ts), by atomic
 * addition, kept a little longer than the longest window the guard looks back over (30 days).
 */
export interface GuardCounters {
  /**
   * Adds every increment, batched: increments of one scope and hour become one write, whatever
   * their number. An increment with an `eventId` counts once per scope, across calls and within
   * one (a redelivered event changes nothing). Throws TransientError when the store throttles or
   * cannot answer; increments not counted then are counted by the next call with them, while
   * those already counted are not counted twice only if they carry an `eventId`.
   */
  add(increments: readonly GuardIncrement[]): Promise<void>;
  /**
   * The scope's buckets of the hours from `fromHour` to `toHour` (both included, `YYYY-MM-DDTHH`),
   * in ascending order; an hour nothing was counted in has no bucket. Never another scope's.
   */
  read(scope: GuardScopeRef, fromHour: string, toHour: string): Promise<HourBucket[]>;
}

/**
 * Held mail (domain/guard/hold.ts): the job of each held message kept (in the payload bucket) and
 * listed per tenant, until an operator releases or cancels it, or its hold expires.
 */
export interface HeldJobs {
  /** Keeps the job and lists the entry; keeping the same message again changes nothing. */
  keep(entry: HeldEntry, job: SendJob): Promise<void>;
  /** The tenant's held entries, oldest first; `lane` narrows to one lane. */
  list(
    tenant: string,
    options?: { readonly lane?: Lane; readonly limit?: number; readonly cursor?: string },
  ): Promise<{ readonly entries: HeldEntry[]; readonly cursor?: string }>;
  /** One entry, by message id. */
  get(tenant: string, id: string): Promise<HeldEntry | undefined>;
  /** The kept job; undefined when it is gone (released or cancelled meanwhile). */
  job(entry: HeldEntry): Promise<SendJob | undefined>;
  /** Forgets the entry and deletes its job (after release or cancel); a missing one is no error. */
  remove(entry: HeldEntry): Promise<void>;
}

/** What one request did to each recipient, as the abuse guard counts it (issue 13). */
export interface GuardRecipientTally {
  /** The recipient as accepted; only its domain is kept (new recipient domains), never logged. */
  readonly address: string;
  /**
   * `queued`: accepted for sending (counts as a send). `held`: accepted but held by the guard (not
   * a send until released). `suppressed`: refused at the door because it is suppressed.
   * `refused`: its message was refused by the content checks.
   */
  readonly outcome: 'queued' | 'held' | 'suppressed' | 'refused';
}

/** One applied feedback event about one recipient, as the abuse guard counts it. */
export interface GuardFeedback {
  /** Unique per event and recipient: a redelivered event counts once. */
  readonly eventId: string;
  readonly tenant: string;
  /** The key that sent the message (MessageRecord.keyId); absent on records older than the guard. */
  readonly keyId?: string;
  readonly recipient: string;
  /** `hardBounce` excludes OnAccountSuppressionList (the caller leaves those out). */
  readonly kind: 'hardBounce' | 'transientBounce' | 'complaint';
  /** When the event happened (its hour bucket). */
  readonly at: Date;
}

/** One released message, as the abuse guard counts it. */
export interface GuardRelease {
  readonly tenant: string;
  readonly keyId?: string;
  readonly messageId: string;
  /** Its recipients as released (only their domains matter: simulator recipients count locally only). */
  readonly recipients: readonly string[];
}

/** Whom an operator resumes. */
export type GuardTarget =
  | { readonly kind: 'tenant'; readonly tenant: string }
  | { readonly kind: 'key'; readonly keyId: string };

/** GET /v1/reputation's body (issue 13). */
export interface ReputationView {
  readonly standing: Standing;
  /** Per rule (`tenantHardBounce`, `keyHardBounce:<keyId>`...): the rate, or null when nothing was counted. */
  readonly rates: Readonly<Record<string, number | null>>;
  readonly sample: Readonly<Record<string, GuardSample & { readonly reached: boolean }>>;
  readonly window: Readonly<Record<string, SampleWindow>>;
  readonly keys: ReadonlyArray<{
    readonly keyId: string;
    readonly status: string;
    readonly reason: string | null;
  }>;
  readonly reasons: readonly string[];
}

/**
 * The abuse guard as the rest of Baton uses it (domain/guard/service.ts implements it): counting
 * where the events already flow, evaluating each scope at most once a minute, acting on the
 * decisions (suspend and throttle keys, pause or hold a tenant's mail), and the operator's resume.
 */
export interface Guard {
  /**
   * Counts what one request did for its key and tenant, then evaluates them when due. Never throws:
   * a guard failure must not refuse or lose mail (it is logged and counted as a metric).
   */
  recordAccept(key: ApiKey, recipients: readonly GuardRecipientTally[]): Promise<void>;
  /**
   * Counts feedback events (once per `eventId`) and evaluates their scopes when due. Throws
   * TransientError when the counters cannot be written, so the feedback is retried.
   */
  recordFeedback(events: readonly GuardFeedback[]): Promise<void>;
  /**
   * Counts the recipients of held messages an operator released (once per message id), so the
   * bounces they bring are taken over them. Never throws: a release must not fail on the guard.
   */
  recordRelease(released: readonly GuardRelease[]): Promise<void>;
  /** The tenant's standing, rates, samples, windows and keys (GET /v1/reputation). */
  reputation(tenant: string): Promise<ReputationView>;
  /**
   * An operator's resume: nothing in force any more, the window restarts now, probation (half
   * thresholds) follows. A key is made active again. Returns the new state.
   */
  resume(target: GuardTarget, reason: string): Promise<ScopeGuardState>;
}

/** A tenant's guard record (the Guard table's `tenant:<t>` / `state` item). */
export interface TenantGuardRecord {
  readonly tenant: string;
  readonly state: ScopeGuardState;
  /** The tenant's policy override (docs/guard.md "Per-tenant overrides"), validated when set. */
  readonly override?: GuardPolicyOverride;
  /** Optimistic-concurrency counter: every write checks and bumps it (0: no item yet). */
  readonly version: number;
}

/** The guard's own state in the Guard table (adapters/guard-state-store.ts). */
export interface GuardStateStore {
  /** The tenant's record; undefined for a tenant the guard never acted on. */
  tenant(tenant: string): Promise<TenantGuardRecord | undefined>;
  /** Writes the record if the stored version is still `record.version - 1` (absent for 1); false on a conflict. */
  putTenant(record: TenantGuardRecord): Promise<boolean>;
  /**
   * True when this caller may evaluate the scope now: nobody claimed it within `intervalMs` before
   * `now` (a conditional write, so instances that race agree on one winner).
   */
  claimEvaluation(scope: GuardScopeRef, now: Date, intervalMs: number): Promise<boolean>;
}

/** What the guard changes on the ApiKeys table (adapters/api-key-store.ts). */
export interface GuardKeyWriter {
  /**
   * Sets the key's own guard state (`ApiKey.guard.key`). `status: 'suspended'` suspends it (the guard's
   * suspendKey), `'active'` resumes it; a revoked key is never changed (ApiKeyRevokedError).
   * ApiKeyNotFoundError when there is no such key.
   */
  setKeyGuard(keyId: string, state: ScopeGuardState, status?: 'active' | 'suspended'): Promise<ApiKey>;
  /** Copies the tenant's state onto each of its keys (`ApiKey.guard.tenant`); returns those keys after the write. */
  markTenant(tenant: string, state: ScopeGuardState): Promise<ApiKey[]>;
  /** The tenant's keys (revoked ones included), for the reputation view and the tenant's key count. */
  keysOf(tenant: string): Promise<ApiKey[]>;
}
