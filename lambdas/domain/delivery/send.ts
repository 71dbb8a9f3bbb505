import {
  ConfirmationPendingError,
  PermanentError,
  SendingPausedError,
  TransientError,
  UncertainSendError,
} from '../../shared/errors.ts';
import { MessageTag } from '../../shared/names.ts';
import { addressKey } from '../address.ts';
import {
  type MessageRecord,
  type OutgoingMessage,
  type RecipientState,
  SES_OUTCOME_UNKNOWN,
  type SendJob,
  type TimelineEvent,
} from '../message.ts';
import type { Clock, Mailer, MessageStore } from '../ports.ts';
import { isActive, type Suppression, suppressedReason } from '../suppression/suppression.ts';
import { type Rewritten, rewrite } from '../versioned-write.ts';
import type { WebhookPublisher } from '../webhooks/ports.ts';
import { publishChanges, republishRecord } from '../webhooks/produce.ts';

export interface SendDeps {
  readonly messages: MessageStore;
  readonly mailer: Mailer;
  /** Raw MIME for the message (composed, and DKIM-signed where a key is configured). */
  readonly compose: (message: OutgoingMessage, id: string, date: Date) => Promise<Uint8Array>;
  readonly clock: Clock;
  /**
   * How long a claim protects an attempt: longer than the function timeout, so a live attempt never
   * loses its claim. The claim is held for `confirmationWindowMs` beyond it: an attempt that died
   * may have died after SES took the message (as late as its deadline), which is as ambiguous as a
   * lost answer.
   */
  readonly leaseMs: number;
  /**
   * How long to wait for SES's evidence (an event carrying Baton's id) after a SendEmail whose
   * outcome was lost, before concluding SES kept nothing and sending again: the event path's worst
   * normal latency (`confirmationWindowSeconds` in shared/event-path.ts).
   */
  readonly confirmationWindowMs: number;
  /**
   * Told the events of each outcome once it is recorded (message.sent, .failed, .suppressed; issue
   * 14), never before or around the SES call. Absent: nothing is published.
   */
  readonly webhooks?: WebhookPublisher;
}

export type SendOutcome = 'sent' | 'duplicate' | 'suppressed' | 'failed';

/**
 * Sends one queued message exactly once (as far as SES allows):
 * 1. claim it with a conditional write on Baton's message id; a duplicate queue delivery of a
 *    message already sent finds it done and is acknowledged without calling SES;
 * 2. drop recipients that are suppressed now (`suppressed` is one batched read for the batch);
 * 3. compose the MIME and call SES; 4. record the result.
 *
 *
 * Only an answer that proves SES kept nothing (throttling, a 4xx) gives the claim back at once. An
 * ambiguous one (a 5xx, a reset connection, a timeout: `UncertainSendError`) may hide a message SES
 * took, so the attempt is recorded as uncertain and the claim held for the confirmation window: a
 * retry inside it waits; SES's evidence (any event with Baton's id) moves the message on meanwhile,
 * and the retry after the window finds it done; only when none came does it send again.
 *
 * An attempt that dies (its process killed or timed out, or its write after SES failed) is just as
 * ambiguous: its claim is held for the confirmation window beyond the lease (which outlasts the
 * attempt), so it covers the window after the latest moment the attempt could have called SES.
 *
 * The one window left: SES's evidence arrives later than the confirmation window (the event path
 * slower than its worst normal latency). See docs/guarantees.md "Delivery guarantees".
 */
