import { addressKey, normaliseAddress } from '../address.ts';
import {
  type MessageRecord,
  type Phase,
  type RecipientState,
  SES_OUTCOME_UNKNOWN,
  type TimelineEvent,
} from '../message.ts';
import { recipientRank } from '../reporting/status.ts';
import { SEVERITY, type Suppression } from '../suppression/suppression.ts';
import type { FeedbackEvent, FeedbackRecipient } from './ses-event.ts';

/**
 * A recipient SES's evidence of a send may still move to `sent`: queued, or failed only because
 * Baton gave up on the message before it knew SES had it.
 */
export function notYetSent(record: MessageRecord, r: RecipientState): boolean {
  if (r.status === 'queued') return true;
  const givenUp = record.phase === 'failed' && record.redrivable === true;
  return r.status === 'failed' && (givenUp || r.unsent === true);
}

/** How many applied event keys a record remembers; SES redelivers within minutes, not hundreds of events. */
const SEEN_LIMIT = 64;

/**
 * Applies one feedback event to a message record. Pure: the caller reads the record, calls this,
 * and writes the result with an optimistic-concurrency check (re-reading on conflict). Returns
 * undefined when the event was applied before (same key): the same event twice has one effect.
 */
export function applyFeedback(
  record: MessageRecord,
  event: FeedbackEvent,
  now: Date,
): MessageRecord | undefined {
  if (record.seen.includes(event.key)) return undefined;
  const at = validTime(event.at) ?? now.toISOString();
  let phase: Phase = record.phase;
  let recipients = record.recipients;
  const events: TimelineEvent[] = [...record.events];
  const sesMessageId = record.sesMessageId ?? event.sesMessageId;

  // Any event from SES proves SES accepted the message, even if the sender died before saying so
  // (or gave up on it afterwards, believing it unsent).
  const givenUp = phase === 'failed' && record.redrivable === true;
  const unsent = phase === 'queued' || phase === 'sending' || givenUp;
  // Only the recipients SES was given move to sent: one the sender left out (suppressed at send
  // time) never reached SES and must not look sent. Without a destination (never so from SES),
  // those the event names. Checked on every event, not only the first, so the result does not
  // depend on which event of the message came first.
  const sentTo = new Set((event.destination ?? event.recipients.map((r) => r.address)).map(addressKey));
  const recovers = (r: RecipientState) => notYetSent(record, r) && sentTo.has(addressKey(r.address));
  // SES's Send event only matters while Baton has not recorded the send itself (the sender died
  // between SES and its write, or has not written yet). Usually the sender got there first: then
  // the event changes nothing, and writing the record just to remember its key would cost a
  // write per message (and race the sender's own write).
  if (event.kind === 'send' && !unsent && !recipients.some(recovers)) return undefined;
  if (unsent) phase = 'sent';
  recipients = recipients.map((r) => {
    if (!recovers(r)) return r;
    const { unsent: _proven, ...rest } = r;
    return { ...rest, status: 'sent', reason: null, updatedAt: at };
  });
  if (unsent && !events.some((e) => e.type === 'sent'))
    events.push({ type: 'sent', at, sesMessageId: event.sesMessageId });

  const upgrade = (fr: FeedbackRecipient, next: Omit<RecipientState, 'address' | 'kind' | 'updatedAt'>) => {
    const key = addressKey(fr.address);
    recipients = recipients.map((r) => {
      if (addressKey(r.address) !== key) return r;
      if (recipientRank(next) <= recipientRank(r)) return r;
      const { soft: _drop, ...rest } = r;
      return { ...rest, ...next, updatedAt: at };
    });
  };

  switch (event.kind) {
    case 'send':
      break;
    case 'delivery':
      for (const r of event.recipients) {
        upgrade(r, { status: 'delivered', reason: null });
        events.push({
          type: 'delivered',
          at,
          recipient: r.address,
          detail: { smtpResponse: event.smtpResponse ?? null },
        });
      }
      break;
    case 'bounce': {
      for (const r of event.recipients) {
        const delayed = onlyDelayed(event, r);
        if (delayed) {
          upgrade(r, {
            status: 'delayed',
            reason: `delivery delayed${r.diagnosticCode ? `: ${r.diagnosticCode}` : ''}`,
          });
        } else {
          const hard = isHardBounce(event, r);
          upgrade(r, { status: 'bounced', reason: bounceReason(event, r), ...(hard ? {} : { soft: true }) });
        }
        events.push({
          type: delayed ? 'delayed' : 'bounced',
          at,
          recipient: r.address,
          detail: {
            bounceType: event.bounceType ?? null,
            bounceSubType: event.bounceSubType ?? null,
            diagnosticCode: r.diagnosticCode ?? null,
            status: r.status ?? null,
          },
        });
      }
      break;
    }
    case 'complaint':
      for (const r of event.recipients) {
        upgrade(r, { status: 'complained', reason: complaintReason(event) });
        events.push({
          type: 'complained',
          at,
          recipient: r.address,
          detail: { feedbackType: event.feedbackType ?? null },
        });
      }
      break;
    case 'delay':
      for (const r of event.recipients) {
        const reason = `delivery delayed (${event.delayType ?? 'unknown reason'})${r.diagnosticCode ? `: ${r.diagnosticCode}` : ''}; SES keeps trying`;
        upgrade(r, { status: 'delayed', reason });
        events.push({
          type: 'delayed',
          at,
          recipient: r.address,
          detail: { delayType: event.delayType ?? null },
        });
      }
      break;
    case 'reject':
    case 'rendering_failure': {
      const reason =
        event.kind === 'reject'
          ? `SES rejected the message (${event.reason ?? 'no reason given'}); it was not sent`
          : `SES could not render the message: ${event.reason ?? 'no reason given'}`;
      const type = event.kind === 'reject' ? 'rejected' : 'rendering_failed';
      // SES took two copies (an attempt's answer was lost and its events came after the
      // confirmation window), and the message was recorded sent with the other one: this copy's
      // failure goes on the timeline, but does not undo what the other copy did.
      const lostAnswer = record.events.some(
        (e) => e.type === 'retrying' && e.detail?.reason === SES_OUTCOME_UNKNOWN,
      );
      if (
        !unsent &&
        lostAnswer &&
        record.sesMessageId !== undefined &&
        event.sesMessageId !== record.sesMessageId
      ) {
        events.push({ type, at, detail: { reason, sesMessageId: event.sesMessageId } });
        break;
      }
      phase = event.kind === 'reject' ? 'rejected' : 'failed';
      recipients = recipients.map((r) =>
        recipientRank(r) < recipientRank({ status: 'failed' })
          ? { ...r, status: 'failed', reason, updatedAt: at }
          : r,
      );
      events.push({ type, at, detail: { reason } });
      break;
    }
    case 'open':
    case 'click':
      events.push({ type: event.kind === 'open' ? 'opened' : 'clicked', at });
      break;
    case 'subscription':
      events.push({ type: 'unsubscribed', at });
      break;
  }

  // Evidence from SES settles an uncertain attempt: no retry will send it again.
  const { redrivable: _sentAfterAll, uncertain: _settled, ...rest } = record;
  return {
    ...rest,
    phase,
    recipients,
    events,
    ...(sesMessageId ? { sesMessageId } : {}),
    seen: [...record.seen, event.key].slice(-SEEN_LIMIT),
    updatedAt: now.toISOString(),
    version: record.version + 1,
  };
}

