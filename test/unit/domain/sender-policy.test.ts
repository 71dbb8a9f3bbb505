import { describe, expect, it } from 'vitest';
import { applySenderPolicy, domainAllowed, formatMailbox } from '../../../lambdas/domain/sender-policy.ts';
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

  it('rewrites the From to the key’s address, keeping the original in the name, Reply-To and originalFrom', () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const message = outgoingMessage({ from: { name: 'Ana', address: 'ana@legacy.example' } });

    // Act
    const result = applySenderPolicy(key, message);

    // Assess
    expect(result).toEqual({
      ...message,
      from: { name: 'Ana (ana@legacy.example) via Baton', address: 'relay@example.com' },
      replyTo: [{ name: 'Ana', address: 'ana@legacy.example' }],
      originalFrom: { name: 'Ana', address: 'ana@legacy.example' },
    });
  });

  it('names the original address alone when the original From had no name', () => {
    // Prepare
    const { key } = issueApiKey({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });
    const message = outgoingMessage({ from: { address: 'ana@legacy.example' } });

    // Act
    const result = applySenderPolicy(key, message);

    // Assess
    expect(result.from).toEqual({ name: 'ana@legacy.example via Baton', address: 'relay@example.com' });
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

describe('formatMailbox', () => {
  it.each([
    ['a bare address', { address: 'ana@example.org' }, 'ana@example.org'],
    ['a plain name', { name: 'Ana Lima', address: 'ana@example.org' }, 'Ana Lima <ana@example.org>'],
    ['a name with a comma', { name: 'Shop, Inc', address: 'a@example.com' }, '"Shop, Inc" <a@example.com>'],
    [
      'a name with an address in it',
      { name: 'Ana (ana@legacy.example) via Baton', address: 'r@example.com' },
      '"Ana (ana@legacy.example) via Baton" <r@example.com>',
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
