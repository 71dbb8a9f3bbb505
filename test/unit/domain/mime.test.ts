import { describe, expect, it } from 'vitest';
import { MAX_DISPLAY_NAME } from '../../../lambdas/domain/address.ts';
import { composeMime } from '../../../lambdas/domain/delivery/mime.ts';
import type { OutgoingMessage } from '../../../lambdas/domain/message.ts';
import {
  MAX_HEADER_VALUE,
  MAX_LIST_UNSUBSCRIBE,
  validateSendRequest,
} from '../../../lambdas/domain/send/send-request.ts';
import { applySenderPolicy } from '../../../lambdas/domain/send/sender-policy.ts';
import { outgoingMessage, sendBody } from '../../support/builders.ts';
import { issueApiKey } from '../../support/fakes.ts';
import {
  decodeWords,
  encodedWords,
  headerBlock,
  headerValue,
  headerValues,
  linesOf,
  longestLine,
} from '../../support/mime.ts';

const OPTIONS = { id: 'msg_01TEST', date: new Date('2025-03-01T12:00:00.000Z') };

async function compose(overrides: Partial<OutgoingMessage> = {}): Promise<string> {
  const raw = await composeMime(outgoingMessage(overrides), OPTIONS);
  return raw.toString('latin1');
}

describe('composeMime', () => {
  it('writes the envelope headers of the message', async () => {
    // Prepare
    const message = {
      to: [{ name: 'Ana', address: 'ana@example.org' }],
      cc: [{ address: 'cc@example.org' }],
      replyTo: [{ address: 'support@example.com' }],
    };

    // Act
    const raw = await compose(message);

    // Assess
    expect(headerValue(raw, 'From')).toBe('Shop <orders@example.com>');
    expect(headerValue(raw, 'To')).toBe('Ana <ana@example.org>');
    expect(headerValue(raw, 'Cc')).toBe('cc@example.org');
    expect(headerValue(raw, 'Reply-To')).toBe('support@example.com');
    expect(headerValue(raw, 'Subject')).toBe('Your receipt');
    expect(headerValue(raw, 'MIME-Version')).toBe('1.0');
  });

  it('builds the Message-ID from Baton’s id on the sending domain and dates the message', async () => {
    // Prepare / Act
    const raw = await compose();

    // Assess
    expect(headerValue(raw, 'Message-ID')).toBe('<msg_01TEST@example.com>');
    expect(headerValue(raw, 'Date')).toBe('Sat, 01 Mar 2025 12:00:00 +0000');
  });

  it('never writes Bcc recipients into the headers', async () => {
    // Prepare
    const message = { bcc: [{ address: 'hidden@example.org' }] };

    // Act
    const raw = await compose(message);

    // Assess
    expect(headerValues(raw, 'Bcc')).toEqual([]);
    expect(raw).not.toContain('hidden@example.org');
  });

  it('turns the LF and CRLF line ends of the bodies into CRLF', async () => {
    // Prepare
    const message = { text: 'one\ntwo\r\nthree', html: '<p>one</p>\n<p>two</p>' };

    // Act
    const raw = await compose(message);

    // Assess
    expect(raw.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(raw).toContain('\r\n\r\none\r\ntwo\r\nthree\r\n');
  });

  // nodemailer's `newline: 'win'` rewrites LF only; composeMime turns every CR/CRLF into LF first.
  it('ends every line with CRLF, never a bare CR', async () => {
    // Prepare
    const message = { text: 'one\ntwo\r\nthree\rfour', html: '<p>one</p>\r<p>two</p>' };

    // Act
    const raw = await compose(message);

    // Assess
    expect(raw.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  });

  it('keeps every line within 998 octets, bodies included', async () => {
    // Prepare
    const message = {
      subject: `${'Ünïcödé '.repeat(60)}`,
      text: 'x'.repeat(5000),
      html: `<p>${'y'.repeat(5000)}</p>`,
      headers: { 'X-Note': 'word '.repeat(150) },
    };

    // Act
    const raw = await compose(message);

    // Assess
    expect(longestLine(raw)).toBeLessThanOrEqual(998);
  });

  it('encodes a non-ASCII subject as an RFC 2047 encoded-word that decodes back', async () => {
    // Prepare
    const subject = 'See on õhin test';

    // Act
    const raw = await compose({ subject });

    // Assess
    expect(headerValue(raw, 'Subject')).toBe('=?UTF-8?Q?See_on_=C3=B5hin_test?=');
    expect(decodeWords(headerValue(raw, 'Subject'))).toBe(subject);
  });

  it('folds a long non-ASCII subject into encoded-words of at most 75 characters', async () => {
    // Prepare
    const subject =
      'Testin command line kirja õkva kakva mõni tõnis kõllas põllas tõllas rõllas jušla kušla tušla musla';

    // Act
    const raw = await compose({ subject });

    // Assess
    expect(headerBlock(raw)).toMatch(/^Subject: [^\r\n]+\r\n [^\r\n]+\r\n [^\r\n]+/m);
    expect(Math.max(...linesOf(headerBlock(raw)).map((l) => l.length))).toBeLessThanOrEqual(78);
    for (const word of encodedWords(headerValue(raw, 'Subject'))) expect(word.length).toBeLessThanOrEqual(75);
    expect(decodeWords(headerValue(raw, 'Subject'))).toBe(subject);
  });

  it('encodes a Unicode display name', async () => {
    // Prepare
    const message = { to: [{ name: 'Zoë Ångström', address: 'zoe@example.org' }] };

    // Act
    const raw = await compose(message);

    // Assess
    const to = headerValue(raw, 'To');
    expect(to).toMatch(/^[\u0020-\u007e]+$/);
    expect(decodeWords(to)).toBe('Zoë Ångström <zoe@example.org>');
  });

  it('adds the RFC 8058 one-click unsubscribe headers for listUnsubscribe', async () => {
    // Prepare
    const message = { stream: 'broadcast' as const, listUnsubscribe: 'https://example.com/unsub?u=1' };

    // Act
    const raw = await compose(message);

    // Assess
    expect(headerValue(raw, 'List-Unsubscribe')).toBe('<https://example.com/unsub?u=1>');
    expect(headerValue(raw, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
  });

  it('adds no unsubscribe headers to a message without listUnsubscribe', async () => {
    // Prepare / Act
    const raw = await compose();

    // Assess
    expect(headerValues(raw, 'List-Unsubscribe')).toEqual([]);
    expect(headerValues(raw, 'List-Unsubscribe-Post')).toEqual([]);
  });

  it('shows the original sender of a rewritten message in X-Original-From and Reply-To', async () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const message = applySenderPolicy(
      key,
      validateSendRequest(sendBody({ from: 'Ana <ana@legacy.example>' })),
    );

    // Act
    const raw = (await composeMime(message, OPTIONS)).toString('latin1');

    // Assess
    expect(headerValue(raw, 'From')).toBe('Ana via Baton <relay@example.com>');
    expect(headerValue(raw, 'X-Original-From')).toBe('Ana <ana@legacy.example>');
    expect(headerValue(raw, 'Reply-To')).toBe('Ana <ana@legacy.example>');
  });

  it('passes custom headers through', async () => {
    // Prepare
    const message = { headers: { 'X-Order-Id': '123', 'In-Reply-To': '<a@example.com>' } };

    // Act
    const raw = await compose(message);

    // Assess
    expect(headerValue(raw, 'X-Order-Id')).toBe('123');
    expect(headerValue(raw, 'In-Reply-To')).toBe('<a@example.com>');
  });

  it('puts text and html side by side as multipart/alternative', async () => {
    // Prepare
    const message = { text: 'plain', html: '<p>rich</p>' };

    // Act
    const raw = await compose(message);

    // Assess
    expect(headerValue(raw, 'Content-Type')).toMatch(/^multipart\/alternative; boundary="[^"]+"$/);
    expect(raw).toContain(
      'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nplain\r\n',
    );
    expect(raw).toContain(
      'Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>rich</p>\r\n',
    );
  });

  it('relates an inline cid: attachment to the html part', async () => {
    // Prepare
    const message = {
      html: '<img src="cid:logo@shop">',
      attachments: [
        {
          filename: 'logo.png',
          contentType: 'image/png',
          content: 'aGVsbG8=',
          disposition: 'inline' as const,
          contentId: 'logo@shop',
        },
      ],
    };

    // Act
    const raw = await compose(message);

    // Assess
    expect(raw).toMatch(/Content-Type: multipart\/related; type="text\/html";\r\n boundary=/);
    expect(raw).toContain(
      'Content-Type: image/png; name=logo.png\r\nContent-ID: <logo@shop>\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline; filename=logo.png\r\n\r\naGVsbG8=\r\n',
    );
  });

  it('attaches a file as base64 with the content as sent', async () => {
    // Prepare
    const content = Buffer.from('%PDF-1.4 receipt').toString('base64');
    const message = {
      attachments: [
        { filename: 'r.pdf', contentType: 'application/pdf', content, disposition: 'attachment' as const },
      ],
    };

    // Act
    const raw = await compose(message);

    // Assess
    expect(headerValue(raw, 'Content-Type')).toMatch(/^multipart\/mixed; boundary="[^"]+"$/);
    expect(raw).toContain(
      `Content-Type: application/pdf; name=r.pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=r.pdf\r\n\r\n${content}\r\n`,
    );
  });

  it('writes the same bytes for the same message, id and date apart from the MIME boundaries', async () => {
    // Prepare
    const strip = (raw: string) => raw.replace(/--_NmP-[0-9a-f]+-Part_\d+/g, 'BOUNDARY');

    // Act
    const [a, b] = await Promise.all([compose(), compose()]);

    // Assess
    expect(strip(a)).toBe(strip(b));
  });

  // DESIGN §4: validateSendRequest sanitizes the html, so what is composed is already clean.
  it('strips scripts, event handlers and javascript: URLs from the html', async () => {
    // Prepare
    const message = validateSendRequest(
      sendBody({
        html: '<p onclick="steal()">Hi</p><script>alert(1)</script><a href="javascript:alert(2)">x</a>',
      }),
    );

    // Act
    const raw = (await composeMime(message, OPTIONS)).toString('latin1');

    // Assess
    expect(raw).not.toMatch(/<script|onclick=|javascript:/i);
  });

  describe('the longest values the API accepts', () => {
    // An unbreakable word is folded onto its own line after one space: the limits of validation
    // (send-request.ts, address.ts) are what keeps such a line within RFC 5322's 998 octets.
    it('keeps every line within 998 octets for a header value of the maximum length', async () => {
      // Prepare
      const message = validateSendRequest(sendBody({ headers: { 'X-Long': 'y'.repeat(MAX_HEADER_VALUE) } }));

      // Act
      const raw = await composeMime(message, OPTIONS);

      // Assess
      expect(longestLine(raw)).toBeLessThanOrEqual(998);
    });

    it('keeps every line within 998 octets for a listUnsubscribe URL of the maximum length', async () => {
      // Prepare
      const url = `https://example.com/${'u'.repeat(MAX_LIST_UNSUBSCRIBE - 20)}`;
      const message = validateSendRequest(sendBody({ stream: 'broadcast', listUnsubscribe: url }));

      // Act
      const raw = await composeMime(message, OPTIONS);

      // Assess
      expect(longestLine(raw)).toBeLessThanOrEqual(998);
    });

    it('keeps every line within 998 octets for a display name of the maximum length', async () => {
      // Prepare
      const message = validateSendRequest(
        sendBody({ from: `${'N'.repeat(MAX_DISPLAY_NAME)} <orders@example.com>` }),
      );

      // Act
      const raw = await composeMime(message, OPTIONS);

      // Assess
      expect(longestLine(raw)).toBeLessThanOrEqual(998);
    });

    it('keeps every line within 998 octets for a 997-character subject', async () => {
      // Prepare
      const message = validateSendRequest(sendBody({ subject: 'x'.repeat(997) }));

      // Act
      const raw = await composeMime(message, OPTIONS);

      // Assess
      expect(longestLine(raw)).toBe(998);
    });
  });
});
