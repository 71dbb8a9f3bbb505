/**
 * Every case of the shared header-injection corpus (header-injection.json) put to Baton where it
 * applies: as a subject, a custom header, a display name, an attachment filename or content type,
 * through `validateSendRequest` and, when accepted, `composeMime`. Each case carries Baton's
 * decision in one line; the SMTP-only cases are listed as not applicable with the reason.
 */
import { describe, expect, it } from 'vitest';
import { composeMime } from '../../../lambdas/domain/delivery/mime.ts';
import { validateSendRequest } from '../../../lambdas/domain/send/send-request.ts';
import { sendBody } from '../../support/builders.ts';
import { fixtureJson } from '../../support/fixtures.ts';
import { decodeWords, encodedWords, headerBlock, headerValue, linesOf } from '../../support/mime.ts';
import { problemOfSync } from '../../support/problems.ts';

interface InjectionCase {
  readonly id: string;
  readonly kind: string;
  readonly input: unknown;
  readonly expected: unknown;
}

const corpus = fixtureJson<{ readme: string; cases: InjectionCase[] }>('header-injection.json');
const byId = new Map(corpus.cases.map((c) => [c.id, c]));

function expectedOf<T>(id: string): T {
  const c = byId.get(id);
  if (!c) throw new Error(`no case ${id} in header-injection.json`);
  return c.expected as T;
}

function input<T>(id: string): T {
  const c = byId.get(id);
  if (!c) throw new Error(`no case ${id} in header-injection.json`);
  return c.input as T;
}

async function composed(body: Record<string, unknown>): Promise<string> {
  const raw = await composeMime(validateSendRequest(sendBody(body)), {
    id: 'msg_1',
    date: new Date('2025-03-01T12:00:00Z'),
  });
  return raw.toString('latin1');
}

