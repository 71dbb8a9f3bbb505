import { RemovalPolicy, Stack } from 'aws-cdk-lib';
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
  type IEmailIdentity,
  MailFromBehaviorOnMxFailure,
} from 'aws-cdk-lib/aws-ses';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { PUBLISHED_SES_EVENTS } from '../../lambdas/shared/names.ts';
import { isHostname } from '../config.ts';
import type { NotificationKey } from './notification-key.ts';

export interface SesSendingProps {
  /**
   * The sending domains, primary first; an SES domain identity is created for each (or imported,
   * see `importDomains`). The primary's identity keeps the construct id `Identity`, the one a
   * one-domain stack always had, so listing more domains never replaces it.
   */
  readonly domains: readonly string[];
  /**
   * Those of `domains` whose identity already exists in the account: referenced, not created.
   * @default []
   */
  readonly importDomains?: readonly string[];
  /** Custom MAIL FROM subdomain: the envelope sender becomes `<mailFromSubdomain>.<domain>`. */
  readonly mailFromSubdomain: string;
  /**
   * Verified recipient identities (addresses or domains) of an account in the SES sandbox, where
   * SES authorises each send against the recipients' identities too: {@link sendPolicy} names them.
   * @default []
   */
  readonly sandboxRecipients?: readonly string[];
  /** Encrypts the feedback topic; SES is admitted to it for this configuration set only. */
  readonly notificationKey: NotificationKey;
  /**
   * SES event types published to the feedback topic.
   * @default PUBLISHED_SES_EVENTS (everything the feedback function interprets; no open/click tracking)
   */
  readonly events?: readonly string[];
}

/** One sending domain's SES identity. */
export interface SendingIdentity {
  readonly domain: string;
  readonly identity: IEmailIdentity;
  /** The identity was created here with Easy DKIM and this MAIL FROM; undefined when imported. */
  readonly created?: { readonly identity: EmailIdentity; readonly mailFromDomain: string };
}

/**
 * SES for the sending domains: one domain identity each (Easy DKIM 2048-bit, custom MAIL FROM), or
 * an existing identity imported; the configuration set every send goes through; and the SNS topic
 * its events are published to.
 *
 * The DNS records (three DKIM CNAMEs, the MAIL FROM MX and SPF per created identity) are the
 * operator's to publish: the stack does not assume the zone is in Route 53.
 */
export class SesSending extends Construct {
  /** Every sending identity, primary first. */
  readonly identities: readonly SendingIdentity[];
  readonly configurationSet: ConfigurationSet;
  /** ARN of the configuration set (IAM resource for `ses:SendEmail` with that set). */
  readonly configurationSetArn: string;
  readonly feedbackTopic: Topic;
  readonly #sandboxRecipients: readonly string[];

  constructor(scope: Construct, id: string, props: SesSendingProps) {
    super(scope, id);
    const events = toSendingEvents(props.events ?? PUBLISHED_SES_EVENTS);
    const imported = new Set(props.importDomains ?? []);
    validate(props, imported);
    this.#sandboxRecipients = props.sandboxRecipients ?? [];

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

    this.identities = props.domains.map((domain, index) => {
      // The primary keeps the id of the one identity a one-domain stack had; the others are named
      // by their domain, so adding or reordering them never replaces an identity.
      const constructId = index === 0 ? 'Identity' : `Identity-${domain}`;
      if (imported.has(domain)) {
        // CloudFormation cannot adopt an identity that exists (AlreadyExists): reference it instead.
        return { domain, identity: EmailIdentity.fromEmailIdentityName(this, constructId, domain) };
      }
      const mailFromDomain = `${props.mailFromSubdomain}.${domain}`;
      const identity = new EmailIdentity(this, constructId, {
        identity: Identity.domain(domain),
        dkimIdentity: DkimIdentity.easyDkim(EasyDkimSigningKeyLength.RSA_2048_BIT),
        dkimSigning: true,
        mailFromDomain,
        // Until the MAIL FROM MX record exists SES falls back to amazonses.com instead of refusing to
        // send, so a first deployment works before DNS is done (SPF alignment follows once it is).
        mailFromBehaviorOnMxFailure: MailFromBehaviorOnMxFailure.USE_DEFAULT_VALUE,
        // Sends from this domain use the set even if a caller omits it, so no event escapes feedback.
        configurationSet: this.configurationSet,
      });
      // A verified identity outlives the stack and its own removal from `domains`: deleting it would
      // drop its DKIM verification, and the same domain can come back through `importDomains`.
      identity.applyRemovalPolicy(RemovalPolicy.RETAIN);
      return { domain, identity, created: { identity, mailFromDomain } };
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

  /** The sending domains, primary first. */
  get domains(): string[] {
    return this.identities.map((i) => i.domain);
  }

  /**
   * Lets a function send through exactly these identities and the configuration set. In the SES
   * sandbox SES also checks the action against each recipient's identity: the SES Developer Guide
   * warns that the sandbox's restrictions change how IAM policies apply
   * (https://docs.aws.amazon.com/ses/latest/dg/control-user-access.html), and roles scoped to the
   * sending identity get "not authorized to perform ses:SendRawEmail on resource
   * arn:aws:ses:...:identity/<recipient>" there (GSA/data.gov#3810, cloudposse/terraform-aws-ses#40).
   * So the sandbox recipients are named too, and nothing wider.
   */
  sendPolicy(): PolicyStatement {
    const stack = Stack.of(this);
    const recipients = this.#sandboxRecipients.map((recipient) =>
      stack.formatArn({ service: 'ses', resource: 'identity', resourceName: recipient }),
    );
    return new PolicyStatement({
      // SES v2 SendEmail is authorised as ses:SendEmail, or ses:SendRawEmail for raw MIME content.
      actions: ['ses:SendEmail', 'ses:SendRawEmail'],
      resources: [
        ...this.identities.map((i) => i.identity.emailIdentityArn),
        ...recipients,
        this.configurationSetArn,
      ],
    });
  }
}

function validate(props: SesSendingProps, imported: ReadonlySet<string>): void {
  if (props.domains.length === 0) throw new Error('SesSending: at least one sending domain is required');
  for (const domain of props.domains) {
    const mailFromDomain = `${props.mailFromSubdomain}.${domain}`;
    if (!isHostname(domain) || !isHostname(mailFromDomain)) {
      throw new Error(`SesSending: "${domain}" / "${mailFromDomain}" must be valid domain names`);
    }
  }
  const unknown = [...imported].filter((domain) => !props.domains.includes(domain));
  if (unknown.length > 0) {
    throw new Error(
      `SesSending: importDomains must be among the sending domains, unknown: ${unknown.join(', ')}`,
    );
  }
  const duplicate = props.domains.find((domain, index) => props.domains.indexOf(domain) !== index);
  if (duplicate !== undefined) throw new Error(`SesSending: duplicate sending domain "${duplicate}"`);
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
