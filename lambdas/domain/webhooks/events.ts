/**
 * The webhook events Baton sends a tenant, their bodies' zod schemas (and the JSON Schemas made
 * from them), and how a message's timeline turns into events.
 *
 * Events are made from the timeline entries a state change appended, so the producer (feedback,
 * sender, api, guard) needs nothing but the record before and after. Delivery does not promise
 * order, so each message event carries `sequence`, the entry's index in `record.events`: a
 * receiver orders by it. Payloads never carry a body, the subject or the From address; the
 * recipient is the address as the record holds it (the tenant gave it to us, or it was erased and
 * the record holds its pseudonym, which is what the tenant then sees too).
 */

import { createHash } from 'node:crypto';
import type { MessageRecord, TimelineEvent, TimelineEventType } from '../message.ts';
import { SUPPRESSION_REASONS, type Suppression } from '../suppression/suppression.ts';
import type { MessageWebhookPayload, WebhookPayload, WebhookPayloadOf } from './payload-schemas.ts';

export const WEBHOOK_EVENT_TYPES = [
  'message.queued',
  'message.sent',
  'message.delivered',
  'message.delivery_delayed',
  'message.bounced',
  'message.complained',
  'message.rejected',
  'message.failed',
  'message.suppressed',
  'message.held',
  'message.released',
  'suppression.created',
  'suppression.deleted',
  'webhook.endpoint.disabled',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export type { MessageWebhookPayload, WebhookPayload, WebhookPayloadOf } from './payload-schemas.ts';

/** An event to deliver: its id (the `webhook-id` header), whose it is, and the body to sign. */
export interface WebhookEvent<P extends WebhookPayload = WebhookPayload> {
  readonly id: string;
  readonly tenant: string;
  readonly payload: P;
}

/**
 * The id of a message event: the same for the same message, timeline entry and recipient, so a
 * retry or a replay carries the id the receiver already saw and it can drop the duplicate.
 */
export function webhookEventId(messageId: string, sequence: number, recipient?: string): string {
  return digestId(['message', messageId, String(sequence), recipient ?? '']);
}

/**
 * `evt_` and 128 bits of SHA-256 over the parts. NUL separates them: no part (ids, addresses,
 * ISO times) can hold one, so two different lists never hash the same bytes.
 */
function digestId(parts: readonly string[]): string {
  return `evt_${createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32)}`;
}

/** The timeline entries that are webhook events, and the type each becomes. */
const WEBHOOK_TYPE_OF: Partial<Record<TimelineEventType, MessageWebhookPayload['type']>> = {
  accepted: 'message.queued',
  sent: 'message.sent',
  delivered: 'message.delivered',
  delayed: 'message.delivery_delayed',
  bounced: 'message.bounced',
  complained: 'message.complained',
  rejected: 'message.rejected',
  failed: 'message.failed',
  rendering_failed: 'message.failed',
  suppressed: 'message.suppressed',
  held: 'message.held',
  released: 'message.released',
  // opened, clicked, unsubscribed: engagement, not delivery state (and not in the contract);
  // retrying: Baton's own bookkeeping, the message's state has not changed.
};

/** A timeline entry that names no recipient, or one whose `data` cannot be read. */
export class WebhookEventError extends Error {
  override readonly name = 'WebhookEventError';
}

/**
 * The webhook events for the entries of `record.events` at index `fromIndex` and after (what a
 * state change appended), in timeline order. `tags` are the message's tags, which the record does
 * not hold. An entry that names a recipient gives one event; one about the whole message (queued,
 * sent, failed, held...) gives one per recipient not suppressed before it, so every event answers
 * "what happened to the mail for this address".
 */
export function webhookEventsOf(
  record: MessageRecord,
  fromIndex: number,
  tags: Readonly<Record<string, string>>,
): WebhookEvent<MessageWebhookPayload>[] {
  const events: WebhookEvent<MessageWebhookPayload>[] = [];
  for (let sequence = Math.max(0, fromIndex); sequence < record.events.length; sequence++) {
    const entry = record.events[sequence] as TimelineEvent;
    const type = WEBHOOK_TYPE_OF[entry.type];
    if (type === undefined || isOtherCopysFailure(entry)) continue;
    const extra = extraData(type, entry, record, sequence);
    for (const recipient of recipientsOf(record, entry, sequence)) {
      const payload = {
        type,
        timestamp: entry.at,
        data: {
          messageId: record.id,
          recipient,
          tags: { ...tags },
          stream: record.stream,
          sequence,
          ...extra,
        },
      } as MessageWebhookPayload;
      events.push({ id: webhookEventId(record.id, sequence, recipient), tenant: record.tenant, payload });
    }
  }
  return events;
}

/**
 * Feedback writes a rejection or rendering failure with its own `sesMessageId` when it came from a
 * second SES copy (an attempt whose answer was lost) while the message went out with the other
 * copy: it is on the timeline for support, but the message did not fail, so the tenant is not told
 * it did.
 */
function isOtherCopysFailure(entry: TimelineEvent): boolean {
  return (
    (entry.type === 'rejected' || entry.type === 'rendering_failed') &&
    typeof entry.detail?.sesMessageId === 'string'
  );
}

/**
 * Acceptance writes `accepted` first and then one `suppressed` per recipient it left out, in the
 * same write: those were never queued, so they get `message.suppressed` and no `message.queued`.
 */
function recipientsOf(record: MessageRecord, entry: TimelineEvent, sequence: number): string[] {
  if (entry.recipient !== undefined) return [entry.recipient];
  let end = sequence;
  if (entry.type === 'accepted') {
    while (record.events[end + 1]?.type === 'suppressed' && record.events[end + 1]?.at === entry.at) end++;
  }
  const suppressed = new Set(
    record.events
      .slice(0, end + 1)
      .flatMap((e) => (e.type === 'suppressed' && e.recipient !== undefined ? [e.recipient] : [])),
  );
  return record.recipients.map((r) => r.address).filter((address) => !suppressed.has(address));
}

function extraData(
  type: MessageWebhookPayload['type'],
  entry: TimelineEvent,
  record: MessageRecord,
  sequence: number,
): Record<string, unknown> {
  const d = (name: string): string | null => {
    const value = entry.detail?.[name];
    return value === undefined || value === null ? null : String(value);
  };
  switch (type) {
    case 'message.queued':
    case 'message.sent':
    case 'message.delivered':
      return {};
    case 'message.delivery_delayed':
      // A delay comes from SES's DeliveryDelay (delayType) or a bounce that only delays (diagnostic).
      return { delayType: d('delayType'), diagnostic: d('diagnosticCode') };
    case 'message.bounced':
      return {
        kind: d('bounceType') === 'Permanent' ? 'hard' : 'soft',
        type: d('bounceType'),
        subType: d('bounceSubType'),
        diagnostic: d('diagnosticCode'),
      };
    case 'message.complained':
      return { feedbackType: d('feedbackType') };
    case 'message.rejected':
    case 'message.failed':
      return { reason: d('reason') };
    case 'message.suppressed': {
      const reason = d('reason');
      if (!(SUPPRESSION_REASONS as readonly (string | null)[]).includes(reason)) {
        throw new WebhookEventError(
          `timeline entry ${sequence} of ${record.id} is a suppression with no known reason`,
        );
      }
      return { reason };
    }
    case 'message.held':
      return { reason: d('reason'), signal: d('signal') };
    case 'message.released':
      // The release names no signal; the hold it ends does.
      return { reason: d('reason'), signal: holdSignalBefore(record, sequence) };
  }
}

function holdSignalBefore(record: MessageRecord, sequence: number): string | null {
  for (let i = sequence - 1; i >= 0; i--) {
    const e = record.events[i];
    if (e?.type === 'held') return typeof e.detail?.signal === 'string' ? e.detail.signal : null;
  }
  return null;
}

/**
 * A suppression entry created or lifted, for `tenant`. The id is the same for the same entry,
 * change and time, so the producer's retry does not make a second event.
 */
export function suppressionWebhookEvent(
  type: 'suppression.created' | 'suppression.deleted',
  entry: Suppression,
  tenant: string,
  at: Date,
): WebhookEvent<WebhookPayloadOf<typeof type>> {
  const timestamp = at.toISOString();
  const scope = entry.tenant === undefined ? 'global' : 'tenant';
  return {
    id: digestId([type, tenant, entry.address, scope, timestamp]),
    tenant,
    payload: { type, timestamp, data: { address: entry.address, reason: entry.reason, scope } },
  };
}

/** Told to the tenant's other endpoints when Baton disables one after days of failure. */
export function endpointDisabledWebhookEvent(
  tenant: string,
  endpointId: string,
  reason: string,
  at: Date,
): WebhookEvent<WebhookPayloadOf<'webhook.endpoint.disabled'>> {
  const timestamp = at.toISOString();
  return {
    id: digestId(['webhook.endpoint.disabled', tenant, endpointId, timestamp]),
    tenant,
    payload: { type: 'webhook.endpoint.disabled', timestamp, data: { endpointId, reason } },
  };
}
