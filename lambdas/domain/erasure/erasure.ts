import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { domainToUnicode } from 'node:url';
import { ConfigurationError, ConflictError, PermanentError } from '../../shared/errors.ts';
import { ERASED_KEY_PREFIX, SOFT_BOUNCE_KEY_PREFIX } from '../../shared/names.ts';
import { normaliseAddress } from '../address.ts';
import type { MessageRecord, TimelineEvent } from '../message.ts';
import type {
  Clock,
  ErasureQueue,
  MessageScanner,
  MessageStore,
  SoftBounceStore,
  SuppressionStore,
} from '../ports.ts';
import { isActive, operatorSuppression, SEVERITY, type Suppression } from '../suppression/suppression.ts';
import { rewrite } from '../versioned-write.ts';

/**
 * Erasure of a recipient (DESIGN §2 `DELETE /v1/recipients/{address}`, privacy law): the address
 * is replaced, in every message record of the tenant, by its pseudonym `erased:<hex>` (an HMAC
 * under a per-deployment secret), and a suppression tombstone keyed by that pseudonym keeps it
 * from ever being mailed again by that tenant. The tombstone is how Baton still recognises the
 * address without storing it: whoever presents the address again (a new message, a suppression
 * lookup) gets the same HMAC, while the table alone says nothing about whom it stands for.
 *
 * An erasure is the tenant's own business (domain/suppression/suppression.ts, scopes): its tombstone is the
 * tenant's entry, and it deletes only the tenant's own entry of the address. Global evidence (a
 * hard bounce, a complaint) stays as it is for every other tenant, who learn nothing of the
 * erasure; otherwise erasing would be a way for one tenant to lift a bounce for all of them.
 */

/** How much of the HMAC-SHA256 is kept: 96 bits, so distinct addresses never share a tombstone. */
const KEY_HEX_DIGITS = 24;
const ERASED_KEY = new RegExp(`^${ERASED_KEY_PREFIX}[0-9a-f]{${KEY_HEX_DIGITS}}$`);
/** A shorter secret is a configuration mistake (the stack generates 64 characters). */
export const MIN_SECRET_LENGTH = 32;
/**
 * Parallel scan segments. The whole table is read either way; segments only decide how much of it
 * is read at once (each one a 1 MB page at a time). Eight keeps an on-demand table far from its
 * throughput limits while covering a few hundred MB in the api's time budget. Fixed for the life of
 * an erasure: positions are only meaningful for the segment count they were taken with.
 */
export const ERASURE_SEGMENTS = 8;

/** The pseudonym of a normalised address: `erased:<first 24 hex digits of HMAC-SHA256>`. */
export type ErasedKeyOf = (normalisedAddress: string) => string;

/** Builds the pseudonym function from the erasure secret; the secret stays inside the closure. */
export function erasedKeyFunction(secret: string): ErasedKeyOf {
  if (secret.length < MIN_SECRET_LENGTH) {
    // Never the value, only its length: configuration errors are logged.
    throw new ConfigurationError(
      `the erasure secret must be at least ${MIN_SECRET_LENGTH} characters, got ${secret.length}`,
    );
  }
  const key: KeyObject = createSecretKey(Buffer.from(secret, 'utf8'));
  return (address) =>
    `${ERASED_KEY_PREFIX}${createHmac('sha256', key).update(address, 'utf8').digest('hex').slice(0, KEY_HEX_DIGITS)}`;
}

export function isErasedKey(value: string): boolean {
  return ERASED_KEY.test(value);
}

/** What logs may say about an erased address: the prefix and 8 hex digits of its pseudonym. */
export function loggableKey(key: string): string {
  return key.slice(0, ERASED_KEY_PREFIX.length + 8);
}

/** The pseudonym of an address as written anywhere (any case, Unicode domain), if it is one. */
function keyOfAddress(address: string | undefined, keyOf: ErasedKeyOf): string | undefined {
  if (address === undefined || isErasedKey(address)) return undefined;
  const normalised = normaliseAddress(address);
  return normalised === undefined ? undefined : keyOf(normalised);
}

