import { ConflictError } from '../../shared/errors.ts';
import type { Lane } from '../../shared/names.ts';
import { Pacer } from '../delivery/pacer.ts';
import { markFailed } from '../delivery/send.ts';
import type { MessageRecord, SendJob } from '../message.ts';
import type {
  ApiKeyReader,
  Clock,
  Guard,
  GuardStateStore,
  GuardTarget,
  HeldJobs,
  JobQueue,
  MessageStore,
} from '../ports.ts';
import type { WebhookPublisher } from '../webhooks/ports.ts';
import { publishChanges, WebhookBuffer } from '../webhooks/produce.ts';
import type { ScopeGuardState } from './evaluate.ts';
import {
  expiryReason,
  type HeldEntry,
  heldEntry,
  holdExpired,
  markHoldFailed,
  markReleased,
  withHold,
} from './hold.ts';
import { type GuardPolicy, type GuardPolicyOverride, resolveGuardPolicy } from './policy.ts';
import { holdFor } from './state.ts';

/**
 * The operator's side of the abuse guard (issue 13): list, release and cancel held mail, resume a
 * tenant or key. Only operators get here (the `admin` scope, or the `npm run guard` CLI with table
 * access): a stolen key must never release its own mail.
 *
 * Release does not check suppressions: the sender checks them before each send (sendJob), after
 * release as for any queued message. It does re-check the guard, per message, at the pace of the
 * lane, so a hold that trips again while mail is being released stops the rest.
 */
export interface GuardOperationsDeps {
  readonly messages: Pick<MessageStore, 'get' | 'update'>;
  readonly held: HeldJobs;
  readonly queue: Pick<JobQueue, 'enqueue'>;
  /** The keys as they stand now: their `guard` mark carries the tenant's state too. */
  readonly keys: ApiKeyReader;
  readonly guard: Pick<Guard, 'resume' | 'reputation' | 'recordRelease'>;
  readonly clock: Clock;
  /**
   * Told message.released and message.failed (cancelled, or the hold expired) once a call is done,
   * for every record it wrote (issue 14). Absent: nothing is published.
   */
  readonly webhooks?: WebhookPublisher;
}

/** Which held messages of a tenant: by id, by lane, or all of them. */
export type HeldSelection =
  | { readonly ids: readonly string[] }
  | { readonly lane: Lane }
  | { readonly all: true };

/** A held entry as listed: `expired` once its hold has run out (release and cancel fail it). */
export type HeldListing = HeldEntry & { readonly expired: boolean };

export async function listHeld(
  deps: Pick<GuardOperationsDeps, 'held' | 'clock'>,
  tenant: string,
  options: { readonly lane?: Lane; readonly cursor?: string; readonly limit?: number } = {},
): Promise<{ readonly entries: HeldListing[]; readonly cursor?: string }> {
  const now = deps.clock().getTime();
  const page = await deps.held.list(tenant, options);
  const entries = page.entries.map((e) => ({ ...e, expired: Date.parse(e.until) <= now }));
  return page.cursor === undefined ? { entries } : { entries, cursor: page.cursor };
}

/**
 * What happened to one selected message.
 * - `released`: queued for its lane again (or it had been, by a release that stopped half-way).
 * - `cancelled`: failed for good with the operator's reason.
 * - `expired`: its hold had run out: failed for good (hold.ts `expiryReason`).
 * - `held`: still held, `reason` says why (the hold still applies: resume first; or the queue
 *   refused it: run release again).
 * - `missing`: nothing held under that id for the tenant (never held, another tenant's, already
 *   released, sent or cancelled).
 * - `deferred`: not reached before the deadline; still held, run release again.
 */
export type HeldOutcome =
  | { readonly id: string; readonly outcome: 'released'; readonly lane: Lane }
  | { readonly id: string; readonly outcome: 'cancelled' }
  | { readonly id: string; readonly outcome: 'expired'; readonly reason: string }
  | { readonly id: string; readonly outcome: 'held'; readonly reason: string }
  | { readonly id: string; readonly outcome: 'missing'; readonly reason: string }
  | { readonly id: string; readonly outcome: 'deferred' };

export type OutcomeKind = HeldOutcome['outcome'];

