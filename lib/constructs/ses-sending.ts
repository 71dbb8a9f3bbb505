import { Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import {
  ConfigurationSet,
  ConfigurationSetEventDestination,
  DkimIdentity,
  EasyDkimSigningKeyLength,
  EmailIdentity,
  EmailSendingEvent,
  EventDestination,
  Identity,
  MailFromBehaviorOnMxFailure,
} from 'aws-cdk-lib/aws-ses';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { PUBLISHED_SES_EVENTS } from '../../lambdas/shared/names.ts';
import { isHostname } from '../config.ts';
import type { NotificationKey } from './notification-key.ts';

export interface SesSendingProps {
  /** The sending domain; an SES domain identity is created for it. */
  readonly domain: string;
  /** Custom MAIL FROM subdomain: the envelope sender becomes `<mailFromSubdomain>.<domain>`. */
  readonly mailFromSubdomain: string;
  /** Encrypts the feedback topic; SES is admitted to it for this configuration set only. */
  readonly notificationKey: NotificationKey;
  /**
   * SES event types published to the feedback topic.
   * @default PUBLISHED_SES_EVENTS (everything the feedback function interprets; no open/click tracking)
   */
  readonly events?: readonly string[];
}

/**
 * SES for one sending domain: the domain identity (Easy DKIM 2048-bit, custom MAIL FROM), the
 * configuration set every send goes through, and the SNS topic its events are published to.
 *
 * The DNS records (three DKIM CNAMEs, the MAIL FROM MX and SPF) are the operator's to publish: the
 * stack does not assume the zone is in Route 53.
 */
export class SesSending extends Construct {
  readonly identity: EmailIdentity;
  readonly configurationSet: ConfigurationSet;
  /** ARN of the configuration set (IAM resource for `ses:SendEmail` with that set). */
  readonly configurationSetArn: string;
  readonly feedbackTopic: Topic;
  readonly mailFromDomain: string;

  constructor(scope: Construct, id: string, props: SesSendingProps) {
    super(scope, id);
    const events = toSendingEvents(props.events ?? PUBLISHED_SES_EVENTS);
    this.mailFromDomain = `${props.mailFromSubdomain}.${props.domain}`;
    if (!isHostname(props.domain) || !isHostname(this.mailFromDomain)) {
      throw new Error(`SesSending: "${props.domain}" / "${this.mailFromDomain}" must be valid domain names`);
    }

    this.configurationSet = new ConfigurationSet(this, 'ConfigurationSet', {
      // Per-configuration-set bounce and complaint rates, next to the account-wide ones SES enforces.
      reputationMetrics: true,
      sendingEnabled: true,
    });
    this.configurationSetArn = Stack.of(this).formatArn({
      service: 'ses',
      resource: 'configuration-set',
      resourceName: this.configurationSet.configurationSetName,
    });

    this.identity = new EmailIdentity(this, 'Identity', {
      identity: Identity.domain(props.domain),
      dkimIdentity: DkimIdentity.easyDkim(EasyDkimSigningKeyLength.RSA_2048_BIT),
      dkimSigning: true,
      mailFromDomain: this.mailFromDomain,
      // Until the MAIL FROM MX record exists SES falls back to amazonses.com instead of refusing to
      // send, so a first deployment works before DNS is done (SPF alignment follows once it is).
      mailFromBehaviorOnMxFailure: MailFromBehaviorOnMxFailure.USE_DEFAULT_VALUE,
      // Sends from this domain use the set even if a caller omits it, so no event escapes feedback.
      configurationSet: this.configurationSet,
    });

    this.feedbackTopic = new Topic(this, 'FeedbackTopic', {
      masterKey: props.notificationKey.key,
      enforceSSL: true,
    });
    props.notificationKey.allowServicePublisher('ses.amazonaws.com', this.configurationSetArn);
    // The event destination also adds the topic policy statement that lets SES publish, limited to
    // this account (aws:SourceAccount) and this configuration set (aws:SourceArn).
    const destination = new ConfigurationSetEventDestination(this, 'FeedbackDestination', {
      configurationSet: this.configurationSet,
      destination: EventDestination.snsTopic(this.feedbackTopic),
      events,
    });
    // SES validates publish access when the destination is created, so the key policy must exist first.
    destination.node.addDependency(props.notificationKey.key);
  }

  /** Lets a function send through this identity and configuration set. */
  sendPolicy(): PolicyStatement {
    return new PolicyStatement({
      // SES v2 SendEmail is authorised as ses:SendEmail, or ses:SendRawEmail for raw MIME content.
      actions: ['ses:SendEmail', 'ses:SendRawEmail'],
      resources: [this.identity.emailIdentityArn, this.configurationSetArn],
    });
  }
}

function toSendingEvents(names: readonly string[]): EmailSendingEvent[] {
  const known = new Set<string>(Object.values(EmailSendingEvent));
  const unknown = names.filter((name) => !known.has(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(
      `SesSending: events must be non-empty SES event types, unknown: ${unknown.join(', ') || '(none given)'}`,
    );
  }
  return Object.values(EmailSendingEvent).filter((event) => names.includes(event));
}
