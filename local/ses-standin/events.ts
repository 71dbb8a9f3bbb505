import { sesStyleId } from './ids.ts';
import type { EventGroup } from './mailbox-simulator.ts';
import type { MailHeader } from './mime-headers.ts';

/**
 * SES events in the configuration-set event publishing format (`eventType`, not the older identity
 * notification `notificationType`), as SES publishes them to an SNS event destination. Shapes copied
 * from https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html and
 * the real captures in test/fixtures/shared/ses/ (a copy of the team fixtures).
 */

export type SesEventType =
  | 'Send'
  | 'Delivery'
  | 'Bounce'
  | 'Complaint'
  | 'DeliveryDelay'
  | 'Reject'
  | 'Rendering Failure';

/** `eventType` → the CloudFormation `MatchingEventTypes` name an event destination lists it under. */
export const MATCHING_EVENT_TYPE: Readonly<Record<SesEventType, string>> = {
  Send: 'send',
  Delivery: 'delivery',
  Bounce: 'bounce',
  Complaint: 'complaint',
  DeliveryDelay: 'deliveryDelay',
  Reject: 'reject',
  'Rendering Failure': 'renderingFailure',
};

/** Every name CloudFormation accepts in `MatchingEventTypes` (open/click/subscription never fire here). */
export const KNOWN_MATCHING_EVENT_TYPES: ReadonlySet<string> = new Set([
  ...Object.values(MATCHING_EVENT_TYPE),
  'open',
  'click',
  'subscription',
]);

export interface SesCommonHeaders {
  readonly from?: string[];
  readonly replyTo?: string[];
  readonly sender?: string[];
  readonly to?: string[];
  readonly cc?: string[];
  readonly bcc?: string[];
  readonly returnPath?: string;
  readonly date?: string;
  readonly messageId?: string;
  readonly subject?: string;
}

export interface SesMail {
  readonly timestamp: string;
  readonly source: string;
  readonly sourceArn: string;
  readonly sendingAccountId: string;
  readonly messageId: string;
  readonly destination: string[];
  readonly headersTruncated: boolean;
  readonly headers: MailHeader[];
  readonly commonHeaders: SesCommonHeaders;
  /** Message tags (EmailTags) plus SES's own `ses:*` tags, each name mapped to a list of values. */
  readonly tags: Record<string, string[]>;
}

export interface SesBouncedRecipient {
  readonly emailAddress: string;
  readonly action?: string;
  readonly status?: string;
  readonly diagnosticCode?: string;
}

export type SesEvent =
  | { readonly eventType: 'Send'; readonly mail: SesMail; readonly send: Record<string, never> }
  | {
      readonly eventType: 'Delivery';
      readonly mail: SesMail;
      readonly delivery: {
        readonly timestamp: string;
        readonly processingTimeMillis: number;
        readonly recipients: string[];
        readonly smtpResponse: string;
        readonly remoteMtaIp: string;
        readonly reportingMTA: string;
      };
    }
  | {
      readonly eventType: 'Bounce';
      readonly mail: SesMail;
      readonly bounce: {
        readonly bounceType: 'Permanent' | 'Transient' | 'Undetermined';
        readonly bounceSubType: string;
        readonly bouncedRecipients: SesBouncedRecipient[];
        readonly timestamp: string;
        readonly feedbackId: string;
        readonly reportingMTA?: string;
        readonly remoteMtaIp?: string;
      };
    }
  | {
      readonly eventType: 'Complaint';
      readonly mail: SesMail;
      readonly complaint: {
        readonly feedbackId: string;
        readonly complaintSubType: string | null;
        readonly complainedRecipients: Array<{ readonly emailAddress: string }>;
        readonly timestamp: string;
        readonly userAgent: string;
        readonly complaintFeedbackType: string;
        readonly arrivalDate: string;
      };
    }
  | {
      readonly eventType: 'DeliveryDelay';
      readonly mail: SesMail;
      readonly deliveryDelay: {
        readonly timestamp: string;
        readonly delayType: string;
        readonly expirationTime: string;
        readonly delayedRecipients: SesBouncedRecipient[];
      };
    }
  | { readonly eventType: 'Reject'; readonly mail: SesMail; readonly reject: { readonly reason: string } };

/** Where the stand-in pretends the receiving side is; visible in `reportingMTA` / `remoteMtaIp`. */
export const STANDIN_MTA = { host: 'ses-standin.localhost', ip: '127.0.0.1' } as const;

// What the mailbox simulator answers (see the delivery captures).
const SMTP_OK = '250 2.6.0 Message received';
// SES keeps retrying a deferred message for up to 14 hours before it bounces.
const RETRY_WINDOW_MS = 14 * 60 * 60 * 1000;

export const sendEvent = (mail: SesMail): SesEvent => ({ eventType: 'Send', mail, send: {} });

export const rejectEvent = (mail: SesMail): SesEvent => ({
  eventType: 'Reject',
  mail,
  reject: { reason: 'Bad content' },
});

/** The event for one group of recipients that share an outcome (see `planEventPhases`). */
export const outcomeEvent = (mail: SesMail, group: EventGroup, at: Date): SesEvent => {
  const timestamp = at.toISOString();
  const recipients = [...group.recipients];
  const step = group.step;
  switch (step.kind) {
    case 'delivery':
      return {
        eventType: 'Delivery',
        // SES adds the sending IP to the tags of Delivery events only.
        mail: { ...mail, tags: { ...mail.tags, 'ses:outgoing-ip': [STANDIN_MTA.ip] } },
        delivery: {
          timestamp,
          processingTimeMillis: Math.max(0, at.getTime() - Date.parse(mail.timestamp)),
          recipients,
          smtpResponse: SMTP_OK,
          remoteMtaIp: STANDIN_MTA.ip,
          reportingMTA: STANDIN_MTA.host,
        },
      };
    case 'bounce':
      return {
        eventType: 'Bounce',
        mail,
        bounce: {
          bounceType: step.bounceType,
          bounceSubType: step.bounceSubType,
          bouncedRecipients: recipients.map((emailAddress) => ({ emailAddress, ...step.dsn })),
          timestamp,
          feedbackId: sesStyleId(at),
          ...(step.reportedBy === 'remote'
            ? { reportingMTA: `dns; ${STANDIN_MTA.host}`, remoteMtaIp: STANDIN_MTA.ip }
            : step.reportedBy === 'ses'
              ? { reportingMTA: 'dns; amazonses.com' }
              : {}),
        },
      };
    case 'complaint':
      return {
        eventType: 'Complaint',
        mail,
        complaint: {
          feedbackId: sesStyleId(at),
          complaintSubType: null,
          complainedRecipients: recipients.map((emailAddress) => ({ emailAddress })),
          timestamp,
          userAgent: 'Amazon SES Mailbox Simulator',
          complaintFeedbackType: step.feedbackType,
          arrivalDate: timestamp,
        },
      };
    case 'deliveryDelay':
      return {
        eventType: 'DeliveryDelay',
        mail,
        deliveryDelay: {
          timestamp,
          delayType: 'TransientCommunicationFailure',
          expirationTime: new Date(Date.parse(mail.timestamp) + RETRY_WINDOW_MS).toISOString(),
          delayedRecipients: recipients.map((emailAddress) => ({
            emailAddress,
            status: '4.4.1',
            diagnosticCode: 'smtp; 421 4.4.1 Unable to connect to remote host',
          })),
        },
      };
  }
};