export interface HeldResult {
  readonly counts: Readonly<Record<OutcomeKind, number>>;
  readonly outcomes: readonly HeldOutcome[];
  /** True when the selection held more than `maxEntries`: run the same request again for the rest. */
  readonly more: boolean;
}

/** How much one call takes on: the api function has 10 s and 6 MB of answer; the CLI no limit. */
export interface HeldBatchLimits {
  /** At most this many held messages are selected (oldest first); `more` says when there were others. */
  readonly maxEntries?: number;
  /** Epoch ms (by the clock) after which no more messages are touched: they are `deferred`. */
  readonly deadline?: number;
}

/**
 * Recipients per second per lane a release enqueues at when the lanes' own rates are not known
 * (the api function, `npm run guard` without --rate): 1 is SES's lowest sending rate, so it is
 * never above a lane's.
 */
export const DEFAULT_RELEASE_RATE = 1;

export interface ReleasePacing {
  /** Recipients per second each lane sends at (its share of the SES rate): release enqueues no faster. */
  readonly ratePerSecond: Readonly<Record<Lane, number>>;
  readonly sleep: (ms: number) => Promise<unknown>;
  /**
   * Epoch ms (by `clock`) after which nothing more is enqueued: what is left is `deferred`, and a
   * second release carries on. The api function has 10 s; the CLI none.
   */
  readonly deadline?: number;
  /** At most this many held messages per call (HeldBatchLimits). */
  readonly maxEntries?: number;
  /** The pacing clock. @default deps.clock (a steady clock is better for long runs) */
  readonly clock?: Clock;
}

/**
 * Releases held mail: each message back to queued (a `released` event with `reason`), its kept job
 * enqueued on its lane, its entry removed, in that order. Run twice, it sends nothing twice:
 * a released message has no entry any more; one whose release stopped after the record was written
 * (record queued, entry still there) is enqueued again, which the sender's claim makes harmless.
 *
 * Refused per message while the hold still applies now (the key suspended, or the tenant's state
 * holding the lane): an operator resumes first. A message whose hold expired is failed instead.
 * When the queue refuses a job, the record goes back to held (entry kept), so an unanswered
 * release never leaves a message queued with no job: it stays held, and expires if nobody acts.
 */
export async function releaseHeld(
  deps: GuardOperationsDeps,
  tenant: string,
  selection: HeldSelection,
  reason: string,
  pacing: ReleasePacing,
): Promise<HeldResult> {
  const { entries, more } = await selected(deps, tenant, selection, pacing.maxEntries);
  const paceClock = pacing.clock ?? deps.clock;
  const pacers = new Map<Lane, Pacer>();
  const pacerOf = (lane: Lane): Pacer => {
    let pacer = pacers.get(lane);
    if (pacer === undefined) {
      pacer = new Pacer(pacing.ratePerSecond[lane], paceClock, pacing.sleep);
      pacers.set(lane, pacer);
    }
    return pacer;
  };
  const outcomes: HeldOutcome[] = [];
  await withBufferedWebhooks(deps, async (ops) => {
    for (const found of entries) {
      if ('missing' in found) {
        outcomes.push(found.missing);
        continue;
      }
      const pastDeadline = (wait: number) =>
        pacing.deadline === undefined ? false : paceClock().getTime() + wait > pacing.deadline;
      // Not even read once the time is up: a release of thousands must still answer in time.
      if (pastDeadline(pacerOf(found.entry.lane).delayFor(1))) {
        outcomes.push({ id: found.entry.id, outcome: 'deferred' });
        continue;
      }
      outcomes.push(await releaseOne(ops, found.entry, reason, pacerOf, pastDeadline));
    }
  });
  return summary(outcomes, more);
}

