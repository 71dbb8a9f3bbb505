import { describe, expect, it } from 'vitest';
import { composeMime } from '../../../lambdas/domain/delivery/mime.ts';
import { type SendDeps, sendJob } from '../../../lambdas/domain/delivery/send.ts';
import type { OutgoingMessage } from '../../../lambdas/domain/message.ts';
import { problem } from '../../../lambdas/domain/problem.ts';
import {
  acceptMessage,
  acceptSubmission,
  countRejected,
  MAX_JOB_BYTES,
} from '../../../lambdas/domain/send/accept.ts';
import { readSubmission } from '../../../lambdas/domain/smtp/submission.ts';
import { type Suppression, suppressedReason } from '../../../lambdas/domain/suppression/suppression.ts';
import { suppression, T0 } from '../../support/builders.ts';
import { FakeMailer } from '../../support/fakes.ts';
import { type AcceptHarness, acceptHarness } from '../../support/harness.ts';
import { headerValue, headerValues } from '../../support/mime.ts';
import { problemOf } from '../../support/problems.ts';
import { composedMail, envelope, handWritten } from '../../support/raw-mail.ts';

/** What the SMTP server passes for a message of about 40 MB. */
const SMTP_MAX_JOB_BYTES = 41_000_000;

async function submitted(raw: Buffer, rcptTo: readonly string[], mailFrom = 'orders@example.com') {
  return readSubmission(raw, envelope(rcptTo, mailFrom));
}

/** Sends the queued job as the sender would, composing real MIME; returns what SES was given. */
async function sendQueued(h: AcceptHarness, index = 0) {
  const queued = h.queue.jobs[index];
  if (!queued) throw new Error(`no job ${index} queued`);
  const mailer = new FakeMailer();
  const deps: SendDeps = {
    messages: h.messages,
    mailer,
    clock: h.clock,
    leaseMs: 120_000,
    confirmationWindowMs: 255_000,
    compose: (message: OutgoingMessage, id: string, date: Date) => composeMime(message, { id, date }),
  };
  await sendJob(deps, queued.job, new Map());
  const [mail] = mailer.sent;
  if (!mail) throw new Error('nothing sent');
  return { mail, raw: Buffer.from(mail.raw) };
}

