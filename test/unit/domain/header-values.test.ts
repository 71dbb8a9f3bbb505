import fc from 'fast-check';
import addressparser from 'nodemailer/lib/addressparser';
import { describe, expect, it } from 'vitest';
import { composeMime } from '../../../lambdas/domain/delivery/mime.ts';
import { validateSendRequest } from '../../../lambdas/domain/send/send-request.ts';
import { applySenderPolicy } from '../../../lambdas/domain/send/sender-policy.ts';
import { sendBody } from '../../support/builders.ts';
import { issueApiKey } from '../../support/fakes.ts';
import { decodeWords, headerBlock, headerValue } from '../../support/mime.ts';
import { problemOfSync } from '../../support/problems.ts';

// Issue 11 part 10: every client value that reaches a header (List-Unsubscribe, display names in
// From, To, Cc, Reply-To and X-Original-From, subject, custom headers, attachment names, tags)
// is written so that a reader's parser finds exactly what the client gave, one value, and never a
// second URI or mailbox; what cannot be written so is refused with a 422.

const OPTIONS = { id: 'msg_01TEST', date: new Date('2025-03-01T12:00:00.000Z') };

async function composed(body: Record<string, unknown>): Promise<string> {
  const raw = await composeMime(validateSendRequest(sendBody(body)), OPTIONS);
  return raw.toString('latin1');
}

/** The `<…>` items of a List-Unsubscribe value, split as RFC 2369 says (commas between brackets). */
function uris(value: string): string[] {
  return [...value.matchAll(/<([^>]*)>/g)].map((m) => m[1] ?? '');
}

describe('List-Unsubscribe', () => {
  it.each([
    [
      'a second URI smuggled in with ">, <"',
      'https://x.example/u>, <mailto:harvest@evil.example',
      'https://x.example/u%3E%2C%20%3Cmailto:harvest@evil.example',
    ],
    ['spaces and commas', 'https://x.example/a b,c?d=1,2', 'https://x.example/a%20b%2Cc?d=1%2C2'],
    ['quotes and braces', 'https://x.example/"q"{x}|y', 'https://x.example/%22q%22%7Bx%7D%7Cy'],
    [
      'a plain URL, unchanged',
      'https://example.com/unsub?u=1&t=a-b_c.d~e',
      'https://example.com/unsub?u=1&t=a-b_c.d~e',
    ],
  ])('writes one URI for %s', async (_what, url, expected) => {
    // Prepare / Act
    const raw = await composed({ stream: 'broadcast', listUnsubscribe: url });

    // Assess
    const value = headerValue(raw, 'List-Unsubscribe');
    expect(value).toBe(`<${expected}>`);
    expect(uris(value)).toEqual([expected]);
  });

  it('keeps the encoded URL in the queued message, so the sender writes what was checked', () => {
    // Prepare / Act
    const message = validateSendRequest(
      sendBody({ stream: 'broadcast', listUnsubscribe: 'https://x.example/u>, <mailto:h@evil.example' }),
    );

    // Assess
    expect(message.listUnsubscribe).toBe('https://x.example/u%3E%2C%20%3Cmailto:h@evil.example');
  });

  it('encodes a URL queued before the fix when it composes the message', async () => {
    // Prepare
    const message = {
      ...validateSendRequest(sendBody({ stream: 'broadcast', listUnsubscribe: 'https://x.example/u' })),
      listUnsubscribe: 'https://x.example/u>, <mailto:harvest@evil.example',
    };

    // Act
    const raw = (await composeMime(message, OPTIONS)).toString('latin1');

    // Assess
    expect(uris(headerValue(raw, 'List-Unsubscribe'))).toEqual([
      'https://x.example/u%3E%2C%20%3Cmailto:harvest@evil.example',
    ]);
  });
});

