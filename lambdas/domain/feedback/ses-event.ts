import { createHash } from 'node:crypto';
import { PermanentError } from '../../shared/errors.ts';
import { MessageTag } from '../../shared/names.ts';

/**
 * SES feedback, normalised. SES publishes two formats (identity notifications with
 * `notificationType`, configuration-set events with `eventType`), either raw or inside an SNS
 * envelope; everything downstream sees only `FeedbackEvent`.
 */

export type FeedbackKind =
  | 'send'
  | 'delivery'
  | 'bounce'
  | 'complaint'
  | 'delay'
  | 'reject'
  | 'rendering_failure'
  | 'subscription'
  | 'open'
  | 'click';

export interface FeedbackRecipient {
  readonly address: string;
  /** SMTP enhanced status (`5.1.1`) and the remote server's words, when SES gives them. */
  readonly status?: string;
  readonly diagnosticCode?: string;
  readonly action?: string;
}

export interface FeedbackEvent {
  readonly kind: FeedbackKind;
  readonly sesMessageId: string;
  /** From the message tags; absent in identity notifications, then found by SES message id. */
  readonly batonMessageId?: string;
  readonly at: string;
  readonly recipients: readonly FeedbackRecipient[];
  /**
   * Every address SES sent this message to (`mail.destination`): a recipient the sender left out
   * (suppressed at send time) is not among them and never reached SES.
   */
  readonly destination?: readonly string[];
  readonly bounceType?: string;
  readonly bounceSubType?: string;
  readonly feedbackType?: string;
  readonly smtpResponse?: string;
  readonly delayType?: string;
  readonly reason?: string;
  /** SES's id of a bounce or complaint report. */
  readonly feedbackId?: string;
  /** Stable across redeliveries of the same event: the record of what has been applied. */
  readonly key: string;
}

/** Not SES feedback, or too broken to act on. Retrying cannot help: it belongs in the DLQ. */
export class MalformedFeedbackError extends PermanentError {
  override readonly name: string = 'MalformedFeedbackError';
}

type Json = Record<string, unknown>;

const EVENT_KINDS: Readonly<Record<string, FeedbackKind>> = {
  send: 'send',
  delivery: 'delivery',
  bounce: 'bounce',
  complaint: 'complaint',
  deliverydelay: 'delay',
  reject: 'reject',
  'rendering failure': 'rendering_failure',
  renderingfailure: 'rendering_failure',
  subscription: 'subscription',
  open: 'open',
  click: 'click',
};

/** Parses one SQS message body from the feedback queue. */
export function parseFeedback(body: string): FeedbackEvent {
  const outer = parseJson(body, 'the queue message is not JSON');
  const payload = unwrapSns(outer);
  const typeName = str(payload, 'eventType') ?? str(payload, 'notificationType');
  if (typeName === undefined)
    throw new MalformedFeedbackError('not an SES event: no eventType or notificationType');
  // Own keys only: "constructor" or "__proto__" must not find Object's members.
  const lower = typeName.toLowerCase();
  const kind = Object.hasOwn(EVENT_KINDS, lower) ? EVENT_KINDS[lower] : undefined;
  if (kind === undefined)
    throw new MalformedFeedbackError(`unknown SES event type "${typeName.slice(0, 40)}"`);
  const mail = obj(payload, 'mail');
  if (mail === undefined) throw new MalformedFeedbackError(`${typeName} event without a mail object`);
  const sesMessageId = str(mail, 'messageId');
  if (!sesMessageId) throw new MalformedFeedbackError(`${typeName} event without mail.messageId`);
  const batonMessageId = tag(mail, MessageTag.messageId);
  const sentTo = strings(mail, 'destination');
  const base = {
    sesMessageId,
    ...(batonMessageId ? { batonMessageId } : {}),
    ...(sentTo.length > 0 ? { destination: sentTo } : {}),
  };
  const destination = sentTo.map((address) => ({ address }));
  const mailAt = str(mail, 'timestamp') ?? '';

  switch (kind) {
    case 'send':
      return finish({ ...base, kind, at: mailAt, recipients: destination });
    case 'delivery': {
      const d = section(payload, 'delivery', typeName);
      return finish({
        ...base,
        kind,
        at: str(d, 'timestamp') ?? mailAt,
        recipients: strings(d, 'recipients').map((address) => ({ address })),
        ...opt('smtpResponse', str(d, 'smtpResponse')),
      });
    }
    case 'bounce': {
      const b = section(payload, 'bounce', typeName);
      return finish({
        ...base,
        kind,
        at: str(b, 'timestamp') ?? mailAt,
        recipients: recipientList(b, 'bouncedRecipients'),
        bounceType: str(b, 'bounceType') ?? 'Undetermined',
        bounceSubType: str(b, 'bounceSubType') ?? 'Undetermined',
        ...opt('feedbackId', str(b, 'feedbackId')),
      });
    }
    case 'complaint': {
      const c = section(payload, 'complaint', typeName);
      return finish({
        ...base,
        kind,
        at: str(c, 'timestamp') ?? mailAt,
        recipients: recipientList(c, 'complainedRecipients'),
        ...opt('feedbackType', str(c, 'complaintFeedbackType') ?? str(c, 'complaintSubType')),
        ...opt('feedbackId', str(c, 'feedbackId')),
      });
    }
    case 'delay': {
      const d = section(payload, 'deliveryDelay', typeName);
      return finish({
        ...base,
        kind,
        at: str(d, 'timestamp') ?? mailAt,
        recipients: recipientList(d, 'delayedRecipients'),
        ...opt('delayType', str(d, 'delayType')),
      });
    }
    case 'reject': {
      const r = obj(payload, 'reject') ?? {};
      return finish({
        ...base,
        kind,
        at: mailAt,
        recipients: destination,
        reason: str(r, 'reason') ?? 'rejected by SES',
      });
    }
    case 'rendering_failure': {
      const f = obj(payload, 'failure') ?? {};
      return finish({
        ...base,
        kind,
        at: mailAt,
        recipients: destination,
        reason: str(f, 'errorMessage') ?? 'the template could not be rendered',
      });
    }
    case 'subscription':
    case 'open':
    case 'click': {
      const s = obj(payload, kind) ?? {};
      return finish({ ...base, kind, at: str(s, 'timestamp') ?? mailAt, recipients: destination });
    }
  }
}

