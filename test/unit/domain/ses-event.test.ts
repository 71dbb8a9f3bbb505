import { describe, expect, it } from 'vitest';
import {
  type FeedbackEvent,
  MalformedFeedbackError,
  parseFeedback,
} from '../../../lambdas/domain/feedback/ses-event.ts';
import { PermanentError } from '../../../lambdas/shared/errors.ts';
import { sesEventBody, snsEnvelope } from '../../support/builders.ts';
import { fixtureFiles, fixtureText } from '../../support/fixtures.ts';

/** What every file of fixtures/ses/ must turn into: an event kind, or the malformed message. */
const OUTCOMES: Readonly<Record<string, string>> = {
  'lambda-event_aws-doc_sns.json': 'malformed: not an SES event: no eventType or notificationType',
  'lambda-event_aws-doc_sqs-standard-two-records.json':
    'malformed: not an SES event: no eventType or notificationType',
  'lambda-response_aws-doc_sqs-batch-item-failures.json':
    'malformed: not an SES event: no eventType or notificationType',
  'ses-event_aws-doc_bounce.json': 'bounce',
  'ses-event_aws-doc_click.json': 'click',
  'ses-event_aws-doc_complaint.json': 'complaint',
  'ses-event_aws-doc_delivery-delay.json': 'delay',
  'ses-event_aws-doc_delivery.json': 'delivery',
  'ses-event_aws-doc_open.json': 'open',
  'ses-event_aws-doc_reject.json': 'reject',
  'ses-event_aws-doc_rendering-failure.json': 'rendering_failure',
  'ses-event_aws-doc_send.json': 'send',
  'ses-event_aws-doc_subscription.json': 'subscription',
  'ses-notif_aws-doc_bounce-object-only_mixed-failed-and-delayed-recipients.json':
    'malformed: not an SES event: no eventType or notificationType',
  'ses-notif_aws-doc_bounce-permanent-general-with-dsn.json': 'bounce',
  'ses-notif_aws-doc_bounce-permanent-general-without-dsn.json': 'bounce',
  'ses-notif_aws-doc_complaint-abuse-with-feedback-report.json': 'complaint',
  'ses-notif_aws-doc_complaint-object-only.json':
    'malformed: not an SES event: no eventType or notificationType',
  'ses-notif_aws-doc_complaint-without-feedback-report.json': 'complaint',
  'ses-notif_aws-doc_delivery.json': 'delivery',
  'ses-notif_real_carbon_suppressed-bounce-2014.json': 'bounce',
  'ses-notif_real_relay-simulator_bounce-permanent-general.json': 'bounce',
  'ses-notif_real_relay-simulator_complaint-abuse.json': 'complaint',
  'ses-notif_real_relay-simulator_delivery-complaint.json': 'delivery',
  'ses-notif_real_relay-simulator_delivery-ooto.json': 'delivery',
  'ses-notif_real_relay-simulator_delivery-success.json': 'delivery',
  'ses-notif_real_relay-simulator_ooto-bounce-transient-general.json': 'bounce',
  'ses-notif_real_relay-simulator_suppressionlist-bounce-permanent-general.json': 'bounce',
  'ses-notif_real_sisimai_simulator-bounce-eu-west-1-2017-redacted.json': 'bounce',
  'ses-notif_real_sisimai_simulator-complaint-2016.json': 'complaint',
  'ses-notif_real_sisimai_simulator-delivery-for-complaint-2016.json': 'delivery',
  'sns-http_aws-doc_notification.json': 'malformed: the SNS Message is not JSON',
  'sns-http_aws-doc_subscription-confirmation.json':
    'malformed: SNS SubscriptionConfirmation message, not a notification',
  'sns-http_aws-doc_unsubscribe-confirmation.json':
    'malformed: SNS UnsubscribeConfirmation message, not a notification',
  'sns-http_govuk-notify_delivery-2016.json': 'delivery',
  'sns-http_real-modified_relay_soft-bounce-transient-MailboxFull.json': 'bounce',
  'sns-http_real-modified_relay_spam-bounce-transient-ContentRejected.json': 'bounce',
  'sns-http_real_relay_hard-bounce-permanent-OnAccountSuppressionList.json': 'bounce',
  'sns-http_real_relay_subscription-confirmation.json':
    'malformed: SNS SubscriptionConfirmation message, not a notification',
  'sns-http_real_sisimai_simulator-bounce-permanent-2016.json': 'bounce',
};

/** The file as the feedback queue would carry it: bare SES JSON, or the whole SNS envelope. */
const parseFile = (file: string) => parseFeedback(fixtureText(`ses/${file}`));

