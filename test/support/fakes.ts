/**
 * In-memory implementations of the ports in `lambdas/domain/ports.ts`, for unit tests. They keep
 * the semantics the domain relies on (conditional claims, optimistic versions, "only stronger
 * suppressions win") so a test that passes here means the same thing against DynamoDB; the
 * integration tier proves the real adapters behave like this.
 *
 * Failures are injected with `vi.spyOn(fake, 'method').mockRejectedValueOnce(...)`, races with
 * `InMemoryMessageStore.beforeNextUpdate`.
 */

import type { ErasureJob } from '../../lambdas/domain/erasure/erasure.ts';
import type { SoftBounceState } from '../../lambdas/domain/feedback/soft-bounce.ts';
import {
  checkIncrement,
  checkScope,
  GUARD_RETENTION_DAYS,
  type GuardCounter,
  type GuardIncrement,
  type GuardScopeRef,
  type HourBucket,
  hoursToRead,
  scopeName,
} from '../../lambdas/domain/guard/counters.ts';
import type { ScopeGuardState } from '../../lambdas/domain/guard/evaluate.ts';
import type { HeldEntry } from '../../lambdas/domain/guard/hold.ts';
import {
  type ApiKey,
  ApiKeyNotFoundError,
  ApiKeyRevokedError,
  type ApiKeySummary,
  generateApiKey,
  hashToken,
  type KeyStatus,
  summarise,
} from '../../lambdas/domain/keys/api-key.ts';
import { assertRelayNetworksFree } from '../../lambdas/domain/keys/relay.ts';
import { type MessageRecord, type SendJob, waitsForClaim } from '../../lambdas/domain/message.ts';
import type {
  ApiKeyDirectory,
  ApiKeyReader,
  ClaimResult,
  Clock,
  ErasureQueue,
  Guard,
  GuardCounters,
  GuardFeedback,
  GuardKeyWriter,
  GuardRecipientTally,
  GuardRelease,
  GuardStateStore,
  GuardTarget,
  HeldJobs,
  IdempotencyRecord,
  IdempotencyStore,
  JobQueue,
  Mailer,
  MessagePage,
  MessageScanner,
  MessageStore,
  OutboundMail,
  ReputationView,
  SoftBounceStore,
  StatCounter,
  SuppressionStore,
  TenantGuardRecord,
  UsageStore,
} from '../../lambdas/domain/ports.ts';
import { type Suppression, stronger } from '../../lambdas/domain/suppression/suppression.ts';
import { ConflictError } from '../../lambdas/shared/errors.ts';
import type { Lane } from '../../lambdas/shared/names.ts';

/** Stores hand out copies, as a database would: a caller mutating a result changes nothing stored. */
const copy = <T>(value: T): T => structuredClone(value);

/**
 * The Messages table: whole records, a conditional claim, version-checked replacement, and a
 * parallel-segment scan (records spread over segments by id, pages of `scanPageSize` in id order).
 */
export class InMemoryMessageStore implements MessageStore, MessageScanner {
  readonly #items = new Map<string, MessageRecord>();
  readonly #beforeUpdate: Array<() => void | Promise<void>> = [];
  #claims = 0;
  /** Records read per scan page (DynamoDB reads up to 1 MB), whatever their tenant. */
  scanPageSize = 100;
  /** Runs before each scan page: a test moves the clock here to spend the time budget. */
  onScanPage: (() => void | Promise<void>) | undefined;
  /** Every `scanTenant` call, in order. */
  readonly scans: Array<{ readonly segment: number; readonly after: string | undefined }> = [];

  /** Puts records in place without any condition (test set-up). */
  seed(...records: MessageRecord[]): this {
    for (const r of records) this.#items.set(r.id, copy(r));
    return this;
  }

  /** The stored record, synchronously (for assertions). */
  peek(id: string): MessageRecord | undefined {
    const r = this.#items.get(id);
    return r === undefined ? undefined : copy(r);
  }

  /** Overwrites a record as a concurrent writer would (bumping its version), e.g. from a hook. */
  write(record: MessageRecord): void {
    this.#items.set(record.id, copy(record));
  }

  /**
   * Runs `hook` once, right before the next `update` checks its condition: the way to simulate a
   * concurrent writer (feedback landing between the sender's read and its write).
   */
  beforeNextUpdate(hook: () => void | Promise<void>): void {
    this.#beforeUpdate.push(hook);
  }

