import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  BadRequestException,
  MessageRejected,
  NotFoundException,
  SESv2Client,
  SendingPausedException,
  TooManyRequestsException,
} from '@aws-sdk/client-sesv2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSesClient, SES_REQUEST_TIMEOUT_MS, SesMailer } from '../../lambdas/adapters/ses-mailer.ts';
import type { OutboundMail } from '../../lambdas/domain/ports.ts';
import {
  PermanentError,
  SendingPausedError,
  TransientError,
  UncertainSendError,
} from '../../lambdas/shared/errors.ts';
import { MessageTag } from '../../lambdas/shared/names.ts';
import { type SesStandin, type StandinLogger, startSesStandin } from '../../local/ses-standin/index.ts';
import { credentials, region, tempDir, unreachable } from '../support/emulators.ts';
import { failureOf } from '../support/failures.ts';

const CONFIGURATION_SET = 'baton-test';

const quietLogger: StandinLogger = { info: () => {}, warn: () => {}, error: () => {} };

/** CRLF MIME with 8-bit UTF-8 and a stray Latin-1 byte: any re-encoding on the way would show. */
const rawMessage = (batonId: string): Uint8Array =>
  Buffer.concat([
    Buffer.from(
      [
        'From: Shop <orders@example.com>',
        'To: ana@example.org',
        'Cc: bo@example.org',
        `Subject: Receipt ${batonId}`,
        `Message-ID: <${batonId}@example.com>`,
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        'Olá, señor Müller ✓',
        '',
      ].join('\r\n'),
      'utf8',
    ),
    Buffer.from([0xe9, 0x0d, 0x0a]),
  ]);

let ids = 0;
const outbound = (overrides: Partial<OutboundMail> = {}): OutboundMail & { batonId: string } => {
  const batonId = `msg_mailer_${++ids}`;
  return {
    batonId,
    raw: rawMessage(batonId),
    from: 'orders@example.com',
    to: ['ana@example.org'],
    cc: ['bo@example.org'],
    bcc: ['archive@example.com'],
    tags: {
      [MessageTag.messageId]: batonId,
      [MessageTag.tenant]: 'acme',
      [MessageTag.stream]: 'transactional',
    },
    ...overrides,
  };
};

