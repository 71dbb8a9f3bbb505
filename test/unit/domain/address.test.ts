import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  asciiDomain,
  domainOf,
  normaliseAddress,
  parseAddrSpec,
  parseMailbox,
} from '../../../lambdas/domain/address.ts';

const PLAIN = 'must be a plain address like name@example.com (no spaces, quotes, comments or brackets)';

describe('parseMailbox', () => {
  it('accepts a bare address', () => {
    // Prepare / Act
    const result = parseMailbox('ana@example.org');

    // Assess
    expect(result).toEqual({ ok: true, value: { address: 'ana@example.org' } });
  });

  it('accepts a display name with the address in angle brackets', () => {
    // Prepare / Act
    const result = parseMailbox('Ana Lima <ana@example.org>');

    // Assess
    expect(result).toEqual({ ok: true, value: { name: 'Ana Lima', address: 'ana@example.org' } });
  });

  it('accepts a quoted display name with the characters that need quoting', () => {
    // Prepare / Act
    const result = parseMailbox('"Shop, Inc. (EU)" <orders@example.com>');

    // Assess
    expect(result).toEqual({ ok: true, value: { name: 'Shop, Inc. (EU)', address: 'orders@example.com' } });
  });

  it('keeps a Unicode display name for the MIME composer to encode', () => {
    // Prepare / Act
    const result = parseMailbox('Zoë Ångström <zoe@example.org>');

    // Assess
    expect(result).toEqual({ ok: true, value: { name: 'Zoë Ångström', address: 'zoe@example.org' } });
  });

  it('drops an empty display name', () => {
    // Prepare / Act
    const result = parseMailbox('<ana@example.org>');

    // Assess
    expect(result).toEqual({ ok: true, value: { address: 'ana@example.org' } });
  });

  it('converts an internationalised domain to lower-case punycode and keeps the local part as given', () => {
    // Prepare / Act
    const result = parseMailbox('Jeff <Jeff.Smith@BÜCHER.example>');

    // Assess
    expect(result).toEqual({
      ok: true,
      value: { name: 'Jeff', address: 'Jeff.Smith@xn--bcher-kva.example' },
    });
  });

  it('trims surrounding blanks', () => {
    // Prepare / Act
    const result = parseMailbox('  ana@example.org \t');

    // Assess
    expect(result).toEqual({ ok: true, value: { address: 'ana@example.org' } });
  });

  it.each([
    ['an empty string', '   ', 'must not be empty'],
    ['a quoted local part', '"ana smith"@example.org', PLAIN],
    ['a quoted local part hiding another domain', '"ana@evil.example"@example.org', PLAIN],
    ['a comment', 'ana(comment)@example.org', PLAIN],
    ['a group', 'Friends: ana@example.org;', PLAIN],
    ['a source route', '<@relay.example:ana@example.org>', PLAIN],
    ['an IP literal', 'ana@[192.0.2.1]', 'IP address literals are not accepted as a domain'],
    ['an IP address as the domain', 'ana@192.0.2.1', 'domain must not be an IP address'],
    ['two addresses', 'ana@example.org, bob@example.org', PLAIN],
    [
      'a second angle address after the first',
      'Ana <ana@example.org> <bob@example.org>',
      'display name with special characters must be quoted, e.g. "Name, Inc." <a@example.com>',
    ],
    ['a ">" without a "<"', 'ana@example.org>', 'has a ">" without a matching "<"'],
    ['an unterminated quoted name', '"Ana <ana@example.org>', 'display name has an unterminated quote'],
    [
      'a quote inside a quoted name',
      '"An"a" <ana@example.org>',
      'display name must not contain quotes or backslashes',
    ],
    [
      'a backslash inside a quoted name',
      '"An\\a" <ana@example.org>',
      'display name must not contain quotes or backslashes',
    ],
    [
      'a line feed in the name',
      'Ana\nBcc: eve@example.net <ana@example.org>',
      'must not contain control characters or line breaks',
    ],
    ['a bidi override', 'ana\u202e@example.org', 'must not contain control characters or line breaks'],
    ['a NUL', 'ana\u0000@example.org', 'must not contain control characters or line breaks'],
    ['no "@"', 'ana.example.org', 'must contain "@"'],
    ['two "@"', 'ana@bob@example.org', 'must contain exactly one "@"'],
    ['an empty local part', '@example.org', 'local part (before "@") must not be empty'],
    ['an empty domain', 'ana@', 'domain (after "@") must not be empty'],
    [
      'a UTF-8 local part (SES has no SMTPUTF8)',
      'zoë@example.org',
      'local part must be 7-bit ASCII (SES does not accept SMTPUTF8)',
    ],
    [
      'a leading dot',
      '.ana@example.org',
      "local part must be a dot-atom: letters, digits and !#$%&'*+/=?^_`{|}~- separated by single dots",
    ],
    [
      'two dots in a row',
      'ana..lima@example.org',
      "local part must be a dot-atom: letters, digits and !#$%&'*+/=?^_`{|}~- separated by single dots",
    ],
    [
      'a local part over 64 characters',
      `${'a'.repeat(65)}@example.org`,
      'local part must be at most 64 characters',
    ],
    ['a single-label domain', 'ana@localhost', 'domain must have at least two labels, e.g. example.com'],
    ['a trailing dot', 'ana@example.org.', 'domain must not end with a dot'],
    ['a label starting with a hyphen', 'ana@-example.org', 'domain has an invalid label'],
    ['an underscore in the domain', 'ana@ex_ample.org', 'domain has an invalid label'],
    ['a label over 63 characters', `ana@${'a'.repeat(64)}.org`, 'domain has an invalid label'],
    [
      'an address over 254 characters',
      `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.org`,
      'must be at most 254 characters',
    ],
  ])('refuses %s', (_what, input, message) => {
    // Prepare / Act
    const result = parseMailbox(input);

    // Assess
    expect(result).toEqual({ ok: false, message });
  });

  // Line breaks are refused before blanks are trimmed, like in any other header value.
  it('refuses an address with a line break at either end, like any header value', () => {
    // Prepare
    const inputs = [
      'ana@example.org\r\n',
      '\nana@example.org',
      'Ana <ana@example.org>\n',
      'ana@example.org\u2028',
    ];

    // Act
    const results = inputs.map((input) => parseMailbox(input).ok);

    // Assess
    expect(results).toEqual([false, false, false, false]);
  });

  it('never throws, whatever the input', () => {
    // Prepare
    const interesting = fc.constantFrom(...'<>"\\@.,;:()[] \t\r\n\u0000\u202eäÅ@＠'.split(''));
    const input = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc
        .array(fc.oneof(interesting, fc.string({ maxLength: 4 })), { maxLength: 30 })
        .map((parts) => parts.join('')),
      fc.emailAddress(),
    );

    // Act / Assess
    fc.assert(
      fc.property(input, (text) => {
        const result = parseMailbox(text);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 400 },
    );
  });

  it('only ever returns a 7-bit address without line breaks or controls', () => {
    // Prepare
    const input = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc
        .tuple(fc.string({ maxLength: 10 }), fc.emailAddress())
        .map(([name, address]) => `${name} <${address}>`),
    );

    // Act / Assess
    fc.assert(
      fc.property(input, (text) => {
        const result = parseMailbox(text);
        if (!result.ok) return;
        expect(result.value.address).toMatch(/^[\u0021-\u007e]+$/);
        // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting their absence
        expect(result.value.name ?? '').not.toMatch(/[\u0000-\u001f\u007f\u2028\u2029]/);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseAddrSpec', () => {
  it('refuses the display-name form: only a bare address is an addr-spec', () => {
    // Prepare / Act
    const result = parseAddrSpec('Ana <ana@example.org>');

    // Assess
    expect(result).toEqual({ ok: false, message: PLAIN });
  });

  it('returns the address with the domain lower-cased', () => {
    // Prepare / Act
    const result = parseAddrSpec('Ana.Lima@Example.ORG');

    // Assess
    expect(result).toEqual({ ok: true, value: 'Ana.Lima@example.org' });
  });
});

describe('asciiDomain', () => {
  it('maps full-width and upper-case characters the way IDNA does', () => {
    // Prepare / Act
    const result = asciiDomain('ＥＸＡＭＰＬＥ.org');

    // Assess
    expect(result).toEqual({ ok: true, value: 'example.org' });
  });

  it('refuses a domain that is not a hostname at all', () => {
    // Prepare / Act
    const result = asciiDomain('exa mple.org');

    // Assess
    expect(result).toEqual({ ok: false, message: 'domain is not a valid hostname' });
  });

  it('refuses a domain longer than 253 characters', () => {
    // Prepare
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.example.org`;

    // Act
    const result = asciiDomain(long);

    // Assess
    expect(result).toEqual({ ok: false, message: 'domain must be at most 253 characters' });
  });
});

describe('normaliseAddress', () => {
  it('lower-cases the whole address and converts the domain to punycode, as SES compares', () => {
    // Prepare / Act
    const key = normaliseAddress('  Ana.Lima@Bücher.Example ');

    // Assess
    expect(key).toBe('ana.lima@xn--bcher-kva.example');
  });

  it('gives nothing for something that is not an address', () => {
    // Prepare / Act
    const key = normaliseAddress('Ana <ana@example.org>');

    // Assess
    expect(key).toBeUndefined();
  });
});

describe('domainOf', () => {
  it('takes the lower-cased part after the last "@"', () => {
    // Prepare / Act
    const domain = domainOf('Ana@Mail.Example.ORG');

    // Assess
    expect(domain).toBe('mail.example.org');
  });
});
