/**
 * Small builders for domain values, with defaults that are valid and boring so each test only
 * spells out what it is about.
 */
import type { SQSRecord } from 'aws-lambda';
import type { ErasureJob } from '../../lambdas/domain/erasure/erasure.ts';
import type { FeedbackEvent } from '../../lambdas/domain/feedback/ses-event.ts';
import type {
  MessageRecord,
  OutgoingMessage,
  RecipientKind,
  RecipientState,
  RecipientStatus,
  SendJob,
} from '../../lambdas/domain/message.ts';
import type { StatsRow } from '../../lambdas/domain/reporting/stats.ts';
import {
  SEVERITY,
  type Suppression,
  type SuppressionReason,
} from '../../lambdas/domain/suppression/suppression.ts';
import { MessageTag } from '../../lambdas/shared/names.ts';

export const T0 = '2025-03-01T12:00:00.000Z';

/** A valid POST /v1/messages body. */
export function sendBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    from: 'Shop <orders@example.com>',
    to: ['ana@example.org'],
    subject: 'Your receipt',
    text: 'Thanks for your order.',
    ...overrides,
  };
}

/** A valid POST /v1/messages body that uses every field of DESIGN §2. */
export function everyFieldBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    from: 'Shop <orders@example.com>',
    to: ['ana@example.org'],
    cc: [],
    bcc: [],
    replyTo: ['support@example.com'],
    subject: 'Your receipt',
    text: 'plain text body',
    html: '<p>html body</p>',
    attachments: [
      {
        filename: 'r.pdf',
        contentType: 'application/pdf',
        content: 'JVBERi0xLjQK',
        disposition: 'attachment',
        contentId: null,
      },
    ],
    headers: { 'X-Order-Id': '123' },
    tags: { campaign: 'receipts' },
    stream: 'broadcast',
    listUnsubscribe: 'https://example.com/unsub?u=1',
    ...overrides,
  };
}

/** A validated message, as `validateSendRequest` returns it. */
export function outgoingMessage(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    from: { name: 'Shop', address: 'orders@example.com' },
    to: [{ address: 'ana@example.org' }],
    cc: [],
    bcc: [],
    replyTo: [],
    subject: 'Your receipt',
    text: 'Thanks for your order.',
    attachments: [],
    headers: {},
    tags: {},
    stream: 'transactional',
    ...overrides,
  };
}

export function recipient(
  address: string,
  status: RecipientStatus = 'queued',
  overrides: Partial<RecipientState> = {},
): RecipientState {
  const kind: RecipientKind = 'to';
  return { address, kind, status, reason: null, updatedAt: T0, ...overrides };
}

/** A Messages item as `acceptMessage` writes it (phase queued, version 1). */
export function messageRecord(overrides: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: 'msg_1',
    tenant: 'tenant-a',
    stream: 'transactional',
    phase: 'queued',
    from: 'Shop <orders@example.com>',
    subject: 'Your receipt',
    createdAt: T0,
    updatedAt: T0,
    expiresAt: Date.parse(T0) / 1000 + 30 * 86_400,
    recipients: [recipient('ana@example.org')],
    events: [{ type: 'accepted', at: T0 }],
    seen: [],
    version: 1,
    ...overrides,
  };
}

/** The queue message for `record`'s message. */
export function sendJob(
  message: OutgoingMessage = outgoingMessage(),
  id = 'msg_1',
  tenant = 'tenant-a',
): SendJob {
  return { v: 1, id, tenant, message };
}

export function suppression(
  address: string,
  reason: SuppressionReason = 'hard_bounce',
  overrides: Partial<Suppression> = {},
): Suppression {
  return {
    address,
    reason,
    detail: null,
    source: 'api',
    createdAt: T0,
    expiresAt: null,
    severity: SEVERITY[reason],
    ...overrides,
  };
}

/** The first step of an erasure scan of tenant-a over two segments, nothing erased yet. */
export function erasureJob(overrides: Partial<ErasureJob> & Pick<ErasureJob, 'key'>): ErasureJob {
  return {
    baton: 'erasure',
    v: 1,
    tenant: 'tenant-a',
    segments: 2,
    positions: [{ done: false }, { done: false }],
    erased: 0,
    startedAt: T0,
    round: 1,
    ...overrides,
  };
}

/** A row of GET /v1/stats (a day without its date, or the totals): zero but for `overrides`. */
export function statsRow(overrides: Partial<StatsRow> = {}): StatsRow {
  return {
    accepted: 0,
    rejected: 0,
    suppressed: 0,
    sent: 0,
    delivered: 0,
    bounced: 0,
    complained: 0,
    failed: 0,
    bounceRate: 0,
    complaintRate: 0,
    ...overrides,
  };
}

/** A parsed feedback event; `key` defaults to something unique per kind and recipients. */
export function feedbackEvent(
  overrides: Partial<FeedbackEvent> & Pick<FeedbackEvent, 'kind'>,
): FeedbackEvent {
  const recipients = overrides.recipients ?? [{ address: 'ana@example.org' }];
  return {
    sesMessageId: 'ses-1',
    batonMessageId: 'msg_1',
    at: '2025-03-01T12:01:00.000Z',
    recipients,
    key: `${overrides.kind}:${recipients.map((r) => r.address).join(',')}:${overrides.at ?? ''}`,
    ...overrides,
  };
}

export interface SesEventInit {
  /** `Bounce`, `Delivery`, `Complaint`, `Send`, `Reject`, `DeliveryDelay`, ... */
  readonly eventType: string;
  readonly sesMessageId?: string;
  /** Put on the mail as the Baton message-id tag (configuration-set events carry tags). */
  readonly batonMessageId?: string;
  readonly timestamp?: string;
  readonly destination?: readonly string[];
  /** The event's own section (`bounce`, `delivery`...), keyed as SES keys it. */
  readonly sections?: Readonly<Record<string, unknown>>;
}

/** A configuration-set event as the feedback queue receives it with raw delivery: bare SES JSON. */
export function sesEventBody(init: SesEventInit): string {
  const timestamp = init.timestamp ?? '2025-03-01T12:01:00.000Z';
  return JSON.stringify({
    eventType: init.eventType,
    mail: {
      timestamp,
      messageId: init.sesMessageId ?? 'ses-1',
      destination: init.destination ?? ['ana@example.org'],
      ...(init.batonMessageId ? { tags: { [MessageTag.messageId]: [init.batonMessageId] } } : {}),
    },
    ...init.sections,
  });
}

/** The same JSON wrapped in the SNS envelope SNS → SQS delivers without raw message delivery. */
export function snsEnvelope(message: string, type = 'Notification'): string {
  return JSON.stringify({
    Type: type,
    MessageId: '00000000-0000-0000-0000-000000000001',
    TopicArn: 'arn:aws:sns:us-east-1:123456789012:baton-feedback',
    Message: message,
    Timestamp: '2025-03-01T12:01:01.000Z',
    SignatureVersion: '1',
  });
}

/** One SQS record as Lambda delivers it. */
export function sqsRecord(
  body: string,
  overrides: { messageId?: string; receiveCount?: number } = {},
): SQSRecord {
  const messageId = overrides.messageId ?? 'sqs-1';
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(overrides.receiveCount ?? 1),
      SentTimestamp: String(Date.parse(T0)),
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: String(Date.parse(T0)),
    },
    messageAttributes: {},
    md5OfBody: '0'.repeat(32),
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:baton-transactional',
    awsRegion: 'us-east-1',
  };
}
