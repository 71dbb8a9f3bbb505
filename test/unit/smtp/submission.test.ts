import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkEnvelopeSender, decodeWords, readSubmission } from '../../../lambdas/domain/smtp/submission.ts';
import { issueApiKey } from '../../support/fakes.ts';
import { fixtureJson } from '../../support/fixtures.ts';
import { headerBlock, headerValue, headerValues } from '../../support/mime.ts';
import { problemOf, problemOfSync } from '../../support/problems.ts';
import { composedMail, deliveredAs, envelope, handWritten, sha256 } from '../../support/raw-mail.ts';

const HEADERS = ['From: Shop <orders@example.com>', 'To: ana@example.org', 'Subject: Your receipt'];

describe('readSubmission: the envelope decides who receives the message', () => {
  it('sends to the envelope recipients only, each as the headers name it: To, Cc, else Bcc', async () => {
    // Prepare
    const raw = await composedMail({
      to: 'Ana <ana@example.org>, shown-only@example.org',
      cc: 'bob@example.org',
      bcc: 'carl@example.net',
    });

    // Act
    const message = await readSubmission(
      raw,
      envelope(['ana@example.org', 'BOB@example.org', 'carl@example.net', 'dora@example.net']),
    );

    // Assess
    expect(message.to).toEqual([{ address: 'ana@example.org' }]);
    expect(message.cc).toEqual([{ address: 'BOB@example.org' }]);
    expect(message.bcc).toEqual([{ address: 'carl@example.net' }, { address: 'dora@example.net' }]);
    expect(message.shownTo).toEqual([
      { name: 'Ana', address: 'ana@example.org' },
      { address: 'shown-only@example.org' },
    ]);
    expect(message.shownCc).toEqual([{ address: 'bob@example.org' }]);
  });

  it('shows the To and Cc the client wrote, never a Bcc header, and names only envelope recipients as destinations', async () => {
    // Prepare
    const raw = handWritten([
      'From: Shop <orders@example.com>',
      'To: Ana <ana@example.org>, shown-only@example.org',
      'Cc: bob@example.org',
      'Bcc: carl@example.net',
      'Subject: Hi',
    ]);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org', 'carl@example.net']));
    const { raw: sent } = await deliveredAs(message);

    // Assess
    expect(headerValue(sent, 'To')).toBe('Ana <ana@example.org>, shown-only@example.org');
    expect(headerValue(sent, 'Cc')).toBe('bob@example.org');
    expect(headerValues(sent, 'Bcc')).toEqual([]);
    expect(sent.toString('latin1')).not.toContain('carl@example.net');
    const destinations = [...message.to, ...message.cc, ...message.bcc].map((m) => m.address);
    expect(destinations).toEqual(['ana@example.org', 'carl@example.net']);
  });

  it('reads a To group (undisclosed-recipients:;) as no address shown', async () => {
    // Prepare
    const raw = handWritten(['From: orders@example.com', 'To: undisclosed-recipients:;', 'Subject: Hi']);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));

    // Assess
    expect(message.bcc).toEqual([{ address: 'ana@example.org' }]);
    expect(message.shownTo).toEqual([]);
    expect(headerValues((await deliveredAs(message)).raw, 'To')).toEqual([]);
  });

  it('refuses an envelope without recipients and one with more than SES takes, naming RCPT TO', async () => {
    // Prepare
    const raw = handWritten(HEADERS);
    const many = Array.from({ length: 51 }, (_, i) => `r${i}@example.org`);

    // Act
    const none = await problemOf(() => readSubmission(raw, envelope([])));
    const tooMany = await problemOf(() => readSubmission(raw, envelope(many)));

    // Assess
    expect(none.errors).toEqual([
      { path: 'envelope.rcptTo', message: 'at least one recipient (RCPT TO) is required' },
    ]);
    expect(tooMany.errors).toEqual([
      { path: 'envelope.rcptTo', message: 'at most 50 recipients (RCPT TO) per message' },
    ]);
  });

  it('names the envelope recipient that is not an address SES can send to', async () => {
    // Prepare
    const raw = handWritten(HEADERS);

    // Act
    const problem = await problemOf(() =>
      readSubmission(raw, envelope(['ana@example.org', 'zoë@example.org'])),
    );

    // Assess
    expect(problem.code).toBe('invalid_message');
    expect(problem.errors).toEqual([
      {
        path: 'envelope.rcptTo[1]',
        message: 'invalid address: local part must be 7-bit ASCII (SES does not accept SMTPUTF8)',
      },
    ]);
  });
});