async function releaseOne(
  deps: GuardOperationsDeps,
  entry: HeldEntry,
  reason: string,
  pacerOf: (lane: Lane) => Pacer,
  pastDeadline: (waitMs: number) => boolean,
): Promise<HeldOutcome> {
  const { id } = entry;
  const record = await deps.messages.get(id);
  if (record === undefined || record.tenant !== entry.tenant) {
    await deps.held.remove(entry);
    return { id, outcome: 'missing', reason: 'the message record is gone' };
  }
  const now = deps.clock();
  if (record.phase === 'held') {
    const expired = await failIfExpired(deps, entry, record, now);
    if (expired) return expired;
    const still = await holdStillApplies(deps, entry, record, now);
    if (still !== undefined) return { id, outcome: 'held', reason: still };
  } else if (record.phase !== 'queued') {
    // Sent, failed or cancelled meanwhile: the entry is left over from a release that stopped.
    await deps.held.remove(entry);
    return { id, outcome: 'missing', reason: `the message is ${record.phase}, not held` };
  }
  const job = await deps.held.job(entry);
  if (job === undefined) return { id, outcome: 'missing', reason: 'its kept job is gone' };
  const pacer = pacerOf(entry.lane);
  const recipients = record.recipients.filter((r) => r.status === 'held' || r.status === 'queued').length;
  if (pastDeadline(pacer.delayFor(recipients))) return { id, outcome: 'deferred' };
  await pacer.acquire(recipients);

  let queued = record;
  if (record.phase === 'held') {
    // The pacing wait may have outlasted the hold.
    const expired = await failIfExpired(deps, entry, record, deps.clock());
    if (expired) return expired;
    const released = markReleased(record, reason, deps.clock());
    if (released === undefined) return { id, outcome: 'held', reason: 'the message is no longer held' };
    try {
      await deps.messages.update(released, record.version);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      // Someone else wrote it (another release, a cancel): decide again on what is there now.
      return { id, outcome: 'held', reason: 'the message changed meanwhile; run release again' };
    }
    queued = released;
  }
  try {
    await deps.queue.enqueue(entry.lane, job);
  } catch (error) {
    return putBackOnHold(deps, entry, record, queued, error);
  }
  // Only a release that reached the queue is told: one put back on hold never left it.
  await publishChanges(deps.webhooks, [{ before: record, after: queued }]);
  await deps.held.remove(entry);
  // Sends from now on: the bounces they bring are taken over them (once per message, so a re-run
  // after a crash counts nothing twice).
  const keyId = entry.keyId ?? record.keyId;
  await deps.guard.recordRelease([
    {
      tenant: entry.tenant,
      ...(keyId === undefined ? {} : { keyId }),
      messageId: id,
      recipients: queued.recipients.filter((r) => r.status === 'queued').map((r) => r.address),
    },
  ]);
  return (await heldAgain(deps, entry, job)) ?? { id, outcome: 'released', lane: entry.lane };
}

/**
 * A sender whose cached key still shows the hold (up to 30 s after a resume) may hold the released
 * job again, and its `keep` changes nothing while the old entry is there, which release then
 * removes. So the record is read once more: held again, its entry and job are kept again, so the
 * message stays listed and releasable. (A hold after this read keeps its own entry.)
 */
async function heldAgain(
  deps: Pick<GuardOperationsDeps, 'messages' | 'held'>,
  entry: HeldEntry,
  job: SendJob,
): Promise<HeldOutcome | undefined> {
  const after = await deps.messages.get(entry.id);
  if (after?.phase !== 'held' || after.hold === undefined) return undefined;
  await deps.held.keep(heldEntry(after, after.hold), job);
  return { id: entry.id, outcome: 'held', reason: `held again by the sender: ${after.hold.reason}` };
}

/** Why the message must stay held now, or undefined when it may go. */
async function holdStillApplies(
  deps: GuardOperationsDeps,
  entry: HeldEntry,
  record: MessageRecord,
  now: Date,
): Promise<string | undefined> {
  const keyId = entry.keyId ?? record.keyId;
  const key = keyId === undefined ? undefined : await deps.keys.get(keyId);
  if (key === undefined) {
    // No key to read the tenant's state from (deleted, or mail older than the guard): ask the guard.
    const { standing } = await deps.guard.reputation(entry.tenant);
    if (standing === 'held' || (standing === 'broadcast_paused' && entry.lane === 'broadcast')) {
      return `the tenant's mail is still ${standing === 'held' ? 'held' : 'paused on the broadcast lane'}: resume the tenant first`;
    }
    return undefined;
  }
  if (key.status === 'revoked') {
    return `key ${key.keyId} is revoked: its mail cannot be released (cancel it)`;
  }
  if (key.status === 'suspended') return `key ${key.keyId} is suspended: resume the key first`;
  const hold = holdFor(key.guard, entry.lane, now);
  if (hold !== undefined)
    return `the tenant's ${hold.action} is still in force (${hold.reason}): resume the tenant first`;
  return undefined;
}

