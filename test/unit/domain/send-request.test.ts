import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProblemError } from '../../../lambdas/domain/problem.ts';
import {
  formatPath,
  MAX_RECIPIENTS,
  validateSendRequest,
} from '../../../lambdas/domain/send/send-request.ts';
import { everyFieldBody, outgoingMessage, sendBody } from '../../support/builders.ts';
import { problemOfSync } from '../../support/problems.ts';

const DETAIL = 'The message is not valid; see errors for each failing field.';

/** The `errors` of the 422 a body gets. */
function errorsOf(body: unknown) {
  const p = problemOfSync(() => validateSendRequest(body));
  expect(p.status).toBe(422);
  expect(p.type).toBe('urn:baton:problem:invalid_message');
  expect(p.detail).toBe(DETAIL);
  return p.errors;
}

const addresses = (n: number, prefix: string) =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}@example.org`);

describe('validateSendRequest', () => {
  it('turns a minimal body into a message with every default filled in', () => {
    // Prepare
    const body = sendBody();

    // Act
    const message = validateSendRequest(body);

    // Assess
    expect(message).toEqual(outgoingMessage());
  });

  it('keeps every field of the DESIGN §2 example body', () => {
    // Prepare
    const body = everyFieldBody();

    // Act
    const message = validateSendRequest(body);

    // Assess
    expect(message).toEqual({
      from: { name: 'Shop', address: 'orders@example.com' },
      to: [{ address: 'ana@example.org' }],
      cc: [],
      bcc: [],
      replyTo: [{ address: 'support@example.com' }],
      subject: 'Your receipt',
      text: 'plain text body',
      html: '<p>html body</p>',
      attachments: [
        {
          filename: 'r.pdf',
          contentType: 'application/pdf',
          content: 'JVBERi0xLjQK',
          disposition: 'attachment',
        },
      ],
      headers: { 'X-Order-Id': '123' },
      tags: { campaign: 'receipts' },
      stream: 'broadcast',
      listUnsubscribe: 'https://example.com/unsub?u=1',
    });
  });

  it('takes a single address string as a list of one', () => {
    // Prepare
    const body = sendBody({ to: 'Ana <ana@example.org>', bcc: 'audit@example.com' });

    // Act
    const message = validateSendRequest(body);

    // Assess
    expect(message.to).toEqual([{ name: 'Ana', address: 'ana@example.org' }]);
    expect(message.bcc).toEqual([{ address: 'audit@example.com' }]);
  });

  it('accepts html without text and a message sent only to bcc', () => {
    // Prepare
    const body = { from: 'orders@example.com', bcc: ['ana@example.org'], subject: 's', html: '<p>hi</p>' };

    // Act
    const message = validateSendRequest(body);

    // Assess
    expect(message.bcc).toEqual([{ address: 'ana@example.org' }]);
    expect(message.html).toBe('<p>hi</p>');
    expect(message.text).toBeUndefined();
  });

  it('names every missing required field at once', () => {
    // Prepare / Act
    const errors = errorsOf({});

    // Assess
    expect(errors).toEqual([
      { path: 'from', message: 'is required' },
      { path: 'subject', message: 'is required' },
      { path: 'to', message: 'at least one of to, cc or bcc is required' },
      { path: 'text', message: 'at least one of text or html is required' },
    ]);
  });

  it('reports every failing path of a bad body in one answer', () => {
    // Prepare
    const body = sendBody({
      to: 'not-an-address',
      subject: 'a\nb',
      extra: 1,
      stream: 'bulk',
      headers: { From: 'x', 'X-A': 'a\r\nb', 'Bad Name': 'v' },
      tags: { baton_x: 'y', 'a b': 'c', ok: 'no space' },
    });

    // Act
    const errors = errorsOf(body);

    // Assess
    expect(errors).toEqual([
      { path: 'to[0]', message: 'invalid address: must contain "@"' },
      { path: 'subject', message: 'subject must not contain CR, LF or NUL' },
      { path: 'stream', message: 'Invalid option: expected one of "transactional"|"broadcast"' },
      { path: '(body)', message: 'unknown field(s): extra' },
      { path: 'headers.From', message: 'header From is reserved and cannot be set through headers' },
      { path: 'headers.X-A', message: 'header value must not contain CR, LF or NUL' },
      { path: 'headers.Bad Name', message: 'header name must be printable ASCII without ":"' },
      { path: 'tags.baton_x', message: 'tag names starting with "baton_" or "ses" are reserved' },
      { path: 'tags.a b', message: 'tag name must be 1-256 of A-Z a-z 0-9 _ -' },
      { path: 'tags.ok', message: 'tag value must be 1-256 of A-Z a-z 0-9 _ -' },
    ]);
  });

  it.each([
    ['null', null],
    ['a string', 'hello'],
    ['a number', 42],
  ])('refuses %s as the body', (_what, body) => {
    // Prepare / Act
    const errors = errorsOf(body);

    // Assess (the path; the wording is checked by the test below)
    expect(errors?.map((e) => e.path)).toEqual(['(body)']);
  });

  // zod 4 reports `issue.input` only with reportInput, which tells "missing" from "wrong type".
  it('says a present field has the wrong type instead of calling it missing', () => {
    // Prepare
    const body = sendBody({ text: 42, cc: [7] });

    // Act
    const errors = errorsOf(body);

    // Assess
    expect(errors).toContainEqual({ path: 'text', message: 'must be a string' });
    expect(errors).toContainEqual({ path: 'cc[0]', message: 'must be a string' });
  });

  // Same bug as above.
  it('says a body that is not an object must be an object', () => {
    // Prepare / Act
    const errors = errorsOf(null);

    // Assess
    expect(errors).toEqual([{ path: '(body)', message: 'must be an object' }]);
  });

  it(`accepts ${MAX_RECIPIENTS} recipients across to, cc and bcc`, () => {
    // Prepare
    const body = sendBody({ to: addresses(20, 'to'), cc: addresses(20, 'cc'), bcc: addresses(10, 'bcc') });

    // Act
    const message = validateSendRequest(body);

    // Assess
    expect(message.to.length + message.cc.length + message.bcc.length).toBe(50);
  });

  it(`refuses more than ${MAX_RECIPIENTS} recipients across to, cc and bcc`, () => {
    // Prepare
    const body = sendBody({ to: addresses(20, 'to'), cc: addresses(20, 'cc'), bcc: addresses(11, 'bcc') });

    // Act
    const errors = errorsOf(body);

    // Assess
    expect(errors).toEqual([{ path: 'to', message: 'at most 50 recipients in to, cc and bcc together' }]);
  });

  it('refuses a message without any recipient', () => {
    // Prepare / Act
    const errors = errorsOf(sendBody({ to: [], cc: [], bcc: [] }));

    // Assess
    expect(errors).toEqual([{ path: 'to', message: 'at least one of to, cc or bcc is required' }]);
  });

  it('refuses a message whose bodies are both empty', () => {
    // Prepare / Act
    const errors = errorsOf(sendBody({ text: '', html: '' }));

    // Assess
    expect(errors).toEqual([{ path: 'text', message: 'at least one of text or html is required' }]);
  });

  it('points at the failing recipient in each list', () => {
    // Prepare
    const body = sendBody({ to: ['ana@example.org', '"eve"@example.net'], replyTo: ['bad'] });

    // Act
    const errors = errorsOf(body);

    // Assess
    expect(errors).toEqual([
      {
        path: 'to[1]',
        message:
          'invalid address: must be a plain address like name@example.com (no spaces, quotes, comments or brackets)',
      },
      { path: 'replyTo[0]', message: 'invalid address: must contain "@"' },
    ]);
  });

  describe('headers', () => {
    it.each([
      'From',
      'to',
      'CC',
      'Bcc',
      'SUBJECT',
      'Date',
      'Message-ID',
      'dkim-signature',
      'Return-Path',
      'Reply-To',
      'Sender',
      'MIME-Version',
      'List-Unsubscribe',
      'List-Unsubscribe-Post',
      'X-Original-From',
      'Received',
      'Content-Type',
      'content-transfer-encoding',
      'X-SES-CONFIGURATION-SET',
      'Resent-To',
      'ARC-Seal',
    ])('refuses the reserved header %s whatever its case', (name) => {
      // Prepare
      const body = sendBody({ headers: { [name]: 'value' } });

      // Act
      const errors = errorsOf(body);

      // Assess
      expect(errors).toEqual([
        { path: `headers.${name}`, message: `header ${name} is reserved and cannot be set through headers` },
      ]);
    });

    it('passes custom headers through with their names as given', () => {
      // Prepare
      const body = sendBody({ headers: { 'X-Order-Id': '123', 'In-Reply-To': '<a@example.com>' } });

      // Act
      const message = validateSendRequest(body);

      // Assess
      expect(message.headers).toEqual({ 'X-Order-Id': '123', 'In-Reply-To': '<a@example.com>' });
    });

    it.each([
      ['CR', 'a\rb'],
      ['LF', 'a\nb'],
      ['CRLF with an injected header', 'a\r\nBcc: eve@example.net'],
      ['NUL', 'a\u0000b'],
      ['LINE SEPARATOR', 'a\u2028b'],
      ['PARAGRAPH SEPARATOR', 'a\u2029b'],
    ])('refuses a header value with %s', (_what, value) => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ headers: { 'X-Track': value } }));

      // Assess
      expect(errors).toEqual([
        { path: 'headers.X-Track', message: 'header value must not contain CR, LF or NUL' },
      ]);
    });

    it.each([
      ['a colon', 'X-A:B'],
      ['a space', 'X A'],
      ['a line break', 'X-A\r\nX-Injected: yes'],
      ['a non-ASCII letter', 'X-Ä'],
      ['more than 100 characters', `X-${'a'.repeat(99)}`],
    ])('refuses a header name with %s', (_what, name) => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ headers: { [name]: 'v' } }));

      // Assess
      expect(errors).toEqual([
        { path: `headers.${name}`, message: 'header name must be printable ASCII without ":"' },
      ]);
    });

    it('refuses a header value longer than 997 characters (it could not fold into 998 octets)', () => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ headers: { 'X-Long': 'v'.repeat(998) } }));

      // Assess
      expect(errors).toEqual([
        { path: 'headers.X-Long', message: 'header value must be at most 997 characters' },
      ]);
    });
  });

  describe('content safety of the subject and addresses', () => {
    it.each([
      ['CR', 'Hello\rWorld'],
      ['LF', 'Hello\nBcc: eve@example.net'],
      ['NUL', 'Hello\u0000'],
      ['LINE SEPARATOR', 'Hello\u2028World'],
    ])('refuses a subject with %s', (_what, subject) => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ subject }));

      // Assess
      expect(errors).toEqual([{ path: 'subject', message: 'subject must not contain CR, LF or NUL' }]);
    });

    it('refuses a subject longer than 997 characters (it could not fold into 998 octets)', () => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ subject: 's'.repeat(998) }));

      // Assess
      expect(errors).toEqual([{ path: 'subject', message: 'subject must be at most 997 characters' }]);
    });

    it('refuses a display name with a line feed in it', () => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ to: ['Name\nInjection test <to@example.com>'] }));

      // Assess
      expect(errors).toEqual([
        { path: 'to[0]', message: 'invalid address: must not contain control characters or line breaks' },
      ]);
    });
  });

  describe('tags', () => {
    it('refuses more than 10 tags', () => {
      // Prepare
      const tags = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`t${i}`, 'v']));

      // Act
      const errors = errorsOf(sendBody({ tags }));

      // Assess
      expect(errors).toEqual([{ path: 'tags', message: 'at most 10 tags' }]);
    });

    it.each(['baton_message_id', 'ses:configuration-set', 'sesame'])(
      'refuses the reserved tag name %s',
      (name) => {
        // Prepare / Act
        const errors = errorsOf(sendBody({ tags: { [name]: 'v' } }));

        // Assess
        expect(errors).toEqual([
          {
            path: `tags.${name}`,
            message: name.includes(':')
              ? 'tag name must be 1-256 of A-Z a-z 0-9 _ -'
              : 'tag names starting with "baton_" or "ses" are reserved',
          },
        ]);
      },
    );

    it('refuses an empty tag value', () => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ tags: { campaign: '' } }));

      // Assess
      expect(errors).toEqual([
        { path: 'tags.campaign', message: 'tag value must be 1-256 of A-Z a-z 0-9 _ -' },
      ]);
    });
  });

  describe('attachments', () => {
    it('accepts base64 content with line breaks and keeps it without them', () => {
      // Prepare
      const body = sendBody({ attachments: [{ filename: 'r.txt', content: 'aGVs\r\nbG8=\n' }] });

      // Act
      const message = validateSendRequest(body);

      // Assess
      expect(message.attachments).toEqual([
        { filename: 'r.txt', content: 'aGVsbG8=', disposition: 'attachment' },
      ]);
    });

    it('keeps an inline attachment with its content id', () => {
      // Prepare
      const body = sendBody({
        html: '<img src="cid:logo@shop">',
        attachments: [
          {
            filename: 'logo.png',
            contentType: 'image/png',
            content: 'iVBORw0K',
            disposition: 'inline',
            contentId: 'logo@shop',
          },
        ],
      });

      // Act
      const message = validateSendRequest(body);

      // Assess
      expect(message.attachments).toEqual([
        {
          filename: 'logo.png',
          contentType: 'image/png',
          content: 'iVBORw0K',
          disposition: 'inline',
          contentId: 'logo@shop',
        },
      ]);
    });

    it('reports each bad attachment at its own path', () => {
      // Prepare
      const body = sendBody({
        attachments: [
          { filename: '../etc/passwd', content: 'abc' },
          { filename: 'x.png', content: 'aGVsbG8=', disposition: 'inline' },
          { filename: 'x.txt', content: 'aGVsbG8=', contentType: 'text/plain; charset=utf-8' },
          { filename: 'in\r\nvoice.pdf', content: 'aGVsbG8=' },
          { filename: 'x.png', content: 'aGVsbG8=', disposition: 'inline', contentId: '<logo>' },
          { filename: '', content: 'aGVsbG8=', size: 5 },
        ],
      });

      // Act
      const errors = errorsOf(body);

      // Assess
      expect(errors).toEqual([
        { path: 'attachments[0].filename', message: 'filename must not contain a path' },
        { path: 'attachments[0].content', message: 'content must be base64' },
        { path: 'attachments[2].contentType', message: 'contentType must look like type/subtype' },
        { path: 'attachments[3].filename', message: 'filename must not contain CR, LF or NUL' },
        { path: 'attachments[4].contentId', message: 'contentId must be printable ASCII without "<" or ">"' },
        { path: 'attachments[5].filename', message: 'filename must not be empty' },
        { path: 'attachments[5]', message: 'unknown field(s): size' },
        { path: 'attachments[1].contentId', message: 'inline attachments need a contentId' },
      ]);
    });

    it('refuses more than 100 attachments', () => {
      // Prepare
      const attachments = Array.from({ length: 101 }, (_, i) => ({ filename: `f${i}.txt`, content: 'aGk=' }));

      // Act
      const errors = errorsOf(sendBody({ attachments }));

      // Assess
      expect(errors).toEqual([{ path: 'attachments', message: 'at most 100 attachments' }]);
    });

    // DESIGN §4 "executable attachment types are refused"; one reason per attachment, even when
    // its name, type and content all give it away (content-safety.test.ts covers each check).
    it('refuses an executable attachment', () => {
      // Prepare
      const body = sendBody({
        attachments: [
          { filename: 'invoice.exe', contentType: 'application/x-msdownload', content: 'TVqQAA==' },
        ],
      });

      // Act
      const errors = errorsOf(body);

      // Assess
      expect(errors).toEqual([
        {
          path: 'attachments[0].filename',
          message: 'executable or script attachments are not allowed (.exe files run when opened)',
        },
      ]);
    });

    it('refuses an executable hidden under a document name and type, next to other failures', () => {
      // Prepare: "MZ" and a binary DOS header, base64 of a PE file's first bytes
      const body = sendBody({
        subject: 'a\r\nb',
        attachments: [
          { filename: 'report.pdf', contentType: 'application/pdf', content: 'aGVsbG8=' },
          { filename: 'report.pdf', contentType: 'application/pdf', content: 'TVqQAAMAAAAEAAAA//8AAA==' },
        ],
      });

      // Act
      const errors = errorsOf(body);

      // Assess
      expect(errors).toEqual([
        { path: 'subject', message: 'subject must not contain CR, LF or NUL' },
        {
          path: 'attachments[1].content',
          message:
            'executable or script attachments are not allowed (the content is a Windows executable, whatever its name says)',
        },
      ]);
    });

    it.each([
      ['padding in the middle', 'aGk=aGk='],
      ['a character outside the alphabet', 'aGk!'],
      ['URL-safe base64', 'a-_k'],
      ['a length that is not a multiple of 4', 'aGk'],
      ['three padding characters', 'a==='],
    ])('refuses content with %s as not base64', (_what, content) => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ attachments: [{ filename: 'r.txt', content }] }));

      // Assess
      expect(errors).toEqual([{ path: 'attachments[0].content', message: 'content must be base64' }]);
    });

    it('accepts base64 wrapped at 76 characters, as MIME writes it', () => {
      // Prepare
      const base64 = Buffer.alloc(300, 7).toString('base64');
      const wrapped = base64.replace(/.{76}/g, '$&\r\n');

      // Act
      const message = validateSendRequest(
        sendBody({ attachments: [{ filename: 'r.bin', content: wrapped }] }),
      );

      // Assess
      expect(message.attachments[0]?.content).toBe(base64);
    });

    // The 413 is accept.ts's to give, on the encoded job's size: validation never calls size a 422.
    it('accepts a 5 MB attachment and leaves its size to the job-size check', () => {
      // Prepare
      const content = Buffer.alloc(5 * 1024 * 1024, 1).toString('base64');

      // Act
      const message = validateSendRequest(sendBody({ attachments: [{ filename: 'big.bin', content }] }));

      // Assess
      expect(message.attachments[0]?.content.length).toBe(content.length);
    });
  });

  describe('html', () => {
    it('queues the html sanitized: scripts, handlers and javascript: URLs removed', () => {
      // Prepare
      const body = sendBody({
        html: '<p onclick="steal()">Hi</p><script>alert(1)</script><a href="javascript:alert(2)">x</a>',
      });

      // Act
      const message = validateSendRequest(body);

      // Assess
      expect(message.html).toBe('<p>Hi</p><a>x</a>');
    });

    it('accepts html that sanitizing empties when there is a text body', () => {
      // Prepare
      const body = sendBody({ text: 'Hi', html: '<script>alert(1)</script>' });

      // Act
      const message = validateSendRequest(body);

      // Assess
      expect(message.html).toBe('');
      expect(message.text).toBe('Hi');
    });
  });

  describe('broadcast mail', () => {
    it('refuses broadcast mail without listUnsubscribe', () => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ stream: 'broadcast' }));

      // Assess
      expect(errors).toEqual([
        { path: 'listUnsubscribe', message: 'broadcast mail must carry listUnsubscribe (RFC 8058)' },
      ]);
    });

    it.each([
      ['an http URL', 'http://example.com/unsub'],
      ['a mailto URL', 'mailto:unsub@example.com'],
      ['not a URL', 'unsubscribe me'],
    ])('refuses %s as listUnsubscribe', (_what, url) => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ stream: 'broadcast', listUnsubscribe: url }));

      // Assess
      expect(errors).toEqual([
        {
          path: 'listUnsubscribe',
          message: 'listUnsubscribe must be an https:// URL (RFC 8058 one-click unsubscribe)',
        },
      ]);
    });

    it('refuses a listUnsubscribe URL with a line break', () => {
      // Prepare / Act
      const errors = errorsOf(sendBody({ listUnsubscribe: 'https://example.com/u\r\nBcc: eve@example.net' }));

      // Assess
      expect(errors).toEqual([
        { path: 'listUnsubscribe', message: 'listUnsubscribe must not contain CR, LF or NUL' },
      ]);
    });
  });

  it('never lets CR, LF or NUL through into a subject, header, name or filename', () => {
    // Prepare
    const risky = fc
      .array(
        fc.oneof(
          fc.constantFrom('\r', '\n', '\u0000', '\r\n', '\u2028', ' ', ':', 'Bcc:'),
          fc.string({ maxLength: 5 }),
        ),
        {
          maxLength: 6,
        },
      )
      .map((parts) => parts.join(''));
    const body = fc.record({
      subject: risky,
      name: risky,
      headerName: fc.constantFrom('X-Custom', 'X-Track', 'In-Reply-To'),
      headerValue: risky,
      filename: risky,
    });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting their absence
    const BREAK = /[\r\n\u0000]/;

    // Act / Assess
    fc.assert(
      fc.property(body, (b) => {
        let message: ReturnType<typeof validateSendRequest>;
        try {
          message = validateSendRequest(
            sendBody({
              subject: b.subject,
              from: `"${b.name.replace(/["\\]/g, '')}" <orders@example.com>`,
              to: [`${b.name.replace(/[<>"]/g, '')} <ana@example.org>`],
              headers: { [b.headerName]: b.headerValue },
              attachments: [{ filename: b.filename, content: 'aGk=' }],
            }),
          );
        } catch (error) {
          expect(error).toBeInstanceOf(ProblemError);
          return;
        }
        const texts = [
          message.subject,
          ...Object.keys(message.headers),
          ...Object.values(message.headers),
          ...[message.from, ...message.to].flatMap((m) => [m.name ?? '', m.address]),
          ...message.attachments.map((a) => a.filename),
        ];
        for (const t of texts) expect(t).not.toMatch(BREAK);
      }),
      { numRuns: 300 },
    );
  });
});