describe('readSubmission: the From', () => {
  it('takes the From header, name and all', async () => {
    // Prepare
    const raw = handWritten(['From: "Zoë Ünïcode" <zoe@example.com>', 'To: ana@example.org', 'Subject: Hi']);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org'], 'bounces@example.com'));

    // Assess
    expect(message.from).toEqual({ name: 'Zoë Ünïcode', address: 'zoe@example.com' });
  });

  it('uses the envelope sender when the message has no From header', async () => {
    // Prepare
    const raw = handWritten(['To: ana@example.org', 'Subject: Printer toner low']);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org'], 'printer@example.com'));

    // Assess
    expect(message.from).toEqual({ address: 'printer@example.com' });
  });

  it('refuses a message with neither a From header nor an envelope sender', async () => {
    // Prepare
    const raw = handWritten(['To: ana@example.org', 'Subject: Hi']);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'], '')));

    // Assess
    expect(problem.errors).toEqual([
      {
        path: 'headers.From',
        message: 'the message has no From header and the envelope sender (MAIL FROM) is empty',
      },
    ]);
  });

  it('refuses a From with two addresses', async () => {
    // Prepare
    const raw = handWritten(['From: a@example.com, b@example.com', 'To: ana@example.org', 'Subject: Hi']);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([{ path: 'headers.From', message: 'must hold exactly one address' }]);
  });

  it('applies the API’s display-name rules to the From header, naming the header', async () => {
    // Prepare
    const raw = handWritten([
      'From: =?utf-8?q?M=C3=BCller=2C_Hans?= <hans@example.com>',
      'To: ana@example.org',
      'Subject: Hi',
    ]);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([
      {
        path: 'headers.From',
        message:
          'invalid address: display name with non-ASCII characters must not contain ( ) < > [ ] @ , ; : \\ or "',
      },
    ]);
  });

  it('takes Reply-To as replyTo', async () => {
    // Prepare
    const raw = await composedMail({ replyTo: 'Support <support@example.com>' });

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));

    // Assess
    expect(message.replyTo).toEqual([{ name: 'Support', address: 'support@example.com' }]);
  });
});

