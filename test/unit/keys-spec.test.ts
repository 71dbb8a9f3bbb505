import { describe, expect, it } from 'vitest';
import {
  type ApiKeySpecInput,
  hashToken,
  issueKey,
  parseCidr,
  sourceAllowed,
  summarise,
  validateKeySpec,
} from '../../lambdas/domain/keys/api-key.ts';
import { issueApiKey } from '../support/fakes.ts';

const valid: ApiKeySpecInput = { tenant: 'acme', allowedDomains: ['example.com'] };

function errorsOf(input: ApiKeySpecInput) {
  const result = validateKeySpec(input);
  if (result.ok) throw new Error(`expected errors, got ${JSON.stringify(result.value)}`);
  return result.errors;
}

describe('validateKeySpec', () => {
  it('accepts a tenant and a domain, with scopes send and read, any source and the reject policy', () => {
    // Act
    const result = validateKeySpec(valid);

    // Assess
    expect(result).toEqual({
      ok: true,
      value: {
        tenant: 'acme',
        scopes: ['send', 'read'],
        allowedDomains: ['example.com'],
        allowedCidrs: [],
        senderPolicy: 'reject',
      },
    });
  });

  it('normalises domains to lower-case punycode and drops duplicates', () => {
    // Act
    const result = validateKeySpec({
      ...valid,
      allowedDomains: ['Example.COM', 'bücher.example', 'example.com'],
    });

    // Assess
    expect(result.ok && result.value.allowedDomains).toEqual(['example.com', 'xn--bcher-kva.example']);
  });

  it('keeps every setting of a full spec', () => {
    // Prepare: the spec, built afresh for the input and for the expected value
    const full = (): ApiKeySpecInput => ({
      tenant: 'Acme_EU-1',
      name: 'checkout service',
      scopes: ['send', 'suppressions', 'send'],
      allowedDomains: ['example.com', 'mail.example.org'],
      allowedCidrs: ['10.0.0.0/8', '2001:DB8::/32', '203.0.113.7'],
      senderPolicy: 'rewrite',
      defaultFrom: 'relay@mail.example.org',
      dailyQuota: 10_000,
      rateLimit: 20,
    });

    // Act
    const result = validateKeySpec(full());

    // Assess: the same, the repeated scope dropped and the IPv6 CIDR lower-cased
    expect(result).toEqual({
      ok: true,
      value: {
        ...full(),
        scopes: ['send', 'suppressions'],
        allowedCidrs: ['10.0.0.0/8', '2001:db8::/32', '203.0.113.7'],
      },
    });
  });

  it.each([
    ['a space', 'acme corp'],
    ['a dot', 'acme.eu'],
    ['a colon', 'acme:eu'],
    ['non-ASCII letters', 'äcme'],
    ['65 characters', 'a'.repeat(65)],
  ])('refuses a tenant with %s, which SES would refuse as a message tag', (_what, tenant) => {
    // Act
    const errors = errorsOf({ ...valid, tenant });

    // Assess
    expect(errors).toEqual([
      {
        path: 'tenant',
        message: `"${tenant}" must be 1-64 letters, digits, "_" or "-" (it becomes an SES message tag)`,
      },
    ]);
  });

  it('reports every problem at once, each under its field', () => {
    // Prepare
    const input: ApiKeySpecInput = {
      scopes: ['send', 'root'],
      allowedDomains: ['localhost', 'exa mple.com', '*.example.com', '192.168.0.1'],
      allowedCidrs: ['10.0.0.0/33', 'fe80::/129', '10.0.0.0/8/8', 'not-an-ip', '10.0.0.0/x', 'fe80::1%eth0'],
      senderPolicy: 'relay',
      dailyQuota: 0,
      rateLimit: 1.5,
    };

    // Act
    const errors = errorsOf(input);

    // Assess
    expect(errors).toEqual([
      { path: 'tenant', message: 'is required' },
      { path: 'scopes[1]', message: '"root" is not a scope; use send, read, suppressions, admin, webhooks' },
      {
        path: 'allowedDomains[0]',
        message: '"localhost": domain must have at least two labels, e.g. example.com',
      },
      { path: 'allowedDomains[1]', message: '"exa mple.com": domain is not a valid hostname' },
      { path: 'allowedDomains[2]', message: '"*.example.com": domain has an invalid label' },
      { path: 'allowedDomains[3]', message: '"192.168.0.1": domain must not be an IP address' },
      { path: 'allowedCidrs[0]', message: '"10.0.0.0/33": the prefix length must be a number from 0 to 32' },
      { path: 'allowedCidrs[1]', message: '"fe80::/129": the prefix length must be a number from 0 to 128' },
      { path: 'allowedCidrs[2]', message: '"10.0.0.0/8/8": the prefix length must be a number from 0 to 32' },
      { path: 'allowedCidrs[3]', message: '"not-an-ip": is not an IPv4 or IPv6 address or CIDR' },
      { path: 'allowedCidrs[4]', message: '"10.0.0.0/x": the prefix length must be a number from 0 to 32' },
      { path: 'allowedCidrs[5]', message: '"fe80::1%eth0": is not an IPv4 or IPv6 address or CIDR' },
      { path: 'senderPolicy', message: '"relay" must be "reject" or "rewrite"' },
      { path: 'dailyQuota', message: 'must be a positive whole number, got 0' },
      { path: 'rateLimit', message: 'must be a positive whole number, got 1.5' },
    ]);
  });

  it('requires at least one sending domain', () => {
    // Act
    const errors = errorsOf({ tenant: 'acme', allowedDomains: [] });

    // Assess
    expect(errors).toEqual([
      { path: 'allowedDomains', message: 'must list at least one domain the key may send from' },
    ]);
  });

  it('refuses an empty scope list instead of issuing a key that can do nothing', () => {
    // Act
    const errors = errorsOf({ ...valid, scopes: [] });

    // Assess
    expect(errors).toEqual([
      { path: 'scopes', message: 'must name at least one of send, read, suppressions, admin, webhooks' },
    ]);
  });

  it('requires a default From with the rewrite policy', () => {
    // Act
    const errors = errorsOf({ ...valid, senderPolicy: 'rewrite' });

    // Assess
    expect(errors).toEqual([
      { path: 'defaultFrom', message: 'is required with the rewrite policy (the From used instead)' },
    ]);
  });

  it('refuses a default From outside the key’s domains, which SES could not send from', () => {
    // Act
    const errors = errorsOf({ ...valid, senderPolicy: 'rewrite', defaultFrom: 'relay@other.example' });

    // Assess
    expect(errors).toEqual([
      {
        path: 'defaultFrom',
        message: '"relay@other.example" must be in one of the key\'s domains (example.com)',
      },
    ]);
  });

  it('accepts a default From in a subdomain of an allowed domain, as the sender policy does', () => {
    // Act
    const result = validateKeySpec({
      ...valid,
      senderPolicy: 'rewrite',
      defaultFrom: 'relay@mail.example.com',
    });

    // Assess
    expect(result.ok && result.value.defaultFrom).toBe('relay@mail.example.com');
  });

  it('refuses a default From that is not a bare address', () => {
    // Act
    const errors = errorsOf({ ...valid, senderPolicy: 'rewrite', defaultFrom: 'Relay <relay@example.com>' });

    // Assess
    expect(errors).toEqual([
      {
        path: 'defaultFrom',
        message:
          '"Relay <relay@example.com>": must be a plain address like name@example.com (no spaces, quotes, comments or brackets)',
      },
    ]);
  });

  it('refuses a default From with the reject policy, where it would never be used', () => {
    // Act
    const errors = errorsOf({ ...valid, defaultFrom: 'relay@example.com' });

    // Assess
    expect(errors).toEqual([{ path: 'defaultFrom', message: 'applies only to the rewrite policy' }]);
  });

  it('refuses a name with a line break', () => {
    // Act
    const errors = errorsOf({ ...valid, name: 'checkout\nservice' });

    // Assess
    expect(errors).toEqual([
      { path: 'name', message: 'must be at most 200 characters without control characters' },
    ]);
  });
});

