import { Stack } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { PUBLISHED_SES_EVENTS } from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { NotificationKey } from '../../lib/constructs/notification-key.ts';
import { SesSending } from '../../lib/constructs/ses-sending.ts';
import {
  asArray,
  logicalIdOf,
  type PolicyStatementJson,
  props,
  resourceOf,
  resourcesOfType,
  statementsOf,
  synthTemplate,
} from './support.ts';

const configurationSetArn = (configurationSet: string): unknown => ({
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      ':ses:',
      { Ref: 'AWS::Region' },
      ':',
      { Ref: 'AWS::AccountId' },
      ':configuration-set/',
      { Ref: configurationSet },
    ],
  ],
});

describe('SES sending', () => {
  let template: Template;
  let stack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate({ context: { domain: 'mail.example.com' } }));
  });

  it('verifies the domain with 2048-bit Easy DKIM and a custom MAIL FROM subdomain', () => {
    // Act / Assess
    template.hasResourceProperties('AWS::SES::EmailIdentity', {
      EmailIdentity: 'mail.example.com',
      DkimAttributes: { SigningEnabled: true },
      DkimSigningAttributes: { NextSigningKeyLength: 'RSA_2048_BIT' },
      MailFromAttributes: {
        MailFromDomain: 'bounce.mail.example.com',
        BehaviorOnMxFailure: 'USE_DEFAULT_VALUE',
      },
      ConfigurationSetAttributes: { ConfigurationSetName: { Ref: logicalIdOf(stack.ses.configurationSet) } },
    });
  });

  it('uses the configured MAIL FROM subdomain', () => {
    // Prepare
    const custom = synthTemplate({ context: { mailFromSubdomain: 'mx' } });

    // Act / Assess
    custom.template.hasResourceProperties('AWS::SES::EmailIdentity', {
      MailFromAttributes: Match.objectLike({ MailFromDomain: 'mx.example.com' }),
    });
  });

  it('turns on reputation metrics for the configuration set', () => {
    // Act / Assess
    template.hasResourceProperties('AWS::SES::ConfigurationSet', {
      ReputationOptions: { ReputationMetricsEnabled: true },
      SendingOptions: { SendingEnabled: true },
    });
  });

  it('publishes exactly the seven feedback event types to the feedback topic', () => {
    // Act
    const destinations = Object.values(
      resourcesOfType(template, 'AWS::SES::ConfigurationSetEventDestination'),
    );

    // Assess
    expect(destinations).toHaveLength(1);
    const destination = props(destinations[0] ?? { Type: 'missing' });
    const eventDestination = destination.EventDestination as { MatchingEventTypes: string[] };
    expect(destination.ConfigurationSetName).toEqual({ Ref: logicalIdOf(stack.ses.configurationSet) });
    expect(eventDestination).toMatchObject({
      Enabled: true,
      SnsDestination: { TopicARN: { Ref: logicalIdOf(stack.ses.feedbackTopic) } },
    });
    expect([...eventDestination.MatchingEventTypes].sort()).toEqual([...PUBLISHED_SES_EVENTS].sort());
    expect(eventDestination.MatchingEventTypes).toHaveLength(7);
  });

  it('encrypts the feedback topic with a rotating customer managed key', () => {
    // Prepare
    const key = logicalIdOf(stack.notificationKey.key);

    // Act / Assess
    expect(props(resourceOf(template, stack.ses.feedbackTopic))).toEqual({
      KmsMasterKeyId: { 'Fn::GetAtt': [key, 'Arn'] },
    });
    expect(props(resourceOf(template, stack.notificationKey.key))).toMatchObject({ EnableKeyRotation: true });
  });

  it('lets only SES, for this account and configuration set, use the key', () => {
    // Act
    const sesStatements = statementsOf(
      props(resourceOf(template, stack.notificationKey.key)).KeyPolicy,
    ).filter(
      (statement) => JSON.stringify(statement.Principal) === JSON.stringify({ Service: 'ses.amazonaws.com' }),
    );

    // Assess
    expect(sesStatements).toHaveLength(1);
    expect({ ...sesStatements[0], Action: asArray(sesStatements[0]?.Action).sort() }).toEqual({
      Effect: 'Allow',
      Principal: { Service: 'ses.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: '*',
      Condition: {
        StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
        ArnLike: { 'aws:SourceArn': configurationSetArn(logicalIdOf(stack.ses.configurationSet)) },
      },
    });
  });

  it('lets only SES of this account publish to the feedback topic, and only over TLS', () => {
    // Prepare
    const topic = logicalIdOf(stack.ses.feedbackTopic);

    // Act
    const statements = Object.values(resourcesOfType(template, 'AWS::SNS::TopicPolicy'))
      .filter((policy) =>
        asArray(props(policy).Topics as unknown[]).some(
          (t) => JSON.stringify(t) === JSON.stringify({ Ref: topic }),
        ),
      )
      .flatMap((policy) => statementsOf(props(policy).PolicyDocument));

    // Assess
    const allows = statements.filter((s) => s.Effect === 'Allow');
    expect(allows).toEqual([
      expect.objectContaining({
        Action: 'sns:Publish',
        Principal: { Service: 'ses.amazonaws.com' },
        Condition: {
          StringEquals: {
            'AWS:SourceAccount': { Ref: 'AWS::AccountId' },
            'AWS:SourceArn': configurationSetArn(logicalIdOf(stack.ses.configurationSet)),
          },
        },
      }),
    ]);
    expect(statements).toContainEqual(
      expect.objectContaining<Partial<PolicyStatementJson>>({
        Effect: 'Deny',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
  });

  it('subscribes the feedback queue to the topic with raw message delivery', () => {
    // Act / Assess
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'sqs',
      TopicArn: { Ref: logicalIdOf(stack.ses.feedbackTopic) },
      Endpoint: { 'Fn::GetAtt': [logicalIdOf(stack.feedback.queue.queue), 'Arn'] },
      RawMessageDelivery: true,
    });
  });

  it('creates the event destination only after SES may use the key and publish to the topic', () => {
    // Act
    const [destination] = Object.values(
      resourcesOfType(template, 'AWS::SES::ConfigurationSetEventDestination'),
    );

    // Assess
    expect(destination?.DependsOn).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^NotificationKey/),
        expect.stringMatching(/^SesFeedbackTopicPolicy/),
      ]),
    );
  });
});