describe('readSubmission: the headers the client set', () => {
  it('keeps Message-ID, Date, In-Reply-To, References and X- headers through composition', async () => {
    // Prepare
    const raw = handWritten([
      'From: Shop <orders@example.com>',
      'To: ana@example.org',
      'Subject: Re: your order',
      'Message-ID: <20250301.1234@erp.example.com>',
      'Date: Tue, 4 Mar 2025 10:00:00 +0100 (CET)',
      'In-Reply-To: <q1@mail.example.org>',
      'References: <q0@mail.example.org>',
      ' <q1@mail.example.org>',
      'X-Order-Id: 4711',
      'X-Mailer: ERP 2009',
      'X-Label: =?utf-8?q?h=C3=A9llo?=',
    ]);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { raw: sent, parsed } = await deliveredAs(message);

    // Assess
    expect(message.messageId).toBe('<20250301.1234@erp.example.com>');
    expect(message.date).toBe('Tue, 4 Mar 2025 10:00:00 +0100 (CET)');
    expect(headerValue(sent, 'Message-ID')).toBe('<20250301.1234@erp.example.com>');
    expect(headerValue(sent, 'Date')).toBe('Tue, 4 Mar 2025 10:00:00 +0100 (CET)');
    expect(headerValue(sent, 'In-Reply-To')).toBe('<q1@mail.example.org>');
    expect(parsed.references).toEqual(['<q0@mail.example.org>', '<q1@mail.example.org>']);
    expect(headerValue(sent, 'X-Order-Id')).toBe('4711');
    expect(headerValue(sent, 'X-Mailer')).toBe('ERP 2009');
    expect(parsed.headers.get('x-label')).toBe('=?UTF-8?Q?h=C3=A9llo?=');
    expect(message.headers['X-Label']).toBe('héllo');
  });

  it('makes its own Message-ID and Date when the client’s are not valid', async () => {
    // Prepare
    const raw = handWritten([...HEADERS, 'Message-ID: not-an-id', 'Date: sometime last week']);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { raw: sent } = await deliveredAs(message);

    // Assess
    expect(message.messageId).toBeUndefined();
    expect(message.date).toBeUndefined();
    expect(headerValue(sent, 'Message-ID')).toBe('<msg_01SMTP@example.com>');
    expect(headerValue(sent, 'Date')).toBe('Sat, 01 Mar 2025 12:00:00 +0000');
  });

  it('drops the headers that would change routing or authentication, and never sends them', async () => {
    // Prepare
    const dropped = [
      'Received: from app.internal (10.0.0.5) by mail.internal',
      'Return-Path: <bounces@evil.example>',
      'DKIM-Signature: v=1; a=rsa-sha256; d=evil.example; s=s; b=abc',
      'ARC-Seal: i=1; a=rsa-sha256; d=evil.example; s=s; b=abc',
      'ARC-Custom: i=1',
      'Authentication-Results: mx.example; spf=pass',
      'Bcc: hidden@example.net',
      'Resent-To: other@evil.example',
      'Content-Language: en',
      'X-SES-CONFIGURATION-SET: other',
      'Sender: someone@evil.example',
      'Disposition-Notification-To: receipts@evil.example',
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
      'X-Original-From: forged@evil.example',
      'Delivered-To: ana@example.org',
    ];
    const raw = handWritten([...HEADERS, ...dropped, 'MIME-Version: 1.0', 'X-Kept: yes']);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { raw: sent } = await deliveredAs(message);

    // Assess
    expect(message.headers).toEqual({ 'X-Kept': 'yes' });
    for (const line of dropped) {
      const name = line.slice(0, line.indexOf(':'));
      expect(headerValues(sent, name), name).toEqual([]);
    }
    expect(headerValues(sent, 'MIME-Version')).toEqual(['1.0']);
  });

  it('refuses a header the JSON API would refuse, naming it', async () => {
    // Prepare
    const raw = handWritten([...HEADERS, `X-Long: ${'a'.repeat(998)}`]);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([
      { path: 'headers.X-Long', message: 'header value must be at most 997 characters' },
    ]);
  });

  it('shortens a References header too long for one line, keeping the first and the latest ids', async () => {
    // Prepare
    const ids = Array.from(
      { length: 60 },
      (_, i) => `<message-${String(i).padStart(3, '0')}@mail.example.org>`,
    );
    const raw = handWritten([...HEADERS, `References: ${ids.join('\r\n ')}`]);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));

    // Assess
    const kept = (message.headers.References ?? '').split(' ');
    expect(message.headers.References?.length).toBeLessThanOrEqual(997);
    expect(kept[0]).toBe(ids[0]);
    expect(kept.at(-1)).toBe(ids.at(-1));
    expect(kept.length).toBeGreaterThan(20);
  });
});