// Regression: zod checked every item of a list before its length, and gathered one issue per
// bad item with a spread: a 6 MB body whose `to` held three million items ran 17.7 s (past the
// api function's 10 s timeout) and then overflowed the stack, answered 500 instead of 422.
describe('validateSendRequest on lists far longer than any limit', () => {
  const million = (item: unknown) => new Array(1_000_000).fill(item);
  // A map of that size takes seconds just to build; a quarter of it already overflowed the stack.
  const map = (item: unknown) =>
    Object.fromEntries(Array.from({ length: 250_000 }, (_, i) => [`X-H${i}`, item]));
  it.each([
    ['to', { to: million(0) }, 'to'],
    ['cc', { cc: million({}) }, 'cc'],
    ['replyTo', { replyTo: million('not an address') }, 'replyTo'],
    ['headers', { headers: map(0) }, 'headers'],
    ['tags', { tags: map(0) }, 'tags'],
  ])(
    'refuses a huge list in %s (a million items, a quarter million keys in a map) with one 422 error for the field, in under 2 s',
    (_what, fields, path) => {
      // Act
      const started = performance.now();
      const errors = errorsOf(sendBody(fields));
      const ms = performance.now() - started;

      // Assess
      expect(errors).toEqual([{ path, message: 'must hold at most 1000 items' }]);
      expect(ms).toBeLessThan(2_000);
    },
    60_000,
  );
});

describe('formatPath', () => {
  it.each([
    [['to', 0], 'to[0]'],
    [['attachments', 1, 'content'], 'attachments[1].content'],
    [['headers', 'X-A'], 'headers.X-A'],
    [[], '(body)'],
  ] as const)('writes %j as %s', (path, expected) => {
    // Prepare / Act
    const text = formatPath(path);

    // Assess
    expect(text).toBe(expected);
  });
});
