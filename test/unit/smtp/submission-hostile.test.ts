import { describe, expect, it } from 'vitest';
import { decodeWords, readSubmission } from '../../../lambdas/domain/smtp/submission.ts';
import { problemOf } from '../../support/problems.ts';
import { envelope, handWritten } from '../../support/raw-mail.ts';

// Messages written to break the reader: each must be refused in words (554), never throw something
// else, which the server could only answer 451, and the client would send again for days.

describe('readSubmission: hostile headers', () => {
  it('refuses a header of two 200 KB encoded-words as too long, rather than overflowing the stack', async () => {
    // Prepare
    const word = `=?utf-8?b?${Buffer.alloc(200 * 1024, 'a').toString('base64')}?=`;
    const raw = handWritten([
      'From: orders@example.com',
      'To: ana@example.org',
      'Subject: Hi',
      `X-Big: ${word} ${word}`,
    ]);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.code).toBe('invalid_message');
    expect(problem.errors).toContainEqual({
      path: 'headers.X-Big',
      message: expect.stringMatching(/at most 997 characters/),
    });
  });

  it('joins adjacent encoded-words of any length', () => {
    // Prepare
    const half = Buffer.alloc(300_000, 'b').toString('base64');

    // Act
    const decoded = decodeWords(`=?utf-8?b?${half}?= =?utf-8?b?${half}?=`);

    // Assess
    expect(decoded).toBe('b'.repeat(600_000));
  });
});