describe('readSubmission: Baton’s controls as headers', () => {
  it('reads X-Baton-Stream and X-Baton-Tags and does not send them', async () => {
    // Prepare
    const raw = handWritten([
      ...HEADERS,
      'X-Baton-Stream: Broadcast',
      'X-Baton-Tags: campaign=march, team=sales',
      'List-Unsubscribe: <mailto:unsub@example.com>, <https://example.com/u?id=1>',
    ]);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { raw: sent } = await deliveredAs(message);

    // Assess
    expect(message.stream).toBe('broadcast');
    expect(message.tags).toEqual({ campaign: 'march', team: 'sales' });
    expect(message.listUnsubscribe).toBe('https://example.com/u?id=1');
    expect(message.headers).toEqual({});
    expect(headerBlock(sent)).not.toMatch(/^X-Baton/im);
    expect(headerValue(sent, 'List-Unsubscribe')).toBe('<https://example.com/u?id=1>');
    expect(headerValue(sent, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
  });

  it('refuses tags as the JSON API does, naming the header and the tag', async () => {
    // Prepare
    const raw = handWritten([...HEADERS, 'X-Baton-Tags: ses_x=1, good=ok, broken']);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([
      { path: 'headers.X-Baton-Tags', message: 'each tag must be written name=value (got "broken")' },
    ]);
  });

  it('refuses a reserved tag name with the JSON API’s words', async () => {
    // Prepare
    const raw = handWritten([...HEADERS, 'X-Baton-Tags: baton_x=1']);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([
      {
        path: 'headers.X-Baton-Tags.baton_x',
        message: 'tag names starting with "baton_" or "ses" are reserved',
      },
    ]);
  });

  it('refuses an unknown stream and an unknown X-Baton- header, so a typo is not ignored', async () => {
    // Prepare
    const stream = handWritten([...HEADERS, 'X-Baton-Stream: bulk']);
    const typo = handWritten([...HEADERS, 'X-Baton-Tag: a=b']);

    // Act
    const badStream = await problemOf(() => readSubmission(stream, envelope(['ana@example.org'])));
    const badName = await problemOf(() => readSubmission(typo, envelope(['ana@example.org'])));

    // Assess
    expect(badStream.errors?.[0]?.path).toBe('headers.X-Baton-Stream');
    expect(badStream.errors?.[0]?.message).toContain('transactional');
    expect(badName.errors).toEqual([
      {
        path: 'headers.X-Baton-Tag',
        message: 'unknown Baton header; Baton reads X-Baton-Stream and X-Baton-Tags',
      },
    ]);
  });

  it('refuses broadcast mail without an https List-Unsubscribe, naming the header', async () => {
    // Prepare
    const raw = handWritten([...HEADERS, 'X-Baton-Stream: broadcast']);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([
      { path: 'headers.List-Unsubscribe', message: 'broadcast mail must carry listUnsubscribe (RFC 8058)' },
    ]);
  });

  it('refuses a List-Unsubscribe without an https URL rather than drop it', async () => {
    // Prepare
    const raw = handWritten([...HEADERS, 'List-Unsubscribe: <mailto:unsub@example.com?subject=stop>']);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([
      {
        path: 'headers.List-Unsubscribe',
        message:
          'List-Unsubscribe must hold an https:// URL (RFC 8058 one-click unsubscribe); Baton does not send mailto: or http: unsubscribe links',
      },
    ]);
  });
});

describe('readSubmission: the body and attachments keep their meaning', () => {
  it('keeps attachments byte-identical through composition', async () => {
    // Prepare
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(300_000)]);
    const zip = Buffer.concat([Buffer.from('PK\u0003\u0004'), randomBytes(50_000)]);
    const raw = await composedMail({
      attachments: [
        { filename: 'scan.pdf', content: pdf, contentType: 'application/pdf' },
        { filename: 'Überweisung März.zip', content: zip },
      ],
    });

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { parsed } = await deliveredAs(message);

    // Assess
    expect(message.attachments.map((a) => [a.filename, a.contentType, a.disposition])).toEqual([
      ['scan.pdf', 'application/pdf', 'attachment'],
      ['Überweisung März.zip', 'application/zip', 'attachment'],
    ]);
    expect(parsed.attachments.map((a) => sha256(a.content))).toEqual([sha256(pdf), sha256(zip)]);
    expect(parsed.attachments.map((a) => a.filename)).toEqual(['scan.pdf', 'Überweisung März.zip']);
  });

  it('keeps an inline image inline with its Content-ID, and the cid: link in the HTML', async () => {
    // Prepare
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), randomBytes(2_000)]);
    const raw = await composedMail({
      html: '<p>Logo: <img src="cid:logo@shop"></p>',
      attachments: [{ filename: 'logo.png', content: png, cid: 'logo@shop' }],
    });

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { parsed } = await deliveredAs(message);

    // Assess
    expect(message.attachments).toEqual([
      {
        filename: 'logo.png',
        contentType: 'image/png',
        content: png.toString('base64'),
        disposition: 'inline',
        contentId: 'logo@shop',
      },
    ]);
    expect(message.html).toContain('src="cid:logo@shop"');
    expect(parsed.attachments[0]?.cid).toBe('logo@shop');
    expect(parsed.attachments[0]?.related).toBe(true);
    expect(sha256(parsed.attachments[0]?.content ?? Buffer.alloc(0))).toBe(sha256(png));
  });

  it('keeps text and HTML alternatives, the HTML sanitized as over the API', async () => {
    // Prepare
    const raw = await composedMail({
      text: 'Plain version',
      html: '<p onclick="steal()">Rich <b>version</b></p><script>alert(1)</script>',
    });

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { parsed, raw: sent } = await deliveredAs(message);

    // Assess
    expect(message.text).toBe('Plain version');
    expect(message.html).toContain('<b>version</b>');
    expect(message.html).not.toContain('script');
    expect(message.html).not.toContain('onclick');
    expect(parsed.text).toBe('Plain version');
    expect(headerValue(sent, 'Content-Type')).toMatch(/^multipart\/alternative/);
  });

  it.each([
    ['ISO-8859-1', Buffer.from('Grüße aus Köln\r\n', 'latin1'), 'Grüße aus Köln'],
    [
      'windows-1252',
      Buffer.from([0x50, 0x72, 0x65, 0x69, 0x73, 0x3a, 0x20, 0x35, 0x20, 0x80, 0x0d, 0x0a]),
      'Preis: 5 €',
    ],
    ['Shift_JIS', Buffer.from([0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea, 0x0d, 0x0a]), '日本語'],
  ])('decodes a %s body', async (charset, body, expected) => {
    // Prepare
    const raw = handWritten(
      [...HEADERS, `Content-Type: text/plain; charset=${charset}`, 'Content-Transfer-Encoding: 8bit'],
      body,
    );

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { parsed } = await deliveredAs(message);

    // Assess
    expect(message.text?.trim()).toBe(expected);
    expect(parsed.text?.trim()).toBe(expected);
  });

  it('decodes encoded-word subjects in other charsets and raw UTF-8 headers (SMTPUTF8)', async () => {
    // Prepare
    const encoded = handWritten([
      'From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.com>',
      'To: ana@example.org',
      'Subject: =?ISO-8859-1?Q?Caf=E9?= =?Shift_JIS?B?k/qWe4zq?=',
    ]);
    const utf8 = handWritten([
      'From: Zoë <zoe@example.com>',
      'To: Ωmega <ana@example.org>',
      'Subject: Grüße, 日本語',
    ]);

    // Act
    const first = await readSubmission(encoded, envelope(['ana@example.org']));
    const second = await readSubmission(utf8, envelope(['ana@example.org']));
    const { parsed } = await deliveredAs(second);

    // Assess
    expect(first.subject).toBe('Café日本語');
    expect(first.from).toEqual({ name: 'André', address: 'andre@example.com' });
    expect(second.subject).toBe('Grüße, 日本語');
    expect(parsed.subject).toBe('Grüße, 日本語');
    expect(parsed.to).toMatchObject({ value: [{ name: 'Ωmega', address: 'ana@example.org' }] });
  });

  it('reads raw 8-bit headers that are not UTF-8 as windows-1252, as legacy mailers write them', async () => {
    // Prepare: an old PHP mail() script, ISO-8859-1 bytes straight in the header.
    const raw = Buffer.concat([
      Buffer.from(
        'From: M\xfcller <m@example.com>\r\nTo: ana@example.org\r\nSubject: Gr\xfc\xdfe \x80 5\r\n',
        'latin1',
      ),
      Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nK\u00f6ln\r\n', 'utf8'),
    ]);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));

    // Assess
    expect(message.subject).toBe('Grüße € 5');
    expect(message.from).toEqual({ name: 'Müller', address: 'm@example.com' });
    expect(message.text).toBe('Köln\n');
  });

  it('accepts a message without a Subject, one with only an attachment, and one with no body at all', async () => {
    // Prepare
    const noSubject = handWritten(['From: orders@example.com', 'To: ana@example.org']);
    const scan = await composedMail({
      subject: undefined,
      text: undefined,
      attachments: [{ filename: 'scan0001.pdf', content: Buffer.from('%PDF-1.4\n') }],
    });
    const empty = handWritten(['From: orders@example.com', 'To: ana@example.org', 'Subject: disk full'], '');

    // Act
    const a = await readSubmission(noSubject, envelope(['ana@example.org']));
    const b = await readSubmission(scan, envelope(['ana@example.org']));
    const c = await readSubmission(empty, envelope(['ana@example.org']));

    // Assess
    expect(a.subject).toBe('');
    expect(a.text).toBe('Hello.\n');
    expect(b.subject).toBe('');
    expect(b.text).toBeUndefined();
    expect(b.attachments.map((x) => x.filename)).toEqual(['scan0001.pdf']);
    expect(c.subject).toBe('disk full');
    expect(c.text).toBe('');
    for (const m of [a, b, c]) await expect(deliveredAs(m)).resolves.toBeDefined();
  });

  it('names an attachment without a file name after its type', async () => {
    // Prepare
    const raw = handWritten(
      [...HEADERS, 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"'],
      [
        '--b',
        'Content-Type: text/plain',
        '',
        'See attached.',
        '--b',
        'Content-Type: application/pdf',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('%PDF-1.4\n').toString('base64'),
        '--b',
        'Content-Type: message/rfc822',
        '',
        'Subject: forwarded',
        '',
        'inner',
        '--b--',
        '',
      ].join('\r\n'),
    );

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));

    // Assess
    expect(message.attachments.map((a) => [a.filename, a.contentType])).toEqual([
      ['attachment-1.pdf', 'application/pdf'],
      ['attachment-2.eml', 'message/rfc822'],
    ]);
    expect(Buffer.from(message.attachments[1]?.content ?? '', 'base64').toString()).toBe(
      'Subject: forwarded\r\n\r\ninner',
    );
  });

  it('keeps the charset a text attachment is labelled with, and its bytes', async () => {
    // Prepare: an ERP's CSV export in windows-1252.
    const csv = Buffer.from([0x47, 0x72, 0xfc, 0xdf, 0x65, 0x3b, 0x80, 0x0d, 0x0a]);
    const raw = await composedMail({
      attachments: [{ filename: 'export.csv', content: csv, contentType: 'text/csv; charset=windows-1252' }],
    });

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { parsed } = await deliveredAs(message);

    // Assess
    expect(message.attachments[0]?.charset).toBe('windows-1252');
    const part = parsed.attachments[0];
    expect(part?.headers.get('content-type')).toMatchObject({
      value: 'text/csv',
      params: { charset: 'windows-1252' },
    });
    expect(sha256(part?.content ?? Buffer.alloc(0))).toBe(sha256(csv));
  });

  it('sends a part whose content type is not type/subtype as application/octet-stream, bytes unchanged', async () => {
    // Prepare: a scanner that sends its PDF as the whole message, typed "pdf".
    const raw = handWritten(
      [...HEADERS, 'Content-Type: pdf', 'Content-Transfer-Encoding: base64'],
      `${Buffer.from('%PDF-1.4\n').toString('base64')}\r\n`,
    );

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));

    // Assess
    expect(message.attachments).toEqual([
      {
        filename: 'attachment-1.bin',
        contentType: 'application/octet-stream',
        content: Buffer.from('%PDF-1.4\n').toString('base64'),
        disposition: 'attachment',
      },
    ]);
  });

  it('refuses an executable attachment with the API’s words, naming the attachment', async () => {
    // Prepare
    const raw = await composedMail({
      attachments: [
        { filename: 'ok.txt', content: 'fine' },
        { filename: 'invoice.pdf.exe', content: Buffer.from('MZ\u0000\u0000') },
      ],
    });

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.code).toBe('invalid_message');
    expect(problem.errors).toEqual([
      {
        path: 'attachments[1].filename',
        message: 'executable or script attachments are not allowed (.exe files run when opened)',
      },
    ]);
  });
});