/**
 * The suppressions an event calls for (DESIGN §2 reasons). Permanent bounces, including SES's
 * own suppression-list subtypes, suppress for good; complaints too, and above bounces.
 * Soft bounces are counted separately and only suppress after repeated failures.
 */
export function suppressionsFor(
  event: FeedbackEvent,
  batonMessageId: string | undefined,
  now: Date,
): Suppression[] {
  const out: Suppression[] = [];
  const suppress = (
    address: string,
    reason: 'hard_bounce' | 'complaint',
    detail: string,
    evidence: Record<string, string | undefined>,
  ): void => {
    out.push({
      address,
      reason,
      detail,
      source: batonMessageId ?? null,
      createdAt: now.toISOString(),
      expiresAt: null,
      severity: SEVERITY[reason],
      evidence: compact({ sesMessageId: event.sesMessageId, feedbackId: event.feedbackId, ...evidence }),
    });
  };
  for (const r of event.recipients) {
    const address = normaliseAddress(r.address);
    if (address === undefined) continue;
    if (event.kind === 'bounce' && isHardBounce(event, r)) {
      suppress(address, 'hard_bounce', bounceReason(event, r), {
        bounceType: event.bounceType,
        bounceSubType: event.bounceSubType,
        diagnosticCode: r.diagnosticCode,
        status: r.status,
      });
    } else if (event.kind === 'complaint') {
      suppress(address, 'complaint', complaintReason(event), { feedbackType: event.feedbackType });
    }
  }
  return out;
}

/**
 * SES can list, inside a Permanent bounce, a recipient whose delivery is only delayed (action
 * `delayed`, a 4.x.x status): that one has not failed and must not be suppressed. In a Transient
 * bounce a 4.x.x status is the normal case (SES retried, then gave up) and counts as a bounce.
 */
export function onlyDelayed(event: FeedbackEvent, r: FeedbackRecipient): boolean {
  if (r.action?.toLowerCase() === 'delayed') return true;
  return event.bounceType === 'Permanent' && /^4\./.test(r.status ?? '');
}

function isHardBounce(event: FeedbackEvent, r: FeedbackRecipient): boolean {
  return event.bounceType === 'Permanent' && !onlyDelayed(event, r);
}

function bounceReason(event: FeedbackEvent, r: FeedbackRecipient): string {
  const kind =
    event.bounceType === 'Permanent'
      ? 'permanent bounce'
      : `${(event.bounceType ?? 'undetermined').toLowerCase()} bounce`;
  const sub = event.bounceSubType ?? 'General';
  if (sub === 'OnAccountSuppressionList' || sub === 'Suppressed') {
    return `${kind} (${sub}): the address is on the SES suppression list, so SES did not attempt delivery`;
  }
  return `${kind} (${sub})${r.diagnosticCode ? `: ${r.diagnosticCode}` : ''}`;
}

function complaintReason(event: FeedbackEvent): string {
  return `the recipient reported the message as spam (feedback type: ${event.feedbackType ?? 'not given'})`;
}

function validTime(value: string): string | undefined {
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

function compact(values: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) out[k] = v;
  return out;
}