/** Caches pseudonyms while a scan checks thousands of records (the same addresses recur). */
function memoised(keyOf: ErasedKeyOf, limit = 10_000): ErasedKeyOf {
  const cache = new Map<string, string>();
  return (address) => {
    let key = cache.get(address);
    if (key === undefined) {
      if (cache.size >= limit) cache.clear();
      key = keyOf(address);
      cache.set(address, key);
    }
    return key;
  };
}

// --- scrubbing ------------------------------------------------------------------------------------

/**
 * Every spelling of the addresses that text may hold: as written, normalised (punycode), and with
 * the domain in Unicode. Diagnostic codes quote the address (`550 5.1.1 <ana@example.org>: ...`).
 */
function spellings(addresses: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const address of addresses) {
    out.add(address.toLowerCase());
    const normalised = normaliseAddress(address);
    if (normalised === undefined) continue;
    out.add(normalised);
    const at = normalised.lastIndexOf('@');
    const unicode = domainToUnicode(normalised.slice(at + 1));
    if (unicode !== '') out.add(`${normalised.slice(0, at + 1)}${unicode}`.toLowerCase());
  }
  return [...out].filter((s) => s !== '');
}

/**
 * Replaces every spelling of `addresses` (case-insensitively, longest first, domain in punycode or
 * Unicode) by the pseudonym `key`: for any text that may quote an erased address.
 */
export function scrubber(addresses: Iterable<string>, key: string): (text: string) => string {
  const forms = spellings(addresses).sort((a, b) => b.length - a.length);
  if (forms.length === 0) return (text) => text;
  const pattern = new RegExp(forms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'giu');
  return (text) => text.replace(pattern, key);
}

// --- message records ------------------------------------------------------------------------------

/**
 * The record with the address erased, or undefined when the address is not one of its recipients
 * (nor of its events). Recipients and event recipients become the pseudonym; every text that could
 * quote the address (reasons, event details, subject, From) has each spelling of it replaced. The
 * record keeps its id, status and timeline shape, so the status API still tells what happened. Its
 * tags, which webhook payloads carry, are scrubbed too.
 */
export function eraseFromRecord(
  record: MessageRecord,
  key: string,
  keyOf: ErasedKeyOf,
): MessageRecord | undefined {
  const matches = (address: string | undefined): address is string => keyOfAddress(address, keyOf) === key;
  const found = new Set<string>();
  for (const r of record.recipients) if (matches(r.address)) found.add(r.address);
  for (const e of record.events) if (matches(e.recipient)) found.add(e.recipient);
  if (found.size === 0) return undefined;
  const scrub = scrubber(found, key);
  return {
    ...record,
    from: scrub(record.from),
    subject: scrub(record.subject),
    // Every webhook event of the message carries its tags (issue 14): a client may tag with the address.
    ...(record.tags === undefined
      ? {}
      : {
          tags: Object.fromEntries(
            Object.entries(record.tags).map(([name, value]) => [scrub(name), scrub(value)]),
          ),
        }),
    recipients: record.recipients.map((r) => ({
      ...r,
      address: matches(r.address) ? key : r.address,
      reason: r.reason === null ? null : scrub(r.reason),
    })),
    events: record.events.map((e) => scrubEvent(e, matches, scrub, key)),
    version: record.version + 1,
  };
}

function scrubEvent(
  e: TimelineEvent,
  matches: (address: string | undefined) => boolean,
  scrub: (text: string) => string,
  key: string,
): TimelineEvent {
  const { recipient, detail, ...rest } = e;
  return {
    ...rest,
    ...(recipient === undefined ? {} : { recipient: matches(recipient) ? key : recipient }),
    ...(detail === undefined
      ? {}
      : {
          detail: Object.fromEntries(
            Object.entries(detail).map(([name, value]) => [
              name,
              typeof value === 'string' ? scrub(value) : value,
            ]),
          ),
        }),
  };
}

// --- the tombstone --------------------------------------------------------------------------------

