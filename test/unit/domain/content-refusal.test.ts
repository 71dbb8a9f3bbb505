/**
 * Which refusals the abuse guard counts as content refusals: each content rule's real refusal,
 * through the real validation (over HTTPS and SMTP), so a reworded rule fails here instead of
 * silently dropping out of the guard's signal; and the refusals that only say a request was
 * malformed, which never count.
 */
import { describe, expect, it } from 'vitest';
import { isContentRefusal } from '../../../lambdas/domain/send/content-refusal.ts';
import { validateSendRequest } from '../../../lambdas/domain/send/send-request.ts';
import { applySenderPolicy } from '../../../lambdas/domain/send/sender-policy.ts';
import { readSubmission } from '../../../lambdas/domain/smtp/submission.ts';
import { sendBody } from '../../support/builders.ts';
import { issueApiKey } from '../../support/fakes.ts';
import { problemOf, problemOfSync } from '../../support/problems.ts';
import { composedMail, envelope } from '../../support/raw-mail.ts';

const refusalOf = (overrides: Record<string, unknown>) =>
  problemOfSync(() => validateSendRequest(sendBody(overrides)));
const attachment = (overrides: Record<string, unknown>) => ({
  attachments: [{ filename: 'report.pdf', content: 'JVBERi0x', ...overrides }],
});

describe('isContentRefusal', () => {
  it.each([
    ['an executable attachment by its name', attachment({ filename: 'invoice.exe' })],
    [
      'an executable attachment by its declared type',
      attachment({ contentType: 'application/x-msdownload' }),
    ],
    ['an executable attachment by its content (MZ)', attachment({ content: 'TVqQAAMAAAAEAAAA' })],
    ['a filename disguised by a right-to-left override', attachment({ filename: 'invoice\u202Efdp.zip' })],
    ['a line break in the subject', { subject: 'Hi\r\nBcc: all@example.net' }],
    ['a line break in a header value', { headers: { 'X-Campaign': 'a\nBcc: all@example.net' } }],
    ['a line break in an address', { to: ['ana@example.org\nBcc: all@example.net'] }],
    ['a reserved header', { headers: { 'DKIM-Signature': 'v=1' } }],
  ])('counts %s', (_, overrides) => {
    expect(isContentRefusal(refusalOf(overrides))).toBe(true);
  });

  it.each([
    ['a missing subject', { subject: undefined }],
    ['a field of the wrong type', { to: 42 }],
    ['an unknown field', { colour: 'blue' }],
    ['an address that is not one', { to: ['not an address'] }],
    ['too many recipients', { to: Array.from({ length: 51 }, (_, i) => `r${i}@example.org`) }],
  ])('does not count %s', (_, overrides) => {
    expect(isContentRefusal(refusalOf(overrides))).toBe(false);
  });

  it('does not count a From outside the key’s domains (a configuration mistake, refused 403)', () => {
    const { key } = issueApiKey();
    const refusal = problemOfSync(() =>
      applySenderPolicy(key, validateSendRequest(sendBody({ from: 'someone@other.org' }))),
    );
    expect(isContentRefusal(refusal)).toBe(false);
  });

  it('counts an executable attached to a message that arrived over SMTP', async () => {
    const raw = await composedMail({ attachments: [{ filename: 'setup.exe', content: Buffer.from('MZ') }] });
    const refusal = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));
    expect(isContentRefusal(refusal)).toBe(true);
  });
});
