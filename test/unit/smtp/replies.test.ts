import { describe, expect, it } from 'vitest';
import { suspendedWords } from '../../../lambdas/domain/keys/authenticate.ts';
import { problem } from '../../../lambdas/domain/problem.ts';
import {
  Replies,
  replyForProblem,
  replyText,
  type SmtpReply,
  SmtpReplyError,
} from '../../../lambdas/domain/smtp/replies.ts';
import { issueApiKey } from '../../support/fakes.ts';
import { bucket, decisionsFor, guardMarkOf } from '../../support/guard.ts';

describe('SMTP replies', () => {
  it('states the size limit in words that fit it, small or large', () => {
    expect(Replies.tooLarge(4_000).text).toBe("The message is larger than 3 KB, Baton's limit for SMTP");
    expect(Replies.tooLarge(500).text).toBe("The message is larger than 500 bytes, Baton's limit for SMTP");
    expect(Replies.tooLarge(1024 * 1024).text).toBe(
      "The message is larger than 1 MB, Baton's limit for SMTP",
    );
    expect(Replies.tooLarge(25 * 1024 * 1024).text).toBe(
      "The message is larger than 25 MB, Baton's limit for SMTP",
    );
  });

  it.each([
    ['unauthorized', 'auth', 535, '5.7.8'],
    ['forbidden', 'auth', 535, '5.7.8'],
    ['forbidden', 'connect', 554, '5.7.1'],
    ['forbidden', 'mail', 553, '5.7.1'],
    ['forbidden', 'data', 550, '5.7.1'],
    ['too_large', 'data', 552, '5.3.4'],
    ['invalid_message', 'data', 554, '5.6.0'],
    ['rate_limited', 'mail', 451, '4.7.1'],
    ['rate_limited', 'data', 452, '4.7.1'],
    ['idempotency_in_progress', 'data', 451, '4.3.0'],
    ['unavailable', 'data', 451, '4.3.0'],
    ['internal', 'data', 451, '4.3.0'],
  ] as const)('answers %s at %s with %i %s', (code, stage, basic, enhanced) => {
    const reply = replyForProblem(problem(code, 'Why.'), stage);

    expect([reply.code, reply.enhanced]).toEqual([basic, enhanced]);
  });

  it('names the first failing field and how many more, and refuses attachments by policy (5.7.1)', () => {
    const reply = replyForProblem(
      problem('invalid_message', 'The message is not valid.', [
        { path: 'attachments[0].filename', message: 'executable attachments are not allowed' },
        { path: 'headers.Subject', message: 'too long' },
      ]),
      'data',
    );

    expect(reply).toEqual({
      code: 554,
      enhanced: '5.7.1',
      text: 'Message refused: attachments[0].filename: executable attachments are not allowed (and 1 more)',
    });
  });

  it('puts the enhanced code first in the error text smtp-server sends, with the basic code as responseCode', () => {
    const error = new SmtpReplyError(Replies.suppressed('ana@example.org', 'hard_bounce'));

    expect(error.responseCode).toBe(550);
    expect(error.message).toMatch(/^5\.1\.1 ana@example\.org is on the suppression list \(hard_bounce: /);
  });
});

describe('SMTP replies in the abuse guard’s words', () => {
  const NOW = new Date('2025-03-01T12:30:00.000Z');
  /** The longest words the guard gives: a probation-lowered threshold, the longest key id. */
  function longestWords(): string {
    const decision = decisionsFor('key', {
      key: [bucket(0, { sends: 40, contentRefusals: 10 }, NOW)],
      now: NOW,
      state: { tenant: { actions: [] }, key: { actions: [], reinstatedAt: '2025-03-01T12:00:00.000Z' } },
    })[0];
    if (!decision) throw new Error('no decision');
    const { key } = issueApiKey({ status: 'suspended', guard: guardMarkOf(decision) });
    return suspendedWords({ ...key, keyId: 'k'.repeat(32) });
  }
  /** The line smtp-server writes: the basic code, a space, the text (enhanced code first), CRLF. */
  const lineOctets = (reply: SmtpReply) => Buffer.byteLength(`${reply.code} ${replyText(reply)}\r\n`);

  it.each([
    ['at AUTH', () => replyForProblem(problem('forbidden', longestWords()), 'auth')],
    ['at MAIL FROM', () => Replies.guardSuspended(longestWords())],
  ])('keeps a suspension’s words whole %s, resume command included, within 512 octets', (_, reply) => {
    const r = reply();
    expect(r.text).toMatch(/--reason "<why>"\.$/);
    expect(lineOctets(r)).toBeLessThanOrEqual(512);
  });

  it('writes the guard’s words in printable ASCII ("10 ×" as "10 x"), clipped to the line', () => {
    const r = Replies.guardThrottled(`volume spike reaches 10 × the baseline\r\n${'a'.repeat(600)}`);
    expect(r.text).toMatch(/^volume spike reaches 10 x the baseline\?\?a+\.\.\.$/);
    expect(lineOctets(r)).toBe(512);
  });
});
