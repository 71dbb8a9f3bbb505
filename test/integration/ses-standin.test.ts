import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BadRequestException,
  GetAccountCommand,
  MessageRejected,
  NotFoundException,
  SESv2Client,
  SendEmailCommand,
  type SendEmailCommandInput,
  SendingPausedException,
  TooManyRequestsException,
} from '@aws-sdk/client-sesv2';
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLISHED_SES_EVENTS } from '../../lambdas/shared/names.ts';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { startSqsSns } from '../../local/emulators/sqs-sns.ts';
import {
  type SesEvent,
  type SesStandin,
  type StandinLogger,
  type StartSesStandinOptions,
  startSesStandin,
} from '../../local/ses-standin/index.ts';

const region = 'us-east-1';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const CONFIGURATION_SET = 'baton-local';

/** A logger that keeps every entry, so tests can check what (and what not) gets logged. */
const recordingLogger = (): StandinLogger & { entries: Array<{ message: string; data?: unknown }> } => {
  const entries: Array<{ message: string; data?: unknown }> = [];
  const keep = (message: string, data?: Record<string, unknown>) => entries.push({ message, data });
  return { entries, info: keep, warn: keep, error: keep };
};

/** A CRLF message with an 8-bit UTF-8 body and a Latin-1 byte: any re-encoding would change it. */
const rawMessage = (to: string, subject = 'Your receipt'): Buffer =>
  Buffer.concat([
    Buffer.from(
      [
        'From: Shop <orders@example.com>',
        `To: ${to}`,
        `Subject: ${subject}`,
        'Message-ID: <receipt-1@example.com>',
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        'Olá, señor Müller — 日本語のテキスト ✓',
        'Line two\tends with CRLF',
        '',
      ].join('\r\n'),
      'utf8',
    ),
    Buffer.from([0xe9, 0x0d, 0x0a]),
  ]);

const sendInput = (
  to: readonly string[],
  options: { batonId?: string; configurationSet?: string | null } = {},
): SendEmailCommandInput => ({
  Content: { Raw: { Data: rawMessage(to.join(', ')) } },
  Destination: { ToAddresses: [...to] },
  ConfigurationSetName:
    options.configurationSet === null ? undefined : (options.configurationSet ?? CONFIGURATION_SET),
  EmailTags: [
    ...(options.batonId ? [{ Name: 'baton_message_id', Value: options.batonId }] : []),
    { Name: 'baton_tenant', Value: 'acme' },
  ],
});