describe('display names', () => {
  it.each([
    [
      'from',
      'From',
      '"Shop, <b@evil.example>" <orders@example.com>',
      'Shop, <b@evil.example>',
      'orders@example.com',
    ],
    ['to', 'To', ['"Ann, <x@evil.example>" <ann@example.org>'], 'Ann, <x@evil.example>', 'ann@example.org'],
    ['cc', 'Cc', ['"Zoë Lima-Smith Jr." <c@example.org>'], 'Zoë Lima-Smith Jr.', 'c@example.org'],
    [
      'replyTo',
      'Reply-To',
      ['"R>; <s@evil.example" <r@example.com>'],
      'R>; <s@evil.example',
      'r@example.com',
    ],
  ])(
    'writes a %s name with brackets and commas as one mailbox',
    async (field, header, value, name, address) => {
      // Prepare / Act
      const raw = await composed({ [field]: value });

      // Assess
      const parsed = addressparser(decodeWords(headerValue(raw, header)));
      expect(parsed).toEqual([{ name, address }]);
    },
  );

  it('writes a rewritten sender’s name with brackets and commas as one mailbox in X-Original-From', async () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const message = applySenderPolicy(
      key,
      validateSendRequest(sendBody({ from: '"Ana, Lima <ana@legacy.example>" <ana@legacy.example>' })),
    );

    // Act
    const raw = (await composeMime(message, OPTIONS)).toString('latin1');

    // Assess
    expect(addressparser(decodeWords(headerValue(raw, 'X-Original-From')))).toEqual([
      { name: 'Ana, Lima <ana@legacy.example>', address: 'ana@legacy.example' },
    ]);
    expect(addressparser(headerValue(raw, 'From'))).toEqual([
      { name: 'Ana, Lima via Baton', address: 'relay@example.com' },
    ]);
  });

  it.each([
    ['a second address', '"Zé <u@evil.example>" <c@example.org>'],
    ['a comma', '"Société Générale, SA" <c@example.org>'],
    ['an unbalanced bracket', '"Zoë (Ops" <c@example.org>'],
  ])('refuses a non-ASCII name with %s, which a reader that decodes before parsing splits', (_what, cc) => {
    // Prepare / Act
    const p = problemOfSync(() => validateSendRequest(sendBody({ cc: [cc] })));

    // Assess
    expect(p.errors).toEqual([
      {
        path: 'cc[0]',
        message:
          'invalid address: display name with non-ASCII characters must not contain ( ) < > [ ] @ , ; : \\ or "',
      },
    ]);
  });

  it.each([
    ['from', '"=?utf-8?B?c3VwcG9ydEBwYXlwYWwuY29t?=" <noreply@example.com>', 'from'],
    ['to', ['Bob =?utf-8?Q?=3Cevil=40evil.example=3E?= <bob@example.org>'], 'to[0]'],
    ['replyTo', ['"=?ISO-8859-1?q?a?=" <r@example.com>'], 'replyTo[0]'],
  ])(
    'refuses an RFC 2047 encoded-word in a %s name, which a reader would decode into other text',
    (field, value, path) => {
      // Prepare / Act
      const p = problemOfSync(() => validateSendRequest(sendBody({ [field]: value })));

      // Assess
      expect(p.status).toBe(422);
      expect(p.errors?.map((e) => e.path)).toEqual([path]);
      expect(p.errors?.[0]?.message).toMatch(/encoded-word/);
    },
  );
});

