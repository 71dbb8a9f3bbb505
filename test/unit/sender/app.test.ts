import '../../support/quiet-powertools.ts';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { composeMime } from '../../../lambdas/domain/delivery/mime.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { CLAIM_LEASE_MS, loadDkim, loadDkimKey } from '../../../lambdas/sender/app.ts';
import {
  ConfigurationError,
  PermanentError,
  SendingPausedError,
  TransientError,
  UncertainSendError,
} from '../../../lambdas/shared/errors.ts';
import { EnvVar } from '../../../lambdas/shared/names.ts';
import { outgoingMessage, sendJob, sqsRecord, suppression, T0 } from '../../support/builders.ts';
import type { InMemoryMessageStore } from '../../support/fakes.ts';
import { headerValue, headerValues } from '../../support/mime.ts';
import { queuedJob, senderHarness } from '../../support/unit-sender.ts';

const setUp = senderHarness;

/** A queued message `id` to `to`, its record seeded, and the SQS record carrying its job. */
const queued = (messages: InMemoryMessageStore, id: string, to: string[], receiveCount = 1) =>
  queuedJob(messages, id, { to, receiveCount });

describe('createSender', () => {
  describe('prepare', () => {
    it('reads the suppression list once for every recipient of the batch', async () => {
      // Prepare
      const { sender, messages, suppressions } = setUp();
      const records = [
        queued(messages, 'msg_1', ['Ana@Example.org', 'bob@example.org']),
        queued(messages, 'msg_2', ['carl@bücher.example']),
      ];

      // Act
      const batch = await sender.prepare(records);

      // Assess
      expect(suppressions.getManyCalls).toEqual([
        ['ana@example.org', 'bob@example.org', 'carl@xn--bcher-kva.example'],
      ]);
      expect([...batch.jobs.keys()]).toEqual(['sqs-msg_1', 'sqs-msg_2']);
      expect(batch.paused).toBe(false);
    });

    it('keeps what it found on the list for the whole batch', async () => {
      // Prepare
      const { sender, messages, suppressions } = setUp();
      const bounce = suppression('bob@example.org');
      suppressions.seed(bounce);

      // Act
      const batch = await sender.prepare([queued(messages, 'msg_1', ['ana@example.org', 'bob@example.org'])]);

      // Assess
      expect(batch.suppressed).toEqual(new Map([['tenant-a', new Map([['bob@example.org', bounce]])]]));
    });

    it('applies a tenant’s own entries to that tenant’s jobs only, with global ones to all', async () => {
      // Prepare
      const { sender, messages, suppressions } = setUp();
      const own = suppression('ana@example.org', 'unsubscribe', { tenant: 'tenant-b' });
      const bounce = suppression('bob@example.org');
      suppressions.seed(own, bounce);
      const to = ['ana@example.org', 'bob@example.org'];

      // Act
      const batch = await sender.prepare([
        queuedJob(messages, 'msg_a', { to, tenant: 'tenant-a' }),
        queuedJob(messages, 'msg_b', { to, tenant: 'tenant-b' }),
      ]);

      // Assess: one read per tenant, each with the global entries and only its own.
      expect(suppressions.getManyCalls).toEqual([to, to]);
      expect(batch.suppressed).toEqual(
        new Map([
          ['tenant-a', new Map([['bob@example.org', bounce]])],
          [
            'tenant-b',
            new Map([
              ['ana@example.org', own],
              ['bob@example.org', bounce],
            ]),
          ],
        ]),
      );
    });

    it('marks unreadable jobs as errors and reads nothing when no job is readable', async () => {
      // Prepare
      const { sender, suppressions } = setUp();
      const records = [
        sqsRecord('Test message.', { messageId: 'a' }),
        sqsRecord('{"v":2,"id":"x","message":{}}', { messageId: 'b' }),
        sqsRecord('null', { messageId: 'c' }),
      ];

      // Act
      const batch = await sender.prepare(records);

      // Assess
      expect(batch.jobs).toEqual(
        new Map([
          ['a', new PermanentError('send job is not JSON')],
          ['b', new PermanentError('not a Baton send job')],
          ['c', new PermanentError('not a Baton send job')],
        ]),
      );
      expect(suppressions.getManyCalls).toEqual([]);
    });
  });

  describe('sendRecord', () => {
    it('sends the message as composed MIME and records it sent', async () => {
      // Prepare
      const { sender, messages, mailer, visibility } = setUp();
      const record = queued(messages, 'msg_1', ['ana@example.org']);
      const batch = await sender.prepare([record]);

      // Act
      await sender.sendRecord(record, batch);

      // Assess
      expect(mailer.sent).toHaveLength(1);
      const raw = Buffer.from(mailer.sent[0]?.raw ?? []);
      expect(headerValue(raw, 'Subject')).toBe('Your receipt');
      expect(headerValue(raw, 'Message-ID')).toBe('<msg_1@example.com>');
      expect(headerValues(raw, 'DKIM-Signature')).toEqual([]);
      expect(messages.peek('msg_1')).toMatchObject({ phase: 'sent', sesMessageId: 'ses-1' });
      expect(visibility.delays).toEqual([]);
    });

    it('signs with the configured DKIM key for the From domain', async () => {
      // Prepare
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const dkim = {
        selector: 's1',
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      };
      const txt = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
      const { sender, messages, mailer } = setUp({ dkim });
      const record = queued(messages, 'msg_1', ['ana@example.org']);

      // Act
      await sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      const raw = Buffer.from(mailer.sent[0]?.raw ?? []);
      const { results } = await dkimVerify(raw, {
        resolver: async (name: string) => (name === 's1._domainkey.example.com' ? [[txt]] : []),
      });
      expect(results.map((r) => [r.status.result, r.signingDomain, r.selector])).toEqual([
        ['pass', 'example.com', 's1'],
      ]);
    });

    it('does not send to a recipient the batch read found suppressed', async () => {
      // Prepare
      const { sender, messages, suppressions, mailer } = setUp();
      suppressions.seed(suppression('bob@example.org', 'complaint'));
      const record = queued(messages, 'msg_1', ['ana@example.org', 'bob@example.org']);

      // Act
      await sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      expect(mailer.sent.map((m) => m.to)).toEqual([['ana@example.org']]);
      expect(messages.peek('msg_1')?.recipients.map((r) => r.status)).toEqual(['sent', 'suppressed']);
    });

    it('fails an unreadable job so it ends in the dead-letter queue', async () => {
      // Prepare
      const { sender, mailer, visibility } = setUp();
      const record = sqsRecord('Test message.');
      const batch = await sender.prepare([record]);

      // Act
      const outcome = sender.sendRecord(record, batch);

      // Assess
      await expect(outcome).rejects.toThrow(new PermanentError('send job is not JSON'));
      expect(mailer.attempts).toEqual([]);
      expect(visibility.delays).toEqual([]);
    });

    it('fails a record that is not in the prepared batch', async () => {
      // Prepare
      const { sender, messages } = setUp();
      const batch = await sender.prepare([]);

      // Act
      const outcome = sender.sendRecord(queued(messages, 'msg_1', ['ana@example.org']), batch);

      // Assess
      await expect(outcome).rejects.toThrow(new PermanentError('send job missing from the prepared batch'));
    });

    it('backs off with jitter on a transient error, gives the claim back and rethrows', async () => {
      // Prepare
      const { sender, messages, mailer, visibility } = setUp({ random: () => 0.5 });
      const error = new TransientError('SES is unavailable or throttling (ThrottlingException)');
      mailer.willAnswer(error);
      const record = queued(messages, 'msg_1', ['ana@example.org'], 3);

      // Act
      const outcome = sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      await expect(outcome).rejects.toBe(error);
      // Third receive: a window of 2 × 2² = 8 s, half of it.
      expect(visibility.delays).toEqual([{ messageId: 'sqs-msg_1', seconds: 4 }]);
      expect(messages.peek('msg_1')).toMatchObject({ phase: 'queued' });
      expect(messages.peek('msg_1')).not.toHaveProperty('claimToken');
    });

    it('puts the message away until the claim another attempt holds ends', async () => {
      // Prepare
      const { sender, messages, mailer, visibility } = setUp({ random: () => 0.999 });
      const record = queued(messages, 'msg_1', ['ana@example.org']);
      const current = messages.peek('msg_1') as MessageRecord;
      messages.write({
        ...current,
        phase: 'sending',
        claimToken: 'other',
        claimUntil: Date.parse(T0) + CLAIM_LEASE_MS,
      });

      // Act
      const outcome = sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      await expect(outcome).rejects.toThrow('message msg_1 is being sent by another attempt');
      await expect(outcome).rejects.toBeInstanceOf(TransientError);
      // Not the backoff's 2 s: a retry before the claim ends would only spend a receive.
      expect(visibility.delays).toEqual([{ messageId: 'sqs-msg_1', seconds: CLAIM_LEASE_MS / 1000 + 1 }]);
      expect(mailer.attempts).toEqual([]);
    });

    it('puts a message whose SES answer was lost away for the confirmation window, then sends it once', async () => {
      // Prepare
      const { sender, messages, mailer, visibility, clock } = setUp({ confirmationWindowMs: 24_000 });
      const record = queued(messages, 'msg_1', ['ana@example.org']);
      mailer.willAnswer(new UncertainSendError('SES answered InternalFailure (500)'));

      // Act
      const first = await sender.sendRecord(record, await sender.prepare([record])).catch((e: unknown) => e);
      clock.advance(24_001);
      const again = { ...record, attributes: { ...record.attributes, ApproximateReceiveCount: '2' } };
      await sender.sendRecord(again, await sender.prepare([again]));

      // Assess
      expect(first).toBeInstanceOf(TransientError);
      expect(visibility.delays).toEqual([{ messageId: 'sqs-msg_1', seconds: 25 }]);
      expect(mailer.attempts).toHaveLength(2);
      expect(mailer.sent).toHaveLength(1);
      expect(messages.peek('msg_1')).toMatchObject({ phase: 'sent' });
    });

    it('gives up on an uncertain message on its last receive (redrivable), so it never sits in the DLQ as sending', async () => {
      // Prepare
      const { sender, messages, mailer } = setUp({ confirmationWindowMs: 24_000, maxReceiveCount: 1 });
      const record = queued(messages, 'msg_1', ['ana@example.org']);
      mailer.willAnswer(new UncertainSendError('SES answered InternalFailure (500)'));

      // Act
      await sender.sendRecord(record, await sender.prepare([record])).catch(() => undefined);

      // Assess
      expect(messages.peek('msg_1')).toMatchObject({
        phase: 'failed',
        redrivable: true,
        recipients: [{ status: 'failed' }],
      });
      // It keeps the wait for SES's evidence, so a redrive inside the window does not send again.
      expect(messages.peek('msg_1')).toHaveProperty('uncertain.confirmUntil', Date.parse(T0) + 24_000);
    });

    it('does not send again when a message given up on inside its confirmation window is redriven before the window ends', async () => {
      // Prepare: the uncertain attempt is the last receive; SES may have kept the message.
      const { sender, messages, mailer, visibility, clock } = setUp({
        confirmationWindowMs: 24_000,
        maxReceiveCount: 3,
      });
      const last = queuedJob(messages, 'msg_1', { to: ['ana@example.org'], receiveCount: 3 });
      mailer.willAnswer(new UncertainSendError('SES answered InternalFailure (500)'));
      await sender.sendRecord(last, await sender.prepare([last])).catch(() => undefined);

      // Act: an operator redrives the DLQ 10 s later (the receive count starts again).
      clock.advance(10_000);
      const redriven = { ...last, attributes: { ...last.attributes, ApproximateReceiveCount: '1' } };
      const outcome = await sender
        .sendRecord(redriven, await sender.prepare([redriven]))
        .catch((e: unknown) => e);

      // Assess: it waits out the rest of the window instead of sending a second copy.
      expect(outcome).toBeInstanceOf(TransientError);
      expect(mailer.attempts).toHaveLength(1);
      expect(visibility.delays.at(-1)).toEqual({ messageId: 'sqs-msg_1', seconds: 15 });
      expect(messages.peek('msg_1')).toMatchObject({ phase: 'failed', redrivable: true });
    });

    it('sends a message given up on inside its confirmation window when it is redriven after the window, once', async () => {
      // Prepare
      const { sender, messages, mailer, clock } = setUp({ confirmationWindowMs: 24_000, maxReceiveCount: 3 });
      const last = queuedJob(messages, 'msg_1', { to: ['ana@example.org'], receiveCount: 3 });
      mailer.willAnswer(new UncertainSendError('SES answered InternalFailure (500)'));
      await sender.sendRecord(last, await sender.prepare([last])).catch(() => undefined);

      // Act
      clock.advance(24_001);
      const redriven = { ...last, attributes: { ...last.attributes, ApproximateReceiveCount: '1' } };
      await sender.sendRecord(redriven, await sender.prepare([redriven]));

      // Assess
      expect(mailer.sent).toHaveLength(1);
      expect(messages.peek('msg_1')).toMatchObject({ phase: 'sent', recipients: [{ status: 'sent' }] });
      expect(messages.peek('msg_1')).not.toHaveProperty('uncertain');
    });

    it('tells SES’s adapter to have the answer 3 s before the invocation’s deadline', async () => {
      // Prepare
      const { sender, messages, mailer } = setUp();
      const record = queued(messages, 'msg_1', ['ana@example.org']);
      const deadline = new Date(Date.parse(T0) + 30_000);

      // Act
      await sender.sendRecord(record, await sender.prepare([record], { deadline }));

      // Assess
      expect(mailer.attempts.map((m) => m.answerBy)).toEqual([deadline.getTime() - 3_000]);
    });

    it('hands the rest of the batch back untouched once SES says sending is paused', async () => {
      // Prepare
      const { sender, messages, mailer, visibility } = setUp();
      const paused = new SendingPausedError('SES sending is paused for the account (SendingPausedException)');
      mailer.willAnswer(paused);
      const records = [
        queued(messages, 'msg_1', ['ana@example.org']),
        queued(messages, 'msg_2', ['bob@example.org']),
        queued(messages, 'msg_3', ['carl@example.org']),
      ];
      const batch = await sender.prepare(records);

      // Act
      const outcomes = [];
      for (const record of records) {
        outcomes.push(await sender.sendRecord(record, batch).catch((error: unknown) => error));
      }

      // Assess
      expect(outcomes[0]).toBe(paused);
      expect(outcomes.slice(1)).toEqual([
        new SendingPausedError('SES sending is paused; handed back'),
        new SendingPausedError('SES sending is paused; handed back'),
      ]);
      expect(outcomes.slice(1).every((e) => e instanceof SendingPausedError)).toBe(true);
      expect(batch.paused).toBe(true);
      expect(mailer.attempts).toHaveLength(1);
      expect(visibility.delays).toEqual([
        { messageId: 'sqs-msg_1', seconds: 900 },
        { messageId: 'sqs-msg_2', seconds: 900 },
        { messageId: 'sqs-msg_3', seconds: 900 },
      ]);
      expect(['msg_1', 'msg_2', 'msg_3'].map((id) => messages.peek(id)?.phase)).toEqual([
        'queued',
        'queued',
        'queued',
      ]);
    });

    it('acknowledges a message SES refused for good, its recipients marked failed', async () => {
      // Prepare
      const { sender, messages, mailer, visibility } = setUp();
      mailer.willAnswer(new PermanentError('SES rejected the message: Email address is not verified.'));
      const record = queued(messages, 'msg_1', ['ana@example.org']);

      // Act
      await sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      expect(messages.peek('msg_1')).toMatchObject({
        phase: 'failed',
        recipients: [
          { status: 'failed', reason: 'SES rejected the message: Email address is not verified.' },
        ],
      });
      expect(visibility.delays).toEqual([]);
    });

    it('acknowledges a duplicate delivery of a message already sent', async () => {
      // Prepare
      const { sender, messages, mailer } = setUp();
      const record = queued(messages, 'msg_1', ['ana@example.org']);
      await sender.sendRecord(record, await sender.prepare([record]));

      // Act
      await sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      expect(mailer.attempts).toHaveLength(1);
    });

    it('rethrows a job without a record without delaying it', async () => {
      // Prepare
      const { sender, visibility } = setUp();
      const record = sqsRecord(JSON.stringify(sendJob(outgoingMessage(), 'msg_gone')));

      // Act
      const outcome = sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      await expect(outcome).rejects.toThrow(
        new PermanentError('message msg_gone has no record; it cannot be tracked'),
      );
      expect(visibility.delays).toEqual([]);
    });
  });
});