function finish(e: Omit<FeedbackEvent, 'key'>): FeedbackEvent {
  if (
    e.recipients.length === 0 &&
    e.kind !== 'send' &&
    e.kind !== 'reject' &&
    e.kind !== 'rendering_failure'
  ) {
    throw new MalformedFeedbackError(`${e.kind} event names no recipient`);
  }
  // feedbackId identifies a bounce or complaint; other events are identified by what they say.
  const identity = [
    e.kind,
    e.sesMessageId,
    e.at,
    e.feedbackId ?? e.reason ?? '',
    e.recipients
      .map((r) => r.address.toLowerCase())
      .sort()
      .join(','),
  ].join('|');
  return { ...e, key: createHash('sha256').update(identity).digest('base64url').slice(0, 22) };
}

/**
 * SNS → SQS without raw delivery wraps the SES JSON in an envelope whose `Message` is a string.
 * Raw delivery (or a test) gives the SES JSON itself.
 */
function unwrapSns(outer: Json): Json {
  const type = str(outer, 'Type');
  if (type === undefined || str(outer, 'TopicArn') === undefined) return outer;
  if (type !== 'Notification')
    throw new MalformedFeedbackError(`SNS ${type.slice(0, 40)} message, not a notification`);
  const message = str(outer, 'Message');
  if (message === undefined) throw new MalformedFeedbackError('SNS notification without a Message');
  return parseJson(message, 'the SNS Message is not JSON');
}

function parseJson(text: string, problem: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MalformedFeedbackError(problem);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new MalformedFeedbackError(problem);
  return value as Json;
}

function section(payload: Json, key: string, typeName: string): Json {
  const value = obj(payload, key);
  if (value === undefined) throw new MalformedFeedbackError(`${typeName} event without its ${key} object`);
  return value;
}

function recipientList(parent: Json, key: string): FeedbackRecipient[] {
  const list = parent[key];
  if (!Array.isArray(list)) return [];
  const out: FeedbackRecipient[] = [];
  for (const item of list) {
    if (typeof item !== 'object' || item === null) continue;
    const r = item as Json;
    const address = str(r, 'emailAddress');
    if (!address) continue;
    out.push({
      address,
      ...opt('status', str(r, 'status')),
      ...opt('diagnosticCode', str(r, 'diagnosticCode')),
      ...opt('action', str(r, 'action')),
    });
  }
  return out;
}

function tag(mail: Json, name: string): string | undefined {
  const tags = obj(mail, 'tags');
  const values = tags?.[name];
  return Array.isArray(values) && typeof values[0] === 'string' ? values[0] : undefined;
}

function obj(parent: Json, key: string): Json | undefined {
  const value = parent[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

function str(parent: Json, key: string): string | undefined {
  const value = parent[key];
  return typeof value === 'string' ? value : undefined;
}

function strings(parent: Json, key: string): string[] {
  const value = parent[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function opt<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