/**
 * The tombstone that replaces the address's suppression. An active suppression at least as strong
 * as `manual` carries over (reason, severity, source, createdAt, evidence), with the address
 * scrubbed from its words; anything weaker (a soft bounce, which would expire) or nothing becomes
 * `manual` with detail "erased". A tombstone never expires: erasure means never mailed again.
 */
export function tombstoneFor(
  address: string,
  key: string,
  prior: Suppression | undefined,
  now: Date,
  tenant: string,
): Suppression {
  if (prior === undefined || !isActive(prior, now) || prior.severity < SEVERITY.manual) {
    return operatorSuppression(key, 'manual', 'erased', now, tenant);
  }
  return asTombstone(prior, key, [address], tenant);
}

/**
 * `s` moved onto the tombstone key in the scope of `tenant` (global when undefined), with every
 * spelling of `addresses` scrubbed from its words.
 */
function asTombstone(
  s: Suppression,
  key: string,
  addresses: readonly string[],
  tenant: string | undefined,
): Suppression {
  const scrub = scrubber([...addresses, s.address], key);
  return {
    ...(tenant === undefined ? {} : { tenant }),
    address: key,
    reason: s.reason,
    detail: s.detail === null ? null : scrub(s.detail),
    source: s.source,
    createdAt: s.createdAt,
    expiresAt: null,
    severity: s.severity,
    ...(s.evidence
      ? { evidence: Object.fromEntries(Object.entries(s.evidence).map(([k, v]) => [k, scrub(v)])) }
      : {}),
  };
}

/** What the list says for an erased address: its tombstone, unless a stronger plain entry exists. */
function standing(address: string, plain: Suppression | undefined, tombstone: Suppression): Suppression {
  return plain && plain.severity > tombstone.severity
    ? { ...plain, erasedAs: tombstone.address }
    : { ...tombstone, address, erasedAs: tombstone.address };
}

/**
 * The suppression list as every check outside erasure must see it: each address is looked up under
 * its plain key and its tombstone key, in the global scope and the tenant's, in the same batched
 * read (four keys per recipient, so a 25-recipient message is still one BatchGetItem), and a
 * tombstone answers for the address it stands for. A tenant's writes for an address it erased
 * land on its tombstone, so the plain address is never stored again in its scope; global evidence
 * is written under the plain address (other tenants must see it) unless a tombstone from before
 * scopes exists, which is global. Deleting an address in a scope also deletes that scope's
 * tombstone: the tenant that erased an address, and only it, can lift the erasure.
 */
export class TombstoneAwareSuppressions implements SuppressionStore {
  readonly #inner: SuppressionStore;
  readonly #keyOf: ErasedKeyOf;

  constructor(inner: SuppressionStore, keyOf: ErasedKeyOf) {
    this.#inner = inner;
    this.#keyOf = keyOf;
  }