export async function sendJob(
  deps: SendDeps,
  job: SendJob,
  suppressed: ReadonlyMap<string, Suppression>,
): Promise<SendOutcome> {
  const now = deps.clock();
  // The lease outlasts the attempt (its function's timeout), and SES may take the message at any
  // moment of it (the pacer waits after the claim): an attempt that dies is covered only when its
  // claim lasts the confirmation window beyond the lease, not merely as long as the window.
  const claim = await deps.messages.claim(job.id, now, deps.leaseMs + deps.confirmationWindowMs);
  if (claim.outcome === 'missing')
    throw new PermanentError(`message ${job.id} has no record; it cannot be tracked`);
  if (claim.outcome === 'done') {
    const settled = await settleLeftOut(deps, claim.record, suppressed, now);
    // A redelivered job: the attempt that finished it may have died before its batch's events
    // were published. Told again, with the same ids (receivers drop repeats).
    await republishRecord(deps.webhooks, settled?.after ?? claim.record);
    return 'duplicate';
  }
  if (claim.outcome === 'busy') {
    // Come back when the claim ends: by then the holder finished, or SES's evidence had its time.
    const left = Math.max(1, (claim.record.claimUntil ?? 0) - now.getTime());
    const waiting = (claim.record.uncertain?.confirmUntil ?? 0) > now.getTime();
    throw new ConfirmationPendingError(
      waiting
        ? `message ${job.id}: SES's answer to an earlier attempt was lost; waiting for its events`
        : `message ${job.id} is being sent by another attempt`,
      left,
    );
  }
  const { record, token } = claim;

  const newlySuppressed = new Map<string, Suppression>();
  const targets: RecipientState[] = [];
  for (const r of record.recipients) {
    if (!pending(record, r)) continue;
    const s = suppressed.get(addressKey(r.address));
    if (s && isActive(s, now)) newlySuppressed.set(r.address, s);
    else targets.push(r);
  }

  if (targets.length === 0) {
    const written = await finish(deps, record, token, (latest) =>
      markSuppressed(latest, newlySuppressed, deps.clock()),
    );
    await publishChanges(deps.webhooks, [written]);
    return 'suppressed';
  }

  let sesMessageId: string;
  try {
    const raw = await deps.compose(job.message, job.id, now);
    sesMessageId = await deps.mailer.send({
      raw,
      from: job.message.from.address,
      to: targets.filter((r) => r.kind === 'to').map((r) => r.address),
      cc: targets.filter((r) => r.kind === 'cc').map((r) => r.address),
      bcc: targets.filter((r) => r.kind === 'bcc').map((r) => r.address),
      tags: {
        ...job.message.tags,
        [MessageTag.messageId]: job.id,
        [MessageTag.tenant]: sesTagValue(job.tenant),
        [MessageTag.stream]: job.message.stream,
      },
    });
  } catch (error) {
    if (error instanceof UncertainSendError) {
      // SES may have it: hold the claim until its events had time to say so.
      const confirmUntil = deps.clock().getTime() + deps.confirmationWindowMs;
      const written = await rewrite(
        deps.messages,
        record,
        (latest) => markUncertain(latest, newlySuppressed, error, confirmUntil, deps.clock()),
        {
          claimToken: token,
          gone: (id) => new PermanentError(`message ${id} disappeared while it was being sent`),
        },
      );
      // Only the recipients left out (suppressed now) are news: the attempt's outcome is not known.
      await publishChanges(deps.webhooks, [written]);
      throw new ConfirmationPendingError(
        `message ${job.id}: SES's answer was lost; waiting for its events before sending again`,
        deps.confirmationWindowMs,
        { cause: error },
      );
    }
    if (error instanceof TransientError || error instanceof SendingPausedError) {
      // Give the claim back so the retry does not wait out the lease; nothing was sent.
      await deps.messages.release(job.id, token);
      throw error;
    }
    const reason = error instanceof PermanentError ? error.message : 'the message could not be built';
    const written = await finish(deps, record, token, (latest) =>
      markFailed(latest, newlySuppressed, reason, deps.clock()),
    );
    await publishChanges(deps.webhooks, [written]);
    if (!(error instanceof PermanentError)) throw new PermanentError(reason, { cause: error });
    return 'failed';
  }

  const written = await finish(deps, record, token, (latest) =>
    markSent(latest, sesMessageId, newlySuppressed, deps.clock()),
  );
  await publishChanges(deps.webhooks, [written]);
  return 'sent';
}

/**
 * SES's evidence marked the message sent, but only for the recipients SES was given: one the
 * attempt left out (suppressed at the time) is still queued, and no attempt will send it (the
 * message is done). Record it suppressed, or failed when its suppression has been lifted since.
 */