/**
 * The queue refused the job after the record was released: the record goes back to held (its hold
 * unchanged, so it still expires), the entry stays, and a later release tries again. If someone got
 * to the record first (a job that did reach the queue after all, claimed by the sender), it is left
 * to them and the entry goes.
 */
async function putBackOnHold(
  deps: GuardOperationsDeps,
  entry: HeldEntry,
  original: MessageRecord,
  queued: MessageRecord,
  error: unknown,
): Promise<HeldOutcome> {
  const why = `the queue refused it (${error instanceof Error ? error.message : String(error)}); run release again`;
  const hold = original.hold;
  if (hold === undefined) return { id: entry.id, outcome: 'held', reason: why };
  try {
    await deps.messages.update(
      withHold(queued, hold, `release failed: ${why}`, deps.clock()),
      queued.version,
    );
  } catch (conflict) {
    if (!(conflict instanceof ConflictError)) throw conflict;
    const now = await deps.messages.get(entry.id);
    if (now !== undefined && now.phase !== 'queued' && now.phase !== 'held') {
      await deps.held.remove(entry);
      return { id: entry.id, outcome: 'released', lane: entry.lane };
    }
  }
  return { id: entry.id, outcome: 'held', reason: why };
}

/** Fails a message whose hold ran out (the status API already shows it failed), and forgets it. */
async function failIfExpired(
  deps: Pick<GuardOperationsDeps, 'messages' | 'held' | 'webhooks'>,
  entry: HeldEntry,
  record: MessageRecord,
  now: Date,
): Promise<HeldOutcome | undefined> {
  if (!holdExpired(record, now) || record.hold === undefined) return undefined;
  const reason = expiryReason(record.hold);
  const failed = markHoldFailed(record, reason, now);
  if (failed !== undefined) {
    await deps.messages.update(failed, record.version);
    await publishChanges(deps.webhooks, [{ before: record, after: failed }]);
  }
  await deps.held.remove(entry);
  return { id: entry.id, outcome: 'expired', reason };
}

/**
 * Cancels held mail: each message failed for good (`cancelled by an operator: <reason>`), its
 * entry and kept job removed. A message whose release stopped half-way (record queued, entry still
 * there) is failed too, so the sender's claim skips a job that reached the queue.
 */
export async function cancelHeld(
  deps: Pick<GuardOperationsDeps, 'messages' | 'held' | 'clock' | 'webhooks'>,
  tenant: string,
  selection: HeldSelection,
  reason: string,
  limits: HeldBatchLimits = {},
): Promise<HeldResult> {
  const { entries, more } = await selected(deps, tenant, selection, limits.maxEntries);
  const words = `cancelled by an operator: ${reason}`;
  const outcomes: HeldOutcome[] = [];
  await withBufferedWebhooks(deps, async (ops) => {
    for (const found of entries) {
      if ('missing' in found) {
        outcomes.push(found.missing);
        continue;
      }
      const { entry } = found;
      // Not even read once the time is up: a cancel of thousands must still answer in time.
      if (limits.deadline !== undefined && ops.clock().getTime() >= limits.deadline) {
        outcomes.push({ id: entry.id, outcome: 'deferred' });
        continue;
      }
      const record = await ops.messages.get(entry.id);
      const now = ops.clock();
      if (record === undefined || record.tenant !== entry.tenant) {
        await ops.held.remove(entry);
        outcomes.push({ id: entry.id, outcome: 'missing', reason: 'the message record is gone' });
        continue;
      }
      const expired = await failIfExpired(ops, entry, record, now);
      if (expired) {
        outcomes.push(expired);
        continue;
      }
      const failed =
        record.phase === 'held'
          ? markHoldFailed(record, words, now)
          : record.phase === 'queued'
            ? markFailed(record, new Map(), words, now)
            : undefined;
      if (failed === undefined) {
        await ops.held.remove(entry);
        outcomes.push({
          id: entry.id,
          outcome: 'missing',
          reason: `the message is ${record.phase}, not held`,
        });
        continue;
      }
      try {
        await ops.messages.update(failed, record.version);
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        outcomes.push({
          id: entry.id,
          outcome: 'held',
          reason: 'the message changed meanwhile; run cancel again',
        });
        continue;
      }
      await publishChanges(ops.webhooks, [{ before: record, after: failed }]);
      await ops.held.remove(entry);
      outcomes.push({ id: entry.id, outcome: 'cancelled' });
    }
  });
  return summary(outcomes, more);
}

