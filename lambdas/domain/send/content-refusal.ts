import type { Problem } from '../problem.ts';

/**
 * The abuse guard's "content refusals" signal (issue 13) counts the messages refused by Baton's
 * content checks: what a stolen key sending malware or forging headers runs into, as opposed to a
 * client's mistake in the shape of its request (malformed JSON, a missing field, a wrong type, an
 * address outside the key's domains), which says nothing about abuse.
 *
 * The rules are recognised by their words (the field errors' messages), which reach the 422 and
 * the SMTP reply unchanged whatever the path is called there; test/unit/domain/content-refusal
 * puts each rule's real refusal through this, so a reworded rule fails a test instead of silently
 * dropping out of the signal.
 */
const CONTENT_RULES: readonly string[] = [
  // content-safety.ts: an executable or script attachment, by name, declared type or content.
  'executable or script attachments are not allowed',
  // Header injection: CR, LF or NUL in the subject, a header value, a filename, listUnsubscribe.
  'must not contain CR, LF or NUL',
  // Header injection through an address or display name (address.ts).
  'must not contain control characters or line breaks',
  // A filename disguised by a right-to-left override (`invoice\u202Efdp.exe`).
  'must not contain bidi override or isolate characters',
  // Setting a header Baton writes or that routes mail (From, Bcc, DKIM-Signature, Return-Path...).
  'is reserved and cannot be set through headers',
];

/** Whether a refusal came from the content checks (at least one of its field errors did). */
export function isContentRefusal(p: Problem): boolean {
  if (p.code !== 'invalid_message') return false;
  return (p.errors ?? []).some((e) => CONTENT_RULES.some((rule) => e.message.includes(rule)));
}
