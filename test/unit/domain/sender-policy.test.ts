import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressesShownIn, domainAllowed } from '../../../lambdas/domain/address.ts';
import { applySenderPolicy, formatMailbox } from '../../../lambdas/domain/send/sender-policy.ts';
import { outgoingMessage } from '../../support/builders.ts';
import { issueApiKey } from '../../support/fakes.ts';
import { problemOfSync } from '../../support/problems.ts';

describe('domainAllowed', () => {
  it.each([
    ['the domain itself', 'example.com', true],
    ['a subdomain', 'mail.example.com', true],
    ['a deeper subdomain', 'eu.mail.example.com', true],
    ['another case', 'Mail.EXAMPLE.com', true],
    ['a domain that merely ends the same', 'evilexample.com', false],
    ['a parent of the domain', 'com', false],
    ['an unrelated domain', 'example.org', false],
  ])('judges %s', (_what, domain, allowed) => {
    // Prepare / Act
    const result = domainAllowed(domain, ['Example.com']);

    // Assess
    expect(result).toBe(allowed);
  });

  it('allows nothing when the key lists no domain', () => {
    // Prepare / Act
    const result = domainAllowed('example.com', []);

    // Assess
    expect(result).toBe(false);
  });
});

describe('applySenderPolicy', () => {
  it('leaves a message from an allowed domain untouched', () => {
    // Prepare
    const { key } = issueApiKey({ allowedDomains: ['example.com'] });
    const message = outgoingMessage({ from: { name: 'Shop', address: 'orders@mail.example.com' } });

    // Act
    const result = applySenderPolicy(key, message);

    // Assess
    expect(result).toBe(message);
  });

  it('refuses a From outside the key’s domains with 403 when the policy is reject', () => {
    // Prepare
    const { key } = issueApiKey({ allowedDomains: ['example.com', 'example.net'], senderPolicy: 'reject' });
    const message = outgoingMessage({ from: { address: 'ana@legacy.example' } });

    // Act
    const p = problemOfSync(() => applySenderPolicy(key, message));

    // Assess
    expect(p).toEqual({
      type: 'urn:baton:problem:forbidden',
      title: 'Not allowed for this API key',
      status: 403,
      detail: 'This API key may not send from the domain legacy.example; allowed: example.com, example.net.',
      code: 'forbidden',
    });
  });

  it('says so when the key may send from no domain at all', () => {
    // Prepare
    const { key } = issueApiKey({ allowedDomains: [] });

    // Act
    const p = problemOfSync(() => applySenderPolicy(key, outgoingMessage()));

    // Assess
    expect(p.detail).toBe('This API key may not send from the domain example.com; allowed: none.');
  });

  it('refuses instead of rewriting when a rewrite key has no default address', () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite' });
    const message = outgoingMessage({ from: { address: 'ana@legacy.example' } });

    // Act
    const p = problemOfSync(() => applySenderPolicy(key, message));

    // Assess
    expect(p.status).toBe(403);
    expect(p.detail).toBe('This API key may not send from the domain legacy.example; allowed: example.com.');
  });

  it('rewrites the From to the key’s address with the original name and no address in it, keeping the original in Reply-To and originalFrom', () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const message = outgoingMessage({ from: { name: 'Ana', address: 'ana@legacy.example' } });

    // Act
    const result = applySenderPolicy(key, message);

    // Assess
    expect(result).toEqual({
      ...message,
      from: { name: 'Ana via Baton', address: 'relay@example.com' },
      replyTo: [{ name: 'Ana', address: 'ana@legacy.example' }],
      originalFrom: { name: 'Ana', address: 'ana@legacy.example' },
    });
  });

  it.each([
    ['no name', undefined, 'ana via Baton'],
    ['a name that is only the address', 'ana@legacy.example', 'ana via Baton'],
    ['the address in brackets after the name', 'Ana (ana@legacy.example)', 'Ana via Baton'],
    ['the address in angle brackets inside the name', 'Ana Lima <ana@legacy.example>', 'Ana Lima via Baton'],
    ['the address with a mixed-case domain', 'Ana - ANA@Legacy.Example', 'Ana via Baton'],
  ])('writes a rewritten From with %s without an address in its name', (_what, name, expected) => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const from =
      name === undefined ? { address: 'ana@legacy.example' } : { name, address: 'ana@legacy.example' };

    // Act
    const result = applySenderPolicy(key, outgoingMessage({ from }));

    // Assess
    expect(result.from).toEqual({ name: expected, address: 'relay@example.com' });
    expect(result.originalFrom).toEqual(from);
  });

  it.each([
    [
      'pieces that join into an address once the original is cut out',
      'support@ana@legacy.example paypal.com',
    ],
    ['its own domain after a bare at sign', 'Ana (@legacy.example)'],
  ])('writes a rewritten From whose name had %s without any address shown', (_what, name) => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });

    // Act
    const result = applySenderPolicy(key, outgoingMessage({ from: { name, address: 'ana@legacy.example' } }));

    // Assess
    expect(addressesShownIn(result.from.name ?? '')).toEqual([]);
    expect(result.from.name).not.toMatch(/@\s*\S+\.\S/);
  });

  it('never writes a rewritten From whose name shows an address, whatever pieces the original name joins', () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const piece = fc.constantFrom(
      'ana@legacy.example',
      '@legacy.example',
      'support',
      '@',
      '＠',
      'paypal.com',
      'paypal',
      '.com',
      ' ',
      '(',
      ')',
      '<',
      '>',
      '-',
      '·',
      'Ana',
    );
    const names = fc.array(piece, { minLength: 1, maxLength: 12 }).map((p) => p.join('').trim());

    // Act / Assess
    fc.assert(
      fc.property(names, (name) => {
        let result: ReturnType<typeof applySenderPolicy>;
        try {
          result = applySenderPolicy(key, outgoingMessage({ from: { name, address: 'ana@legacy.example' } }));
        } catch {
          return; // refused: the name showed another domain's address
        }
        expect(addressesShownIn(result.from.name ?? '')).toEqual([]);
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps a Reply-To the client gave when rewriting', () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const message = outgoingMessage({
      from: { address: 'ana@legacy.example' },
      replyTo: [{ address: 'support@legacy.example' }],
    });

    // Act
    const result = applySenderPolicy(key, message);

    // Assess
    expect(result.replyTo).toEqual([{ address: 'support@legacy.example' }]);
  });
});