/**
 * Runs `work` with its webhook events kept and published once at its end, also for the messages
 * before a failure (one log write and few queue requests per call, not per message).
 */
async function withBufferedWebhooks<D extends { readonly webhooks?: WebhookPublisher }>(
  deps: D,
  work: (ops: D) => Promise<void>,
): Promise<void> {
  const buffer = new WebhookBuffer();
  try {
    await work({ ...deps, webhooks: buffer });
  } finally {
    await buffer.flush(deps.webhooks);
  }
}

/** An operator's resume of a tenant or key (the guard restarts its window; probation follows). */
export function resumeGuard(
  deps: Pick<GuardOperationsDeps, 'guard'>,
  target: GuardTarget,
  reason: string,
): Promise<ScopeGuardState> {
  return deps.guard.resume(target, reason);
}

type Found = { readonly entry: HeldEntry } | { readonly missing: HeldOutcome };

/**
 * The selected entries, all listed before any is changed (removing entries moves a list's pages),
 * at most `max` of them (oldest first; ids in the order given): `more` when there are others.
 */
async function selected(
  deps: Pick<GuardOperationsDeps, 'held'>,
  tenant: string,
  selection: HeldSelection,
  max = Number.POSITIVE_INFINITY,
): Promise<{ readonly entries: Found[]; readonly more: boolean }> {
  if ('ids' in selection) {
    const ids = [...new Set(selection.ids)];
    const entries = await Promise.all(
      ids.slice(0, max).map(async (id): Promise<Found> => {
        const entry = await deps.held.get(tenant, id);
        return entry === undefined
          ? { missing: { id, outcome: 'missing', reason: 'no held message with this id' } }
          : { entry };
      }),
    );
    return { entries, more: ids.length > max };
  }
  const lane = 'lane' in selection ? selection.lane : undefined;
  const found: Found[] = [];
  let cursor: string | undefined;
  do {
    const page = await deps.held.list(tenant, {
      ...(lane === undefined ? {} : { lane }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const entry of page.entries) found.push({ entry });
    cursor = page.cursor;
  } while (cursor !== undefined && found.length <= max);
  return { entries: found.slice(0, max), more: found.length > max };
}

function summary(outcomes: HeldOutcome[], more: boolean): HeldResult {
  const counts: Record<OutcomeKind, number> = {
    released: 0,
    cancelled: 0,
    expired: 0,
    held: 0,
    missing: 0,
    deferred: 0,
  };
  for (const o of outcomes) counts[o.outcome] += 1;
  return { counts, outcomes, more };
}

/**
 * An operator sets a tenant's policy override (docs/guard.md "Per-tenant overrides"), or clears it
 * with `undefined`: checked whole against the defaults first (GuardPolicyError names every bad
 * field at once), then written on the tenant's guard record, versioned (a race re-reads and writes
 * again). It applies from the tenant's next evaluation; what is in force stays until resumed.
 * Returns the tenant's policy as it now applies.
 */
export async function setGuardPolicy(
  store: Pick<GuardStateStore, 'tenant' | 'putTenant'>,
  tenant: string,
  override: GuardPolicyOverride | undefined,
): Promise<GuardPolicy> {
  const policy = resolveGuardPolicy(override);
  for (let attempt = 0; attempt < 3; attempt++) {
    const current = await store.tenant(tenant);
    const { override: _old, ...rest } = current ?? { tenant, state: { actions: [] }, version: 0 };
    const next = { ...rest, ...(override === undefined ? {} : { override }), version: rest.version + 1 };
    if (await store.putTenant(next)) return policy;
  }
  throw new ConflictError(`the guard record of tenant ${tenant} kept changing; try again`);
}
