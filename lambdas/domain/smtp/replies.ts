import type { Problem } from '../problem.ts';
import { REASON_WORDS, type SuppressionReason } from '../suppression/suppression.ts';

/**
 * An SMTP reply Baton gives: the basic code a legacy client acts on (4xx: keep the message queued
 * and retry; 5xx: give up and tell the sender), the enhanced status code (RFC 3463) and words a
 * person reading the client's log can act on.
 */
export interface SmtpReply {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

/** Where in the session a refusal happens: the same problem reads differently at each step. */
export type SmtpStage = 'connect' | 'auth' | 'mail' | 'rcpt' | 'data';

/** Longest text Baton puts on a reply line (RFC 5321 allows 512 octets with the code and CRLF). */
const MAX_TEXT = 400;
/**
 * The most words a reply line can carry: 512 octets less the basic code, the enhanced code, their
 * spaces and CRLF. The guard's words use it all: they end with how the key is resumed.
 */
const MAX_LINE_TEXT = 500;

export const Replies = {
  queued: (id: string): SmtpReply => ({ code: 250, enhanced: '2.6.0', text: `Ok: queued as ${id}` }),
  recordedHeld: (id: string): SmtpReply => ({
    code: 250,
    enhanced: '2.6.0',
    text: `Ok: recorded as ${id} and held by the abuse guard; it is not sent unless an operator releases it`,
  }),
  /** The abuse guard suspended the key (`words`: authenticate.ts's suspendedWords). */
  guardSuspended: (words: string): SmtpReply => ({
    code: 554,
    enhanced: '5.7.1',
    text: lineOf(words),
  }),
  /** The abuse guard throttles the key for a while (`words`: authenticate.ts's throttledWords). */
  guardThrottled: (words: string): SmtpReply => ({
    code: 451,
    enhanced: '4.7.1',
    text: lineOf(words),
  }),
  recordedSuppressed: (id: string): SmtpReply => ({
    code: 250,
    enhanced: '2.6.0',
    text: `Ok: recorded as ${id}; every recipient is suppressed, so nothing was sent`,
  }),
  sourceRefused: (ip: string): SmtpReply => ({
    code: 554,
    enhanced: '5.7.1',
    text: `No Baton API key allows connections from ${ip}; ask your operator to add this network to a key's --cidrs`,
  }),
  tooManyConnections: (limit: number): SmtpReply => ({
    code: 421,
    enhanced: '4.7.0',
    text: `Too many connections from your address (at most ${limit} at once); retry later`,
  }),
  authThrottled: (seconds: number): SmtpReply => ({
    code: 421,
    enhanced: '4.7.0',
    text: `Too many failed logins from your address; try again in ${seconds} s`,
  }),
  authRequired: (tls: boolean): SmtpReply => ({
    code: 530,
    enhanced: '5.7.0',
    text: tls
      ? 'Authentication required: AUTH with your Baton API key as the password'
      : 'Authentication required: STARTTLS, then AUTH with your Baton API key as the password',
  }),
  authOk: (): SmtpReply => ({ code: 235, enhanced: '2.7.0', text: 'Authentication successful' }),
  senderSyntax: (why: string): SmtpReply => ({
    code: 553,
    enhanced: '5.1.7',
    text: `The sender address is not valid: ${why}`,
  }),
  nullSender: (): SmtpReply => ({
    code: 553,
    enhanced: '5.1.7',
    text: 'A sender address is required: Baton does not relay bounces (MAIL FROM:<>)',
  }),
  recipientSyntax: (why: string): SmtpReply => ({
    code: 553,
    enhanced: '5.1.3',
    text: `The recipient address is not valid: ${why}`,
  }),
  utf8Mailbox: (): SmtpReply => ({
    code: 553,
    enhanced: '5.6.7',
    text: 'SES cannot send to or from an address with non-ASCII characters before the @; use an ASCII address',
  }),
  tooManyRecipients: (max: number): SmtpReply => ({
    code: 452,
    enhanced: '4.5.3',
    text: `Too many recipients: SES takes at most ${max} per message; send the others in another message`,
  }),
  suppressed: (address: string, reason: SuppressionReason): SmtpReply => ({
    code: 550,
    // A bounce means the mailbox is bad; every other reason is a policy of this relay's.
    enhanced: reason === 'hard_bounce' ? '5.1.1' : '5.7.1',
    text: `${address} is on the suppression list (${reason}: ${REASON_WORDS[reason]}); not sent to it, the other recipients are still accepted`,
  }),
  noRecipients: (): SmtpReply => ({
    code: 554,
    enhanced: '5.5.1',
    text: 'No valid recipients: every RCPT TO was refused',
  }),
  tooLarge: (maxBytes: number): SmtpReply => ({
    code: 552,
    enhanced: '5.3.4',
    text: `The message is larger than ${megabytes(maxBytes)}, Baton's limit for SMTP`,
  }),
  busy: (): SmtpReply => ({
    code: 451,
    enhanced: '4.3.1',
    text: 'Baton is busy with other large messages just now; this one was not accepted, retry in a minute',
  }),
  tooSlow: (timeoutMs: number): SmtpReply => ({
    code: 451,
    enhanced: '4.3.1',
    text: `The message took longer than ${Math.round(timeoutMs / 60_000)} min to arrive; it was not accepted, retry`,
  }),
  shuttingDown: (): SmtpReply => ({
    code: 421,
    enhanced: '4.3.2',
    text: 'Baton is restarting; retry on a new connection',
  }),
  unavailable: (): SmtpReply => ({
    code: 451,
    enhanced: '4.3.0',
    text: 'Baton could not record the message just now (a table or queue is unavailable); it was not accepted, retry in a minute',
  }),
} as const;

/** An address parseAddrSpec refused: a non-ASCII local part (SES cannot take it), or its syntax. */
export function addressRefusal(why: string, syntax: (why: string) => SmtpReply): SmtpReply {
  return /7-bit ASCII/.test(why) ? Replies.utf8Mailbox() : syntax(why);
}

/**
 * A problem the shared domain raised (the same one HTTPS answers as RFC 9457 JSON), as the SMTP
 * reply for the step it happened at.
 */
export function replyForProblem(p: Problem, stage: SmtpStage): SmtpReply {
  const words = withFieldErrors(p);
  switch (p.code) {
    case 'unauthorized':
      return { code: 535, enhanced: '5.7.8', text: `Authentication failed: ${p.detail}` };
    case 'forbidden':
      if (stage === 'auth')
        return { code: 535, enhanced: '5.7.8', text: lineOf(`Authentication refused: ${p.detail}`) };
      if (stage === 'connect') return { code: 554, enhanced: '5.7.1', text: p.detail };
      return { code: stage === 'data' ? 550 : 553, enhanced: '5.7.1', text: p.detail };
    case 'too_large':
      return { code: 552, enhanced: '5.3.4', text: p.detail };
    case 'invalid_message':
    case 'invalid_request':
    case 'bad_request':
      return {
        code: 554,
        enhanced: contentRefusal(p) ? '5.7.1' : '5.6.0',
        text: `Message refused: ${words}`,
      };
    case 'rate_limited':
      // At DATA it is the daily quota (the per-second rate is taken at MAIL FROM).
      return stage === 'data'
        ? { code: 452, enhanced: '4.7.1', text: `${p.detail} Retry after 00:00 UTC` }
        : { code: 451, enhanced: '4.7.1', text: `${p.detail} Retry in a few seconds` };
    case 'idempotency_in_progress':
      return {
        code: 451,
        enhanced: '4.3.0',
        text: 'This message is being recorded by another session; retry shortly',
      };
    default:
      return Replies.unavailable();
  }
}

/** An executable or disguised attachment, or HTML Baton will not relay: refused by policy. */
function contentRefusal(p: Problem): boolean {
  return (p.errors ?? []).some((e) => e.path.startsWith('attachments') || e.path === 'html');
}

function withFieldErrors(p: Problem): string {
  const errors = p.errors ?? [];
  if (errors.length === 0) return p.detail;
  const [first] = errors;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return clip(`${first?.path}: ${first?.message}${more}`);
}

/**
 * Words from elsewhere (the guard's reasons, which say "10 × the key's hourly baseline") as one
 * reply line: printable ASCII only, so they never break it, and within the line's length.
 */
function lineOf(words: string): string {
  const text = words.replace(/\u00d7/g, 'x').replace(/[^\x20-\x7e]/g, '?');
  return text.length <= MAX_LINE_TEXT ? text : `${text.slice(0, MAX_LINE_TEXT - 3)}...`;
}

function clip(text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT - 1)}…`;
}

function megabytes(bytes: number): string {
  // A small limit (a test's, an operator's) would read "0 MB".
  if (bytes < 1024 * 1024) return `${Math.floor(bytes / 1024) || bytes} ${bytes < 1024 ? 'bytes' : 'KB'}`;
  return `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`;
}

/** The error smtp-server's callbacks take: the reply code, and the enhanced code in the text. */
export class SmtpReplyError extends Error {
  override readonly name = 'SmtpReplyError';
  readonly responseCode: number;

  constructor(reply: SmtpReply) {
    super(`${reply.enhanced} ${reply.text}`);
    this.responseCode = reply.code;
  }
}

/** The one-line form a reply takes after its code: `4.3.0 words`. */
export function replyText(reply: SmtpReply): string {
  return `${reply.enhanced} ${reply.text}`;
}
