import MailComposer from 'nodemailer/lib/mail-composer';
import { encodeWord } from 'nodemailer/lib/mime-funcs';
import { domainOf } from '../address.ts';
import { headerUri, type OutgoingMessage } from '../message.ts';
import { formatMailbox } from '../send/sender-policy.ts';

export interface ComposeOptions {
  /** Baton's message id; the Message-ID is built from it on the sending domain (unless the message has its own). */
  readonly id: string;
  /** The Date header, unless the message has its own. */
  readonly date: Date;
}

/**
 * Builds the raw RFC 5322 message with nodemailer's MailComposer, which takes care of RFC 2047
 * encoded-words for UTF-8 headers, line lengths (≤ 998 octets, folded and transfer-encoded),
 * multipart/alternative for text + HTML and multipart/related for inline `cid:` parts.
 * File and URL access are disabled: attachment content only ever comes from the request.
 */
export async function composeMime(message: OutgoingMessage, options: ComposeOptions): Promise<Buffer> {
  const headers: Record<string, string> = Object.fromEntries(
    Object.entries(message.headers).map(([name, value]) => [name, literalText(value)]),
  );
  if (message.listUnsubscribe) {
    // RFC 8058 one-click: mailbox providers POST to the URL; both headers are needed. Encoded
    // again here, so a job queued before validation encoded it cannot carry a second URI.
    headers['List-Unsubscribe'] = `<${headerUri(message.listUnsubscribe) ?? ''}>`;
    headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click';
  }
  if (message.originalFrom) headers['X-Original-From'] = formatMailbox(message.originalFrom);

  const composer = new MailComposer({
    from: message.from,
    // Over SMTP the headers show what the client wrote; the recipients are the envelope's (send.ts).
    to: [...(message.shownTo ?? message.to)],
    cc: [...(message.shownCc ?? message.cc)],
    // Bcc never goes into the headers; SES gets those recipients in the envelope only.
    replyTo: [...message.replyTo],
    subject: literalText(message.subject),
    ...(message.text !== undefined ? { text: lineFeeds(message.text) } : {}),
    ...(message.html !== undefined ? { html: lineFeeds(message.html) } : {}),
    attachments: message.attachments.map((a) => ({
      filename: a.filename,
      content: a.content,
      encoding: 'base64',
      contentDisposition: a.disposition,
      ...(a.contentType
        ? { contentType: a.charset ? `${a.contentType}; charset=${a.charset}` : a.contentType }
        : {}),
      ...(a.contentId ? { cid: a.contentId } : {}),
    })),
    headers,
    // A client's own Message-ID and Date (SMTP) were checked when the message was read.
    messageId: message.messageId ?? `<${options.id}@${domainOf(message.from.address)}>`,
    date: message.date ?? options.date,
    newline: 'win',
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return composer.compile().build();
}

/**
 * `newline: 'win'` turns LF into CRLF but leaves a bare CR alone, which RFC 5322 forbids and
 * receivers read differently; so every line break becomes LF first.
 */
function lineFeeds(body: string): string {
  return body.replace(/\r\n?/g, '\n');
}

/**
 * Unstructured header text that a reader decodes back to exactly `text`. The composer passes a
 * valid encoded-word through as it is (it takes it for one already encoded), so a reader would
 * decode `=?utf-8?B?ZXZpbA0KWC1JbmplY3RlZDogeWVz?=` into a line break and a header nobody
 * checked; text holding `=?` is encoded whole instead, so `=?…?=` reads as those characters.
 */
function literalText(text: string): string {
  return text.includes('=?') ? encodeWord(text, 'Q', 52) : text;
}