describe('display names that show an address', () => {
  it('refuses a From whose name shows an address of another domain with 422 on the from path', () => {
    // Prepare
    const { key } = issueApiKey({ allowedDomains: ['example.com'] });
    const message = outgoingMessage({
      from: { name: 'support@paypal.com <support@paypal.com>', address: 'noreply@example.com' },
    });

    // Act
    const p = problemOfSync(() => applySenderPolicy(key, message));

    // Assess
    expect(p.status).toBe(422);
    expect(p.code).toBe('invalid_message');
    expect(p.errors).toEqual([
      {
        path: 'from',
        message:
          'display name must not show an address outside this key’s domains (paypal.com); allowed: example.com',
      },
    ]);
  });

  it.each([
    ['a full-width at sign', 'support＠paypal.com'],
    ['a small at sign and an ideographic full stop', 'support﹫paypal。com'],
    ['a zero-width space in the domain', 'support@pay\u200Bpal.com'],
    ['spaces around the at sign', 'Billing: support @ paypal.com'],
    ['an internationalised domain', 'security@bücher.example'],
    ['a subdomain of another domain', 'help@example.com.evil.example'],
    ['a full-width at sign and a middle dot', 'support＠paypal·com'],
    ['a full-width at sign and a Syriac full stop', 'support＠paypal\u0701com'],
    ['a full-width at sign and a Lisu tone letter', 'support＠paypal\uA4F8com'],
    ['a quote right before the at sign', "support'@paypal.com"],
    ['a label starting with a hyphen', 'support@-paypal.com'],
    ['a combining mark in the domain', 'support＠pay\u0336pal.com'],
    ['a space before a dot', 'support@paypal .com'],
    ['a combining grapheme joiner before the top-level domain', 'support＠paypal．\u034Fcom'],
    ['a braille blank after the at sign', 'support＠\u2800paypal.com'],
    ['a foreign domain right after an allowed address', 'orders@example.com@paypal.com'],
    ['a foreign domain after a bare at sign', 'PayPal (@paypal.com)'],
    ['an underscore in a domain label', 'support@paypal_login.com'],
    ['an IPv4 address as the domain', 'admin@192.0.2.1'],
    ['an IP literal as the domain', 'admin@[192.0.2.1]'],
  ])('refuses a From name with %s', (_what, name) => {
    // Prepare
    const { key } = issueApiKey({ allowedDomains: ['example.com'] });
    const message = outgoingMessage({ from: { name, address: 'noreply@example.com' } });

    // Act
    const p = problemOfSync(() => applySenderPolicy(key, message));

    // Assess
    expect(p.status).toBe(422);
    expect(p.errors?.[0]?.path).toBe('from');
  });

  it('refuses a foreign address in a Reply-To name, on that Reply-To’s path', () => {
    // Prepare
    const { key } = issueApiKey({ allowedDomains: ['example.com'] });
    const message = outgoingMessage({
      replyTo: [{ address: 'help@example.com' }, { name: 'ceo@bank.example', address: 'x@example.com' }],
    });

    // Act
    const p = problemOfSync(() => applySenderPolicy(key, message));

    // Assess
    expect(p.status).toBe(422);
    expect(p.errors?.map((e) => e.path)).toEqual(['replyTo[1]']);
  });

  it('refuses a foreign address in the name of a From that a rewrite key would rewrite', () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const message = outgoingMessage({ from: { name: 'support@paypal.com', address: 'ana@legacy.example' } });

    // Act
    const p = problemOfSync(() => applySenderPolicy(key, message));

    // Assess
    expect(p.status).toBe(422);
    expect(p.errors?.[0]?.path).toBe('from');
  });

  it.each([
    ['an address of the key’s domain', { name: 'orders@example.com', address: 'orders@example.com' }],
    [
      'an address of a subdomain of it',
      { name: 'Help: help@mail.example.com', address: 'noreply@example.com' },
    ],
    ['a price after an at sign', { name: 'Tickets @ 9.99', address: 'noreply@example.com' }],
    ['an at sign without a domain', { name: 'Ana @ home', address: 'noreply@example.com' }],
    ['a domain without an at sign', { name: 'paypal.com fan club', address: 'noreply@example.com' }],
  ])('accepts a From name with %s', (_what, from) => {
    // Prepare
    const { key } = issueApiKey({ allowedDomains: ['example.com'] });
    const message = outgoingMessage({ from });

    // Act
    const result = applySenderPolicy(key, message);

    // Assess
    expect(result).toBe(message);
  });

  it('accepts a Reply-To whose name is its own address, of any domain', () => {
    // Prepare
    const { key } = issueApiKey({ allowedDomains: ['example.com'] });
    const message = outgoingMessage({ replyTo: [{ name: 'Bob@Gmail.com', address: 'bob@gmail.com' }] });

    // Act
    const result = applySenderPolicy(key, message);

    // Assess
    expect(result).toBe(message);
  });
});

describe('formatMailbox', () => {
  it.each([
    ['a bare address', { address: 'ana@example.org' }, 'ana@example.org'],
    ['a plain name', { name: 'Ana Lima', address: 'ana@example.org' }, 'Ana Lima <ana@example.org>'],
    ['a name with a comma', { name: 'Shop, Inc', address: 'a@example.com' }, '"Shop, Inc" <a@example.com>'],
    [
      'a name with an address in it',
      { name: 'Ana (ana@legacy.example)', address: 'ana@legacy.example' },
      '"Ana (ana@legacy.example)" <ana@legacy.example>',
    ],
    [
      'a name with a quote and a backslash',
      { name: 'A "B" \\ C', address: 'a@example.com' },
      '"A \\"B\\" \\\\ C" <a@example.com>',
    ],
    ['a Unicode name', { name: 'Zoë', address: 'zoe@example.org' }, 'Zoë <zoe@example.org>'],
  ])('writes %s', (_what, mailbox, expected) => {
    // Prepare / Act
    const text = formatMailbox(mailbox);

    // Assess
    expect(text).toBe(expected);
  });
});