function refused(body: Record<string, unknown>) {
  return problemOfSync(() => validateSendRequest(sendBody(body))).errors;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: what a header must never carry
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** The two pyev-addr-lf cases: a line feed at either end of an address, refused (not trimmed). */
const TRIMMED_AWAY = ['my@example.com\n', '\nmy@example.com'];

interface Decision {
  /** Baton's decision for the case, in one line. */
  readonly decision: string;
  readonly check: () => void | Promise<void>;
}

const DECISIONS: Readonly<Record<string, Decision>> = {
  'nm-proto-prepared-bcc': {
    decision:
      'a header value must be a string (422); CRLF in it is refused (422); an own __proto__ key is dropped',
    check: async () => {
      const c = input<{ header: string; value_json: string }>('nm-proto-prepared-bcc');
      const smuggled = JSON.parse(c.value_json) as { value: string };
      // Only the path: the message is wrong today (see "wrong type" in send-request.test.ts).
      expect(refused({ headers: { [c.header]: smuggled } })?.map((e) => e.path)).toEqual(['headers.x-track']);
      expect(refused({ headers: { [c.header]: smuggled.value } })).toEqual([
        { path: 'headers.x-track', message: 'header value must not contain CR, LF or NUL' },
      ]);
      const body = JSON.parse(`{"headers":{"__proto__":${c.value_json}}}`) as Record<string, unknown>;
      const message = validateSendRequest(sendBody(body));
      expect(Object.getPrototypeOf(message.headers)).toBe(Object.prototype);
      expect(message.headers).toEqual({});
      expect(await composed(body)).not.toMatch(/^Bcc:/im);
    },
  },
  'nm-header-key-crlf': {
    decision: 'a header name with CR/LF is refused (422)',
    check: () => {
      const c = input<{ header_name: string; value: string }>('nm-header-key-crlf');
      expect(refused({ headers: { [c.header_name]: c.value } })).toEqual([
        { path: `headers.${c.header_name}`, message: 'header name must be printable ASCII without ":"' },
      ]);
    },
  },
  'nm-control-chars': {
    decision:
      'NUL is refused and Message-ID reserved (422); other controls are allowed but never reach the header block raw (encoded or stripped)',
    check: async () => {
      const c = input<Record<string, string>>('nm-control-chars');
      expect(refused({ headers: { 'message-id': c['message-id'], references: c.references } })).toEqual([
        {
          path: 'headers.message-id',
          message: 'header message-id is reserved and cannot be set through headers',
        },
        { path: 'headers.references', message: 'header value must not contain CR, LF or NUL' },
      ]);
      const raw = await composed({
        subject: c.subject,
        headers: { 'x-custom': c['x-custom'], 'in-reply-to': c['in-reply-to'] },
      });
      expect(headerBlock(raw)).not.toMatch(CONTROL);
      expect(decodeWords(headerValue(raw, 'Subject'))).toBe('in\u0001voice');
    },
  },
  'nm-filename-tab': {
    decision: 'a TAB in a filename is allowed and encoded as nodemailer expects',
    check: async () => {
      const c = input<{ filename: string; contentType: string }>('nm-filename-tab');
      const raw = await composed({ attachments: [{ ...c, content: 'aGk=' }] });
      for (const line of expectedOf<string[]>('nm-filename-tab')) expect(linesOf(raw)).toContain(line);
    },
  },
  'nm-filename-del': {
    decision: 'a DEL in a filename is allowed and encoded as nodemailer expects',
    check: async () => {
      const c = input<{ filename: string; contentType: string }>('nm-filename-del');
      const raw = await composed({ attachments: [{ ...c, content: 'aGk=' }] });
      for (const line of expectedOf<string[]>('nm-filename-del')) expect(linesOf(raw)).toContain(line);
    },
  },
  'nm-filename-crlf': {
    decision: 'stricter than nodemailer: a filename with CR/LF is refused (422) rather than encoded',
    check: () => {
      const c = input<{ filename: string; contentType: string }>('nm-filename-crlf');
      expect(refused({ attachments: [{ ...c, content: 'aGk=' }] })).toEqual([
        { path: 'attachments[0].filename', message: 'filename must not contain CR, LF or NUL' },
      ]);
    },
  },
  'nm-param-name-crlf': {
    decision: 'contentType is a bare type/subtype: parameters, let alone CRLF in them, are refused (422)',
    check: () => {
      const c = input<{ value: string; params: Record<string, string> }>('nm-param-name-crlf');
      const [name, value] = Object.entries(c.params)[0] ?? ['', ''];
      expect(
        refused({
          attachments: [{ filename: 'a.txt', content: 'aGk=', contentType: `${c.value}; ${name}=${value}` }],
        }),
      ).toEqual([{ path: 'attachments[0].contentType', message: 'contentType must look like type/subtype' }]);
    },
  },
  'nm-value-token-ctl': {
    decision: 'a content type with control characters is refused (422), not silently cleaned',
    check: () => {
      const c = input<{ value: string }>('nm-value-token-ctl');
      expect(
        refused({ attachments: [{ filename: 'a.txt', content: 'aGk=', contentType: c.value }] }),
      ).toEqual([{ path: 'attachments[0].contentType', message: 'contentType must look like type/subtype' }]);
    },
  },
  'nm-smtp-name-crlf': {
    decision:
      'not applicable: Baton takes SMTP (the front door) but never speaks it as a client (it sends through the SES API, so no EHLO name of its own exists); the payload as a subject is refused (422)',
    check: () => {
      const c = input<{ name: string }>('nm-smtp-name-crlf');
      expect(refused({ subject: c.name })).toEqual([
        { path: 'subject', message: 'subject must not contain CR, LF or NUL' },
      ]);
    },
  },
  'nm-smtp-name-bare-cr-lf': {
    decision:
      'not applicable (Baton is never an SMTP client); bare CR, bare LF and CRLF runs in a header value are each refused (422)',
    check: () => {
      for (const value of input<string[]>('nm-smtp-name-bare-cr-lf')) {
        expect(refused({ headers: { 'X-Host': value } })).toEqual([
          { path: 'headers.X-Host', message: 'header value must not contain CR, LF or NUL' },
        ]);
      }
    },
  },
  'dj-subject-lf': {
    decision: 'a subject with LF is refused (422), like Django',
    check: () => {
      const c = input<{ subject: string }>('dj-subject-lf');
      expect(refused({ subject: c.subject })).toEqual([
        { path: 'subject', message: 'subject must not contain CR, LF or NUL' },
      ]);
    },
  },
  'dj-to-display-name-lf': {
    decision: 'a display name with LF is refused (422), like Django',
    check: () => {
      const c = input<{ to: string[] }>('dj-to-display-name-lf');
      expect(refused({ to: c.to })).toEqual([
        { path: 'to[0]', message: 'invalid address: must not contain control characters or line breaks' },
      ]);
    },
  },
  'pyev-addr-lf': {
    decision: 'an LF inside an address is refused (422); at either end see the trim bug below',
    check: () => {
      const others = input<string[]>('pyev-addr-lf').filter((a) => !TRIMMED_AWAY.includes(a));
      expect(others).toHaveLength(4);
      for (const address of others) {
        expect(refused({ to: [address] })?.map((e) => e.path)).toEqual(['to[0]']);
      }
    },
  },
  'nm-encodeword-q': {
    decision: 'a non-ASCII subject is written as the same Q encoded-word nodemailer expects',
    check: async () => {
      const raw = await composed({ subject: input<string>('nm-encodeword-q') });
      expect(headerValue(raw, 'Subject')).toBe(expectedOf<string>('nm-encodeword-q'));
    },
  },
  'nm-encodeword-b': {
    decision: 'the composer picks Q for mostly-ASCII text rather than B; either decodes to the same subject',
    check: async () => {
      const subject = input<string>('nm-encodeword-b');
      const raw = await composed({ subject });
      expect(decodeWords(expectedOf<string>('nm-encodeword-b'))).toBe(subject);
      expect(decodeWords(headerValue(raw, 'Subject'))).toBe(subject);
    },
  },
  'nm-encodewords-ascii-range': {
    decision:
      'quotes and apostrophes in Unicode subjects round-trip inside encoded-words of at most 75 characters',
    check: async () => {
      for (const subject of input<string[]>('nm-encodewords-ascii-range')) {
        const value = headerValue(await composed({ subject }), 'Subject');
        expect(decodeWords(value)).toBe(subject);
        for (const word of encodedWords(value)) expect(word.length).toBeLessThanOrEqual(75);
      }
    },
  },
  'nm-encodewords-qp-split': {
    decision:
      'a long repetitive Unicode subject round-trips, split into encoded-words of at most 75 characters',
    check: async () => {
      const subject = input<string>('nm-encodewords-qp-split');
      const value = headerValue(await composed({ subject }), 'Subject');
      expect(decodeWords(value)).toBe(subject);
      for (const word of encodedWords(value)) expect(word.length).toBeLessThanOrEqual(75);
    },
  },
  'nm-encodewords-b64-split': {
    decision:
      'a subject of mostly non-ASCII words round-trips, split into encoded-words of at most 75 characters',
    check: async () => {
      const subject = input<string>('nm-encodewords-b64-split');
      const value = headerValue(await composed({ subject }), 'Subject');
      expect(decodeWords(value)).toBe(subject);
      for (const word of encodedWords(value)) expect(word.length).toBeLessThanOrEqual(75);
    },
  },
  'nm-foldlines-header': {
    decision: 'a long Unicode subject is folded onto continuation lines of at most 78 characters',
    check: async () => {
      const subject = input<string>('nm-foldlines-header').replace(/^Subject: /, '');
      const raw = await composed({ subject });
      expect(headerBlock(raw)).toMatch(/^Subject: [^\r\n]+\r\n [^\r\n]+/m);
      for (const line of linesOf(headerBlock(raw))) expect(line.length).toBeLessThanOrEqual(78);
      expect(decodeWords(headerValue(raw, 'Subject'))).toBe(subject);
    },
  },
  'nm-foldlines-one-long-word': {
    decision:
      'a client-supplied encoded-word is text to us: it is re-encoded and folded, never written as one over-long line',
    check: async () => {
      const subject = input<string>('nm-foldlines-one-long-word').replace(/^Subject: /, '');
      const raw = await composed({ subject });
      for (const line of linesOf(headerBlock(raw))) expect(line.length).toBeLessThanOrEqual(78);
      expect(decodeWords(headerValue(raw, 'Subject'))).toBe(subject);
    },
  },
  'nm-split-malformed-utf8': {
    decision:
      'not applicable as such (JSON strings cannot carry stray bytes); "=80"×60 as a subject is kept literally',
    check: async () => {
      const subject = '=80'.repeat(60);
      const raw = await composed({ subject });
      expect(decodeWords(headerValue(raw, 'Subject'))).toBe(subject);
    },
  },
  'dj-folding-white-space': {
    decision: 'a long ASCII subject is folded at a space with a space continuation, as Django expects',
    check: async () => {
      const raw = await composed({ subject: input<string>('dj-folding-white-space') });
      expect(raw).toContain(
        'Subject: Long subject lines that get wrapped should contain a space\r\n continuation character to comply with RFC 822\r\n',
      );
    },
  },
  'relay-hard-bounce-encoded-source': {
    decision:
      'an encoded-word display name is refused (422): readers decode it, quoted or not, into a name nobody checked (here one showing lcrouch@mozilla.com)',
    check: () => {
      const from = input<string>('relay-hard-bounce-encoded-source');
      expect(refused({ from })).toEqual([
        {
          path: 'from',
          message:
            'invalid address: display name must be plain text, not an RFC 2047 encoded-word (send Unicode; Baton encodes it)',
        },
      ]);
    },
  },
  'hk-encoded-word-decodes-to-crlf': {
    decision:
      'an encoded-word that decodes to CRLF is only text: no X-Injected line ever appears in the message',
    check: async () => {
      const [line] = input<{ header_lines: string[] }>('hk-encoded-word-decodes-to-crlf').header_lines;
      const subject = (line ?? '').replace(/^Subject: /, '').replace(/\r\n$/, '');
      const raw = await composed({ subject });
      expect(raw).not.toMatch(/^X-Injected:/im);
    },
  },
  'hk-repeated-message-id': {
    decision: 'Message-Id cannot be set (reserved, 422); a header-looking value stays inside its own header',
    check: async () => {
      expect(refused({ headers: { 'Message-Id': '<a@example.com>' } })).toEqual([
        {
          path: 'headers.Message-Id',
          message: 'header Message-Id is reserved and cannot be set through headers',
        },
      ]);
      const raw = await composed({ headers: { 'X-Ref': 'Message-Id: X-Injected: yes' } });
      expect(raw).not.toMatch(/^X-Injected:/im);
      expect(headerValue(raw, 'X-Ref')).toBe('Message-Id: X-Injected: yes');
    },
  },
  'hk-repeated-subject': {
    decision:
      'Subject cannot be repeated through headers (reserved in any case, 422); a header-looking subject stays one header',
    check: async () => {
      expect(refused({ headers: { Subject: 'one', SUBJECT: 'X-Injected: yes' } })).toEqual([
        { path: 'headers.Subject', message: 'header Subject is reserved and cannot be set through headers' },
        { path: 'headers.SUBJECT', message: 'header SUBJECT is reserved and cannot be set through headers' },
      ]);
      const raw = await composed({ subject: 'X-Injected: yes' });
      expect(raw).not.toMatch(/^X-Injected:/im);
    },
  },
  'hk-multiline-reason': {
    decision:
      'not applicable: SES diagnostic text only reaches the status API (JSON), never an outgoing message or header',
    check: () => {
      const c = input<{ reason: string }>('hk-multiline-reason');
      expect(JSON.parse(JSON.stringify({ reason: c.reason }))).toEqual({ reason: c.reason });
    },
  },
};

describe('header-injection.json corpus', () => {
  it('has a decision for every case and no decision without a case', () => {
    // Prepare
    const ids = corpus.cases.map((c) => c.id);

    // Act
    const undecided = ids.filter((id) => !(id in DECISIONS));
    const stale = Object.keys(DECISIONS).filter((id) => !byId.has(id));

    // Assess
    expect(corpus.cases).toHaveLength(27);
    expect(undecided).toEqual([]);
    expect(stale).toEqual([]);
  });

  for (const c of corpus.cases) {
    const d = DECISIONS[c.id];
    if (!d) continue;
    it(`${c.id}: ${d.decision}`, async () => {
      // Prepare / Act / Assess (the case's own steps)
      await d.check();
    });
  }

  // An LF at either end of an address is refused, not trimmed away.
  it('pyev-addr-lf: refuses an address with a line feed at either end', () => {
    // Prepare
    const atEnds = input<string[]>('pyev-addr-lf').filter((a) => TRIMMED_AWAY.includes(a));

    // Act
    const results = atEnds.map((address) => refused({ to: [address] })?.map((e) => e.path));

    // Assess
    expect(results).toEqual([['to[0]'], ['to[0]']]);
  });
});