async function settleLeftOut(
  deps: SendDeps,
  record: MessageRecord,
  suppressed: ReadonlyMap<string, Suppression>,
  now: Date,
): Promise<Rewritten | undefined> {
  if (record.phase !== 'sent' || !record.recipients.some((r) => r.status === 'queued')) return undefined;
  return rewrite(deps.messages, record, (latest) => {
    if (!latest.recipients.some((r) => r.status === 'queued')) return undefined;
    const at = now.toISOString();
    const leftOut = new Map<string, Suppression>();
    for (const r of latest.recipients) {
      const s = suppressed.get(addressKey(r.address));
      if (r.status === 'queued' && s && isActive(s, now)) leftOut.set(r.address, s);
    }
    const reason = 'left out of the send (suppressed at the time); not sent';
    return {
      ...latest,
      recipients: latest.recipients.map((r) => {
        if (r.status !== 'queued') return r;
        const s = leftOut.get(r.address);
        return s
          ? { ...r, status: 'suppressed' as const, reason: suppressedReason(s), updatedAt: at }
          : { ...r, status: 'failed' as const, reason, updatedAt: at };
      }),
      events: [...latest.events, ...suppressedEvents(leftOut, at)],
      updatedAt: at,
      version: latest.version + 1,
    };
  });
}

/** SES refuses a whole send over one tag value outside [A-Za-z0-9_-]; a tenant name must not do that. */
function sesTagValue(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 256) || '_';
}

/**
 * Writes a transition with the claim held. Feedback for this message can land between our read
 * and our write (SES is fast); `rewrite` then applies the transition to the newer record.
 */
async function finish(
  deps: SendDeps,
  first: MessageRecord,
  token: string,
  transition: (latest: MessageRecord) => MessageRecord,
): Promise<Rewritten | undefined> {
  return rewrite(deps.messages, first, transition, {
    claimToken: token,
    gone: (id) => new PermanentError(`message ${id} disappeared while it was being sent`),
  });
}

/** Still to be sent: queued, or failed only because Baton gave up before sending (a redrive). */
function pending(record: MessageRecord, r: RecipientState): boolean {
  return r.status === 'queued' || (record.redrivable === true && r.status === 'failed');
}

function withSuppressed(
  record: MessageRecord,
  r: RecipientState,
  suppressed: ReadonlyMap<string, Suppression>,
  at: string,
): RecipientState {
  const s = suppressed.get(r.address);
  return s && pending(record, r)
    ? { ...r, status: 'suppressed', reason: suppressedReason(s), updatedAt: at }
    : r;
}

function suppressedEvents(suppressed: ReadonlyMap<string, Suppression>, at: string): TimelineEvent[] {
  return [...suppressed].map(([recipient, s]) => ({
    type: 'suppressed',
    at,
    recipient,
    detail: { reason: s.reason },
  }));
}

function base(record: MessageRecord, at: string) {
  const { claimToken: _t, claimUntil: _u, redrivable: _r, uncertain: _a, ...rest } = record;
  return { ...rest, updatedAt: at, version: record.version + 1 };
}

function markSent(
  record: MessageRecord,
  sesMessageId: string,
  suppressed: ReadonlyMap<string, Suppression>,
  now: Date,
): MessageRecord {
  const at = now.toISOString();
  const recipients = record.recipients.map((r) => {
    const next = withSuppressed(record, r, suppressed, at);
    if (!pending(record, next)) return next;
    const { unsent: _sentNow, ...rest } = next;
    return { ...rest, status: 'sent' as const, reason: null, updatedAt: at };
  });
  const events = [...record.events, ...suppressedEvents(suppressed, at)];
  // The feedback function may have recorded SES's Send event already.
  if (!events.some((e) => e.type === 'sent')) events.push({ type: 'sent', at, sesMessageId });
  // A Reject or Rendering Failure event may have been recorded first; it is the final word.
  const final = record.phase === 'rejected' || (record.phase === 'failed' && record.redrivable !== true);
  const phase = final ? record.phase : 'sent';
  return { ...base(record, at), phase, sesMessageId, recipients, events };
}

/**
 * Keeps the claim until `confirmUntil` and notes the attempt. Nothing to write when SES's evidence
 * was applied meanwhile (the feedback function was faster than this write).
 */
