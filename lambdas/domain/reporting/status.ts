import { heldView } from '../guard/hold.ts';
import type { MessageRecord, MessageStatus, Phase, RecipientState, RecipientStatus } from '../message.ts';

/**
 * How far a recipient's state has moved. Feedback can arrive in any order and more than once, so
 * a recipient only ever moves up this scale: a late Delivery never undoes a bounce or complaint,
 * while a Delivery does beat a transient bounce (an out-of-office reply is a transient bounce that
 * SES follows with a Delivery).
 */
export function recipientRank(r: Pick<RecipientState, 'status' | 'soft'>): number {
  switch (r.status) {
    case 'queued':
    case 'held':
      return 0;
    case 'sent':
      return 1;
    case 'delayed':
      return 2;
    case 'bounced':
      return r.soft ? 3 : 6;
    case 'delivered':
      return 4;
    case 'failed':
      return 5;
    case 'complained':
      return 7;
    case 'suppressed':
      return 8;
  }
}

const IN_FLIGHT: ReadonlySet<RecipientStatus> = new Set(['queued', 'sent', 'delayed']);

/** The public status (DESIGN §2), derived from the pipeline phase and the recipients. */
export function deriveStatus(phase: Phase, recipients: readonly RecipientState[]): MessageStatus {
  if (phase === 'queued' || phase === 'held' || phase === 'sending' || phase === 'rejected') return phase;
  if (recipients.length === 0) return phase === 'failed' ? 'failed' : 'sent';
  if (recipients.every((r) => r.status === 'suppressed')) return 'suppressed';
  if (recipients.some((r) => IN_FLIGHT.has(r.status))) return phase === 'failed' ? 'failed' : 'sent';
  const statuses = new Set(recipients.map((r) => r.status));
  if (statuses.size === 1) {
    const [only] = statuses;
    return only as MessageStatus;
  }
  const reached = [...statuses].filter((s) => s === 'delivered' || s === 'complained');
  if (reached.length > 0) {
    // Everyone got it and someone complained: the complaint is what matters.
    if (reached.length === statuses.size && statuses.has('complained')) return 'complained';
    return 'partially_delivered';
  }
  if (statuses.has('bounced')) return 'bounced';
  if (statuses.has('failed')) return 'failed';
  return 'suppressed';
}

export interface MessageView {
  readonly id: string;
  readonly status: MessageStatus;
  readonly stream: string;
  readonly createdAt: string;
  readonly from: string;
  readonly subject: string;
  readonly recipients: ReadonlyArray<{
    address: string;
    status: RecipientStatus;
    reason: string | null;
    updatedAt: string;
  }>;
  readonly events: MessageRecord['events'];
}

/**
 * The GET /v1/messages/{id} body. Internal bookkeeping (claims, versions, seen keys) stays inside.
 * A message the abuse guard holds shows `held`; once its hold has run out (`now` past it) it reads
 * as failed with the reason, though nothing wrote that yet (guard/hold.ts: no scheduler needed).
 */
export function toMessageView(stored: MessageRecord, now: Date): MessageView {
  const record = heldView(stored, now);
  return {
    id: record.id,
    status: deriveStatus(record.phase, record.recipients),
    stream: record.stream,
    createdAt: record.createdAt,
    from: record.from,
    subject: record.subject,
    recipients: record.recipients.map((r) => ({
      address: r.address,
      status: r.status,
      reason: r.reason,
      updatedAt: r.updatedAt,
    })),
    events: record.events,
  };
}
