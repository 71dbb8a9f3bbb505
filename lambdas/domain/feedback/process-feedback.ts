import { ConflictError, PermanentError, TransientError } from '../../shared/errors.ts';
import { FEEDBACK_RACE_WINDOW_SECONDS } from '../../shared/event-path.ts';
import { addressKey, normaliseAddress } from '../address.ts';
import { type ErasedKeyOf, isErasedKey, scrubber } from '../erasure/erasure.ts';
import type { MessageRecord } from '../message.ts';
import type { Clock, MessageStore, SoftBounceStore, SuppressionStore } from '../ports.ts';
import type { Suppression } from '../suppression/suppression.ts';
import { type Rewritten, rewrite, WRITE_ATTEMPTS } from '../versioned-write.ts';
import { suppressionWebhookEvent } from '../webhooks/events.ts';
import type { WebhookPublisher } from '../webhooks/ports.ts';
import { publishChanges, publishEvents, republishRecord } from '../webhooks/produce.ts';
import { applyFeedback, notYetSent, suppressionsFor } from './feedback.ts';
import { type FeedbackEvent, parseFeedback } from './ses-event.ts';
import {
  clearSoftBounce,
  emptySoftBounceState,
  recordSoftBounce,
  type SoftBounceState,
  softSuppression,
} from './soft-bounce.ts';

export interface FeedbackDeps {
  readonly messages: Pick<MessageStore, 'get' | 'findBySesMessageId' | 'update'>;
  readonly suppressions: Pick<SuppressionStore, 'putIfStronger'>;
  readonly softBounces: SoftBounceStore;
  readonly clock: Clock;
  /** The pseudonym erasure gives an address; absent, erased records are not recognised. */
  readonly erasedKeyOf?: ErasedKeyOf;
  /**
   * Told the events of each change once it is written (issue 14): the message's (delivered,
   * bounced, complained, ...) and suppression.created to the message's tenant for each entry its
   * evidence added. A redelivered event changes nothing and produces nothing. Absent: nothing is
   * published.
   */
  readonly webhooks?: WebhookPublisher;
}

export interface FeedbackResult {
  readonly event: FeedbackEvent;
  readonly messageId: string;
  /** The message's tenant, for its daily statistics. */
  readonly tenant: string;
  /** The message's stream and when Baton accepted it, for the metrics. */
  readonly stream: string;
  readonly acceptedAt: string;
  /** False when this exact event had been applied before (a redelivery). */
  readonly applied: boolean;
  /**
   * Recipients this event showed SES was given by an attempt whose answer was lost: the sender
   * counted none of them sent (it counts when SES answers), so the feedback function does.
   */
  readonly settledSends: number;
  readonly suppressed: number;
  /** The message as this event left it (as found, when the event had been applied before). */
  readonly record: MessageRecord;
}

/**
 * An event for a message Baton cannot find yet is retried for this long: the sender may not have
 * written SES's message id yet (identity notifications carry no tags, only that id). The feedback
 * queue's receives are derived from it, so its last receive comes after it (event-path.ts).
 */
const RACE_WINDOW_MS = FEEDBACK_RACE_WINDOW_SECONDS * 1000;

/**
 * Handles one feedback queue message: parse, update the suppression list, update the message's
 * recipients and timeline. Throws on anything that must not be acknowledged: malformed input
 * (PermanentError, so it ends in the DLQ) or a message not found yet (TransientError, retried).
 */