describe('SesSending', () => {
  it('refuses an event type SES does not publish, naming it', () => {
    // Prepare
    const stack = new Stack();
    const notificationKey = new NotificationKey(stack, 'Key');

    // Act / Assess
    expect(
      () =>
        new SesSending(stack, 'Ses', {
          domains: ['example.com'],
          mailFromSubdomain: 'bounce',
          notificationKey,
          events: ['send', 'opened'],
        }),
    ).toThrow('SesSending: events must be non-empty SES event types, unknown: opened');
  });
});

describe('several sending domains', () => {
  const domains = 'mail.example.com,news.example.org,legacy.example.net';

  it('creates an Easy DKIM identity with a custom MAIL FROM for each domain not imported, and none for an imported one', () => {
    // Act
    const { template } = synthTemplate({
      context: { domain: 'mail.example.com', domains, importDomains: 'legacy.example.net' },
    });
    const identities = Object.values(resourcesOfType(template, 'AWS::SES::EmailIdentity')).map(props);

    // Assess
    expect(identities.map((i) => i.EmailIdentity).sort()).toEqual(['mail.example.com', 'news.example.org']);
    for (const identity of identities) {
      expect(identity).toMatchObject({
        DkimAttributes: { SigningEnabled: true },
        DkimSigningAttributes: { NextSigningKeyLength: 'RSA_2048_BIT' },
        MailFromAttributes: { MailFromDomain: `bounce.${String(identity.EmailIdentity)}` },
      });
    }
  });

  it('keeps a created identity when it leaves the stack, so it can be imported again instead of re-verified', () => {
    // Act
    const { template } = synthTemplate({ context: { domain: 'mail.example.com', domains } });

    // Assess
    const identities = Object.values(resourcesOfType(template, 'AWS::SES::EmailIdentity'));
    expect(identities).toHaveLength(3);
    for (const identity of identities) {
      expect(identity).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    }
  });

  it('keeps the logical id of a one-domain stack’s identity when domains are added, whatever their order', () => {
    // Prepare
    const single = synthTemplate({ context: { domain: 'mail.example.com' } });
    const listed = synthTemplate({
      context: { domain: 'mail.example.com', domains: 'news.example.org,mail.example.com' },
    });

    // Act
    const idOf = (template: Template, domain: string) =>
      Object.entries(resourcesOfType(template, 'AWS::SES::EmailIdentity')).find(
        ([, r]) => props(r).EmailIdentity === domain,
      )?.[0];

    // Assess
    expect(idOf(listed.template, 'mail.example.com')).toBe(idOf(single.template, 'mail.example.com'));
    expect(listed.stack.ses.domains).toEqual(['mail.example.com', 'news.example.org']);
  });

  it('publishes the sending domains and each created identity’s DNS records as outputs', () => {
    // Act
    const { template } = synthTemplate({
      context: { domains, importDomains: 'legacy.example.net', domain: undefined },
    });
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown; Description: string }>;

    // Assess
    expect(outputs.SendingDomains?.Value).toBe(domains);
    expect(outputs.DkimRecord1?.Description).toBe('DKIM record to publish for mail.example.com');
    expect(outputs.Domain2DkimRecord3?.Description).toBe('DKIM record to publish for news.example.org');
    expect(JSON.stringify(outputs.Domain2MailFromMxRecord?.Value)).toContain('bounce.news.example.org MX 10');
    expect(Object.keys(outputs).filter((k) => k.startsWith('Domain3'))).toEqual([]);
  });
});