interface InjectionCase {
  readonly id: string;
  readonly input: unknown;
}
const injection = new Map(
  fixtureJson<{ cases: InjectionCase[] }>('header-injection.json').cases.map((c) => [c.id, c.input]),
);
function headerLinesOf(id: string): string[] {
  const input = injection.get(id) as { header_lines: string[] } | undefined;
  if (!input) throw new Error(`no case ${id} in header-injection.json`);
  return input.header_lines.map((line) => line.replace(/\r\n$/, ''));
}
// biome-ignore lint/suspicious/noControlCharactersInRegex: what a header must never carry
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

describe('readSubmission: header injection (header-injection.json) arriving over SMTP', () => {
  it('refuses a Subject whose encoded-word decodes to a line break (hk-encoded-word-decodes-to-crlf)', async () => {
    // Prepare
    const raw = handWritten([
      'From: orders@example.com',
      'To: ana@example.org',
      ...headerLinesOf('hk-encoded-word-decodes-to-crlf'),
    ]);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([
      { path: 'headers.Subject', message: 'subject must not contain CR, LF or NUL' },
    ]);
  });

  it.each(['hk-repeated-message-id', 'hk-repeated-subject'])(
    'refuses a header RFC 5322 allows once when it comes twice (%s)',
    async (id) => {
      // Prepare
      const lines = headerLinesOf(id);
      const raw = handWritten(['From: orders@example.com', 'To: ana@example.org', ...lines]);
      const name = (lines[0] ?? '').slice(0, (lines[0] ?? '').indexOf(':'));

      // Act
      const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

      // Assess
      expect(problem.errors).toEqual([
        { path: `headers.${name}`, message: `${name} appears 2 times; a message has at most one` },
      ]);
    },
  );

  it('never lets a control character reach the sent header block (nm-control-chars)', async () => {
    // Prepare
    const c = injection.get('nm-control-chars') as Record<string, string>;
    const raw = handWritten([
      'From: orders@example.com',
      'To: ana@example.org',
      `Subject: ${c.subject}`,
      `X-Custom: ${c['x-custom']}`,
      `Message-ID: ${c['message-id']}`,
      `In-Reply-To: ${c['in-reply-to']}`,
    ]);

    // Act
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const { raw: sent } = await deliveredAs(message);

    // Assess
    expect(message.messageId).toBeUndefined();
    expect(headerBlock(sent)).not.toMatch(CONTROL);
  });

  it('refuses a NUL in a header value (nm-control-chars references)', async () => {
    // Prepare
    const c = injection.get('nm-control-chars') as Record<string, string>;
    const raw = handWritten([...HEADERS, `X-Ref: ${c.references}`]);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([
      { path: 'headers.X-Ref', message: 'header value must not contain CR, LF or NUL' },
    ]);
  });

  it('refuses an attachment whose RFC 2231 file name decodes to a line break (nm-filename-crlf)', async () => {
    // Prepare
    const raw = handWritten(
      [...HEADERS, 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"'],
      [
        '--b',
        'Content-Type: text/plain',
        '',
        'hi',
        '--b',
        'Content-Type: application/pdf',
        "Content-Disposition: attachment; filename*=utf-8''in%0D%0Avoice.pdf",
        'Content-Transfer-Encoding: base64',
        '',
        'aGk=',
        '--b--',
        '',
      ].join('\r\n'),
    );

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors).toEqual([
      { path: 'attachments[0].filename', message: 'filename must not contain CR, LF or NUL' },
    ]);
  });

  it('keeps a header name with a line break out (nm-header-key-crlf): it cannot even be written as one line', async () => {
    // Prepare: an unfolded header name with CRLF inside is two header lines, the second a new header.
    const raw = handWritten([...HEADERS, 'X-A', 'X-Injected: yes']);

    // Act
    const problem = await problemOf(() => readSubmission(raw, envelope(['ana@example.org'])));

    // Assess
    expect(problem.errors?.[0]?.path).toBe('headers');
  });
});