function outcomeOf(file: string): string {
  try {
    return parseFile(file).kind;
  } catch (error) {
    if (error instanceof MalformedFeedbackError) return `malformed: ${error.message}`;
    throw error;
  }
}

function malformed(body: string): string {
  try {
    parseFeedback(body);
  } catch (error) {
    expect(error).toBeInstanceOf(MalformedFeedbackError);
    expect(error).toBeInstanceOf(PermanentError);
    return (error as Error).message;
  }
  throw new Error('expected a MalformedFeedbackError');
}

const files = fixtureFiles('ses');

describe('parseFeedback over every SES fixture', () => {
  it('knows the outcome of every file in the folder', () => {
    // Prepare / Act
    const listed = Object.keys(OUTCOMES).sort();

    // Assess
    expect(files).toEqual(listed);
  });

  it.each(files)('turns %s into an event or a MalformedFeedbackError, never a crash', (file) => {
    // Prepare / Act
    const outcome = outcomeOf(file);

    // Assess
    expect(outcome).toBe(OUTCOMES[file]);
  });

  it.each(files.filter((f) => f.startsWith('ses-') && !OUTCOMES[f]?.startsWith('malformed')))(
    'reads %s the same bare or inside an SNS envelope',
    (file) => {
      // Prepare
      const bare = fixtureText(`ses/${file}`);

      // Act
      const wrapped = parseFeedback(snsEnvelope(bare));

      // Assess
      expect(wrapped).toEqual(parseFeedback(bare));
    },
  );
});

describe('parseFeedback on the interesting fixtures', () => {
  it('reads the redacted sisimai bounce without choking on its placeholders', () => {
    // Prepare / Act
    const event = parseFile('ses-notif_real_sisimai_simulator-bounce-eu-west-1-2017-redacted.json');

    // Assess
    expect(event).toEqual({
      kind: 'bounce',
      sesMessageId: 'xxxxxxx',
      destination: ['bounce@simulator.amazonses.com'],
      at: '2017-10-19T09:19:05.119Z',
      recipients: [
        {
          address: 'bounce@simulator.amazonses.com',
          status: '5.1.1',
          diagnosticCode: 'smtp; 550 5.1.1 user unknown',
          action: 'failed',
        },
      ],
      bounceType: 'Permanent',
      bounceSubType: 'General',
      feedbackId: 'xxxxxxxx',
      key: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
    });
  });

  it('reads an OnAccountSuppressionList bounce out of its SNS envelope', () => {
    // Prepare / Act
    const event = parseFile('sns-http_real_relay_hard-bounce-permanent-OnAccountSuppressionList.json');

    // Assess
    expect(event).toMatchObject({
      kind: 'bounce',
      sesMessageId: '0100017e6dde5594-4912fac5-bd85-4358-98d4-7b8d8b89fc60-000000',
      at: '2022-01-18T15:46:34.000Z',
      bounceType: 'Permanent',
      bounceSubType: 'OnAccountSuppressionList',
      feedbackId: '0100017e6dde5726-6164bdc9-7da9-42f7-ba58-8f4692799d89-000000',
      recipients: [{ address: 'relayuser@test.com', status: '5.1.1', action: 'failed' }],
    });
    expect(event.batonMessageId).toBeUndefined();
  });

  it('reads the 2014 "Suppressed" bounce subtype', () => {
    // Prepare / Act
    const event = parseFile('ses-notif_real_carbon_suppressed-bounce-2014.json');

    // Assess
    expect(event).toMatchObject({ kind: 'bounce', bounceType: 'Permanent', bounceSubType: 'Suppressed' });
  });

  it('reads a complaint that carries no feedback report', () => {
    // Prepare / Act
    const event = parseFile('ses-notif_aws-doc_complaint-without-feedback-report.json');

    // Assess
    expect(event).toEqual({
      kind: 'complaint',
      sesMessageId: '0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000',
      destination: ['jane@example.com', 'mary@example.com', 'richard@example.com'],
      at: '2016-01-27T14:59:38.237Z',
      recipients: [{ address: 'richard@example.com' }],
      feedbackId: '0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000',
      key: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
    });
  });

  it('reads a simulator complaint whose complaintSubType is null', () => {
    // Prepare / Act
    const event = parseFile('ses-notif_real_relay-simulator_complaint-abuse.json');

    // Assess
    expect(event).toMatchObject({
      kind: 'complaint',
      feedbackType: 'abuse',
      recipients: [{ address: 'complaint@simulator.amazonses.com' }],
    });
  });

  it('reads the "Rendering Failure" event type, space included', () => {
    // Prepare / Act
    const event = parseFile('ses-event_aws-doc_rendering-failure.json');

    // Assess
    expect(event).toMatchObject({
      kind: 'rendering_failure',
      at: '2018-01-22T18:43:06.197Z',
      reason: "Attribute 'attributeName' is not present in the rendering data.",
    });
  });

  it('reads a Subscription (unsubscribe) event', () => {
    // Prepare / Act
    const event = parseFile('ses-event_aws-doc_subscription.json');

    // Assess
    expect(event).toMatchObject({
      kind: 'subscription',
      sesMessageId: 'EXAMPLEe4bccb684-777bc8de-afa7-4970-92b0-f515137b1497-000000',
      at: '2022-01-12T01:00:17.910Z',
      recipients: [{ address: 'recipient@example.com' }],
    });
  });

  it('reads a Reject with its reason, addressed to the whole destination', () => {
    // Prepare / Act
    const event = parseFile('ses-event_aws-doc_reject.json');

    // Assess
    expect(event).toMatchObject({
      kind: 'reject',
      reason: 'Bad content',
      recipients: [{ address: 'sender@example.com' }],
    });
  });

  it('reads a DeliveryDelay with its type and diagnostic', () => {
    // Prepare / Act
    const event = parseFile('ses-event_aws-doc_delivery-delay.json');

    // Assess
    expect(event).toMatchObject({
      kind: 'delay',
      delayType: 'TransientCommunicationFailure',
      recipients: [
        {
          address: 'recipient@example.com',
          status: '4.4.1',
          diagnosticCode: 'smtp; 421 4.4.1 Unable to connect to remote host',
        },
      ],
    });
  });

  it('reads a delivery with its SMTP response from a 2016 SNS envelope', () => {
    // Prepare / Act
    const event = parseFile('sns-http_govuk-notify_delivery-2016.json');

    // Assess
    expect(event).toMatchObject({
      kind: 'delivery',
      sesMessageId: 'ref1',
      smtpResponse: '250 2.0.0 OK 1457958926 uo5si26480932wjc.221 - gsmtp',
    });
  });

  it('refuses the bare bounce and complaint objects: they are not notifications', () => {
    // Prepare / Act
    const messages = [
      malformed(
        fixtureText('ses/ses-notif_aws-doc_bounce-object-only_mixed-failed-and-delayed-recipients.json'),
      ),
      malformed(fixtureText('ses/ses-notif_aws-doc_complaint-object-only.json')),
    ];

    // Assess
    expect(messages).toEqual([
      'not an SES event: no eventType or notificationType',
      'not an SES event: no eventType or notificationType',
    ]);
  });

  it('refuses an SNS SubscriptionConfirmation', () => {
    // Prepare / Act
    const message = malformed(fixtureText('ses/sns-http_real_relay_subscription-confirmation.json'));

    // Assess
    expect(message).toBe('SNS SubscriptionConfirmation message, not a notification');
  });
});

