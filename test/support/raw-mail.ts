/**
 * Raw RFC 5322 messages as an SMTP client hands them over: built with nodemailer's MailComposer
 * (what nodemailer's SMTP transport sends) or written out by hand, header by header, for what a
 * composer would never write (another charset, 8-bit bytes, repeated or hostile headers).
 */
import { createHash } from 'node:crypto';
import { type ParsedMail, simpleParser } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import type Mail from 'nodemailer/lib/mailer';
import { composeMime } from '../../lambdas/domain/delivery/mime.ts';
import type { OutgoingMessage } from '../../lambdas/domain/message.ts';
import type { Envelope } from '../../lambdas/domain/smtp/submission.ts';

/** A message nodemailer's SMTP transport would send for `options` (LF line ends kept CRLF). */
export async function composedMail(options: Mail.Options): Promise<Buffer> {
  return new MailComposer({
    from: 'Shop <orders@example.com>',
    to: 'ana@example.org',
    subject: 'Your receipt',
    text: 'Thanks for your order.',
    newline: 'win',
    ...options,
  })
    .compile()
    .build();
}

/**
 * A message written by hand: header lines (each `Name: value`, folded lines included), then the
 * body. Strings are UTF-8; a Buffer goes in as it is (8-bit bytes of another charset).
 */
export function handWritten(headers: readonly string[], body: string | Buffer = 'Hello.\r\n'): Buffer {
  return Buffer.concat([
    Buffer.from(`${headers.join('\r\n')}\r\n\r\n`, 'utf8'),
    typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  ]);
}

export function envelope(rcptTo: readonly string[], mailFrom = 'orders@example.com'): Envelope {
  return { mailFrom, rcptTo };
}

/** What a recipient reads: the message Baton would send, composed and parsed back. */
export async function deliveredAs(message: OutgoingMessage): Promise<{ raw: Buffer; parsed: ParsedMail }> {
  const raw = await composeMime(message, { id: 'msg_01SMTP', date: new Date('2025-03-01T12:00:00.000Z') });
  return { raw, parsed: await simpleParser(raw, { keepCidLinks: true, skipHtmlToText: true }) };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