  async create(record: MessageRecord): Promise<void> {
    if (this.#items.has(record.id)) throw new ConflictError(`message ${record.id} exists already`);
    this.#items.set(record.id, copy(record));
  }

  async createMany(records: readonly MessageRecord[]): Promise<void> {
    for (const r of records) this.#items.set(r.id, copy(r));
  }

  /** Always consistent: the options are the adapter's, read here only by tests that spy on them. */
  async get(id: string, _options?: { readonly consistent?: boolean }): Promise<MessageRecord | undefined> {
    return this.peek(id);
  }

  async findBySesMessageId(sesMessageId: string): Promise<MessageRecord | undefined> {
    for (const r of this.#items.values()) if (r.sesMessageId === sesMessageId) return copy(r);
    return undefined;
  }

  async scanTenant(
    tenant: string,
    segment: number,
    totalSegments: number,
    after?: string,
  ): Promise<MessagePage> {
    this.scans.push({ segment, after });
    await this.onScanPage?.();
    const ids = [...this.#items.keys()]
      .filter((id) => segmentOf(id, totalSegments) === segment && (after === undefined || id > after))
      .sort();
    const page = ids.slice(0, this.scanPageSize);
    return {
      records: page
        .map((id) => copy(this.#items.get(id) as MessageRecord))
        .filter((r) => r.tenant === tenant),
      next: ids.length > page.length ? page[page.length - 1] : undefined,
    };
  }

  /** Same condition as the DynamoDB adapter: queued, or sending with a claim that has run out. */
  async claim(id: string, now: Date, leaseMs: number): Promise<ClaimResult> {
    const current = this.#items.get(id);
    if (current === undefined) return { outcome: 'missing' };
    const expired =
      current.phase === 'sending' && current.claimUntil !== undefined && current.claimUntil < now.getTime();
    const redriven =
      current.phase === 'failed' &&
      current.redrivable === true &&
      (current.claimUntil === undefined || current.claimUntil < now.getTime());
    if (current.phase === 'queued' || expired || redriven) {
      this.#claims += 1;
      const token = `claim-${this.#claims}`;
      const claimed: MessageRecord = {
        ...current,
        phase: 'sending',
        claimToken: token,
        claimUntil: now.getTime() + leaseMs,
        version: current.version + 1,
      };
      this.#items.set(id, claimed);
      return { outcome: 'claimed', record: copy(claimed), token };
    }
    return waitsForClaim(current, now)
      ? { outcome: 'busy', record: copy(current) }
      : { outcome: 'done', record: copy(current) };
  }

  async release(id: string, token: string): Promise<void> {
    const current = this.#items.get(id);
    // Someone else holds or finished it: nothing of ours to give back (as the adapter does).
    if (current === undefined || current.claimToken !== token || current.phase !== 'sending') return;
    const { claimToken: _t, claimUntil: _u, ...rest } = current;
    this.#items.set(id, { ...rest, phase: 'queued', version: current.version + 1 });
  }

  async update(next: MessageRecord, expectedVersion: number, claimToken?: string): Promise<void> {
    const hook = this.#beforeUpdate.shift();
    if (hook) await hook();
    const current = this.#items.get(next.id);
    if (
      current === undefined ||
      current.version !== expectedVersion ||
      // As the adapter: a claim token, when given, must still be the record's.
      (claimToken && current.claimToken !== claimToken)
    ) {
      throw new ConflictError(`message ${next.id} changed since version ${expectedVersion}`);
    }
    this.#items.set(next.id, copy(next));
  }
}

/**
 * The Suppressions table: global entries keyed by normalised address, a tenant's entries by tenant
 * and address (as the adapter's `tenant:<tenant>:<address>`). Expired items stay until read, like TTL.
 */
export class InMemorySuppressionStore implements SuppressionStore {
  readonly #items = new Map<string, Suppression>();
  /** The keys of every `getMany` call, so a test can check a batch reads the list once. */
  readonly getManyCalls: string[][] = [];

  static #key(address: string, tenant: string | undefined): string {
    return tenant === undefined ? address : `${tenant}\u0000${address}`;
  }

  seed(...suppressions: Suppression[]): this {
    for (const s of suppressions)
      this.#items.set(InMemorySuppressionStore.#key(s.address, s.tenant), copy(s));
    return this;
  }

  /** The entry of one scope only: the global one, or with `tenant` that tenant's. */
  peek(address: string, tenant?: string): Suppression | undefined {
    const s = this.#items.get(InMemorySuppressionStore.#key(address, tenant));
    return s === undefined ? undefined : copy(s);
  }

  async getMany(addresses: readonly string[], tenant?: string): Promise<Map<string, Suppression>> {
    this.getManyCalls.push([...addresses]);
    const found = new Map<string, Suppression>();
    for (const address of new Set(addresses)) {
      const s = this.#merged(address, tenant);
      if (s) found.set(s.address, s);
    }
    return found;
  }

  async get(address: string, tenant?: string): Promise<Suppression | undefined> {
    return this.#merged(address, tenant);
  }

  #merged(address: string, tenant: string | undefined): Suppression | undefined {
    return stronger(this.peek(address), tenant === undefined ? undefined : this.peek(address, tenant));
  }

  /** Same condition as the adapter: absent, or strictly weaker than the new one. */
  async putIfStronger(s: Suppression): Promise<boolean> {
    const current = this.peek(s.address, s.tenant);
    if (current !== undefined && !(current.severity < s.severity)) return false;
    this.seed(s);
    return true;
  }

  async put(s: Suppression): Promise<void> {
    this.seed(s);
  }

  async delete(address: string, tenant?: string): Promise<void> {
    this.#items.delete(InMemorySuppressionStore.#key(address, tenant));
  }

  /**
   * Global entries and the tenant's, in key order; the cursor is the last key of the page,
   * base64url (the adapter seals its cursors; a fake need not).
   */
  async list(
    limit: number,
    cursor?: string,
    tenant?: string,
  ): Promise<{ items: Suppression[]; nextCursor: string | null }> {
    const after = cursor === undefined ? undefined : Buffer.from(cursor, 'base64url').toString('utf8');
    const all = [...this.#items.keys()]
      .sort()
      .filter((k) => after === undefined || k > after)
      .filter((k) => {
        const s = this.#items.get(k);
        return s !== undefined && (s.tenant === undefined ? s.address.includes('@') : s.tenant === tenant);
      });
    const page = all.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((k) => copy(this.#items.get(k) as Suppression)),
      nextCursor:
        all.length > limit && last !== undefined ? Buffer.from(last, 'utf8').toString('base64url') : null,
    };
  }
}

/** Which scan segment an id falls in (DynamoDB hashes the partition key; any stable spread will do). */
function segmentOf(id: string, totalSegments: number): number {
  let sum = 0;
  for (const char of id) sum += char.charCodeAt(0);
  return sum % totalSegments;
}

/** The erasure worker's queue: jobs in the order they were enqueued. */
export class InMemoryErasureQueue implements ErasureQueue {
  readonly jobs: ErasureJob[] = [];

  async enqueue(job: ErasureJob): Promise<void> {
    this.jobs.push(copy(job));
  }
}

/** The lane queues: jobs in the order they were enqueued. */
export class InMemoryJobQueue implements JobQueue {
  readonly jobs: Array<{ readonly lane: Lane; readonly job: SendJob }> = [];

  /** Ids of jobs whose enqueue fails (as one entry of an SQS batch can). */
  readonly failing = new Set<string>();

  async enqueue(lane: Lane, job: SendJob): Promise<void> {
    if (this.failing.has(job.id)) throw new Error(`queue refused ${job.id}`);
    this.jobs.push({ lane, job: copy(job) });
  }

  async enqueueMany(items: ReadonlyArray<{ lane: Lane; job: SendJob }>): Promise<Array<Error | undefined>> {
    const results: Array<Error | undefined> = [];
    for (const { lane, job } of items) {
      try {
        await this.enqueue(lane, job);
        results.push(undefined);
      } catch (error) {
        results.push(error as Error);
      }
    }
    return results;
  }
}

/** The Stats table: quota usage per key and day, statistics per tenant and day. */
export class InMemoryUsageStore implements UsageStore {
  readonly quota = new Map<string, number>();
  readonly stats = new Map<string, Partial<Record<StatCounter, number>>>();
  /** Every `addStats` call, in order: one entry per atomic write the adapter would make. */
  readonly statWrites: Array<{
    readonly tenant: string;
    readonly day: string;
    readonly counts: Partial<Record<StatCounter, number>>;
  }> = [];
  /** The days of every `getStats` call. */
  readonly statReads: string[][] = [];

  async consumeQuota(keyId: string, day: string, count: number, quota: number): Promise<boolean> {
    const used = this.quota.get(`${keyId}#${day}`) ?? 0;
    if (used + count > quota) return false;
    this.quota.set(`${keyId}#${day}`, used + count);
    return true;
  }

  async refundQuota(keyId: string, day: string, count: number): Promise<void> {
    const used = this.quota.get(`${keyId}#${day}`);
    // As the adapter: never below zero.
    if (used !== undefined && used >= count) this.quota.set(`${keyId}#${day}`, used - count);
  }

  async quotaUsed(keyId: string, day: string): Promise<number> {
    return this.quota.get(`${keyId}#${day}`) ?? 0;
  }

  async addStats(
    tenant: string,
    day: string,
    counts: Readonly<Partial<Record<StatCounter, number>>>,
  ): Promise<void> {
    this.statWrites.push({ tenant, day, counts: { ...counts } });
    const current = this.stats.get(`${tenant}#${day}`) ?? {};
    for (const [name, value] of Object.entries(counts) as Array<[StatCounter, number]>) {
      current[name] = (current[name] ?? 0) + value;
    }
    this.stats.set(`${tenant}#${day}`, current);
  }

  /** As the adapter: the days that have an item, others absent. */
  async getStats(
    tenant: string,
    days: readonly string[],
  ): Promise<Map<string, Partial<Record<StatCounter, number>>>> {
    this.statReads.push([...days]);
    const found = new Map<string, Partial<Record<StatCounter, number>>>();
    for (const day of days) {
      const counts = this.stats.get(`${tenant}#${day}`);
      if (counts !== undefined) found.set(day, { ...counts });
    }
    return found;
  }
}

/**
 * The abuse guard's hourly counters, with the adapter's semantics: counts add up per scope and
 * hour, an increment with an event id counts once per scope (across calls and within one), invalid
 * increments are refused before anything is counted, and a read returns the hours that have a
 * bucket, in order.
 */
export class InMemoryGuardCounters implements GuardCounters {
  /** `scopeName` → hour → counts. */
  readonly #buckets = new Map<string, Map<string, Partial<Record<GuardCounter, number>>>>();
  readonly #counted = new Set<string>();
  /** Every `add` call's increments, in order (a call is one batch of writes in the adapter). */
  readonly adds: GuardIncrement[][] = [];

  async add(increments: readonly GuardIncrement[]): Promise<void> {
    for (const increment of increments) checkIncrement(increment);
    this.adds.push(copy([...increments]));
    for (const { scope, hour, counts, eventId } of increments) {
      if (!Object.values(counts).some((n) => n > 0)) continue;
      const name = scopeName(scope);
      if (eventId !== undefined) {
        const once = JSON.stringify([name, eventId]);
        if (this.#counted.has(once)) continue;
        this.#counted.add(once);
      }
      const hours = this.#buckets.get(name) ?? new Map<string, Partial<Record<GuardCounter, number>>>();
      this.#buckets.set(name, hours);
      const bucket = hours.get(hour) ?? {};
      hours.set(hour, bucket);
      for (const [counter, n] of Object.entries(counts) as Array<[GuardCounter, number]>) {
        if (n > 0) bucket[counter] = (bucket[counter] ?? 0) + n;
      }
    }
  }

  async read(scope: GuardScopeRef, fromHour: string, toHour: string): Promise<HourBucket[]> {
    checkScope(scope);
    const hours = this.#buckets.get(scopeName(scope));
    return hoursToRead(fromHour, toHour, GUARD_RETENTION_DAYS * 24).flatMap((hour) => {
      const counts = hours?.get(hour);
      return counts === undefined ? [] : [{ hour, counts: { ...counts } }];
    });
  }
}

/** The Idempotency table, with the adapter's conditions. */
export class InMemoryIdempotencyStore implements IdempotencyStore {
  readonly records = new Map<string, IdempotencyRecord>();

  async begin(record: IdempotencyRecord, nowSeconds: number): Promise<boolean> {
    const existing = this.records.get(record.pk);
    if (existing && existing.expiresAt >= nowSeconds) return false;
    this.records.set(record.pk, copy(record));
    return true;
  }

  async get(pk: string): Promise<IdempotencyRecord | undefined> {
    const r = this.records.get(pk);
    return r === undefined ? undefined : copy(r);
  }

  async takeOver(pk: string, expiredLock: number, lockUntil: number, owner: string): Promise<boolean> {
    const r = this.records.get(pk);
    if (r?.state !== 'in_progress' || r.lockUntil !== expiredLock) return false;
    this.records.set(pk, { ...r, lockUntil, owner });
    return true;
  }

  async complete(pk: string, response: { status: number; body: unknown }, partial = false): Promise<void> {
    const r = this.records.get(pk);
    if (r) this.records.set(pk, { ...r, state: partial ? 'partial' : 'done', response: copy(response) });
  }

  async resume(pk: string, expectedOwner: string, lockUntil: number, owner: string): Promise<boolean> {
    const r = this.records.get(pk);
    if (r?.state !== 'partial' || r.owner !== expectedOwner) return false;
    this.records.set(pk, { ...r, state: 'in_progress', lockUntil, owner });
    return true;
  }

  async release(pk: string): Promise<void> {
    this.records.delete(pk);
  }
}

/** Transient-bounce counters, with the adapter's version check. */
export class InMemorySoftBounceStore implements SoftBounceStore {
  readonly states = new Map<string, SoftBounceState>();

  async get(address: string): Promise<SoftBounceState | undefined> {
    const s = this.states.get(address);
    return s === undefined ? undefined : copy(s);
  }

  async put(state: SoftBounceState): Promise<void> {
    const current = this.states.get(state.address)?.version ?? 0;
    if (current !== state.version) throw new ConflictError('the soft-bounce counter changed meanwhile');
    this.states.set(state.address, copy({ ...state, version: state.version + 1 }));
  }
}

/** SES: records every attempt; answers with `ses-1`, `ses-2`... unless told otherwise. */
export class FakeMailer implements Mailer {
  /** Every call, including the ones that threw. */
  readonly attempts: OutboundMail[] = [];
  /** The calls SES accepted. */
  readonly sent: OutboundMail[] = [];
  readonly #outcomes: Array<string | Error> = [];
  #ids = 0;

  /** What the next calls do, in order: an SES message id to return, or an error to throw. */
  willAnswer(...outcomes: Array<string | Error>): this {
    this.#outcomes.push(...outcomes);
    return this;
  }

  async send(mail: OutboundMail): Promise<string> {
    this.attempts.push(mail);
    const outcome = this.#outcomes.shift();
    if (outcome instanceof Error) throw outcome;
    this.sent.push(mail);
    this.#ids += 1;
    return outcome ?? `ses-${this.#ids}`;
  }
}

/** The ApiKeys table. */
export class InMemoryApiKeys implements ApiKeyReader, ApiKeyDirectory {
  readonly #keys = new Map<string, ApiKey>();

  add(...keys: ApiKey[]): this {
    for (const k of keys) this.#keys.set(k.keyId, copy(k));
    return this;
  }

  async get(keyId: string): Promise<ApiKey | undefined> {
    const k = this.#keys.get(keyId);
    return k === undefined ? undefined : copy(k);
  }

  /** As `DynamoApiKeyStore.put`: writes or replaces the key. */
  async put(key: ApiKey): Promise<void> {
    this.#keys.set(key.keyId, copy(key));
  }

  /**
   * As `DynamoApiKeyStore.create`: a new key, refused (RelayNetworksOverlapError) when it would
   * relay without AUTH for an address another non-revoked no-AUTH key relays for.
   */
  async create(key: ApiKey): Promise<void> {
    if (this.#keys.has(key.keyId)) throw new Error(`fake: key ${key.keyId} exists already`);
    assertRelayNetworksFree(key, [...this.#keys.values()]);
    this.#keys.set(key.keyId, copy(key));
  }

  /** As `DynamoApiKeyStore.list`: every key, by tenant then key id. */
  async list(): Promise<ApiKey[]> {
    return [...this.#keys.values()]
      .map((k) => copy(k))
      .sort((a, b) =>
        a.tenant === b.tenant ? a.keyId.localeCompare(b.keyId) : a.tenant.localeCompare(b.tenant),
      );
  }

  /** As `DynamoApiKeyStore.setStatus`: the key must exist, and a revoked key stays revoked. */
  async setStatus(
    keyId: string,
    status: KeyStatus,
    now: Date = new Date(),
  ): Promise<{ previous: KeyStatus; key: ApiKeySummary }> {
    const current = this.#keys.get(keyId);
    if (current === undefined) throw new ApiKeyNotFoundError(keyId);
    if (current.status === 'revoked' && status !== 'revoked') throw new ApiKeyRevokedError(keyId);
    const next: ApiKey = { ...current, status, updatedAt: now.toISOString() };
    this.#keys.set(keyId, next);
    return { previous: current.status, key: summarise(copy(next)) };
  }
}

/** A key as Baton issues it: the token a client sends and the item stored (its hash only). */
export function issueApiKey(overrides: Partial<Omit<ApiKey, 'keyId' | 'secretHash'>> = {}): {
  token: string;
  key: ApiKey;
} {
  const { keyId, token } = generateApiKey();
  const key: ApiKey = {
    keyId,
    secretHash: hashToken(token),
    tenant: 'tenant-a',
    scopes: ['send', 'read', 'suppressions'],
    allowedDomains: ['example.com'],
    allowedCidrs: [],
    senderPolicy: 'reject',
    status: 'active',
    createdAt: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
  return { token, key };
}

export interface TestClock extends Clock {
  /** Moves time forward by `ms`. */
  advance(ms: number): void;
  /** Jumps to an ISO time. */
  set(iso: string): void;
}

/** A clock that only moves when told to. */
export function testClock(start = '2025-03-01T12:00:00.000Z'): TestClock {
  let now = Date.parse(start);
  const clock = (() => new Date(now)) as TestClock;
  clock.advance = (ms) => {
    now += ms;
  };
  clock.set = (iso) => {
    now = Date.parse(iso);
  };
  return clock;
}

/** The sender's visibility port: records each delay instead of calling SQS. */
export class RecordingVisibility {
  readonly delays: Array<{ readonly messageId: string; readonly seconds: number }> = [];

  async delay(record: { readonly messageId: string }, seconds: number): Promise<void> {
    this.delays.push({ messageId: record.messageId, seconds });
  }
}

/** Held mail, with the adapter's semantics: keeping twice is one entry; lists oldest first per tenant. */
export class InMemoryHeldJobs implements HeldJobs {
  readonly entries = new Map<string, { entry: HeldEntry; job: SendJob }>();

  async keep(entry: HeldEntry, job: SendJob): Promise<void> {
    const id = JSON.stringify([entry.tenant, entry.id]);
    if (!this.entries.has(id)) this.entries.set(id, copy({ entry, job }));
  }

  async list(
    tenant: string,
    options: { readonly lane?: Lane; readonly limit?: number; readonly cursor?: string } = {},
  ): Promise<{ entries: HeldEntry[]; cursor?: string }> {
    const all = [...this.entries.values()]
      .map((e) => e.entry)
      .filter((e) => e.tenant === tenant && (options.lane === undefined || e.lane === options.lane))
      .sort((a, b) => a.heldAt.localeCompare(b.heldAt) || a.id.localeCompare(b.id));
    const start = options.cursor === undefined ? 0 : Number(options.cursor);
    const limit = options.limit ?? 100;
    const page = all.slice(start, start + limit);
    return start + limit < all.length
      ? { entries: copy(page), cursor: String(start + limit) }
      : { entries: copy(page) };
  }

  async get(tenant: string, id: string): Promise<HeldEntry | undefined> {
    const found = this.entries.get(JSON.stringify([tenant, id]));
    return found === undefined ? undefined : copy(found.entry);
  }

  async job(entry: HeldEntry): Promise<SendJob | undefined> {
    const found = this.entries.get(JSON.stringify([entry.tenant, entry.id]));
    return found === undefined ? undefined : copy(found.job);
  }

  async remove(entry: HeldEntry): Promise<void> {
    this.entries.delete(JSON.stringify([entry.tenant, entry.id]));
  }
}

/** A Guard that records what it was told, for the tests of its callers (front doors, sender, feedback). */
export class RecordingGuard implements Guard {
  readonly accepts: Array<{ keyId: string; tenant: string; recipients: GuardRecipientTally[] }> = [];
  readonly feedback: GuardFeedback[] = [];
  readonly released: GuardRelease[] = [];
  readonly resumes: Array<{ target: GuardTarget; reason: string }> = [];

  async recordAccept(key: ApiKey, recipients: readonly GuardRecipientTally[]): Promise<void> {
    this.accepts.push({ keyId: key.keyId, tenant: key.tenant, recipients: copy([...recipients]) });
  }

  async recordFeedback(events: readonly GuardFeedback[]): Promise<void> {
    this.feedback.push(...copy([...events]));
  }

  async recordRelease(released: readonly GuardRelease[]): Promise<void> {
    this.released.push(...copy([...released]));
  }

  async reputation(_tenant: string): Promise<ReputationView> {
    return { standing: 'good', rates: {}, sample: {}, window: {}, keys: [], reasons: [] };
  }

  async resume(target: GuardTarget, reason: string): Promise<ScopeGuardState> {
    this.resumes.push({ target, reason });
    return { actions: [], reinstatedAt: new Date(0).toISOString() };
  }
}

/**
 * The Guard table's tenant records and evaluation claims (adapters/guard-state-store.ts): a put
 * succeeds only over the version it names (`version - 1`, none for 1), a claim only when nobody
 * claimed the scope within the interval. `claims` counts every claim asked for, won or not.
 */
export class InMemoryGuardStateStore implements GuardStateStore {
  readonly records = new Map<string, TenantGuardRecord>();
  readonly #claimedAt = new Map<string, number>();
  claims = 0;

  async tenant(tenant: string): Promise<TenantGuardRecord | undefined> {
    const found = this.records.get(tenant);
    return found === undefined ? undefined : copy(found);
  }

  async putTenant(record: TenantGuardRecord): Promise<boolean> {
    const stored = this.records.get(record.tenant)?.version ?? 0;
    if (stored !== record.version - 1) return false;
    this.records.set(record.tenant, copy(record));
    return true;
  }

  async claimEvaluation(scope: GuardScopeRef, now: Date, intervalMs: number): Promise<boolean> {
    this.claims++;
    const name = scopeName(scope);
    const last = this.#claimedAt.get(name);
    if (last !== undefined && last > now.getTime() - intervalMs) return false;
    this.#claimedAt.set(name, now.getTime());
    return true;
  }
}

/**
 * The guard's writes to the ApiKeys table, over an `InMemoryApiKeys` (so a test reads the keys as
 * the front doors would): a revoked key is never changed, a missing one is ApiKeyNotFoundError.
 * `scans` counts `keysOf` calls (a Scan in the adapter).
 */
export class InMemoryGuardKeyWriter implements GuardKeyWriter {
  readonly keys: InMemoryApiKeys;
  scans = 0;

  constructor(keys: InMemoryApiKeys = new InMemoryApiKeys()) {
    this.keys = keys;
  }

  async setKeyGuard(keyId: string, state: ScopeGuardState, status?: 'active' | 'suspended'): Promise<ApiKey> {
    const current = await this.keys.get(keyId);
    if (current === undefined) throw new ApiKeyNotFoundError(keyId);
    if (current.status === 'revoked') throw new ApiKeyRevokedError(keyId);
    const next: ApiKey = {
      ...current,
      ...(status === undefined ? {} : { status }),
      guard: { ...current.guard, key: copy(state) },
    };
    await this.keys.put(next);
    return copy(next);
  }

  async markTenant(tenant: string, state: ScopeGuardState): Promise<ApiKey[]> {
    const marked: ApiKey[] = [];
    for (const key of (await this.keys.list()).filter((k) => k.tenant === tenant)) {
      const next: ApiKey = { ...key, guard: { ...key.guard, tenant: copy(state) } };
      await this.keys.put(next);
      marked.push(next);
    }
    return marked;
  }

  async keysOf(tenant: string): Promise<ApiKey[]> {
    this.scans++;
    return (await this.keys.list()).filter((k) => k.tenant === tenant);
  }
}