describe('validateKeySpec: SMTP relay without AUTH', () => {
  it('keeps smtpWithoutAuth for a sending key with source networks', () => {
    // Act
    const result = validateKeySpec({ ...valid, allowedCidrs: ['10.1.0.0/16'], smtpWithoutAuth: true });

    // Assess
    expect(result.ok && result.value.smtpWithoutAuth).toBe(true);
    expect(result.ok && result.value.allowedCidrs).toEqual(['10.1.0.0/16']);
  });

  it('leaves the field out of a key that needs AUTH, as every key made before it', () => {
    // Act
    const result = validateKeySpec({ ...valid, smtpWithoutAuth: false });

    // Assess
    expect(result.ok && 'smtpWithoutAuth' in result.value).toBe(false);
  });

  it('refuses it without source networks, where any address on the internet would relay', () => {
    // Act
    const errors = errorsOf({ ...valid, smtpWithoutAuth: true });

    // Assess
    expect(errors).toEqual([
      {
        path: 'smtpWithoutAuth',
        message:
          'needs the source networks it relays for (--cidrs): without AUTH the source address is the only credential',
      },
    ]);
  });

  it('refuses it without the send scope', () => {
    // Act
    const errors = errorsOf({
      ...valid,
      scopes: ['read'],
      allowedCidrs: ['10.0.0.0/8'],
      smtpWithoutAuth: true,
    });

    // Assess
    expect(errors).toEqual([
      { path: 'smtpWithoutAuth', message: 'needs the send scope (relaying is sending)' },
    ]);
  });

  it('reports an invalid CIDR once, under the CIDR, not again as missing networks', () => {
    // Act
    const errors = errorsOf({ ...valid, allowedCidrs: ['10.0.0.0/33'], smtpWithoutAuth: true });

    // Assess
    expect(errors.map((e) => e.path)).toEqual(['allowedCidrs[0]']);
  });
});

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['203.0.113.7', '203.0.113.7'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:DB8::/32', '2001:db8::/32'],
    [' ::1/128 ', '::1/128'],
    ['10.0.0.0/08', '10.0.0.0/8'],
  ])('accepts %s as %s', (raw, expected) => {
    // Act
    const result = parseCidr(raw);

    // Assess
    expect(result).toEqual({ ok: true, value: expected });
  });

  // Regression: this only checked that 127.0.0.1 was refused, which an unreadable CIDR is too.
  it.each([
    ['10.0.0.0/8', '10.200.3.4', '11.0.0.1'],
    ['2001:db8::/32', '2001:db8:ffff::1', '2001:db9::1'],
    ['203.0.113.7', '203.0.113.7', '203.0.113.8'],
  ])('yields a CIDR that the api function matches source addresses with (%s)', (raw, inside, outside) => {
    // Prepare
    const cidr = parseCidr(raw);
    if (!cidr.ok) throw new Error(cidr.message);

    // Act
    const allowed = [inside, outside, '127.0.0.1'].map((ip) => sourceAllowed(ip, [cidr.value]));

    // Assess
    expect(allowed).toEqual([true, false, false]);
  });
});

