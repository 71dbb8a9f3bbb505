/**
 * Messages with attachments, HTML and inline images as an application sends them with
 * nodemailer's SMTP transport (STARTTLS required, the certificate verified, AUTH PLAIN), and what
 * the queued job carries.
 */
import '../support/quiet-powertools.ts';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDkim } from '../../lambdas/domain/delivery/dkim.ts';
import { composeMime } from '../../lambdas/domain/delivery/mime.ts';
import type { SendJob } from '../../lambdas/domain/message.ts';
import { headerValue } from '../support/mime.ts';
import { nodemailerTransport, queuedId, type SmtpRig, startSmtpRig } from '../support/smtp.ts';

let rig: SmtpRig;
beforeAll(async () => {
  rig = await startSmtpRig({ maxBytes: 16 * 1024 * 1024, maxJobBytes: 24 * 1024 * 1024 });
});
afterAll(async () => {
  await rig?.close();
});

/** Sends `mail` as an application does, over a fresh nodemailer transport that is closed after. */
async function send(mail: Parameters<ReturnType<typeof nodemailerTransport>['sendMail']>[0]) {
  const transport = nodemailerTransport(rig, rig.token);
  try {
    return await transport.sendMail(mail);
  } finally {
    transport.close();
  }
}

describe('nodemailer SMTP transport', () => {
  it('gets a message with binary attachments queued, each attachment byte-identical', async () => {
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(200_000)]);
    const csv = Buffer.from('id;name\r\n1;Zoë\r\n', 'utf8');
    const info = await send({
      from: 'app@example.com',
      to: 'files@example.org',
      subject: 'Your invoice',
      text: 'Attached.',
      attachments: [
        { filename: 'invoice.pdf', content: pdf, contentType: 'application/pdf' },
        { filename: 'rows.csv', content: csv, contentType: 'text/csv' },
      ],
    });
    expect(info.response).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
    const attachments = rig.jobFor(queuedId(info.response))?.message.attachments ?? [];
    expect(attachments.map((a) => a.filename)).toEqual(['invoice.pdf', 'rows.csv']);
    expect(Buffer.from(attachments[0]?.content ?? '', 'base64').equals(pdf)).toBe(true);
    expect(Buffer.from(attachments[1]?.content ?? '', 'base64').equals(csv)).toBe(true);
  });

  // The stand-in acceptSubmission ignores maxJobBytes and refuses above the API's 6.5 MB.
  it('takes a 10 MB message and keeps its attachment byte-identical', async () => {
    const big = randomBytes(10 * 1024 * 1024);
    const info = await send({
      from: 'app@example.com',
      to: 'big@example.org',
      subject: 'Ten megabytes',
      text: 'Attached.',
      attachments: [{ filename: 'dump.bin', content: big, contentType: 'application/octet-stream' }],
    });
    expect(info.response).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
    const [attachment] = rig.jobFor(queuedId(info.response))?.message.attachments ?? [];
    expect(Buffer.from(attachment?.content ?? '', 'base64').equals(big)).toBe(true);
  });

  it('composes and DKIM-signs a message that came over SMTP so that a verifier passes it', async () => {
    const info = await send({
      from: 'app@example.com',
      to: 'signed@example.org',
      subject: 'Grüße, signed ✓',
      text: 'Zoë says hi.',
      html: '<p>Zoë says <b>hi</b>.</p>',
      attachments: [{ filename: 'notes.txt', content: 'über\n' }],
    });
    const job = rig.jobFor(queuedId(info.response));
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const raw = await composeMime(job?.message as SendJob['message'], {
      id: job?.id ?? '',
      date: new Date(),
    });
    const signed = await signDkim(
      raw,
      { selector: 'smtp', privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
      'example.com',
    );
    const published = `v=DKIM1; k=rsa; p=${pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
    const { results } = await dkimVerify(signed, {
      resolver: async (name: string) => {
        if (name === 'smtp._domainkey.example.com') return [[published]];
        throw Object.assign(new Error(`no record for ${name}`), { code: 'ENOTFOUND' });
      },
    });
    expect(results.map((r) => r.status.result)).toEqual(['pass']);
  });

  it('sanitises HTML as the API does and keeps the text alternative', async () => {
    const info = await send({
      from: 'app@example.com',
      to: 'html@example.org',
      subject: 'Newsletter',
      text: 'Plain words.',
      html: '<p>Hello <b>there</b></p><script>alert(1)</script>',
    });
    const message = rig.jobFor(queuedId(info.response))?.message;
    expect(message?.text?.trim()).toBe('Plain words.');
    expect(message?.html).toContain('<b>there</b>');
    expect(message?.html).not.toContain('<script');
  });

  it('refuses an executable attachment with 554 5.7.1 and words, and records nothing', async () => {
    const before = rig.records().length;
    const refused = await send({
      from: 'app@example.com',
      to: 'exe@example.org',
      subject: 'Installer',
      text: 'Run it.',
      attachments: [
        {
          filename: 'setup.exe',
          content: Buffer.from('MZ\x90\x00'),
          contentType: 'application/octet-stream',
        },
      ],
    }).then(
      () => undefined,
      (error: { responseCode?: number; response?: string }) => error,
    );
    expect(refused?.responseCode).toBe(554);
    expect(refused?.response).toMatch(/^554 5\.7\.1 Message refused: attachments/);
    expect(rig.records()).toHaveLength(before);
  });

  it('keeps Message-ID, Date, custom X- headers and In-Reply-To/References the client set', async () => {
    const info = await send({
      from: 'app@example.com',
      to: 'headers@example.org',
      subject: 'Re: order 42',
      text: 'Thread reply.',
      messageId: '<order-42-reply@app.example.com>',
      date: new Date('2026-01-02T03:04:05Z'),
      inReplyTo: '<order-42@app.example.com>',
      references: ['<order-41@app.example.com>', '<order-42@app.example.com>'],
      headers: { 'X-Order-Id': '42', 'X-Campaign': 'spring' },
    });
    const job = rig.jobFor(queuedId(info.response));
    const mime = await composeMime(job?.message as SendJob['message'], { id: 'msg_x', date: new Date() });
    expect(headerValue(mime, 'Message-ID')).toBe('<order-42-reply@app.example.com>');
    expect(new Date(headerValue(mime, 'Date')).toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(headerValue(mime, 'In-Reply-To')).toBe('<order-42@app.example.com>');
    expect(headerValue(mime, 'References')).toBe('<order-41@app.example.com> <order-42@app.example.com>');
    expect(headerValue(mime, 'X-Order-Id')).toBe('42');
    expect(headerValue(mime, 'X-Campaign')).toBe('spring');
  });

  it('keeps an inline image (cid:) inline, with its Content-ID, beside the text alternative', async () => {
    const png = randomBytes(2_000);
    const info = await send({
      from: 'app@example.com',
      to: 'inline@example.org',
      subject: 'Logo',
      text: 'See the logo.',
      html: '<p>Logo: <img src="cid:logo@app"></p>',
      attachments: [{ filename: 'logo.png', content: png, contentType: 'image/png', cid: 'logo@app' }],
    });
    const message = rig.jobFor(queuedId(info.response))?.message;
    expect(message?.text?.trim()).toBe('See the logo.');
    expect(message?.html).toContain('cid:logo@app');
    const [logo] = message?.attachments ?? [];
    expect(logo?.disposition).toBe('inline');
    expect(logo?.contentId).toBe('logo@app');
    expect(Buffer.from(logo?.content ?? '', 'base64').equals(png)).toBe(true);
  });
});
