import type { Lane } from '../shared/names.ts';
import type { Mailbox } from './address.ts';

/** A message id as Baton hands it out (`msg_<ULID>`); anything else names no message. */
export const MESSAGE_ID = /^msg_[0-9A-Za-z]{1,64}$/;

/** What a client sends, validated and normalised; the sender turns it into MIME. */
export interface OutgoingMessage {
  readonly from: Mailbox;
  readonly to: readonly Mailbox[];
  readonly cc: readonly Mailbox[];
  readonly bcc: readonly Mailbox[];
  readonly replyTo: readonly Mailbox[];
  readonly subject: string;
  readonly text?: string;
  readonly html?: string;
  readonly attachments: readonly Attachment[];
  /** Custom headers, names as given (matched case-insensitively when checked). */
  readonly headers: Readonly<Record<string, string>>;
  readonly tags: Readonly<Record<string, string>>;
  readonly stream: Lane;
  readonly listUnsubscribe?: string;
  /** Set when the sender policy rewrote `from`: the From the client asked for. */
  readonly originalFrom?: Mailbox;
  /**
   * SMTP only: the Message-ID the client wrote (`<id-left@id-right>`, printable ASCII, checked);
   * absent, Baton makes one from its own id.
   */
  readonly messageId?: string;
  /** SMTP only: the Date header the client wrote, as written (an RFC 5322 date, checked); absent, the send time. */
  readonly date?: string;
  /**
   * SMTP only: the To and Cc the client's headers show. Over SMTP the envelope (RCPT TO) decides who
   * receives the message (`to`, `cc` and `bcc` hold exactly those) and the headers only what it
   * shows, as with any mail server: an address shown here that is not a recipient is never sent to.
   * Absent (the JSON API), the headers show `to` and `cc`.
   */
  readonly shownTo?: readonly Mailbox[];
  readonly shownCc?: readonly Mailbox[];
}

export interface Attachment {
  readonly filename: string;
  readonly contentType?: string;
  /** Base64, as received. */
  readonly content: string;
  readonly disposition: 'attachment' | 'inline';
  readonly contentId?: string;
  /**
   * SMTP only: the charset the client labelled a text attachment with (its bytes are sent as they
   * are, so the label must go with them); the composer writes it as the part's charset.
   */
  readonly charset?: string;
}

/** The queue message: everything the sender needs, so it never reads the body from a table. */
export interface SendJob {
  readonly v: 1;
  readonly id: string;
  readonly tenant: string;
  /**
   * The API key that sent it: the sender re-checks the abuse guard's state (the key's and, copied
   * onto it, its tenant's) before each send. Absent on jobs queued before the guard existed.
   */
  readonly keyId?: string;
  readonly message: OutgoingMessage;
}

export type RecipientKind = 'to' | 'cc' | 'bcc';

export type RecipientStatus =
  | 'queued'
  /** Kept by the abuse guard, not sent (domain/guard/hold.ts); back to queued on release. */
  | 'held'
  | 'sent'
  | 'delivered'
  | 'delayed'
  | 'bounced'
  | 'complained'
  | 'suppressed'
  | 'failed';

export type MessageStatus =
  | 'queued'
  | 'held'
  | 'sending'
  | 'sent'
  | 'delivered'
  | 'partially_delivered'
  | 'bounced'
  | 'complained'
  | 'suppressed'
  | 'rejected'
  | 'failed';

/**
 * Where the message is in Baton's own pipeline. The public status is derived from this and the
 * recipients (see `status.ts`), so the two can never disagree.
 */
export type Phase = 'queued' | 'held' | 'sending' | 'sent' | 'suppressed' | 'failed' | 'rejected';

export interface RecipientState {
  /** As sent (domain in punycode); compare with `normaliseAddress`. */
  readonly address: string;
  readonly kind: RecipientKind;
  readonly status: RecipientStatus;
  /** Why it was not delivered, in words a support person can read; null once delivered. */
  readonly reason: string | null;
  readonly updatedAt: string;
  /** A transient bounce: a later delivery (an auto-reply, a retry that worked) may still win. */
  readonly soft?: boolean;
  /**
   * Failed only because Baton gave up before it knew SES had the message: any later SES event that
   * names it in its destination still shows it sent, even after another event settled the message.
   */
  readonly unsent?: boolean;
}