describe('issueKey', () => {
  it('stores the SHA-256 of the token it hands out, active, created now', () => {
    // Prepare
    const spec = validateKeySpec(valid);
    if (!spec.ok) throw new Error('spec invalid');
    const token = 'bt_abcd1234efgh_0123456789abcdefghijKLMNOP-_xyz';

    // Act
    const issued = issueKey(spec.value, new Date('2030-01-02T03:04:05.000Z'), () => ({
      keyId: 'abcd1234efgh',
      token,
    }));

    // Assess
    expect(issued).toEqual({
      token,
      key: {
        keyId: 'abcd1234efgh',
        secretHash: hashToken(token),
        tenant: 'acme',
        scopes: ['send', 'read'],
        allowedDomains: ['example.com'],
        allowedCidrs: [],
        senderPolicy: 'reject',
        status: 'active',
        createdAt: '2030-01-02T03:04:05.000Z',
      },
    });
  });

  it('issues a key that does not contain its token anywhere', () => {
    // Prepare
    const spec = validateKeySpec(valid);
    if (!spec.ok) throw new Error('spec invalid');

    // Act
    const { key, token } = issueKey(spec.value, new Date());

    // Assess
    const secret = token.split('_').slice(2).join('_');
    expect(JSON.stringify(key)).not.toContain(secret);
  });
});

describe('summarise', () => {
  it('drops the hash and keeps everything else', () => {
    // Prepare
    const { key } = issueApiKey({ name: 'n' });

    // Act
    const summary = summarise(key);

    // Assess
    const { secretHash: _hash, ...rest } = key;
    expect(summary).toEqual(rest);
    expect(Object.keys(summary)).not.toContain('secretHash');
  });
});