describe('other values in headers', () => {
  it('writes every control character in a subject or custom header encoded, never raw', async () => {
    // Prepare / Act
    const raw = await composed({
      subject: 'a\u000Bb\u001Bc\u0085d\u00A0e',
      headers: { 'X-Campaign': 'v\u000Bw\u0085x', 'X-Other': 'tab\there' },
    });

    // Assess
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
    expect(headerBlock(raw)).not.toMatch(/[\u0000-\u0008\u000B-\u000C\u000E-\u001F\u007F-\u00FF]/);
  });

  it.each([
    ['one that decodes to a line break and a header', '=?utf-8?B?ZXZpbA0KWC1JbmplY3RlZDogeWVz?='],
    ['one among plain words', 'Your order =?utf-8?q?has_shipped?= today'],
    ['one next to Unicode', 'Zé =?UTF-8?Q?=E2=80=AEtxt.exe?='],
  ])(
    'writes a subject and a custom header holding an encoded-word (%s) so a reader decodes them to the text given',
    async (_what, text) => {
      // Prepare / Act
      const raw = await composed({ subject: text, headers: { 'X-Note': text } });

      // Assess
      expect(decodeWords(headerValue(raw, 'Subject'))).toBe(text);
      expect(decodeWords(headerValue(raw, 'X-Note'))).toBe(text);
    },
  );

  it.each([
    ['a quote and a parameter', 'report.pdf"; name="other.pdf'],
    ['a semicolon and a comma', 'a;b,c.pdf'],
  ])('writes an attachment name with %s as one file name', async (_what, filename) => {
    // Prepare / Act
    const raw = await composed({ attachments: [{ filename, content: 'aGVsbG8=' }] });

    // Assess
    const disposition = /Content-Disposition: attachment;((?:\r\n )?[^\r]*)+/.exec(raw)?.[0] ?? '';
    const params = [...disposition.replace(/\r\n /g, ' ').matchAll(/;\s*([a-z*0-9]+)=/gi)].map((m) => m[1]);
    expect(params.every((p) => p?.startsWith('filename'))).toBe(true);
  });

  it.each([
    ['a right-to-left override', 'invoice\u202Efdp.zip'],
    ['a bidi isolate', 'a\u2066b.pdf'],
    ['a left-to-right override', 'a\u202Db.pdf'],
  ])('refuses an attachment name with %s, which shows another name than it has', (_what, filename) => {
    // Prepare / Act
    const p = problemOfSync(() =>
      validateSendRequest(sendBody({ attachments: [{ filename, content: 'aGVsbG8=' }] })),
    );

    // Assess
    expect(p.errors?.map((e) => e.path)).toEqual(['attachments[0].filename']);
  });

  it.each([
    'Mail-Reply-To',
    'mail-followup-to',
    'Disposition-Notification-To',
    'Return-Receipt-To',
    'Errors-To',
  ])(
    'refuses the custom header %s, which sends replies, receipts or bounces to an address the Reply-To checks never saw',
    (name) => {
      // Prepare / Act
      const p = problemOfSync(() =>
        validateSendRequest(sendBody({ headers: { [name]: '"support@paypal.com" <x@evil.example>' } })),
      );

      // Assess
      expect(p.errors).toEqual([
        { path: `headers.${name}`, message: `header ${name} is reserved and cannot be set through headers` },
      ]);
    },
  );

  it.each([
    ['a comma', 'a,b'],
    ['an equals sign', 'a=b'],
    ['a semicolon', 'a;b'],
    ['a space', 'a b'],
  ])('refuses a tag value with %s (SES tags are name=value lists)', (_what, value) => {
    // Prepare / Act
    const p = problemOfSync(() => validateSendRequest(sendBody({ tags: { campaign: value } })));

    // Assess
    expect(p.errors?.map((e) => e.path)).toEqual(['tags.campaign']);
  });
});

describe('any client text in an address header', () => {
  it('is refused, or comes back from the header as exactly the mailbox given', async () => {
    // Prepare
    const text = fc.string({
      unit: fc.constantFrom('a', ' ', ',', '<', '>', '"', ';', ':', '@', '=', '?', '\\', '(', ')', 'é', '\t'),
    });

    // Act / Assess
    await fc.assert(
      fc.asyncProperty(text, async (name) => {
        let message: ReturnType<typeof validateSendRequest>;
        try {
          message = validateSendRequest(sendBody({ to: [`"${name}" <ann@example.org>`] }));
        } catch {
          return; // refused: fine
        }
        const raw = (await composeMime(message, OPTIONS)).toString('latin1');
        const parsed = addressparser(decodeWords(headerValue(raw, 'To')));
        expect(parsed).toHaveLength(1);
        expect(parsed[0]?.address).toBe('ann@example.org');
      }),
      { numRuns: 300 },
    );
  });
});
