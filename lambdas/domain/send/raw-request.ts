/**
 * The raw form of `POST /v1/messages` (and of each item of `/v1/messages/batch`), issue 15: a
 * complete RFC 5322 message, base64, as nodemailer (or any MIME library) built it, plus the
 * envelope. It is read by the SMTP path's `readSubmission` (lambdas/domain/smtp/submission.ts),
 * so a raw message meets every rule a JSON one and an SMTP one meet (addresses, sender policy,
 * the HTML sanitizer, attachments, headers, tags, List-Unsubscribe), and Baton's controls travel
 * as they do over SMTP: the `X-Baton-Stream` and `X-Baton-Tags` headers.
 *
 * `{"raw": "<base64 MIME>", "envelope": {"from": "bounce@example.com", "to": ["ana@example.org"]}}`
 * - `envelope.to` are the recipients, as RCPT TO over SMTP (Bcc lives only here). Without an
 *   envelope, the recipients are the message's To, Cc and Bcc headers (a Bcc header is never sent).
 * - `envelope.from` is checked against the key's sender domains as MAIL FROM is; the From header
 *   is what is sent.
 */
import * as z from 'zod/mini';
import { BASE64_TEXT_PATTERN, MAX_RECIPIENTS } from './send-request.ts';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export const RAW_SEND_REQUEST = z.strictObject({
  raw: z.string().check(
    z.minLength(1, 'raw must not be empty'),
    z.refine((v: string) => {
      const compact = v.replace(/\s+/g, '');
      return compact.length % 4 === 0 && BASE64.test(compact);
    }, 'raw must be the message in base64'),
    z.meta({ pattern: BASE64_TEXT_PATTERN }),
  ),
  envelope: z.optional(
    z.strictObject({
      from: z.optional(z.string().check(z.maxLength(998, 'envelope.from must be at most 998 characters'))),
      to: z
        .array(z.string().check(z.maxLength(998, 'a recipient must be at most 998 characters')))
        .check(
          z.minLength(1, 'envelope.to needs at least one recipient'),
          z.maxLength(MAX_RECIPIENTS, `at most ${MAX_RECIPIENTS} recipients`),
        ),
    }),
  ),
});

export type RawSendRequest = z.infer<typeof RAW_SEND_REQUEST>;

/** A body in the raw form: an object with a `raw` field (anything else is the JSON form). */
export function isRawSendRequest(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && 'raw' in body;
}