describe('loadDkimKey', () => {
  it('signs with nothing when no key file is configured', () => {
    // Prepare / Act
    const key = loadDkimKey(undefined, 'baton');

    // Assess
    expect(key).toBeUndefined();
  });

  it('reads the PEM file with the default selector baton', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'baton-dkim-'));
    const file = join(dir, 'dkim.pem');
    writeFileSync(file, '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n');

    // Act
    const key = loadDkimKey(file, undefined);

    // Assess
    rmSync(dir, { recursive: true, force: true });
    expect(key).toEqual({
      selector: 'baton',
      privateKey: '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n',
    });
  });

  it('fails loudly at start-up when the key file cannot be read', () => {
    // Prepare
    const file = join(tmpdir(), 'baton-no-such-dir', 'dkim.pem');

    // Act
    const load = () => loadDkimKey(file, 's1');

    // Assess
    expect(load).toThrow(new ConfigurationError(`cannot read the DKIM key file ${file}`));
    expect(load).toThrow(ConfigurationError);
  });
});

/** A fresh RSA key as a PEM file (removed by the caller), and its DNS TXT record. */
function dkimKeyFile(): { file: string; txt: string; remove: () => void } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), 'baton-dkim-'));
  const file = join(dir, 'dkim.pem');
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  return {
    file,
    txt: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// The stack bundles the sender with this constant set (SENDER_BUNDLE_DEFINE), which leaves mailauth
// out; setting the variable here stands in for that bundle.
const bundledWithoutSigner = () => vi.stubEnv('BATON_DKIM_SIGNER', 'omitted');

describe('loadDkim', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('loads nothing when no key file is configured, even in a bundle without the signer', async () => {
    // Prepare
    bundledWithoutSigner();

    // Act
    const dkim = await loadDkim(undefined, 'baton');

    // Assess
    expect(dkim).toBeUndefined();
  });

  it('loads the key and mailauth’s signer, which signs for the From domain', async () => {
    // Prepare
    const { file, txt, remove } = dkimKeyFile();
    const raw = await composeMime(outgoingMessage(), { id: 'msg_1', date: new Date(T0) });

    // Act
    const dkim = await loadDkim(file, 's1');
    remove();
    const signed = await dkim?.sign(raw, dkim.key, 'example.com');

    // Assess
    expect(dkim?.key.selector).toBe('s1');
    const { results } = await dkimVerify(signed ?? Buffer.alloc(0), {
      resolver: async (name: string) => (name === 's1._domainkey.example.com' ? [[txt]] : []),
    });
    expect(results.map((r) => [r.status.result, r.signingDomain, r.selector])).toEqual([
      ['pass', 'example.com', 's1'],
    ]);
  });

  it('fails at start-up, naming the variable, when a key is configured but the signer was left out', async () => {
    // Prepare
    const { file, remove } = dkimKeyFile();
    bundledWithoutSigner();

    // Act
    const load = loadDkim(file, 's1');

    // Assess
    await expect(load).rejects.toThrow(ConfigurationError);
    await expect(load).rejects.toThrow(`${EnvVar.dkimKeyFile} is set, but this sender was bundled without`);
    remove();
  });

  it('names the variable, not the file, when neither the signer nor the key file is there', async () => {
    // Prepare
    bundledWithoutSigner();

    // Act
    const load = loadDkim(join(tmpdir(), 'baton-no-such-dir', 'dkim.pem'), 's1');

    // Assess
    await expect(load).rejects.toThrow(`${EnvVar.dkimKeyFile} is set, but this sender was bundled without`);
  });

  it('never sends a message unsigned when a key is configured but the signer is missing', async () => {
    // Prepare: a key but no signer given, so the sender imports one when it first signs.
    bundledWithoutSigner();
    const { sender, messages, mailer } = setUp({ dkim: { selector: 's1', privateKey: 'unused' } });
    const record = queued(messages, 'msg_1', ['ana@example.org']);

    // Act
    const outcome = sender.sendRecord(record, await sender.prepare([record]));

    // Assess
    await expect(outcome).rejects.toThrow();
    expect(mailer.sent).toEqual([]);
  });
});