describe('parseFeedback', () => {
  it('takes Baton’s message id from the message tag', () => {
    // Prepare
    const body = sesEventBody({ eventType: 'Send', batonMessageId: 'msg_42' });

    // Act
    const event = parseFeedback(body);

    // Assess
    expect(event).toEqual({
      kind: 'send',
      sesMessageId: 'ses-1',
      batonMessageId: 'msg_42',
      destination: ['ana@example.org'],
      at: '2025-03-01T12:01:00.000Z',
      recipients: [{ address: 'ana@example.org' }],
      key: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
    });
  });

  it.each([
    [
      'DeliveryDelay',
      { deliveryDelay: { delayedRecipients: [{ emailAddress: 'ana@example.org' }] } },
      'delay',
    ],
    ['RenderingFailure', { failure: { errorMessage: 'oops' } }, 'rendering_failure'],
    ['BOUNCE', { bounce: { bouncedRecipients: [{ emailAddress: 'ana@example.org' }] } }, 'bounce'],
  ])('matches the event type %s whatever its spelling', (eventType, sections, kind) => {
    // Prepare
    const body = sesEventBody({ eventType, sections });

    // Act
    const event = parseFeedback(body);

    // Assess
    expect(event.kind).toBe(kind);
  });

  it('calls a bounce without type or subtype Undetermined', () => {
    // Prepare
    const body = sesEventBody({
      eventType: 'Bounce',
      sections: { bounce: { bouncedRecipients: [{ emailAddress: 'a@example.org' }] } },
    });

    // Act
    const event = parseFeedback(body);

    // Assess
    expect(event).toMatchObject({ bounceType: 'Undetermined', bounceSubType: 'Undetermined' });
  });

  it('skips recipient entries that are not objects or name no address', () => {
    // Prepare
    const bounce = {
      bounceType: 'Permanent',
      bouncedRecipients: [null, 'x', {}, { emailAddress: '' }, { emailAddress: 'ana@example.org' }],
    };
    const body = sesEventBody({ eventType: 'Bounce', sections: { bounce } });

    // Act
    const event = parseFeedback(body);

    // Assess
    expect(event.recipients).toEqual([{ address: 'ana@example.org' }]);
  });

  it('uses the mail timestamp when the event section has none', () => {
    // Prepare
    const body = sesEventBody({
      eventType: 'Delivery',
      timestamp: '2025-03-01T12:05:00.000Z',
      sections: { delivery: { recipients: ['ana@example.org'] } },
    });

    // Act
    const event = parseFeedback(body);

    // Assess
    expect(event.at).toBe('2025-03-01T12:05:00.000Z');
  });

  it('gives a redelivered event the same key', () => {
    // Prepare
    const body = fixtureText('ses/ses-notif_real_relay-simulator_ooto-bounce-transient-general.json');

    // Act
    const keys = [parseFeedback(body).key, parseFeedback(snsEnvelope(body)).key];

    // Assess
    expect(keys[0]).toBe(keys[1]);
  });

  it('gives different events of one message different keys', () => {
    // Prepare
    const bounce = parseFile('ses-notif_real_relay-simulator_ooto-bounce-transient-general.json');

    // Act
    const delivery = parseFile('ses-notif_real_relay-simulator_delivery-ooto.json');

    // Assess
    expect(bounce.sesMessageId).toBe(delivery.sesMessageId);
    expect(bounce.key).not.toBe(delivery.key);
  });

  it('keys an event the same whatever the order and case of its recipients', () => {
    // Prepare
    const delivery = (recipients: string[]) =>
      sesEventBody({
        eventType: 'Delivery',
        sections: { delivery: { timestamp: '2025-03-01T12:02:00.000Z', recipients } },
      });

    // Act
    const a = parseFeedback(delivery(['ana@example.org', 'bob@example.org'])).key;
    const b = parseFeedback(delivery(['BOB@example.org', 'ana@example.org'])).key;

    // Assess
    expect(a).toBe(b);
  });

  it.each<[string, string, string]>([
    ['not JSON', 'Test message.', 'the queue message is not JSON'],
    ['a JSON array', '[1,2]', 'the queue message is not JSON'],
    ['a JSON string', '"hello"', 'the queue message is not JSON'],
    ['JSON without an event type', '{"mail":{}}', 'not an SES event: no eventType or notificationType'],
    [
      'an unknown event type',
      '{"eventType":"Teleport","mail":{"messageId":"m"}}',
      'unknown SES event type "Teleport"',
    ],
    [
      'a very long unknown event type',
      JSON.stringify({ eventType: 'X'.repeat(500), mail: {} }),
      `unknown SES event type "${'X'.repeat(40)}"`,
    ],
    ['an event without mail', '{"eventType":"Send"}', 'Send event without a mail object'],
    [
      'an event without a message id',
      '{"eventType":"Send","mail":{"timestamp":"t"}}',
      'Send event without mail.messageId',
    ],
    [
      'a bounce without its bounce object',
      '{"eventType":"Bounce","mail":{"messageId":"m"}}',
      'Bounce event without its bounce object',
    ],
    [
      'a delivery naming no recipient',
      '{"eventType":"Delivery","mail":{"messageId":"m"},"delivery":{"recipients":[]}}',
      'delivery event names no recipient',
    ],
    [
      'an SNS notification without a Message',
      snsEnvelope('').replace('"Message":""', '"Subject":"x"'),
      'SNS notification without a Message',
    ],
    [
      'an SNS notification whose Message is not JSON',
      snsEnvelope('Hello world!'),
      'the SNS Message is not JSON',
    ],
    [
      'an SNS UnsubscribeConfirmation',
      snsEnvelope('{}', 'UnsubscribeConfirmation'),
      'SNS UnsubscribeConfirmation message, not a notification',
    ],
  ])('refuses %s as malformed', (_what, body, message) => {
    // Prepare / Act
    const got = malformed(body);

    // Assess
    expect(got).toBe(message);
  });

  it('names itself MalformedFeedbackError so it can be told apart in the DLQ', () => {
    // Prepare / Act
    const error = new MalformedFeedbackError('x');

    // Assess
    expect(error.name).toBe('MalformedFeedbackError');
  });

  it('returns an event for a Send even without recipients (the mail had none listed)', () => {
    // Prepare
    const body = sesEventBody({ eventType: 'Send', destination: [] });

    // Act
    const event: FeedbackEvent = parseFeedback(body);

    // Assess
    expect(event.recipients).toEqual([]);
  });
});
