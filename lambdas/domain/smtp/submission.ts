// TEMPORARY stand-in until wt-sub lands (theirs wins at merge).
import { simpleParser } from 'mailparser';
import type { OutgoingMessage } from '../message.ts';
import { validateSendRequest } from '../send/send-request.ts';
export interface Envelope {
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
}
export async function readSubmission(
  raw: Buffer,
  envelope: Envelope,
): Promise<OutgoingMessage & { messageId?: string }> {
  const m = await simpleParser(raw);
  const from = m.from?.value[0]?.address ?? envelope.mailFrom;
  const msg = validateSendRequest({
    from,
    bcc: [...envelope.rcptTo],
    subject: m.subject || '(no subject)',
    text: m.text || ' ',
    ...(m.html ? { html: m.html } : {}),
    attachments: m.attachments.map((a) => ({
      filename: a.filename ?? 'attachment',
      content: a.content.toString('base64'),
      ...(a.contentType ? { contentType: a.contentType } : {}),
    })),
  });
  return { ...msg, ...(m.messageId ? { messageId: m.messageId } : {}) };
}