  /**
   * Keyed by the addresses asked for (a tombstone under the address it stands for, unless a
   * stronger plain suppression exists), and by each tombstone key found, so a record whose
   * recipient was already erased (`erased:<hex>`) finds its tombstone too.
   */
  async getMany(addresses: readonly string[], tenant?: string): Promise<Map<string, Suppression>> {
    const tombstoneKeys = new Map<string, string>();
    for (const address of new Set(addresses)) {
      if (!isErasedKey(address)) tombstoneKeys.set(address, this.#keyOf(address));
    }
    const found = await this.#inner.getMany([...new Set([...addresses, ...tombstoneKeys.values()])], tenant);
    const out = new Map(found);
    for (const [address, key] of tombstoneKeys) {
      const tombstone = found.get(key);
      if (tombstone === undefined) continue;
      out.set(address, standing(address, found.get(address), tombstone));
    }
    return out;
  }

  async get(address: string, tenant?: string): Promise<Suppression | undefined> {
    if (isErasedKey(address)) return this.#inner.get(address, tenant);
    // Single reads rather than a batch: every role that reads one suppression has GetItem.
    const [plain, tombstone] = await Promise.all([
      this.#inner.get(address, tenant),
      this.#inner.get(this.#keyOf(address), tenant),
    ]);
    return tombstone === undefined ? plain : standing(address, plain, tombstone);
  }

  async putIfStronger(s: Suppression, evidenceOf?: string): Promise<boolean> {
    return this.#inner.putIfStronger(await this.#onTombstone(s, s.tenant ?? evidenceOf));
  }

  async put(s: Suppression): Promise<void> {
    await this.#inner.put(await this.#onTombstone(s, s.tenant));
  }

  async delete(address: string, tenant?: string): Promise<void> {
    const keys = isErasedKey(address) ? [address] : [address, this.#keyOf(address)];
    await Promise.all(keys.map((k) => this.#inner.delete(k, tenant)));
  }

  list(
    limit: number,
    cursor?: string,
    tenant?: string,
  ): Promise<{ items: Suppression[]; nextCursor: string | null }> {
    return this.#inner.list(limit, cursor, tenant);
  }

  /**
   * `s` moved onto the tombstone that applies to `tenant` (its own, or a global one from before
   * scopes), in that tombstone's scope; `s` itself when there is none.
   */
  async #onTombstone(s: Suppression, tenant: string | undefined): Promise<Suppression> {
    if (isErasedKey(s.address)) return s;
    const key = this.#keyOf(s.address);
    const tombstone = await this.#inner.get(key, tenant);
    return tombstone === undefined ? s : asTombstone(s, key, [s.address], tombstone.tenant);
  }
}

// --- the scan ---------------------------------------------------------------------------------------

/** Where one scan segment stands. */
export interface SegmentPosition {
  readonly done: boolean;
  /** The scanner's position to continue after; absent before the first page. */
  readonly after?: string;
}

/**
 * An erasure in progress: what is being erased (the pseudonym only, never the address: a job that
 * ends in a dead-letter queue must not hold it) and how far each scan segment got. It is also the
 * erasure worker's queue message.
 */
export interface ErasureJob {
  readonly baton: 'erasure';
  readonly v: 1;
  readonly tenant: string;
  readonly key: string;
  readonly segments: number;
  readonly positions: readonly SegmentPosition[];
  /** Message records changed so far. */
  readonly erased: number;
  readonly startedAt: string;
  /** How many times the erasure has been continued. */
  readonly round: number;
}

/** What a scan step needs: the erasure worker has no business with the Suppressions table. */
export interface ErasureScanDeps {
  readonly messages: MessageScanner & Pick<MessageStore, 'get' | 'update'>;
  readonly queue: ErasureQueue;
  readonly keyOf: ErasedKeyOf;
  /** Also the time budget's clock: a scan stops starting pages once it passes the deadline. */
  readonly clock: Clock;
  /** @default ERASURE_SEGMENTS */
  readonly segments?: number;
}

export interface ErasureDeps extends ErasureScanDeps {
  /** The Suppressions table itself (not tombstone-aware): erasure handles both keys explicitly. */
  readonly suppressions: Pick<SuppressionStore, 'get' | 'getMany' | 'putIfStronger' | 'delete'>;
  /** The address's transient-bounce counter, which every tenant's mail fills. */
  readonly softBounces: SoftBounceStore;
}

export interface ErasureOutcome {
  readonly key: string;
  /** Message records this call changed. */
  readonly erased: number;
  /** False when the scan ran out of time and continues on the erasure queue. */
  readonly complete: boolean;
}

/**
 * DELETE /v1/recipients/{address} after authentication (`address` normalised):
 * 1. the tenant's tombstone is written (before anything is deleted, so the address is never
 *    unsuppressed), carrying over whatever applied to the tenant's mail (its own entry or global
 *    evidence);
 * 2. the tenant's own plain entry is deleted, and the tenant's messages are taken out of the
 *    address's soft-bounce counter (deleted once nothing is left); global entries and the other
 *    tenants' bounces stay: deleting the whole counter let any tenant, by erasing an address it
 *    never mailed, keep it from ever reaching soft-bounce suppression for everyone;
 * 3. the tenant's message records are scanned and rewritten until `budgetMs` has passed;
 * 4. what is left is queued for the erasure worker (if that fails, the call fails: a retry starts
 *    over, and finds the tombstone and the records already erased in place).
 * Idempotent: a second call finds nothing left to rewrite and keeps the tombstone.
 */
export async function eraseRecipient(
  deps: ErasureDeps,
  tenant: string,
  address: string,
  budgetMs: number,
): Promise<ErasureOutcome> {
  const now = deps.clock();
  const deadline = now.getTime() + budgetMs;
  const key = deps.keyOf(address);
  const prior = await deps.suppressions.get(address, tenant);
  await deps.suppressions.putIfStronger(tombstoneFor(address, key, prior, now, tenant));
  await Promise.all([deps.suppressions.delete(address, tenant), forgetSoftBounces(deps, tenant, address)]);

  const segments = deps.segments ?? ERASURE_SEGMENTS;
  const job: ErasureJob = {
    baton: 'erasure',
    v: 1,
    tenant,
    key,
    segments,
    positions: Array.from({ length: segments }, () => ({ done: false })),
    erased: 0,
    startedAt: now.toISOString(),
    round: 0,
  };
  const { job: next, complete } = await continueErasure(deps, job, deadline);
  return { key, erased: next.erased, complete };
}

/** Optimistic writes of the counter tried before the erasure fails (and is retried whole). */
const COUNTER_ATTEMPTS = 3;

/**
 * Takes the tenant's messages out of the address's soft-bounce counter, so it no longer ties them
 * to the address, and keeps the other tenants' (global evidence, as their bounces are). A message
 * whose record is gone counts as the tenant's: records outlive the counter's window, so it is stale
 * anyway. The counter is deleted when nothing is left.
 */
async function forgetSoftBounces(deps: ErasureDeps, tenant: string, address: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const state = await deps.softBounces.get(address);
    if (state === undefined) return;
    const ids = Object.keys(state.bounces);
    const records = await Promise.all(ids.map((id) => deps.messages.get(id)));
    const others = ids.filter((_, i) => {
      const owner = records[i]?.tenant;
      return owner !== undefined && owner !== tenant;
    });
    if (others.length === ids.length) return;
    if (others.length === 0) {
      await deps.suppressions.delete(`${SOFT_BOUNCE_KEY_PREFIX}${address}`);
      return;
    }
    const bounces = Object.fromEntries(others.map((id) => [id, state.bounces[id] ?? 0]));
    try {
      await deps.softBounces.put({ ...state, bounces });
      return;
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= COUNTER_ATTEMPTS) throw error;
    }
  }
}

export interface ContinuationOutcome {
  readonly job: ErasureJob;
  /** Records changed in this round. */
  readonly erased: number;
  readonly complete: boolean;
}

/**
 * The erasure worker's step: advance the scan until `deadline` (epoch ms), then queue what is left
 * as the next job. Re-running a job (a redelivery) only re-reads: erased records no longer match.
 */
export async function continueErasure(
  deps: ErasureScanDeps,
  job: ErasureJob,
  deadline: number,
): Promise<ContinuationOutcome> {
  const next = await advance(deps, job, deadline);
  const complete = isComplete(next);
  if (!complete) await deps.queue.enqueue({ ...next, round: next.round + 1 });
  return { job: next, erased: next.erased - job.erased, complete };
}

function isComplete(job: ErasureJob): boolean {
  return job.positions.every((p) => p.done);
}

/** Runs every unfinished segment in parallel, each page after page, until done or past `deadline`. */
async function advance(deps: ErasureScanDeps, job: ErasureJob, deadline: number): Promise<ErasureJob> {
  const keyOf = memoised(deps.keyOf);
  const positions = [...job.positions];
  let erased = job.erased;
  let failure: { readonly error: unknown } | undefined;
  // Settled, not all: when one segment fails the others stop at their next page instead of running
  // on after the function has answered; the step then fails as a whole and is retried.
  await Promise.allSettled(
    positions.map(async (start, segment) => {
      let position = start;
      try {
        while (!position.done && failure === undefined && deps.clock().getTime() < deadline) {
          const page = await deps.messages.scanTenant(job.tenant, segment, job.segments, position.after);
          const changed = await Promise.all(page.records.map((r) => eraseRecord(deps, r, job.key, keyOf)));
          erased += changed.filter(Boolean).length;
          position = page.next === undefined ? { done: true } : { done: false, after: page.next };
          positions[segment] = position;
        }
      } catch (error) {
        failure ??= { error };
      }
    }),
  );
  if (failure !== undefined) throw failure.error;
  return { ...job, positions, erased };
}

/** Rewrites one record if it holds the address (a record that expired meanwhile holds nothing). */
async function eraseRecord(
  deps: ErasureScanDeps,
  first: MessageRecord,
  key: string,
  keyOf: ErasedKeyOf,
): Promise<boolean> {
  return (await rewrite(deps.messages, first, (latest) => eraseFromRecord(latest, key, keyOf))) !== undefined;
}

// --- webhook payloads -----------------------------------------------------------------------------

/**
 * Webhook bodies (issue 14) as they may be sent again, by a replay: each address the tenant erased
 * since the event was produced (its tombstone exists) replaced by its pseudonym, in every spelling.
 * The replay log keeps the bodies as produced (they expire with it, WEBHOOK_LOG_DAYS); what is sent
 * from it goes through here. One batched read of the tombstones of the addresses the bodies name
 * (`data.recipient`, `data.address`). A body that is not JSON is answered as it is.
 */
export async function eraseFromWebhookBodies(
  deps: Pick<ErasureDeps, 'keyOf'> & { readonly suppressions: Pick<SuppressionStore, 'getMany'> },
  tenant: string,
  bodies: readonly string[],
): Promise<string[]> {
  const keyOf = memoised(deps.keyOf);
  const named = bodies.map((body): { address: string; key: string } | undefined => {
    let data: unknown;
    try {
      data = (JSON.parse(body) as { data?: unknown }).data;
    } catch {
      return undefined;
    }
    if (typeof data !== 'object' || data === null) return undefined;
    const { recipient, address } = data as { recipient?: unknown; address?: unknown };
    const named =
      typeof recipient === 'string' ? recipient : typeof address === 'string' ? address : undefined;
    const key = keyOfAddress(named, keyOf);
    return named === undefined || key === undefined ? undefined : { address: named, key };
  });
  const keys = [...new Set(named.flatMap((n) => (n === undefined ? [] : [n.key])))];
  if (keys.length === 0) return [...bodies];
  const tombstones = await deps.suppressions.getMany(keys, tenant);
  return bodies.map((body, i) => {
    const n = named[i];
    return n !== undefined && tombstones.has(n.key) ? scrubber([n.address], n.key)(body) : body;
  });
}

// --- the queue message ------------------------------------------------------------------------------

/** Not an erasure job. Retrying cannot help: it belongs in the dead-letter queue. */
export class MalformedErasureJobError extends PermanentError {
  override readonly name: string = 'MalformedErasureJobError';
}

/** Parses and checks an erasure queue message. */
export function parseErasureJob(body: string): ErasureJob {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new MalformedErasureJobError('the erasure job is not JSON');
  }
  const job = value as Partial<ErasureJob> | null;
  const segments = job?.segments;
  const positions = job?.positions;
  if (
    job?.baton !== 'erasure' ||
    job.v !== 1 ||
    typeof job.tenant !== 'string' ||
    job.tenant === '' ||
    typeof job.key !== 'string' ||
    !isErasedKey(job.key) ||
    typeof segments !== 'number' ||
    !Number.isInteger(segments) ||
    segments < 1 ||
    segments > 1000 ||
    !Array.isArray(positions) ||
    positions.length !== segments ||
    !positions.every(isPosition) ||
    typeof job.erased !== 'number' ||
    typeof job.startedAt !== 'string' ||
    typeof job.round !== 'number'
  ) {
    throw new MalformedErasureJobError('not a Baton erasure job');
  }
  return job as ErasureJob;
}

function isPosition(value: unknown): value is SegmentPosition {
  const p = value as Partial<SegmentPosition> | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.done === 'boolean' &&
    (p.after === undefined || (typeof p.after === 'string' && p.after !== '' && p.after.length <= 2048))
  );
}