describe('SES stand-in, through the real SESv2Client and SNS → SQS', () => {
  let fauxqs: LocalEmulator;
  let sns: SNSClient;
  let sqs: SQSClient;
  let queueUrl: string;
  let topicArn: string;
  let outboxDir: string;
  let standin: SesStandin;
  let ses: SESv2Client;
  const logger = recordingLogger();
  const started: SesStandin[] = [];
  let batonIds = 0;
  const nextBatonId = () => `msg_${++batonIds}`;

  /** Starts a further stand-in on the same outbox and SNS wiring; stopped in afterAll. */
  const startAnother = async (options: Partial<StartSesStandinOptions>): Promise<SesStandin> => {
    const another = await startSesStandin({
      outboxDir,
      publish: async () => {},
      eventDestinations: [],
      logger: recordingLogger(),
      ...options,
    });
    started.push(another);
    return another;
  };

  const clientFor = (target: SesStandin, maxAttempts?: number): SESv2Client =>
    new SESv2Client({ endpoint: target.endpoint, region, credentials, maxAttempts });

  /** Every event published so far, read back from the feedback queue, grouped by SES message id. */
  const drainEvents = async (): Promise<Map<string, SesEvent[]>> => {
    await standin.settled();
    const byMessage = new Map<string, SesEvent[]>();
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (Messages.length === 0) return byMessage;
      for (const message of Messages) {
        const event = JSON.parse(message.Body ?? '') as SesEvent;
        byMessage.set(event.mail.messageId, [...(byMessage.get(event.mail.messageId) ?? []), event]);
      }
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Messages.map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle,
          })),
        }),
      );
    }
  };

  const eventsOf = async (sesMessageId: string | undefined): Promise<SesEvent[]> =>
    (await drainEvents()).get(sesMessageId ?? '') ?? [];

  beforeAll(async () => {
    fauxqs = await startSqsSns({ region });
    sns = new SNSClient({ endpoint: fauxqs.endpoint, region, credentials });
    sqs = new SQSClient({ endpoint: fauxqs.endpoint, region, credentials, useQueueUrlAsEndpoint: false });
    ({ TopicArn: topicArn = '' } = await sns.send(new CreateTopicCommand({ Name: 'ses-events' })));
    ({ QueueUrl: queueUrl = '' } = await sqs.send(new CreateQueueCommand({ QueueName: 'feedback' })));
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
    );
    await sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: 'sqs',
        Endpoint: Attributes?.QueueArn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
    outboxDir = await mkdtemp(join(tmpdir(), 'baton-outbox-'));
    standin = await startSesStandin({
      outboxDir,
      publish: async (topic, message) => {
        await sns.send(new PublishCommand({ TopicArn: topic, Message: message }));
      },
      eventDestinations: [
        { configurationSet: CONFIGURATION_SET, topicArn, eventTypes: PUBLISHED_SES_EVENTS },
      ],
      eventDelayMs: 5,
      logger,
    });
    ses = clientFor(standin);
  });

  afterAll(async () => {
    ses.destroy();
    await Promise.all([standin.stop(), ...started.map((another) => another.stop())]);
    sns.destroy();
    sqs.destroy();
    await fauxqs.stop();
    await rm(outboxDir, { recursive: true, force: true });
  });

  describe('outbox', () => {
    it('writes the raw message to <baton id>.eml byte for byte', async () => {
      // Prepare
      const batonId = nextBatonId();
      const input = sendInput(['ana@example.org'], { batonId });

      // Act
      const { MessageId } = await ses.send(new SendEmailCommand(input));

      // Assess
      const written = await readFile(join(outboxDir, `${batonId}.eml`));
      expect(written.equals(rawMessage('ana@example.org'))).toBe(true);
      expect(standin.sent().find((record) => record.sesMessageId === MessageId)).toMatchObject({
        batonMessageId: batonId,
        recipients: ['ana@example.org'],
        delivered: ['ana@example.org'],
        outboxFile: join(outboxDir, `${batonId}.eml`),
        duplicate: false,
      });
    });

    it('keeps a second send of the same Baton message as a .dup- file and never overwrites the first', async () => {
      // Prepare
      const batonId = nextBatonId();
      const first = await ses.send(new SendEmailCommand(sendInput(['ana@example.org'], { batonId })));
      const secondInput = sendInput(['ana@example.org'], { batonId });
      secondInput.Content = { Raw: { Data: rawMessage('ana@example.org', 'Resent') } };

      // Act
      const second = await ses.send(new SendEmailCommand(secondInput));

      // Assess
      const files = (await readdir(outboxDir)).filter((name) => name.startsWith(`${batonId}.`));
      expect(files.sort()).toEqual([`${batonId}.dup-${second.MessageId}.eml`, `${batonId}.eml`]);
      expect((await readFile(join(outboxDir, `${batonId}.eml`))).equals(rawMessage('ana@example.org'))).toBe(
        true,
      );
      expect(first.MessageId).not.toBe(second.MessageId);
      expect(standin.sent().find((record) => record.sesMessageId === second.MessageId)?.duplicate).toBe(true);
    });

    it('names the outbox file after the SES message id when the send has no baton_message_id tag', async () => {
      // Act
      const { MessageId } = await ses.send(new SendEmailCommand(sendInput(['ana@example.org'])));

      // Assess
      expect(MessageId).toMatch(/^0100[0-9a-f]{12}-[0-9a-f-]{36}-000000$/);
      expect(
        (await readFile(join(outboxDir, `${MessageId}.eml`))).equals(rawMessage('ana@example.org')),
      ).toBe(true);
    });

    it('writes no outbox file when every recipient bounces', async () => {
      // Prepare
      const batonId = nextBatonId();

      // Act
      await ses.send(
        new SendEmailCommand(
          sendInput(['bounce@simulator.amazonses.com', 'suppressionlist@simulator.amazonses.com'], {
            batonId,
          }),
        ),
      );

      // Assess
      expect((await readdir(outboxDir)).filter((name) => name.startsWith(`${batonId}.`))).toEqual([]);
    });
  });

  describe('mailbox simulator events', () => {
    it.each([
      ['success@simulator.amazonses.com', ['Send', 'Delivery']],
      ['bounce@simulator.amazonses.com', ['Send', 'Bounce']],
      ['complaint@simulator.amazonses.com', ['Send', 'Delivery', 'Complaint']],
      ['ooto@simulator.amazonses.com', ['Send', 'Bounce', 'Delivery']],
      ['suppressionlist@simulator.amazonses.com', ['Send', 'Bounce']],
      ['ana@example.org', ['Send', 'Delivery']],
    ])('publishes %s as %j in that order', async (recipient, expected) => {
      // Act
      const { MessageId } = await ses.send(
        new SendEmailCommand(sendInput([recipient], { batonId: nextBatonId() })),
      );

      // Assess
      const events = await eventsOf(MessageId);
      expect(events.map((event) => event.eventType)).toEqual(expected);
    });

    it('reports bounce@ as a permanent general bounce with the simulator diagnostic', async () => {
      // Act
      const { MessageId } = await ses.send(
        new SendEmailCommand(sendInput(['bounce@simulator.amazonses.com'], { batonId: nextBatonId() })),
      );

      // Assess
      const bounce = (await eventsOf(MessageId)).find((event) => event.eventType === 'Bounce');
      expect(bounce).toMatchObject({
        bounce: {
          bounceType: 'Permanent',
          bounceSubType: 'General',
          bouncedRecipients: [
            {
              emailAddress: 'bounce@simulator.amazonses.com',
              action: 'failed',
              status: '5.1.1',
              diagnosticCode: 'smtp; 550 5.1.1 user unknown',
            },
          ],
          feedbackId: expect.stringMatching(/-000000$/),
          reportingMTA: expect.stringMatching(/^dns; /),
        },
      });
    });

    it('reports suppressionlist@ as a permanent bounce on the account suppression list, answered by SES itself', async () => {
      // Act
      const { MessageId } = await ses.send(
        new SendEmailCommand(
          sendInput(['suppressionlist@simulator.amazonses.com'], { batonId: nextBatonId() }),
        ),
      );

      // Assess
      const bounce = (await eventsOf(MessageId)).find((event) => event.eventType === 'Bounce');
      expect(bounce).toMatchObject({
        bounce: {
          bounceType: 'Permanent',
          bounceSubType: 'OnAccountSuppressionList',
          reportingMTA: 'dns; amazonses.com',
          bouncedRecipients: [
            {
              emailAddress: 'suppressionlist@simulator.amazonses.com',
              action: 'failed',
              status: '5.1.1',
              diagnosticCode: expect.stringContaining('on the suppression list for your account'),
            },
          ],
        },
      });
    });

    it('reports ooto@ as a transient general bounce followed by a delivery', async () => {
      // Act
      const { MessageId } = await ses.send(
        new SendEmailCommand(sendInput(['ooto@simulator.amazonses.com'], { batonId: nextBatonId() })),
      );

      // Assess
      const [, bounce, delivery] = await eventsOf(MessageId);
      expect(bounce).toMatchObject({
        bounce: {
          bounceType: 'Transient',
          bounceSubType: 'General',
          bouncedRecipients: [{ emailAddress: 'ooto@simulator.amazonses.com' }],
        },
      });
      expect(delivery).toMatchObject({ delivery: { recipients: ['ooto@simulator.amazonses.com'] } });
    });

    it('reports complaint@ as an abuse complaint after the delivery', async () => {
      // Act
      const { MessageId } = await ses.send(
        new SendEmailCommand(sendInput(['complaint@simulator.amazonses.com'], { batonId: nextBatonId() })),
      );

      // Assess
      const complaint = (await eventsOf(MessageId)).find((event) => event.eventType === 'Complaint');
      expect(complaint).toMatchObject({
        complaint: {
          complaintFeedbackType: 'abuse',
          complainedRecipients: [{ emailAddress: 'complaint@simulator.amazonses.com' }],
          userAgent: 'Amazon SES Mailbox Simulator',
        },
      });
    });

    it('matches simulator addresses with a +label, case-insensitively, and reports the address as sent', async () => {
      // Act
      const { MessageId } = await ses.send(
        new SendEmailCommand(
          sendInput(['Bounce+order42@Simulator.AmazonSES.com'], { batonId: nextBatonId() }),
        ),
      );

      // Assess
      const events = await eventsOf(MessageId);
      expect(events.map((event) => event.eventType)).toEqual(['Send', 'Bounce']);
      expect(events[1]).toMatchObject({
        bounce: {
          bounceType: 'Permanent',
          bouncedRecipients: [{ emailAddress: 'Bounce+order42@Simulator.AmazonSES.com' }],
        },
      });
    });

    it('groups recipients with the same outcome into one event and carries the message tags in every event', async () => {
      // Prepare
      const batonId = nextBatonId();

      // Act
      const { MessageId } = await ses.send(
        new SendEmailCommand(
          sendInput(
            ['success@simulator.amazonses.com', 'ana@example.org', 'bounce@simulator.amazonses.com'],
            {
              batonId,
            },
          ),
        ),
      );

      // Assess
      const events = await eventsOf(MessageId);
      expect(events.map((event) => event.eventType)).toEqual(['Send', 'Delivery', 'Bounce']);
      expect(events[1]).toMatchObject({
        delivery: { recipients: ['success@simulator.amazonses.com', 'ana@example.org'] },
      });
      for (const event of events) {
        expect(event.mail).toMatchObject({
          messageId: MessageId,
          source: 'Shop <orders@example.com>',
          destination: [
            'success@simulator.amazonses.com',
            'ana@example.org',
            'bounce@simulator.amazonses.com',
          ],
          commonHeaders: {
            from: ['Shop <orders@example.com>'],
            subject: 'Your receipt',
            messageId: '<receipt-1@example.com>',
          },
          tags: {
            'ses:configuration-set': [CONFIGURATION_SET],
            'ses:from-domain': ['example.com'],
            baton_message_id: [batonId],
            baton_tenant: ['acme'],
          },
        });
      }
    });

    it('publishes nothing for a send without a configuration set', async () => {
      // Act
      const { MessageId } = await ses.send(
        new SendEmailCommand(
          sendInput(['ana@example.org'], { batonId: nextBatonId(), configurationSet: null }),
        ),
      );

      // Assess
      expect(await eventsOf(MessageId)).toEqual([]);
    });

    it('publishes only the event types the configuration set lists', async () => {
      // Prepare
      const published: string[] = [];
      const bounceOnly = await startAnother({
        publish: async (_topic, message) => {
          published.push((JSON.parse(message) as SesEvent).eventType);
        },
        eventDestinations: [{ configurationSet: 'bounces-only', topicArn, eventTypes: ['bounce'] }],
        eventDelayMs: 0,
      });
      const client = clientFor(bounceOnly);

      // Act
      await client.send(
        new SendEmailCommand(
          sendInput(['ana@example.org', 'bounce@simulator.amazonses.com'], {
            configurationSet: 'bounces-only',
          }),
        ),
      );
      await bounceOnly.settled();

      // Assess
      expect(published).toEqual(['Bounce']);
      client.destroy();
    });

    it('answers SendEmail before any event is published, and drops pending events on stop', async () => {
      // Prepare
      let publishes = 0;
      const slow = await startAnother({
        publish: async () => {
          publishes++;
        },
        eventDestinations: [
          { configurationSet: CONFIGURATION_SET, topicArn, eventTypes: PUBLISHED_SES_EVENTS },
        ],
        eventDelayMs: 60_000,
      });
      const client = clientFor(slow);

      // Act
      const { MessageId } = await client.send(new SendEmailCommand(sendInput(['ana@example.org'])));
      await slow.stop();

      // Assess
      expect(MessageId).toBeDefined();
      expect(publishes).toBe(0);
      client.destroy();
    });

    it('retries a failing publish, then logs the loss without addresses and keeps serving', async () => {
      // Prepare
      const failingLogger = recordingLogger();
      let attempts = 0;
      const failing = await startAnother({
        publish: async () => {
          attempts++;
          throw new Error('SNS unavailable for ana@example.org');
        },
        eventDestinations: [{ configurationSet: CONFIGURATION_SET, topicArn, eventTypes: ['send'] }],
        eventDelayMs: 0,
        logger: failingLogger,
      });
      const client = clientFor(failing);

      // Act
      await client.send(new SendEmailCommand(sendInput(['ana@example.org'])));
      await failing.settled();
      const afterwards = await client.send(new SendEmailCommand(sendInput(['ana@example.org'])));

      // Assess
      expect(attempts).toBeGreaterThanOrEqual(4);
      expect(failingLogger.entries).toContainEqual({
        message: 'event publish failed; event dropped',
        data: expect.objectContaining({ eventType: 'Send', attempts: 4, topic: 'ses-events' }),
      });
      expect(JSON.stringify(failingLogger.entries)).not.toContain('ana@');
      expect(afterwards.MessageId).toBeDefined();
      client.destroy();
    });
  });

  describe('SES errors as SDK exception classes', () => {
    it('refuses Simple content with BadRequestException', async () => {
      // Act
      const error = await ses
        .send(
          new SendEmailCommand({
            FromEmailAddress: 'orders@example.com',
            Destination: { ToAddresses: ['ana@example.org'] },
            Content: { Simple: { Subject: { Data: 'Hi' }, Body: { Text: { Data: 'Hello' } } } },
          }),
        )
        .catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(BadRequestException);
      expect((error as BadRequestException).message).toContain('raw content only');
      expect((error as BadRequestException).$metadata.httpStatusCode).toBe(400);
    });

    it('refuses more than 50 recipients with BadRequestException', async () => {
      // Prepare
      const recipients = Array.from({ length: 51 }, (_, index) => `user${index}@example.org`);

      // Act
      const error = await ses
        .send(new SendEmailCommand(sendInput(recipients)))
        .catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(BadRequestException);
      expect((error as Error).message).toBe('Recipient count exceeds 50.');
    });

    it('refuses a message with neither FromEmailAddress nor a From header', async () => {
      // Act
      const error = await ses
        .send(
          new SendEmailCommand({
            Destination: { ToAddresses: ['ana@example.org'] },
            Content: { Raw: { Data: Buffer.from('To: ana@example.org\r\nSubject: x\r\n\r\nbody\r\n') } },
          }),
        )
        .catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(BadRequestException);
      expect((error as Error).message).toBe("Missing required header 'From'.");
    });

    it('refuses a tag value SES would refuse', async () => {
      // Prepare
      const input = sendInput(['ana@example.org']);
      input.EmailTags = [{ Name: 'campaign', Value: 'spring sale' }];

      // Act
      const error = await ses.send(new SendEmailCommand(input)).catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(BadRequestException);
    });

    it('refuses an unknown configuration set with NotFoundException', async () => {
      // Act
      const error = await ses
        .send(new SendEmailCommand(sendInput(['ana@example.org'], { configurationSet: 'no-such-set' })))
        .catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(NotFoundException);
    });

    it('refuses an unverified sender with MessageRejected when identities are configured', async () => {
      // Prepare
      const strict = await startAnother({ verifiedIdentities: ['example.net'] });
      const client = clientFor(strict);

      // Act
      const error = await client
        .send(new SendEmailCommand(sendInput(['ana@example.org'], { configurationSet: null })))
        .catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(MessageRejected);
      expect((error as Error).message).toContain('Email address is not verified');
      client.destroy();
    });

    it('throttles with TooManyRequestsException, then rejects with MessageRejected, as the fault plan draws', async () => {
      // Prepare: draws 0.1 (< throttle 0.3), 0.4 (in the reject band 0.3-0.6), 0.9 (no fault).
      const draws = [0.1, 0.4, 0.9];
      const faulty = await startAnother({
        faults: { throttleRate: 0.3, rejectRate: 0.3, random: () => draws.shift() ?? 1 },
      });
      // One attempt: the SDK would otherwise retry the 429 itself.
      const client = clientFor(faulty, 1);
      const send = () =>
        client
          .send(new SendEmailCommand(sendInput(['ana@example.org'], { configurationSet: null })))
          .catch((caught: unknown) => caught);

      // Act
      const throttled = await send();
      const rejected = await send();
      const accepted = await send();

      // Assess
      expect(throttled).toBeInstanceOf(TooManyRequestsException);
      expect((throttled as TooManyRequestsException).$metadata.httpStatusCode).toBe(429);
      expect(rejected).toBeInstanceOf(MessageRejected);
      expect(accepted).toMatchObject({ MessageId: expect.any(String) });
      expect(faulty.sent()).toHaveLength(1);
      client.destroy();
    });

    it('rejects an accepted message after the fact, or delays a delivery, as the fault plan asks', async () => {
      // Prepare
      const published: string[] = [];
      const faulty = await startAnother({
        publish: async (_topic, message) => {
          published.push((JSON.parse(message) as SesEvent).eventType);
        },
        eventDestinations: [
          { configurationSet: CONFIGURATION_SET, topicArn, eventTypes: PUBLISHED_SES_EVENTS },
        ],
        eventDelayMs: 0,
        faults: { rejectAfterAcceptRate: 1 },
      });
      const client = clientFor(faulty);
      const batonId = nextBatonId();

      // Act
      await client.send(new SendEmailCommand(sendInput(['ana@example.org'], { batonId })));
      await faulty.settled();
      const afterReject = published.splice(0);
      faulty.setFaults({ deliveryDelayRate: 1 });
      await client.send(new SendEmailCommand(sendInput(['ana@example.org'])));
      await faulty.settled();

      // Assess
      expect(afterReject).toEqual(['Send', 'Reject']);
      expect((await readdir(outboxDir)).filter((name) => name.startsWith(`${batonId}.`))).toEqual([]);
      expect(published).toEqual(['Send', 'DeliveryDelay', 'Delivery']);
      client.destroy();
    });

    it('refuses a fault plan that delays events longer than its consumer waits for them (maxEventDelayMs)', async () => {
      // Prepare: local mode derives its senders' confirmation window from a 50 ms delay.
      const standin = await startAnother({ eventDelayMs: 50, maxEventDelayMs: 50 });

      // Act
      const tooSlow = (() => {
        try {
          standin.setFaults({ acceptThenFailRate: 1, eventDelayMs: 20_000 });
          return undefined;
        } catch (error) {
          return error;
        }
      })();
      standin.setFaults({ acceptThenFailRate: 1 });

      // Assess: a Send event 20 s late would come after the window, and the message be sent twice.
      expect(tooSlow).toBeInstanceOf(RangeError);
      expect(() => standin.setFaults({ eventDelayMs: 50 })).not.toThrow();
    });

    it('loses the answer to a send it kept (events follow, after eventDelayMs) or did not keep (no events), as the fault plan asks', async () => {
      // Prepare
      const published: Array<{ type: string; at: number }> = [];
      const faulty = await startAnother({
        publish: async (_topic, message) => {
          published.push({ type: (JSON.parse(message) as SesEvent).eventType, at: Date.now() });
        },
        eventDestinations: [
          { configurationSet: CONFIGURATION_SET, topicArn, eventTypes: PUBLISHED_SES_EVENTS },
        ],
        eventDelayMs: 0,
        // 0.25: every call loses its answer, as InternalFailure.
        faults: { acceptThenFailRate: 1, eventDelayMs: 300, random: () => 0.25 },
      });
      // One attempt: the SDK's default three would send the kept message three times.
      const client = clientFor(faulty, 1);
      const kept = nextBatonId();
      const dropped = nextBatonId();

      // Act
      const sentAt = Date.now();
      const keptError = await client
        .send(new SendEmailCommand(sendInput(['ana@example.org'], { batonId: kept })))
        .catch((error: unknown) => error);
      await faulty.settled();
      const afterKept = published.splice(0);
      faulty.setFaults({ failWithoutAcceptRate: 1, random: () => 0.25 });
      const droppedError = await client
        .send(new SendEmailCommand(sendInput(['ana@example.org'], { batonId: dropped })))
        .catch((error: unknown) => error);
      await faulty.settled();

      // Assess
      expect(keptError).toMatchObject({ name: 'InternalFailure', $metadata: { httpStatusCode: 500 } });
      expect(afterKept.map((e) => e.type)).toEqual(['Send', 'Delivery']);
      expect(afterKept[0]?.at ?? 0).toBeGreaterThanOrEqual(sentAt + 300);
      expect(faulty.sent().map((r) => r.batonMessageId)).toEqual([kept]);
      expect(droppedError).toMatchObject({ name: 'InternalFailure', $metadata: { httpStatusCode: 500 } });
      expect(published).toEqual([]);
      expect(faulty.faultsInjected()).toMatchObject({ acceptedThenFailed: 1, failedWithoutAccept: 1 });
      expect(faulty.ambiguousAnswers().map((a) => [a.batonMessageId, a.kept])).toEqual([
        [kept, true],
        [dropped, false],
      ]);
      client.destroy();
    });

    it('answers SendingPausedException while sending is paused, and GetAccount says so', async () => {
      // Prepare
      const paused = await startAnother({});
      const client = clientFor(paused);
      paused.setFaults({ sendingPaused: true });

      // Act
      const error = await client
        .send(new SendEmailCommand(sendInput(['ana@example.org'], { configurationSet: null })))
        .catch((caught: unknown) => caught);
      const account = await client.send(new GetAccountCommand({}));

      // Assess
      expect(error).toBeInstanceOf(SendingPausedException);
      expect(account.SendingEnabled).toBe(false);
      client.destroy();
    });
  });

  it('reports a production account whose quota counts the recipients sent in the last 24 hours', async () => {
    // Prepare
    const fresh = await startAnother({});
    const client = clientFor(fresh);
    await client.send(
      new SendEmailCommand(sendInput(['ana@example.org', 'bo@example.org'], { configurationSet: null })),
    );

    // Act
    const account = await client.send(new GetAccountCommand({}));

    // Assess
    expect(account).toMatchObject({
      ProductionAccessEnabled: true,
      SendingEnabled: true,
      SendQuota: { Max24HourSend: 50_000, MaxSendRate: 14, SentLast24Hours: 2 },
    });
    client.destroy();
  });

  it('never logs an e-mail address', () => {
    // Assess (everything the shared stand-in logged during this file)
    expect(logger.entries.length).toBeGreaterThan(0);
    expect(JSON.stringify(logger.entries)).not.toMatch(/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+/);
  });
});
