import { ConflictError, PermanentError, TransientError } from '../shared/errors.ts';
import { normaliseAddress } from './address.ts';
import { applyFeedback, suppressionsFor } from './feedback.ts';
import type { MessageRecord } from './message.ts';
import type { Clock, MessageStore, SoftBounceStore, SuppressionStore } from './ports.ts';
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
}

export interface FeedbackResult {
  readonly event: FeedbackEvent;
  readonly messageId: string;
  /** False when this exact event had been applied before (a redelivery). */
  readonly applied: boolean;
  readonly suppressed: number;
}

/**
 * An event for a message Baton cannot find yet is retried for this long: the sender may not have
 * written SES's message id yet (identity notifications carry no tags, only that id).
 */
const RACE_WINDOW_MS = 15 * 60_000;
const WRITE_ATTEMPTS = 5;

/**
 * Handles one feedback queue message: parse, update the suppression list, update the message's
 * recipients and timeline. Throws on anything that must not be acknowledged: malformed input
 * (PermanentError, so it ends in the DLQ) or a message not found yet (TransientError, retried).
 */
export async function processFeedback(deps: FeedbackDeps, body: string): Promise<FeedbackResult> {
  const event = parseFeedback(body);
  const now = deps.clock();
  const record = event.batonMessageId
    ? await deps.messages.get(event.batonMessageId)
    : await deps.messages.findBySesMessageId(event.sesMessageId);

  // Suppress first, even when the message record is gone (a complaint weeks later, an erased
  // record): keeping a complaining address off the list must not depend on our bookkeeping.
  let suppressed = 0;
  for (const s of suppressionsFor(event, record?.id ?? event.batonMessageId, now)) {
    if (await deps.suppressions.putIfStronger(s)) suppressed++;
  }

  if (!record) {
    const age = now.getTime() - Date.parse(event.at);
    if (!(age > RACE_WINDOW_MS))
      throw new TransientError(`no message for this ${event.kind} event yet; retrying`);
    throw new PermanentError(`${event.kind} event for a message Baton does not know`);
  }

  const change = await applyWithRetry(deps, record, event, now);
  if (change) suppressed += await countSoftBounces(deps, change.before, change.after, event, now);
  return { event, messageId: record.id, applied: change !== undefined, suppressed };
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
): Promise<number> {
  let suppressed = 0;
  for (const next of after.recipients) {
    const prev = before.recipients.find((r) => r.address === next.address);
    const bouncedNow =
      next.status === 'bounced' && next.soft === true && !(prev?.status === 'bounced' && prev.soft);
    const recovered = next.status === 'delivered' && prev?.status === 'bounced' && prev.soft === true;
    if (!bouncedNow && !recovered) continue;
    const address = normaliseAddress(next.address);
    if (!address) continue;
    const state = await updateSoftBounces(deps, address, (s) =>
      bouncedNow
        ? recordSoftBounce(s, after.id, new Date(Date.parse(event.at) || now.getTime()), now)
        : clearSoftBounce(s, after.id, now),
    );
    const s = bouncedNow ? softSuppression(state, after.id, now) : undefined;
    if (s && (await deps.suppressions.putIfStronger(s))) suppressed++;
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
    try {
      await deps.softBounces.put(next);
      return next;
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= WRITE_ATTEMPTS) throw error;
    }
  }
}

/** Applies the event; undefined when it had been applied before, else the record before and after. */
async function applyWithRetry(
  deps: FeedbackDeps,
  first: MessageRecord,
  event: FeedbackEvent,
  now: Date,
): Promise<{ before: MessageRecord; after: MessageRecord } | undefined> {
  let record = first;
  for (let attempt = 1; ; attempt++) {
    const next = applyFeedback(record, event, now);
    if (!next) return undefined;
    try {
      await deps.messages.update(next, record.version);
      return { before: record, after: next };
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= WRITE_ATTEMPTS) throw error;
      const reread = await deps.messages.get(first.id);
      if (!reread) throw new TransientError(`message ${first.id} vanished while applying feedback`);
      record = reread;
    }
  }
}