describe('readSubmission: whatever arrives', () => {
  const NAMES = [
    'To',
    'Cc',
    'Bcc',
    'Reply-To',
    'Subject',
    'Message-ID',
    'Date',
    'References',
    'In-Reply-To',
    'List-Unsubscribe',
    'X-Baton-Stream',
    'X-Baton-Tags',
    'X-Custom',
    'Received',
    'Content-Type',
    'Content-Transfer-Encoding',
    'Sender',
    'Zoë',
    'X\u0001Y',
  ];
  const PIECES = [
    'ana@example.org',
    'Ana <ana@example.org>',
    '"Doe, J" <j@example.org>',
    'evil@x\r\nBcc: carl@example.net',
    '=?utf-8?B?ZXZpbA0KWC1JbmplY3RlZDogeWVz?=',
    '=?ISO-8859-1?Q?Caf=E9?=',
    '<a@b>',
    'Tue, 4 Mar 2025 10:00:00 +0100',
    'multipart/mixed; boundary="b"',
    'base64',
    'a=b, c',
    'broadcast',
    '<https://example.com/u>',
    '\u0000',
    '\u00ff\u00fe',
    'Grüße',
    ' ',
    '\t',
    '\r\n ',
    ':',
  ];
  const header = fc
    .tuple(
      fc.constantFrom(...NAMES),
      fc.array(fc.oneof(fc.constantFrom(...PIECES), fc.string()), { maxLength: 4 }),
    )
    .map(([name, parts]) => `${name}: ${parts.join('')}`);
  const body = fc.oneof(
    fc.string(),
    fc.constant(
      '--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\nJVBERi0=\r\n--b--\r\n',
    ),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  );
  const rcpt = fc.oneof(
    {
      weight: 9,
      arbitrary: fc.array(fc.constantFrom('ana@example.org', 'bob@example.org', 'carl@example.net'), {
        minLength: 1,
        maxLength: 4,
      }),
    },
    { weight: 1, arbitrary: fc.array(fc.constantFrom('bad@', 'Zoë@x.example', ''), { maxLength: 2 }) },
  );

  it('either reads a message that composes cleanly or refuses it with printable words, never anything else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(header, { maxLength: 6 }), body, rcpt, async (headers, text, rcptTo) => {
        // A From header most of the time, so most messages get past it to what follows.
        const raw = handWritten(
          headers.length % 4 === 3 ? headers : ['From: orders@example.com', ...headers],
          text,
        );
        let message: Awaited<ReturnType<typeof readSubmission>>;
        try {
          message = await readSubmission(raw, envelope(rcptTo));
        } catch (error) {
          const problem = await problemOf(() => Promise.reject(error));
          expect(problem.code).toBe('invalid_message');
          for (const e of problem.errors ?? []) {
            expect(e.path).toMatch(/^[ -~]+$/);
            expect(e.message).toMatch(/^[ -~]+$/);
          }
          return;
        }
        const destinations = [...message.to, ...message.cc, ...message.bcc].map((m) => m.address);
        for (const d of destinations) expect(rcptTo).toContain(d);
        const { raw: sent } = await deliveredAs(message);
        expect(headerBlock(sent)).not.toMatch(CONTROL);
        expect(headerValues(sent, 'Bcc')).toEqual([]);
        expect(headerBlock(sent)).not.toMatch(/^X-Baton-/im);
      }),
      { numRuns: Number(process.env.BATON_FUZZ_RUNS ?? 400) },
    );
  }, 120_000);
});