describe('acceptSubmission', () => {
  it('records and queues a submitted message exactly as acceptMessage does a JSON one', async () => {
    // Prepare
    const smtp = acceptHarness();
    const api = acceptHarness();
    const message = await submitted(await composedMail({}), ['ana@example.org']);

    // Act
    const viaSmtp = await acceptSubmission(smtp.deps, smtp.key, message, { maxJobBytes: SMTP_MAX_JOB_BYTES });
    // The same key through both doors: the records name the key that sent them.
    const viaApi = await acceptMessage(api.deps, smtp.key, {
      from: 'Shop <orders@example.com>',
      to: ['ana@example.org'],
      subject: 'Your receipt',
      text: 'Thanks for your order.',
    });

    // Assess
    expect(viaSmtp).toEqual(viaApi);
    expect(smtp.messages.peek('msg_1')).toEqual(api.messages.peek('msg_1'));
    expect(smtp.queue.jobs[0]?.job.message).toEqual(message);
    expect(smtp.usage.stats.get('tenant-a#2025-03-01')).toEqual({ accepted: 1 });
  });

  it('sends Bcc and Cc envelope recipients as destinations, never a header-only address, and never a Bcc header', async () => {
    // Prepare
    const h = acceptHarness();
    const raw = await composedMail({
      to: 'Ana <ana@example.org>, shown-only@example.org',
      cc: 'bob@example.org',
      bcc: 'carl@example.net',
    });
    const message = await submitted(raw, ['ana@example.org', 'bob@example.org', 'carl@example.net']);

    // Act
    await acceptSubmission(h.deps, h.key, message, { maxJobBytes: SMTP_MAX_JOB_BYTES });
    const { mail, raw: sent } = await sendQueued(h);

    // Assess
    expect({ to: mail.to, cc: mail.cc, bcc: mail.bcc }).toEqual({
      to: ['ana@example.org'],
      cc: ['bob@example.org'],
      bcc: ['carl@example.net'],
    });
    expect(headerValue(sent, 'To')).toBe('Ana <ana@example.org>, shown-only@example.org');
    expect(headerValues(sent, 'Bcc')).toEqual([]);
    expect(h.messages.peek('msg_1')?.recipients.map((r) => [r.address, r.kind])).toEqual([
      ['ana@example.org', 'to'],
      ['bob@example.org', 'cc'],
      ['carl@example.net', 'bcc'],
    ]);
  });

  it('rewrites the From header under a rewrite policy, the original in Reply-To and X-Original-From', async () => {
    // Prepare
    const h = acceptHarness({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const raw = handWritten([
      'From: Scanner <scanner@legacy.example>',
      'To: ana@example.org',
      'Subject: Scan',
    ]);
    const message = await submitted(raw, ['ana@example.org'], 'scanner@legacy.example');

    // Act
    const result = await acceptSubmission(h.deps, h.key, message, { maxJobBytes: SMTP_MAX_JOB_BYTES });
    const { mail, raw: sent } = await sendQueued(h);

    // Assess
    expect(result.rewrittenFrom).toBe('Scanner via Baton <relay@example.com>');
    expect(mail.from).toBe('relay@example.com');
    expect(headerValue(sent, 'From')).toBe('Scanner via Baton <relay@example.com>');
    expect(headerValue(sent, 'Reply-To')).toBe('Scanner <scanner@legacy.example>');
    expect(headerValue(sent, 'X-Original-From')).toBe('Scanner <scanner@legacy.example>');
  });

  it('refuses a From outside the key’s domains with 403 under the reject policy, and records nothing', async () => {
    // Prepare
    const h = acceptHarness();
    const raw = handWritten(['From: boss@elsewhere.example', 'To: ana@example.org', 'Subject: Hi']);
    const message = await submitted(raw, ['ana@example.org']);

    // Act
    const problem = await problemOf(() =>
      acceptSubmission(h.deps, h.key, message, { maxJobBytes: SMTP_MAX_JOB_BYTES }),
    );

    // Assess
    expect(problem.code).toBe('forbidden');
    expect(h.messages.peek('msg_1')).toBeUndefined();
    expect(h.usage.stats.get('tenant-a#2025-03-01')).toEqual({ rejected: 1 });
  });

  it('names the From and Reply-To headers when their display names show another domain', async () => {
    // Prepare
    const h = acceptHarness();
    const raw = handWritten([
      'From: "support@paypal.com" <noreply@example.com>',
      'Reply-To: "help@paypal.com" <help@example.com>',
      'To: ana@example.org',
      'Subject: Hi',
    ]);
    const message = await submitted(raw, ['ana@example.org']);

    // Act
    const problem = await problemOf(() =>
      acceptSubmission(h.deps, h.key, message, { maxJobBytes: SMTP_MAX_JOB_BYTES }),
    );

    // Assess
    expect(problem.code).toBe('invalid_message');
    expect(problem.errors?.map((e) => e.path)).toEqual(['headers.From', 'headers.Reply-To']);
    expect(problem.errors?.[0]?.message).toContain('display name must not show an address outside');
    expect(h.usage.stats.get('tenant-a#2025-03-01')).toEqual({ rejected: 1 });
  });

  it('takes the size limit of its entry: larger than the API’s, refused above its own', async () => {
    // Prepare
    const h = acceptHarness();
    const big = Buffer.alloc(MAX_JOB_BYTES, 7);
    const message = await submitted(
      await composedMail({ attachments: [{ filename: 'big.bin', content: big }] }),
      ['ana@example.org'],
    );

    // Act
    const accepted = await acceptSubmission(h.deps, h.key, message, { maxJobBytes: SMTP_MAX_JOB_BYTES });
    const problem = await problemOf(() =>
      acceptSubmission(h.deps, h.key, message, { maxJobBytes: MAX_JOB_BYTES }),
    );

    // Assess
    expect(accepted.status).toBe('queued');
    expect(problem.code).toBe('too_large');
    expect(problem.detail).toMatch(
      /^The message is \d+ KB once encoded; the limit is 6500 KB including attachments\.$/,
    );
    // A limit derived from SIZE (1.1 × SIZE + 1 MB) reads as whole kilobytes, not 1000.841.
    const derived = await problemOf(() =>
      acceptSubmission(h.deps, h.key, message, { maxJobBytes: 1_000_841 }),
    );
    expect(derived.detail).toBe(problem.detail.replace('the limit is 6500 KB', 'the limit is 1000 KB'));
  });
});

describe('acceptSubmission: recipients refused at RCPT as suppressed', () => {
  const atRcpt = (...entries: Suppression[]) => new Map(entries.map((s) => [s.address, s]));

  it('records them suppressed with their reason, answers them so, and never sends to them', async () => {
    // Prepare
    const h = acceptHarness();
    const raw = await composedMail({ to: 'ana@example.org, gone@example.org', cc: 'left@example.org' });
    const message = await submitted(raw, ['ana@example.org']);
    const gone = suppression('gone@example.org', 'hard_bounce');
    const left = suppression('left@example.org', 'unsubscribe', { tenant: 'tenant-a' });
    const suppressedAtRcpt = atRcpt(gone, left);

    // Act
    const result = await acceptSubmission(h.deps, h.key, message, {
      maxJobBytes: SMTP_MAX_JOB_BYTES,
      suppressedAtRcpt,
    });
    const { mail } = await sendQueued(h);

    // Assess
    expect(result).toEqual({
      id: 'msg_1',
      status: 'queued',
      recipients: [
        { address: 'ana@example.org', status: 'queued' },
        { address: 'gone@example.org', status: 'suppressed', reason: 'hard_bounce' },
        { address: 'left@example.org', status: 'suppressed', reason: 'unsubscribe' },
      ],
      rewrittenFrom: null,
    });
    const record = h.messages.peek('msg_1');
    expect(record?.recipients.slice(1)).toEqual([
      {
        address: 'gone@example.org',
        kind: 'to',
        status: 'suppressed',
        reason: suppressedReason(gone),
        updatedAt: T0,
      },
      {
        address: 'left@example.org',
        kind: 'cc',
        status: 'suppressed',
        reason: suppressedReason(left),
        updatedAt: T0,
      },
    ]);
    expect(record?.events.filter((e) => e.type === 'suppressed')).toHaveLength(2);
    expect([...mail.to, ...mail.cc, ...mail.bcc]).toEqual(['ana@example.org']);
    expect(h.usage.stats.get('tenant-a#2025-03-01')).toEqual({ accepted: 1 });
  });

  it('keeps a recipient refused at RCPT suppressed though its suppression was lifted before DATA, even when the client sent it again', async () => {
    // Prepare: the list no longer holds it (lifted); the envelope names it again after the 550.
    const h = acceptHarness();
    const message = await submitted(await composedMail({ to: 'ana@example.org, gone@example.org' }), [
      'ana@example.org',
      'gone@example.org',
    ]);

    // Act
    const result = await acceptSubmission(h.deps, h.key, message, {
      maxJobBytes: SMTP_MAX_JOB_BYTES,
      suppressedAtRcpt: atRcpt(suppression('gone@example.org', 'complaint')),
    });
    const { mail } = await sendQueued(h);

    // Assess
    expect(result.recipients).toEqual([
      { address: 'ana@example.org', status: 'queued' },
      { address: 'gone@example.org', status: 'suppressed', reason: 'complaint' },
    ]);
    expect(h.suppressions.getManyCalls).toEqual([['ana@example.org']]);
    const job = h.queue.jobs[0]?.job.message;
    expect([...(job?.to ?? []), ...(job?.cc ?? []), ...(job?.bcc ?? [])]).toEqual([
      { address: 'ana@example.org' },
    ]);
    expect(mail.to).toEqual(['ana@example.org']);
  });

  it('records the message suppressed, and queues nothing, when every recipient is suppressed', async () => {
    // Prepare: one refused at RCPT, the other found on the list at DATA.
    const h = acceptHarness();
    h.suppressions.seed(suppression('bob@example.org', 'hard_bounce'));
    const message = await submitted(await composedMail({ to: 'bob@example.org' }), ['bob@example.org']);

    // Act
    const result = await acceptSubmission(h.deps, h.key, message, {
      maxJobBytes: SMTP_MAX_JOB_BYTES,
      suppressedAtRcpt: atRcpt(suppression('gone@example.org', 'hard_bounce')),
    });

    // Assess
    expect(result.status).toBe('suppressed');
    expect(h.messages.peek('msg_1')?.phase).toBe('suppressed');
    expect(h.messages.peek('msg_1')?.recipients.map((r) => [r.address, r.kind, r.status])).toEqual([
      ['bob@example.org', 'to', 'suppressed'],
      ['gone@example.org', 'bcc', 'suppressed'],
    ]);
    expect(h.queue.jobs).toEqual([]);
    expect(h.usage.stats.get('tenant-a#2025-03-01')).toEqual({ suppressed: 1 });
  });

  it('records an erased address refused at RCPT under its pseudonym only', async () => {
    // Prepare
    const h = acceptHarness();
    const message = await submitted(await composedMail({}), ['ana@example.org']);
    const erased = suppression('gone@example.org', 'manual', { tenant: 'tenant-a', erasedAs: 'erased:abc' });

    // Act
    await acceptSubmission(h.deps, h.key, message, {
      maxJobBytes: SMTP_MAX_JOB_BYTES,
      suppressedAtRcpt: atRcpt(erased),
    });

    // Assess
    expect(JSON.stringify(h.messages.peek('msg_1'))).not.toContain('gone@example.org');
    expect(h.messages.peek('msg_1')?.recipients[1]?.address).toBe('erased:abc');
  });
});

describe('countRejected', () => {
  it('counts a submission refused before it reached acceptSubmission as rejected, as over HTTPS', async () => {
    // Prepare
    const h = acceptHarness();

    // Act
    await countRejected(
      h.deps,
      h.key,
      problem('invalid_message', 'The message is not valid.', [
        { path: 'headers.Subject', message: 'is required' },
      ]),
      ['ana@example.org'],
    );

    // Assess
    expect(h.usage.stats.get('tenant-a#2025-03-01')).toEqual({ rejected: 1 });
  });
});
