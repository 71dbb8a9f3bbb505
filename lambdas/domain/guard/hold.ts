import type { Lane } from '../../shared/names.ts';
import { markFailed } from '../delivery/send.ts';
import type { HoldInfo, MessageRecord } from '../message.ts';
import type { GuardDecision } from './evaluate.ts';

/**
 * Held mail (issue 13): accepted, recorded, its job kept in the payload bucket, not sent, until an
 * operator releases or cancels it. A hold expires after HOLD_DAYS: from then the message reads as
 * failed with the reason (`heldView`), whether or not anything writes it, so no scheduler is needed
 * for the promise that every accepted message reaches a terminal state; release and cancel write
 * the failure when they meet an expired hold.
 */
export const HOLD_DAYS = 7;
const DAY_MS = 86_400_000;

/** An entry of the held-mail index (one per held message, listed per tenant). */
export interface HeldEntry {
  readonly tenant: string;
  readonly id: string;
  readonly lane: Lane;
  readonly keyId?: string;
  readonly heldAt: string;
  /** When the hold expires (HOLD_DAYS after `heldAt`). */
  readonly until: string;
  readonly action: string;
  readonly signal: string;
  readonly reason: string;
}

/**
 * What holds a message: a guard decision, or an operator's suspension of its key (signal
 * `operator`, which no guard decision has).
 */
export type HoldCause = Pick<GuardDecision, 'action' | 'reason'> & {
  readonly signal: GuardDecision['signal'] | 'operator';
};

export function holdInfo(decision: HoldCause, now: Date): HoldInfo {
  return {
    at: now.toISOString(),
    until: new Date(now.getTime() + HOLD_DAYS * DAY_MS).toISOString(),
    action: decision.action,
    signal: decision.signal,
    reason: decision.reason,
  };
}

export function heldEntry(record: MessageRecord, hold: HoldInfo): HeldEntry {
  return {
    tenant: record.tenant,
    id: record.id,
    lane: record.stream,
    ...(record.keyId === undefined ? {} : { keyId: record.keyId }),
    heldAt: hold.at,
    until: hold.until,
    action: hold.action,
    signal: hold.signal,
    reason: hold.reason,
  };
}

/**
 * The record held: phase `held`, every queued recipient `held`, a `held` timeline event with the
 * reason. Undefined when the record is not queued (already sent, held, settled): nothing to hold.
 */
export function markHeld(record: MessageRecord, decision: HoldCause, now: Date): MessageRecord | undefined {
  if (record.phase !== 'queued') return undefined;
  const hold = holdInfo(decision, now);
  return withHold(record, hold, hold.reason, now);
}

/**
 * The record under `hold` at `now`: phase `held`, every queued recipient `held` with the hold's
 * reason, and a `held` timeline event whose reason is `eventReason` (the hold's own, or why a
 * release put it back on hold).
 */
export function withHold(
  record: MessageRecord,
  hold: HoldInfo,
  eventReason: string,
  now: Date,
): MessageRecord {
  const at = now.toISOString();
  return {
    ...record,
    phase: 'held',
    hold,
    recipients: record.recipients.map((r) =>
      r.status === 'queued' ? { ...r, status: 'held' as const, reason: hold.reason, updatedAt: at } : r,
    ),
    events: [
      ...record.events,
      {
        type: 'held',
        at,
        detail: { signal: hold.signal, action: hold.action, reason: eventReason, until: hold.until },
      },
    ],
    updatedAt: at,
    version: record.version + 1,
  };
}

/** True when the hold has run out: the message is failed for good. */
export function holdExpired(record: MessageRecord, now: Date): boolean {
  return (
    record.phase === 'held' && record.hold !== undefined && Date.parse(record.hold.until) <= now.getTime()
  );
}

export function expiryReason(hold: HoldInfo): string {
  return `held by the abuse guard for ${HOLD_DAYS} days and not released (${hold.reason})`;
}

/**
 * The record back to queued for the sender (held recipients queued again, a `released` event).
 * Undefined when it is not held, or its hold has expired (then `markHoldExpired`).
 */
export function markReleased(record: MessageRecord, reason: string, now: Date): MessageRecord | undefined {
  if (record.phase !== 'held' || holdExpired(record, now)) return undefined;
  const at = now.toISOString();
  const { hold: _hold, ...rest } = record;
  return {
    ...rest,
    phase: 'queued',
    recipients: record.recipients.map((r) =>
      r.status === 'held' ? { ...r, status: 'queued' as const, reason: null, updatedAt: at } : r,
    ),
    events: [...record.events, { type: 'released', at, detail: { reason } }],
    updatedAt: at,
    version: record.version + 1,
  };
}

/** A held record failed for good: cancelled by an operator, or its hold expired. */
export function markHoldFailed(record: MessageRecord, reason: string, now: Date): MessageRecord | undefined {
  if (record.phase !== 'held') return undefined;
  const { hold: _hold, ...rest } = record;
  const requeued = {
    ...rest,
    phase: 'queued' as const,
    recipients: record.recipients.map((r) => (r.status === 'held' ? { ...r, status: 'queued' as const } : r)),
  };
  return markFailed(requeued, new Map(), reason, now);
}

/**
 * The record as the status API shows it: an expired hold reads as failed with the reason, though
 * nothing wrote it yet.
 */
export function heldView(record: MessageRecord, now: Date): MessageRecord {
  if (!holdExpired(record, now) || record.hold === undefined) return record;
  const failed = markHoldFailed(record, expiryReason(record.hold), new Date(record.hold.until));
  return failed === undefined ? record : { ...failed, version: record.version, updatedAt: record.hold.until };
}