export type TimelineEventType =
  | 'accepted'
  | 'suppressed'
  | 'sent'
  | 'delivered'
  | 'delayed'
  | 'bounced'
  | 'complained'
  | 'rejected'
  | 'failed'
  | 'rendering_failed'
  | 'opened'
  | 'clicked'
  | 'unsubscribed'
  | 'retrying'
  /** The abuse guard held the message (detail: signal, reason, until). */
  | 'held'
  /** An operator released held mail (detail: reason). */
  | 'released';

export interface TimelineEvent {
  readonly type: TimelineEventType;
  readonly at: string;
  readonly recipient?: string;
  readonly sesMessageId?: string;
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
}

/** The Messages table item. Bodies are never stored: only what the status API shows. */
export interface MessageRecord {
  readonly id: string;
  readonly tenant: string;
  /** The API key that sent it, so feedback counts its bounces against that key (abuse guard). */
  readonly keyId?: string;
  readonly stream: Lane;
  /**
   * The message's tags, as the client gave them (absent when it gave none, and on records written
   * before webhooks): every webhook event of the message carries them. Not shown by the status API.
   */
  readonly tags?: Readonly<Record<string, string>>;
  readonly phase: Phase;
  readonly from: string;
  readonly subject: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Epoch seconds; DynamoDB TTL removes the record after the retention period. */
  readonly expiresAt: number;
  readonly recipients: readonly RecipientState[];
  readonly events: readonly TimelineEvent[];
  readonly sesMessageId?: string;
  /** The send claim (exactly-once): who holds it and until when (epoch ms). */
  readonly claimToken?: string;
  readonly claimUntil?: number;
  /**
   * Set when Baton gave up on a message it never sent (its retries ran out and it went to the
   * dead-letter queue): a redrive may still send it. Cleared by the next transition.
   */
  readonly redrivable?: boolean;
  /**
   * The last SendEmail whose outcome SES left unknown (a 5xx, a reset connection, a timeout): SES
   * may have taken it. The claim is held until `confirmUntil` (epoch ms) so no retry sends again
   * before SES's evidence had time to arrive; evidence moves the message on and clears this.
   */
  readonly uncertain?: UncertainAttempt;
  /** While `phase` is `held`: why and until when (domain/guard/hold.ts). */
  readonly hold?: HoldInfo;
  /** Keys of feedback events already applied, so a redelivered event has no second effect. */
  readonly seen: readonly string[];
  /** Optimistic-concurrency counter: every write checks and bumps it. */
  readonly version: number;
}

/** What RFC 3986 does not allow in a URI, and the comma that separates List-Unsubscribe's items. */
const NOT_URI_CHARACTER = /[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+;=%]/gu;

/**
 * `url` as it may stand between `<` and `>` in a header (List-Unsubscribe, RFC 2369): the URL
 * parser's serialisation (which percent-encodes spaces, quotes, angle brackets and non-ASCII),
 * with every other character outside RFC 3986's set, and the comma, percent-encoded too. So
 * `https://x.example/u>, <mailto:harvest@evil.example` stays one URI. Undefined when it is not a URL.
 */
export function headerUri(url: string): string | undefined {
  let href: string;
  try {
    href = new URL(url).href;
  } catch {
    return undefined;
  }
  return href.replace(NOT_URI_CHARACTER, (char) =>
    [...Buffer.from(char, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

/** Why the abuse guard holds a message, and when the hold expires (then it reads as failed). */
export interface HoldInfo {
  readonly at: string;
  /** ISO time the hold expires: 7 days after `at` (HOLD_DAYS). */
  readonly until: string;
  /** The guard action that holds it: `pauseBroadcast`, `holdAll` or `suspendKey`. */
  readonly action: string;
  readonly signal: string;
  /** In words, as the decision gave it. */
  readonly reason: string;
}

/** A SendEmail that may or may not have reached SES (see `MessageRecord.uncertain`). */
export interface UncertainAttempt {
  readonly at: string;
  readonly confirmUntil: number;
  /** SES's request id, when SES answered at all. */
  readonly sesRequestId?: string;
}

/**
 * Whether a claim attempt that did not win must come back later rather than acknowledge the
 * delivery: an attempt holds the claim, or the message was given up on while it waited for SES's
 * evidence of an uncertain attempt (a DLQ redrive inside that wait would send a second copy; after
 * it, the redrive claims and sends).
 */
export function waitsForClaim(record: MessageRecord, now: Date): boolean {
  if (record.phase === 'sending') return true;
  return record.phase === 'failed' && record.redrivable === true && (record.claimUntil ?? 0) >= now.getTime();
}

/** The reason on the timeline's `retrying` event of an attempt whose SES answer was lost. */
export const SES_OUTCOME_UNKNOWN = 'SES outcome unknown';