export async function processFeedback(deps: FeedbackDeps, body: string): Promise<FeedbackResult> {
  const event = parseFeedback(body);
  const now = deps.clock();
  // An eventually consistent read costs half: a stale version only makes the versioned write below
  // conflict and re-read. (A record too new to be seen yet is retried like one not written yet.)
  const record = event.batonMessageId
    ? await deps.messages.get(event.batonMessageId, { consistent: false })
    : await deps.messages.findBySesMessageId(event.sesMessageId);

  // Suppress first, even when the message record is gone (a complaint weeks later, an erased
  // record): keeping a complaining address off the list must not depend on our bookkeeping.
  let suppressed = 0;
  const added: Suppression[] = [];
  // Global evidence, except about an address the message's tenant erased: that lands on its tombstone.
  for (const s of suppressionsFor(event, record?.id ?? event.batonMessageId, now)) {
    if (await deps.suppressions.putIfStronger(s, record?.tenant)) {
      suppressed++;
      added.push(s);
    }
  }
  // At once: a retry of this queue message finds the entries there and would not tell again.
  if (record) await publishSuppressions(deps, record, added, now);

  if (!record) {
    const age = now.getTime() - Date.parse(event.at);
    if (!(age > RACE_WINDOW_MS))
      throw new TransientError(`no message for this ${event.kind} event yet; retrying`);
    throw new UnknownMessageError(`${event.kind} event for a message Baton does not know`);
  }

  // An erased recipient is in the record under its pseudonym: the event is applied that way, so
  // the address is never written back (and counts no soft bounce, having no address any more).
  const change = await applyWithRetry(deps, record, pseudonymised(event, record, deps.erasedKeyOf), now);
  // Before the soft-bounce step: its retry finds the event applied and would produce nothing.
  if (change !== undefined) await publishChanges(deps.webhooks, [change]);
  // A redelivered event (applied before, not a Send event that changed nothing): the run that
  // applied it may have died before its batch's events were published. Told again, same ids.
  else if (record.seen.includes(event.key)) await republishRecord(deps.webhooks, record);
  const result = {
    event,
    messageId: record.id,
    tenant: record.tenant,
    stream: record.stream,
    acceptedAt: record.createdAt,
    applied: change !== undefined,
    settledSends: change ? settledSends(change.before, change.after) : 0,
    suppressed,
    record: change?.after ?? record,
  };
  try {
    // A redelivered event (not applied again) still brings the counters up to date: a previous
    // attempt may have failed between the message write and this step. Both are idempotent.
    const soft: Suppression[] = [];
    result.suppressed += change
      ? await countSoftBounces(deps, change.before, change.after, event, now, false, soft)
      : await countSoftBounces(deps, record, record, event, now, true, soft);
    await publishSuppressions(deps, record, soft, now);
  } catch (error) {
    if (change) throw new PartlyAppliedError(result, error);
    throw error;
  }
  return result;
}

/**
 * suppression.created to the tenant whose message brought the evidence, for each entry written. An
 * address the tenant erased took the evidence on its tombstone (the tenant's entry): the event
 * names it by the pseudonym the tenant's records hold, never by the address.
 */
async function publishSuppressions(
  deps: FeedbackDeps,
  record: MessageRecord,
  added: readonly Suppression[],
  now: Date,
): Promise<void> {
  if (deps.webhooks === undefined || added.length === 0) return;
  const events = added.map((s) => {
    const key = deps.erasedKeyOf?.(s.address);
    const erased = key !== undefined && record.recipients.some((r) => r.address === key);
    const entry = erased ? { ...s, address: key, tenant: record.tenant } : s;
    return suppressionWebhookEvent('suppression.created', entry, record.tenant, now);
  });
  await publishEvents(deps.webhooks, events);
}

function pseudonymised(
  event: FeedbackEvent,
  record: MessageRecord,
  erasedKeyOf?: ErasedKeyOf,
): FeedbackEvent {
  if (!erasedKeyOf || !record.recipients.some((r) => isErasedKey(r.address))) return event;
  const scrubs: Array<(text: string) => string> = [];
  const recipients = event.recipients.map((r) => {
    const normalised = normaliseAddress(r.address);
    const key = normalised === undefined ? undefined : erasedKeyOf(normalised);
    if (key === undefined || !record.recipients.some((x) => x.address === key)) return r;
    const scrub = scrubber([r.address], key);
    scrubs.push(scrub);
    return { ...r, address: key, ...(r.diagnosticCode ? { diagnosticCode: scrub(r.diagnosticCode) } : {}) };
  });
  // SES may quote an erased address in the event's own free text too (an SMTP response, a reject
  // reason): every text the record keeps from the event is scrubbed, not only the DSN fields.
  const scrubAll = (text: string | undefined) =>
    text === undefined ? undefined : scrubs.reduce((t, scrub) => scrub(t), text);
  const texts = (
    ['smtpResponse', 'feedbackType', 'reason', 'delayType', 'bounceType', 'bounceSubType'] as const
  )
    .filter((field) => event[field] !== undefined)
    .map((field) => [field, scrubAll(event[field])]);
  // The destination too: an erased recipient is matched by its pseudonym when SES's evidence of a
  // send moves the recipients it was given.
  const destination = event.destination?.map((address) => {
    const normalised = normaliseAddress(address);
    const key = normalised === undefined ? undefined : erasedKeyOf(normalised);
    return key !== undefined && record.recipients.some((x) => x.address === key) ? key : address;
  });
  return { ...event, recipients, ...(destination ? { destination } : {}), ...Object.fromEntries(texts) };
}