function markUncertain(
  record: MessageRecord,
  suppressed: ReadonlyMap<string, Suppression>,
  error: UncertainSendError,
  confirmUntil: number,
  now: Date,
): MessageRecord | undefined {
  if (record.phase !== 'sending') return undefined;
  const at = now.toISOString();
  const sesRequestId = error.requestId;
  return {
    ...record,
    claimUntil: confirmUntil,
    uncertain: { at, confirmUntil, ...(sesRequestId ? { sesRequestId } : {}) },
    // Those left out now were not given to SES: recorded here, because SES's evidence moves only
    // the recipients it was given, and a later send would leave them out again.
    recipients: record.recipients.map((r) => withSuppressed(record, r, suppressed, at)),
    events: [
      ...record.events,
      ...suppressedEvents(suppressed, at),
      {
        type: 'retrying',
        at,
        detail: { reason: SES_OUTCOME_UNKNOWN, sesRequestId: sesRequestId ?? null },
      },
    ],
    updatedAt: at,
    version: record.version + 1,
  };
}

function markSuppressed(
  record: MessageRecord,
  suppressed: ReadonlyMap<string, Suppression>,
  now: Date,
): MessageRecord {
  const at = now.toISOString();
  return {
    ...base(record, at),
    phase: 'suppressed',
    recipients: record.recipients.map((r) => withSuppressed(record, r, suppressed, at)),
    events: [...record.events, ...suppressedEvents(suppressed, at)],
  };
}

export function markFailed(
  record: MessageRecord,
  suppressed: ReadonlyMap<string, Suppression>,
  reason: string,
  now: Date,
): MessageRecord {
  const at = now.toISOString();
  return {
    ...base(record, at),
    phase: 'failed',
    recipients: record.recipients.map((r) => {
      const next = withSuppressed(record, r, suppressed, at);
      return pending(record, next) ? { ...next, status: 'failed' as const, reason, updatedAt: at } : next;
    }),
    events: [
      ...record.events,
      ...suppressedEvents(suppressed, at),
      { type: 'failed', at, detail: { reason } },
    ],
  };
}

/**
 * Records that Baton gave up on a message it never sent: its retries ran out and SQS is about to
 * move it to the dead-letter queue. The status API then shows it failed with the last error; a
 * redrive from the DLQ can still claim and send it (see `redrivable`). A message that was sent,
 * or whose claim is held by a live attempt, is left alone. Returns the record written, if any.
 * `webhooks` is told message.failed once it is written (a redrive that sends it later tells
 * message.sent, with a higher sequence).
 */
export async function giveUp(
  messages: Pick<MessageStore, 'get' | 'update'>,
  id: string,
  reason: string,
  now: Date,
  redrivable = true,
  webhooks?: WebhookPublisher,
): Promise<MessageRecord | undefined> {
  const record = await messages.get(id);
  if (record === undefined) return undefined;
  const written = await rewrite(messages, record, (latest) => {
    // A claim held only to wait for SES's evidence is no live attempt: on the last receive the
    // message is given up on (redrivable), and evidence arriving later still moves it to sent.
    const waiting = (latest.uncertain?.confirmUntil ?? 0) > now.getTime();
    const claimLive = latest.phase === 'sending' && (latest.claimUntil ?? 0) > now.getTime() && !waiting;
    const unsent = latest.phase === 'queued' || latest.phase === 'sending' || latest.redrivable === true;
    if (!unsent || claimLive) return undefined;
    const gaveUp = markGaveUp(latest, reason, now, redrivable);
    // SES may still have the message: a redrive inside the window would send a second copy. The
    // failed record keeps the wait (the claim store refuses a redriven claim until it ends).
    const { uncertain, claimUntil } = latest;
    return waiting && redrivable && uncertain ? { ...gaveUp, uncertain, claimUntil } : gaveUp;
  });
  await publishChanges(webhooks, [written]);
  return written?.after;
}

export function markGaveUp(
  record: MessageRecord,
  reason: string,
  now: Date,
  redrivable = true,
): MessageRecord {
  const failed = markFailed(record, new Map(), reason, now);
  if (!redrivable) return failed;
  const gaveUpOn = new Set(record.recipients.filter((r) => pending(record, r)).map((r) => r.address));
  const recipients = failed.recipients.map((r) =>
    gaveUpOn.has(r.address) && r.status === 'failed' ? { ...r, unsent: true } : r,
  );
  return { ...failed, recipients, redrivable: true };
}