describe('SesMailer through the real SESv2Client against the SES stand-in', () => {
  let outbox: Awaited<ReturnType<typeof tempDir>>;
  let standin: SesStandin;
  let ses: SESv2Client;
  let mailer: SesMailer;

  beforeAll(async () => {
    outbox = await tempDir('mailer-outbox');
    standin = await startSesStandin({
      outboxDir: outbox.path,
      publish: async () => {},
      eventDestinations: [],
      configurationSets: [CONFIGURATION_SET],
      verifiedIdentities: ['example.com'],
      logger: quietLogger,
    });
    // One attempt: SDK retries would hide throttling from the mapping under test.
    ses = new SESv2Client({ endpoint: standin.endpoint, region, credentials, maxAttempts: 1 });
    mailer = new SesMailer(ses, CONFIGURATION_SET);
  });

  afterEach(() => {
    standin.setFaults({});
  });

  afterAll(async () => {
    ses.destroy();
    await standin.stop();
    await outbox.remove();
  });

  it('returns the SES message id and the outbox holds the exact raw bytes', async () => {
    // Prepare
    const mail = outbound();

    // Act
    const sesMessageId = await mailer.send(mail);

    // Assess
    expect(sesMessageId).toMatch(/^0100[0-9a-f]{12}-[0-9a-f-]{36}-000000$/);
    const record = standin.sent().find((r) => r.sesMessageId === sesMessageId);
    expect(record).toMatchObject({
      batonMessageId: mail.batonId,
      configurationSet: CONFIGURATION_SET,
      recipients: ['ana@example.org', 'bo@example.org', 'archive@example.com'],
      outboxFile: join(outbox.path, `${mail.batonId}.eml`),
      duplicate: false,
      tags: [
        { name: MessageTag.messageId, value: mail.batonId },
        { name: MessageTag.tenant, value: 'acme' },
        { name: MessageTag.stream, value: 'transactional' },
      ],
    });
    const written = await readFile(join(outbox.path, `${mail.batonId}.eml`));
    expect(written.equals(Buffer.from(mail.raw))).toBe(true);
  });

  it('turns throttling into a TransientError that keeps the SDK exception as cause', async () => {
    // Prepare
    standin.setFaults({ throttleRate: 1 });
    const mail = outbound();

    // Act
    const error = await failureOf(mailer.send(mail));

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toBe('SES is unavailable or throttling (TooManyRequestsException)');
    expect(error.cause).toBeInstanceOf(TooManyRequestsException);
    expect((await readdir(outbox.path)).filter((f) => f.startsWith(`${mail.batonId}.`))).toEqual([]);
  });

  it('turns MessageRejected into a PermanentError that says why in words', async () => {
    // Prepare
    standin.setFaults({ rejectRate: 1 });

    // Act
    const error = await failureOf(mailer.send(outbound()));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toBe(
      'SES rejected the message: Message rejected by the SES stand-in (injected fault).',
    );
    expect(error.cause).toBeInstanceOf(MessageRejected);
  });

  it('turns a send from an unverified identity into a PermanentError naming the check', async () => {
    // Act
    const error = await failureOf(mailer.send(outbound({ from: 'someone@unverified.example' })));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toBe(
      'SES rejected the message: Email address is not verified. The following identities failed the check in region US-EAST-1: someone@unverified.example',
    );
  });

  it('turns paused sending into a SendingPausedError, not a per-message failure', async () => {
    // Prepare
    standin.setFaults({ sendingPaused: true });

    // Act
    const error = await failureOf(mailer.send(outbound()));

    // Assess
    expect(error).toBeInstanceOf(SendingPausedError);
    expect(error.message).toBe('SES sending is paused for the account (SendingPausedException)');
    expect(error.cause).toBeInstanceOf(SendingPausedException);
  });

  it('turns an unknown configuration set into a PermanentError (NotFoundException)', async () => {
    // Prepare
    const misconfigured = new SesMailer(ses, 'no-such-set');

    // Act
    const error = await failureOf(misconfigured.send(outbound()));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toBe(
      'an SES resource the message needs (identity or configuration set) does not exist: Configuration set <no-such-set> does not exist.',
    );
    expect(error.cause).toBeInstanceOf(NotFoundException);
  });

  it('turns a request SES finds invalid (a tag value SES refuses) into a PermanentError', async () => {
    // Prepare
    const mail = outbound();
    const badTag = outbound({ tags: { ...mail.tags, [MessageTag.tenant]: 'acme corp' } });

    // Act
    const error = await failureOf(mailer.send(badTag));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toBe(
      `SES refused the request as invalid: Invalid tag value <acme corp> for tag <${MessageTag.tenant}>: only alphanumeric ASCII characters, '_', and '-' are allowed.`,
    );
    expect(error.cause).toBeInstanceOf(BadRequestException);
  });

  it.each([
    // random 0.25: the call loses its answer; its second draw picks InternalFailure (< 0.5).
    [
      'an InternalFailure 500',
      0.25,
      /^SES's answer was lost \(InternalFailure 500\); it may have taken the message$/,
    ],
    // random 0.75: a reset connection.
    ['a reset connection', 0.75, /^SES's answer was lost \(\w+\); it may have taken the message$/],
  ])(
    'turns %s after SES kept the message into an UncertainSendError, and SES has it once',
    async (_what, draw, words) => {
      // Prepare
      standin.setFaults({ acceptThenFailRate: 1, random: () => draw });
      const mail = outbound();

      // Act
      const error = await failureOf(mailer.send(mail));

      // Assess
      expect(error).toBeInstanceOf(UncertainSendError);
      expect(error.message).toMatch(words);
      expect(standin.sent().filter((r) => r.batonMessageId === mail.batonId)).toHaveLength(1);
      expect(standin.ambiguousAnswers().at(-1)).toEqual({
        batonMessageId: mail.batonId,
        kept: true,
        answer: draw < 0.5 ? 'internal-failure' : 'connection-reset',
      });
    },
  );

  it('answers a send SES did not keep exactly as one it kept: an UncertainSendError, nothing sent', async () => {
    // Prepare
    standin.setFaults({ failWithoutAcceptRate: 1, random: () => 0.25 });
    const mail = outbound();

    // Act
    const error = await failureOf(mailer.send(mail));

    // Assess
    expect(error).toBeInstanceOf(UncertainSendError);
    expect((error as UncertainSendError).requestId).toEqual(expect.any(String));
    expect(standin.sent().filter((r) => r.batonMessageId === mail.batonId)).toEqual([]);
  });

  it('makes one SendEmail attempt with the sender’s client: the SDK never resends after a 500', async () => {
    // Prepare: the SDK's default (3 attempts) would send this message three times.
    const client = createSesClient({ endpoint: standin.endpoint, region, credentials });
    standin.setFaults({ acceptThenFailRate: 1, random: () => 0.25 });
    const mail = outbound();

    // Act
    const error = await failureOf(new SesMailer(client, CONFIGURATION_SET).send(mail));

    // Assess
    expect(error).toBeInstanceOf(UncertainSendError);
    expect(await client.config.maxAttempts()).toBe(1);
    expect(standin.sent().filter((r) => r.batonMessageId === mail.batonId)).toHaveLength(1);
    client.destroy();
  });

  it('bounds a SendEmail that SES takes and never answers: an UncertainSendError after the request timeout', async () => {
    // Prepare: a server that reads the request and never answers (SES took it, the answer hangs).
    const hung = createServer((request) => {
      request.resume();
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const { port } = hung.address() as AddressInfo;
    const client = createSesClient({ endpoint: `http://127.0.0.1:${port}`, region, credentials }, 500);
    const started = Date.now();

    // Act
    const error = await failureOf(new SesMailer(client, CONFIGURATION_SET).send(outbound()));

    // Assess
    expect(error).toBeInstanceOf(UncertainSendError);
    expect(Date.now() - started).toBeLessThan(5_000);
    client.destroy();
    hung.closeAllConnections();
    await new Promise((resolve) => hung.close(resolve));
  });

  it('abandons a SendEmail still unanswered when the invocation’s answer is due, as an UncertainSendError', async () => {
    // Prepare: SES takes the request and never answers; the default 15 s request timeout is longer.
    const hung = createServer((request) => {
      request.resume();
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const { port } = hung.address() as AddressInfo;
    const client = createSesClient({ endpoint: `http://127.0.0.1:${port}`, region, credentials });
    const started = Date.now();

    // Act
    const error = await failureOf(
      new SesMailer(client, CONFIGURATION_SET).send(outbound({ answerBy: started + 400 })),
    );

    // Assess
    expect(error).toBeInstanceOf(UncertainSendError);
    expect(Date.now() - started).toBeLessThan(5_000);
    client.destroy();
    hung.closeAllConnections();
    await new Promise((resolve) => hung.close(resolve));
  });

  it('makes no SendEmail once the answer would be due: a TransientError, nothing sent', async () => {
    // Prepare
    const mail = outbound({ answerBy: Date.now() - 1 });

    // Act
    const error = await failureOf(mailer.send(mail));

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect(error).not.toBeInstanceOf(UncertainSendError);
    expect(standin.sent().filter((r) => r.batonMessageId === mail.batonId)).toEqual([]);
  });

  it('gives the sender’s SES client a request timeout by default', async () => {
    // Act: one request (refused) makes the handler resolve its configuration.
    const client = createSesClient(unreachable);
    await failureOf(new SesMailer(client, CONFIGURATION_SET).send(outbound()));
    const handler = client.config.requestHandler as { httpHandlerConfigs?: () => Record<string, unknown> };

    // Assess
    expect(handler.httpHandlerConfigs?.()).toMatchObject({
      requestTimeout: SES_REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    });
    client.destroy();
  });

  it('reports an SES endpoint that does not answer as a TransientError', async () => {
    // Prepare: nothing listens on port 9
    const dead = new SESv2Client(unreachable);
    const offline = new SesMailer(dead, CONFIGURATION_SET);

    // Act
    const error = await failureOf(offline.send(outbound()));

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    // Refused before anything left this host: proven not sent, so not uncertain.
    expect(error).not.toBeInstanceOf(UncertainSendError);
    expect(error.message).toBe('SES is unreachable (ECONNREFUSED)');
    dead.destroy();
  });
});