/** Feedback for a message Baton has no record of (never sent by it, or long expired): dead-lettered. */
export class UnknownMessageError extends PermanentError {
  override readonly name: string = 'UnknownMessageError';
}

/**
 * The event was applied to its message, then a later step failed (the record will be retried and
 * the retry finds the event applied): carries what was applied, so it is counted once.
 */
export class PartlyAppliedError extends TransientError {
  override readonly name: string = 'PartlyAppliedError';
  readonly result: FeedbackResult;

  constructor(result: FeedbackResult, cause: unknown) {
    super(`${result.event.kind} event applied to ${result.messageId}, then a later step failed`, { cause });
    this.result = result;
  }
}

/**
 * Keeps the transient-bounce counters in step with the message: a recipient whose transient bounce
 * now stands counts (and may become suppressed as soft_bounce); one that was soft-bounced and is
 * now delivered stops counting. Only recipients whose state this event changed are touched, so
 * most events (deliveries of ordinary mail) cost no extra read.
 */
async function countSoftBounces(
  deps: FeedbackDeps,
  before: MessageRecord,
  after: MessageRecord,
  event: FeedbackEvent,
  now: Date,
  repair: boolean,
  added: Suppression[],
): Promise<number> {
  let suppressed = 0;
  const named = new Set(event.recipients.map((r) => addressKey(r.address)));
  for (const next of after.recipients) {
    const prev = before.recipients.find((r) => r.address === next.address);
    const softNow = next.status === 'bounced' && next.soft === true;
    const inEvent = named.has(addressKey(next.address));
    // Normally: what this event changed. Repairing (a redelivery): what this event stands for.
    const bouncedNow = repair
      ? event.kind === 'bounce' && softNow && inEvent
      : softNow && !(prev?.status === 'bounced' && prev.soft);
    const recovered = repair
      ? event.kind === 'delivery' && next.status === 'delivered' && inEvent
      : next.status === 'delivered' && prev?.status === 'bounced' && prev.soft === true;
    if (!bouncedNow && !recovered) continue;
    const address = normaliseAddress(next.address);
    if (!address) continue;
    const state = await updateSoftBounces(deps, address, (s) =>
      bouncedNow
        ? recordSoftBounce(s, after.id, new Date(Date.parse(event.at) || now.getTime()), now)
        : clearSoftBounce(s, after.id, now),
    );
    const s = bouncedNow ? softSuppression(state, after.id, now) : undefined;
    if (s && (await deps.suppressions.putIfStronger(s, after.tenant))) {
      suppressed++;
      added.push(s);
    }
  }
  return suppressed;
}

async function updateSoftBounces(
  deps: FeedbackDeps,
  address: string,
  change: (state: SoftBounceState) => SoftBounceState,
): Promise<SoftBounceState> {
  for (let attempt = 1; ; attempt++) {
    const current = (await deps.softBounces.get(address)) ?? emptySoftBounceState(address);
    const next = change(current);
    // Nothing to record (a delivery of a message that never bounced): no write.
    if (JSON.stringify(next.bounces) === JSON.stringify(current.bounces)) return current;
    try {
      await deps.softBounces.put(next);
      return next;
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= WRITE_ATTEMPTS) throw error;
    }
  }
}

/**
 * How many recipients the event moved on from unsent after an uncertain attempt (SES's answer lost,
 * so the sender counted nothing). A message whose answer arrived was counted sent by the sender,
 * even when it died before recording it: not counted again here.
 */
function settledSends(before: MessageRecord, after: MessageRecord): number {
  if (before.uncertain === undefined) return 0;
  return before.recipients.filter((r, i) => notYetSent(before, r) && after.recipients[i]?.status !== r.status)
    .length;
}

/** Applies the event; undefined when it had been applied before, else the record before and after. */
function applyWithRetry(
  deps: FeedbackDeps,
  first: MessageRecord,
  event: FeedbackEvent,
  now: Date,
): Promise<Rewritten | undefined> {
  return rewrite(deps.messages, first, (latest) => applyFeedback(latest, event, now), {
    gone: (id) => new TransientError(`message ${id} vanished while applying feedback`),
  });
}