describe('checkEnvelopeSender: MAIL FROM passes the sender policy like from', () => {
  it('lets a sender of the key’s domains through, and the null sender (<>), whose From header then decides', () => {
    // Prepare
    const { key } = issueApiKey();

    // Act / Assess
    expect(() => checkEnvelopeSender(key, 'bounces@mail.example.com')).not.toThrow();
    expect(() => checkEnvelopeSender(key, '')).not.toThrow();
  });

  it('refuses a sender outside the key’s domains with 403 when the policy rejects', () => {
    // Prepare
    const { key } = issueApiKey();

    // Act
    const problem = problemOfSync(() => checkEnvelopeSender(key, 'app@legacy.example'));

    // Assess
    expect(problem.code).toBe('forbidden');
    expect(problem.detail).toBe(
      'This API key may not send from the domain legacy.example; allowed: example.com.',
    );
  });

  it('lets any sender through when the policy rewrites: the From header is rewritten, not refused', () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });

    // Act / Assess
    expect(() => checkEnvelopeSender(key, 'app@legacy.example')).not.toThrow();
  });

  it('refuses an envelope sender that is no address SES takes, naming MAIL FROM', () => {
    // Prepare
    const { key } = issueApiKey();

    // Act
    const problem = problemOfSync(() => checkEnvelopeSender(key, 'zoë@example.com'));

    // Assess
    expect(problem.errors).toEqual([
      {
        path: 'envelope.mailFrom',
        message: 'invalid address: local part must be 7-bit ASCII (SES does not accept SMTPUTF8)',
      },
    ]);
  });
});

describe('decodeWords', () => {
  it.each([
    ['a Q word in UTF-8', '=?utf-8?q?h=C3=A9llo?=', 'héllo'],
    ['a B word in ISO-8859-1', '=?ISO-8859-1?B?Q2Fm6Q==?=', 'Café'],
    ['a character split between two adjacent words', '=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=', 'éé'],
    ['text around words, its spaces kept', 'a =?utf-8?q?b?= c', 'a b c'],
    ['a Shift_JIS word', '=?Shift_JIS?B?k/qWe4zq?=', '日本語'],
    ['a charset the runtime does not know, left as written', '=?x-unknown?q?abc?=', '=?x-unknown?q?abc?='],
    ['an RFC 2231 language suffix', '=?utf-8*en?q?hi?=', 'hi'],
  ])('decodes %s', (_what, input, expected) => {
    // Prepare / Act
    const decoded = decodeWords(input);

    // Assess
    expect(decoded).toBe(expected);
  });
});
