import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkWebhookUrl, refusedAddress } from '../../../lambdas/domain/webhooks/url-policy.ts';

const production = { allowLoopbackHttp: false } as const;
const local = { allowLoopbackHttp: true } as const;

// Every refused range: an address just inside (first and last where it matters) and, where the
// neighbour is public, one just outside. `range` is the CIDR the reason must name.
const refusedRows: ReadonlyArray<{ readonly ip: string; readonly range: string }> = [
  { ip: '0.0.0.0', range: '0.0.0.0/8' },
  { ip: '0.255.255.255', range: '0.0.0.0/8' },
  { ip: '10.0.0.0', range: '10.0.0.0/8' },
  { ip: '10.255.255.255', range: '10.0.0.0/8' },
  { ip: '100.64.0.0', range: '100.64.0.0/10' },
  { ip: '100.127.255.255', range: '100.64.0.0/10' },
  { ip: '127.0.0.1', range: '127.0.0.0/8' },
  { ip: '127.255.255.254', range: '127.0.0.0/8' },
  { ip: '169.254.0.1', range: '169.254.0.0/16' },
  { ip: '169.254.169.254', range: '169.254.169.254/32' },
  { ip: '169.254.255.255', range: '169.254.0.0/16' },
  { ip: '172.16.0.0', range: '172.16.0.0/12' },
  { ip: '172.31.255.255', range: '172.16.0.0/12' },
  { ip: '192.0.0.0', range: '192.0.0.0/24' },
  { ip: '192.0.0.255', range: '192.0.0.0/24' },
  { ip: '192.0.2.1', range: '192.0.2.0/24' },
  { ip: '192.88.99.1', range: '192.88.99.0/24' },
  { ip: '192.168.0.0', range: '192.168.0.0/16' },
  { ip: '192.168.255.255', range: '192.168.0.0/16' },
  { ip: '198.18.0.0', range: '198.18.0.0/15' },
  { ip: '198.19.255.255', range: '198.18.0.0/15' },
  { ip: '198.51.100.7', range: '198.51.100.0/24' },
  { ip: '203.0.113.255', range: '203.0.113.0/24' },
  { ip: '224.0.0.1', range: '224.0.0.0/4' },
  { ip: '239.255.255.255', range: '224.0.0.0/4' },
  { ip: '240.0.0.0', range: '240.0.0.0/4' },
  { ip: '255.255.255.254', range: '240.0.0.0/4' },
  { ip: '255.255.255.255', range: '255.255.255.255/32' },
  { ip: '::', range: '::/128' },
  { ip: '::1', range: '::1/128' },
  { ip: '0:0:0:0:0:0:0:1', range: '::1/128' },
  { ip: 'fc00::', range: 'fc00::/7' },
  { ip: 'fd00:ec2::254', range: 'fc00::/7' },
  { ip: 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', range: 'fc00::/7' },
  { ip: 'fe80::1', range: 'fe80::/10' },
  { ip: 'febf:ffff::1', range: 'fe80::/10' },
  { ip: 'ff02::1', range: 'ff00::/8' },
  { ip: 'FF0E::1', range: 'ff00::/8' },
  { ip: '2001:db8::1', range: '2001:db8::/32' },
  { ip: '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', range: '2001:db8::/32' },
  { ip: '100::1', range: '100::/64' },
  { ip: '2001::1', range: '2001::/23' },
  { ip: '2001:1ff:ffff::1', range: '2001::/23' },
  // IPv4 embedded in IPv6 is judged by the IPv4 it carries, in every notation.
  { ip: '::ffff:127.0.0.1', range: '127.0.0.0/8' },
  { ip: '::ffff:7f00:1', range: '127.0.0.0/8' },
  { ip: '::FFFF:7F00:0001', range: '127.0.0.0/8' },
  { ip: '::ffff:a9fe:a9fe', range: '169.254.169.254/32' },
  { ip: '::ffff:10.0.0.5', range: '10.0.0.0/8' },
  { ip: '0:0:0:0:0:ffff:c0a8:101', range: '192.168.0.0/16' },
  { ip: '::127.0.0.1', range: '127.0.0.0/8' },
  { ip: '::a00:1', range: '10.0.0.0/8' },
  { ip: '::2', range: '0.0.0.0/8' },
  { ip: '64:ff9b::127.0.0.1', range: '127.0.0.0/8' },
  { ip: '64:ff9b::a9fe:a9fe', range: '169.254.169.254/32' },
  { ip: '2002:7f00:1::', range: '127.0.0.0/8' },
  { ip: '2002:c0a8:101::1', range: '192.168.0.0/16' },
  // Outside the global unicast space 2000::/3 altogether.
  { ip: '1000::1', range: '2000::/3' },
  { ip: '4000::1', range: '2000::/3' },
  { ip: 'fec0::1', range: 'fec0::/10' },
];

const publicAddresses: readonly string[] = [
  '1.0.0.0',
  '8.8.8.8',
  '9.255.255.255',
  '11.0.0.0',
  '100.63.255.255',
  '100.128.0.0',
  '126.255.255.255',
  '128.0.0.0',
  '169.253.255.255',
  '169.255.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '192.0.1.0',
  '192.0.3.0',
  '192.88.98.255',
  '192.88.100.0',
  '192.167.255.255',
  '192.169.0.0',
  '198.17.255.255',
  '198.20.0.0',
  '198.51.99.255',
  '198.51.101.0',
  '203.0.112.255',
  '203.0.114.0',
  '223.255.255.255',
  '2606:4700:4700::1111',
  '2001:200::1',
  '2001:db7:ffff::1',
  '2001:db9::1',
  '2003::1',
  '3ffe::1',
  '::ffff:8.8.8.8',
  '::ffff:808:808',
  '64:ff9b::8.8.8.8',
  '2002:808:808::1',
];

describe('refusedAddress, the connect-time check on a resolved address', () => {
  it.each(refusedRows)('refuses $ip and names the range $range', ({ ip, range }) => {
    // Act
    const reason = refusedAddress(ip);

    // Assess
    expect(reason).toContain(range);
  });

  it.each(publicAddresses)('lets the public unicast address %s through', (ip) => {
    // Act
    const reason = refusedAddress(ip);

    // Assess
    expect(reason).toBeUndefined();
  });

  it.each([
    '',
    'localhost',
    '1.2.3',
    '256.0.0.1',
    '01.2.3.4',
    '::ffff:1.2.3',
    '1::2::3',
    '[::1]',
    ' 8.8.8.8',
  ])('refuses the malformed address %j', (ip) => {
    // Act
    const reason = refusedAddress(ip);

    // Assess
    expect(reason).toMatch(/not a valid IP address/);
  });

  it('refuses an address with a zone id, whatever its scope', () => {
    // Act
    const reasons = ['fe80::1%eth0', '2606:4700::1%1'].map(refusedAddress);

    // Assess
    expect(reasons[0]).toMatch(/zone id/);
    expect(reasons[1]).toMatch(/zone id/);
  });

  it('names the IPv4 an IPv6 address embeds and how', () => {
    // Act
    const reason = refusedAddress('::ffff:7f00:1');

    // Assess
    expect(reason).toBe(
      '::ffff:7f00:1, an IPv4-mapped address of 127.0.0.1, is a loopback address (127.0.0.0/8)',
    );
  });

  it('names the instance metadata address', () => {
    // Act
    const reason = refusedAddress('169.254.169.254');

    // Assess
    expect(reason).toBe('169.254.169.254 is the cloud instance metadata address (169.254.169.254/32)');
  });
});

type Expected = { readonly ok: string } | { readonly reason: RegExp };
interface UrlRow {
  readonly name: string;
  readonly url: unknown;
  readonly options?: { readonly allowLoopbackHttp: boolean };
  readonly expected: Expected;
}

const urlRows: readonly UrlRow[] = [
  // accepted, normalised
  {
    name: 'a public https URL',
    url: 'https://hooks.example.com/baton',
    expected: { ok: 'https://hooks.example.com/baton' },
  },
  {
    name: 'uppercase scheme and host',
    url: 'HTTPS://Hooks.EXAMPLE.com/In',
    expected: { ok: 'https://hooks.example.com/In' },
  },
  {
    name: 'a port and a query',
    url: 'https://example.com:8443/h?x=1',
    expected: { ok: 'https://example.com:8443/h?x=1' },
  },
  {
    name: 'a fully qualified name (trailing dot)',
    url: 'https://example.com./h',
    expected: { ok: 'https://example.com./h' },
  },
  {
    name: 'an IDN host, as punycode',
    url: 'https://bücher.de/h',
    expected: { ok: 'https://xn--bcher-kva.de/h' },
  },
  {
    name: 'a punycode host',
    url: 'https://xn--bcher-kva.de/h',
    expected: { ok: 'https://xn--bcher-kva.de/h' },
  },
  { name: 'a public IPv4 literal', url: 'https://8.8.8.8/h', expected: { ok: 'https://8.8.8.8/h' } },
  {
    name: 'a public IPv6 literal',
    url: 'https://[2606:4700:4700::1111]/h',
    expected: { ok: 'https://[2606:4700:4700::1111]/h' },
  },
  {
    name: 'a public IPv4 spelled in decimal',
    url: 'https://134744072/',
    expected: { ok: 'https://8.8.8.8/' },
  },
  // scheme
  {
    name: 'http to a public host',
    url: 'http://example.com/h',
    expected: { reason: /^the URL must use https$/ },
  },
  { name: 'ftp', url: 'ftp://example.com/h', expected: { reason: /must use https/ } },
  { name: 'javascript', url: 'javascript:alert(1)', expected: { reason: /must use https/ } },
  { name: 'file', url: 'file:///etc/passwd', expected: { reason: /must use https/ } },
  // shape
  { name: 'not a string', url: 42, expected: { reason: /must be a string/ } },
  { name: 'undefined', url: undefined, expected: { reason: /must be a string/ } },
  { name: 'not a URL', url: 'hooks.example.com/h', expected: { reason: /not a valid absolute URL/ } },
  { name: 'an empty string', url: '', expected: { reason: /not a valid absolute URL/ } },
  { name: 'a fragment', url: 'https://example.com/h#x', expected: { reason: /fragment/ } },
  { name: 'an empty fragment', url: 'https://example.com/h#', expected: { reason: /fragment/ } },
  {
    name: 'longer than 2048 characters',
    url: `https://example.com/${'a'.repeat(2029)}`,
    expected: { reason: /2048/ },
  },
  { name: 'a user', url: 'https://user@example.com/h', expected: { reason: /credentials/ } },
  {
    name: 'a user and password',
    url: 'https://user:secret@example.com/h',
    expected: { reason: /credentials/ },
  },
  { name: 'a password only', url: 'https://:secret@example.com/h', expected: { reason: /credentials/ } },
  {
    name: 'an address disguised as a user',
    url: 'https://127.0.0.1@example.com/h',
    expected: { reason: /credentials/ },
  },
  // IPv4 spellings of loopback, link-local and private: the parser normalises them to dotted quads
  {
    name: 'decimal loopback',
    url: 'https://2130706433/',
    expected: { reason: /^the host 127\.0\.0\.1 is a loopback address \(127\.0\.0\.0\/8\)$/ },
  },
  {
    name: 'octal loopback',
    url: 'https://0177.0.0.1/',
    expected: { reason: /127\.0\.0\.1 is a loopback address/ },
  },
  {
    name: 'hex loopback, short',
    url: 'https://0x7f.1/',
    expected: { reason: /127\.0\.0\.1 is a loopback address/ },
  },
  {
    name: 'hex loopback, whole',
    url: 'https://0x7f000001/',
    expected: { reason: /127\.0\.0\.1 is a loopback address/ },
  },
  {
    name: 'short loopback',
    url: 'https://127.1/',
    expected: { reason: /127\.0\.0\.1 is a loopback address/ },
  },
  {
    name: 'mixed octal and hex',
    url: 'https://0x7f.0.01/',
    expected: { reason: /127\.0\.0\.1 is a loopback address/ },
  },
  { name: 'loopback with a trailing dot', url: 'https://127.0.0.1./', expected: { reason: /loopback/ } },
  { name: 'percent-encoded loopback', url: 'https://%31%32%37.0.0.1/', expected: { reason: /loopback/ } },
  { name: 'full-width loopback', url: 'https://１２７.0.0.1/', expected: { reason: /loopback/ } },
  {
    name: 'decimal metadata address',
    url: 'https://2852039166/latest',
    expected: { reason: /instance metadata/ },
  },
  {
    name: 'hex metadata address',
    url: 'https://0xa9.0xfe.0xa9.0xfe/',
    expected: { reason: /instance metadata/ },
  },
  {
    name: 'private 10.0.0.5',
    url: 'https://10.0.0.5/h',
    expected: { reason: /^the host 10\.0\.0\.5 is a private address \(10\.0\.0\.0\/8\)$/ },
  },
  {
    name: 'octal private',
    url: 'https://012.0.0.5/h',
    expected: { reason: /10\.0\.0\.5 is a private address/ },
  },
  { name: 'CGNAT', url: 'https://100.64.1.1/', expected: { reason: /100\.64\.0\.0\/10/ } },
  { name: 'multicast', url: 'https://224.0.0.251/', expected: { reason: /multicast/ } },
  { name: 'the unspecified address', url: 'https://0.0.0.0/', expected: { reason: /0\.0\.0\.0\/8/ } },
  { name: 'decimal zero', url: 'https://0/', expected: { reason: /0\.0\.0\.0\/8/ } },
  { name: 'broadcast', url: 'https://255.255.255.255/', expected: { reason: /broadcast/ } },
  // IPv6 literals
  { name: 'IPv6 loopback', url: 'https://[::1]/', expected: { reason: /::1\/128/ } },
  { name: 'IPv6 loopback, long', url: 'https://[0:0:0:0:0:0:0:1]/', expected: { reason: /::1\/128/ } },
  {
    name: 'mapped loopback, dotted',
    url: 'https://[::ffff:127.0.0.1]/',
    expected: { reason: /127\.0\.0\.0\/8/ },
  },
  { name: 'mapped loopback, hex', url: 'https://[::ffff:7f00:1]/', expected: { reason: /127\.0\.0\.0\/8/ } },
  { name: 'mapped metadata', url: 'https://[::ffff:a9fe:a9fe]/', expected: { reason: /instance metadata/ } },
  { name: 'compatible loopback', url: 'https://[::127.0.0.1]/', expected: { reason: /127\.0\.0\.0\/8/ } },
  { name: 'NAT64 private', url: 'https://[64:ff9b::10.1.2.3]/', expected: { reason: /10\.0\.0\.0\/8/ } },
  { name: '6to4 loopback', url: 'https://[2002:7f00:1::1]/', expected: { reason: /127\.0\.0\.0\/8/ } },
  { name: 'unique local', url: 'https://[fd12:3456::1]/', expected: { reason: /fc00::\/7/ } },
  { name: 'link-local', url: 'https://[fe80::1]/', expected: { reason: /fe80::\/10/ } },
  { name: 'link-local with a zone id', url: 'https://[fe80::1%25eth0]/', expected: { reason: /zone id/ } },
  { name: 'a raw zone id', url: 'https://[fe80::1%eth0]/', expected: { reason: /zone id/ } },
  { name: 'documentation', url: 'https://[2001:db8::1]/', expected: { reason: /2001:db8::\/32/ } },
  { name: 'multicast v6', url: 'https://[ff02::1]/', expected: { reason: /ff00::\/8/ } },
  // names
  {
    name: 'localhost',
    url: 'https://localhost/h',
    expected: { reason: /^the host localhost is not a public DNS name$/ },
  },
  {
    name: 'LOCALHOST',
    url: 'https://LOCALHOST/h',
    expected: { reason: /localhost is not a public DNS name/ },
  },
  {
    name: 'localhost with a trailing dot',
    url: 'https://localhost./h',
    expected: { reason: /not a public DNS name/ },
  },
  {
    name: 'a name under localhost',
    url: 'https://api.localhost/h',
    expected: { reason: /not a public DNS name/ },
  },
  { name: 'a .local name', url: 'https://printer.local/h', expected: { reason: /not a public DNS name/ } },
  {
    name: 'a .internal name',
    url: 'https://ip-10-0-0-1.ec2.internal/h',
    expected: { reason: /not a public DNS name/ },
  },
  {
    name: 'an .INTERNAL name with a trailing dot',
    url: 'https://Metadata.Google.INTERNAL./h',
    expected: { reason: /not a public DNS name/ },
  },
  {
    name: 'a .home.arpa name',
    url: 'https://router.home.arpa/',
    expected: { reason: /not a public DNS name/ },
  },
  {
    name: 'a reverse-lookup name',
    url: 'https://1.0.0.127.in-addr.arpa/',
    expected: { reason: /not a public DNS name/ },
  },
  { name: 'a single label', url: 'https://intranet/h', expected: { reason: /at least two labels/ } },
  {
    name: 'a single label with a trailing dot',
    url: 'https://com./h',
    expected: { reason: /at least two labels/ },
  },
  { name: 'an empty label', url: 'https://a..example.com/h', expected: { reason: /not a valid DNS name/ } },
  { name: 'a leading dot', url: 'https://.example.com/h', expected: { reason: /not a valid DNS name/ } },
  {
    name: 'a character DNS does not allow',
    url: 'https://a$b.example.com/h',
    expected: { reason: /not a valid DNS name/ },
  },
  {
    name: 'a label of 64 characters',
    url: `https://${'a'.repeat(64)}.com/h`,
    expected: { reason: /not a valid DNS name/ },
  },
  {
    name: 'a label starting with a hyphen',
    url: 'https://-a.example.com/h',
    expected: { reason: /not a valid DNS name/ },
  },
  {
    name: 'a numeric top-level label',
    url: 'https://example.123/',
    expected: { reason: /not a valid absolute URL/ },
  },
];

// The loopback allowance of local mode, and what it never allows.
const localRows: readonly UrlRow[] = [
  {
    name: 'local http to 127.0.0.1',
    url: 'http://127.0.0.1:4000/hook',
    options: local,
    expected: { ok: 'http://127.0.0.1:4000/hook' },
  },
  {
    name: 'local http to localhost',
    url: 'http://localhost:4000/hook',
    options: local,
    expected: { ok: 'http://localhost:4000/hook' },
  },
  {
    name: 'local http to LOCALHOST',
    url: 'http://LOCALHOST/hook',
    options: local,
    expected: { ok: 'http://localhost/hook' },
  },
  {
    name: 'local http to [::1]',
    url: 'http://[::1]:4000/hook',
    options: local,
    expected: { ok: 'http://[::1]:4000/hook' },
  },
  {
    name: 'local https to 127.0.0.1',
    url: 'https://127.0.0.1/hook',
    options: local,
    expected: { ok: 'https://127.0.0.1/hook' },
  },
  {
    name: 'local https to localhost',
    url: 'https://localhost/hook',
    options: local,
    expected: { ok: 'https://localhost/hook' },
  },
  {
    name: 'local http to a public name',
    url: 'http://example.com/h',
    options: local,
    expected: { reason: /must use https/ },
  },
  {
    name: 'local http to a public address',
    url: 'http://8.8.8.8/h',
    options: local,
    expected: { reason: /must use https/ },
  },
  {
    name: 'local http to a private address',
    url: 'http://10.0.0.5/h',
    options: local,
    expected: { reason: /must use https/ },
  },
  {
    name: 'local http to another loopback address',
    url: 'http://127.0.0.2/h',
    options: local,
    expected: { reason: /must use https/ },
  },
  {
    name: 'local https to another loopback address',
    url: 'https://127.0.0.2/h',
    options: local,
    expected: { reason: /loopback/ },
  },
  {
    name: 'local http to a name under localhost',
    url: 'http://evil.localhost/h',
    options: local,
    expected: { reason: /must use https/ },
  },
  {
    name: 'local http to mapped loopback',
    url: 'http://[::ffff:127.0.0.1]/h',
    options: local,
    expected: { reason: /must use https/ },
  },
  {
    name: 'local http to the metadata address',
    url: 'http://169.254.169.254/',
    options: local,
    expected: { reason: /must use https/ },
  },
  {
    name: 'local http to loopback with credentials',
    url: 'http://u:p@127.0.0.1/h',
    options: local,
    expected: { reason: /credentials/ },
  },
  {
    name: 'local http to loopback with a fragment',
    url: 'http://127.0.0.1/h#x',
    options: local,
    expected: { reason: /fragment/ },
  },
  {
    name: 'local http to localhost with a trailing dot',
    url: 'http://localhost./h',
    options: local,
    expected: { reason: /must use https/ },
  },
  {
    name: 'local ftp to loopback',
    url: 'ftp://127.0.0.1/h',
    options: local,
    expected: { reason: /must use https/ },
  },
  {
    name: 'http to 127.0.0.1 outside local mode',
    url: 'http://127.0.0.1/h',
    options: production,
    expected: { reason: /must use https/ },
  },
  {
    name: 'http to localhost outside local mode',
    url: 'http://localhost/h',
    options: production,
    expected: { reason: /must use https/ },
  },
  {
    name: 'https to 127.0.0.1 outside local mode',
    url: 'https://127.0.0.1/h',
    options: production,
    expected: { reason: /loopback/ },
  },
  {
    name: 'https to [::1] outside local mode',
    url: 'https://[::1]/h',
    options: production,
    expected: { reason: /loopback/ },
  },
];

describe('checkWebhookUrl, the registration check', () => {
  it.each([...urlRows, ...localRows])('$name', ({ url, options, expected }) => {
    // Act
    const result = checkWebhookUrl(url, options ?? production);

    // Assess
    if ('ok' in expected) {
      expect(result).toEqual({ ok: true, url: expected.ok });
    } else {
      expect(result.ok).toBe(false);
      expect(result.ok ? undefined : result.reason).toMatch(expected.reason);
    }
  });

  it('says in local mode that http is allowed only to loopback', () => {
    // Act
    const result = checkWebhookUrl('http://example.com/', local);

    // Assess
    expect(result).toEqual({
      ok: false,
      reason: 'the URL must use https (http is allowed only to 127.0.0.1, localhost and [::1] in local mode)',
    });
  });

  it('refuses a URL that grows past 2048 characters when the parser percent-encodes it', () => {
    // Prepare
    const url = `https://example.com/${' '.repeat(1000)}x`;

    // Act
    const result = checkWebhookUrl(url, production);

    // Assess
    expect(url.length).toBeLessThanOrEqual(2048);
    expect(result).toEqual({ ok: false, reason: 'the URL must be at most 2048 characters long' });
  });

  it('accepts a URL of exactly 2048 characters', () => {
    // Prepare
    const url = `https://example.com/${'a'.repeat(2028)}`;

    // Act
    const result = checkWebhookUrl(url, production);

    // Assess
    expect(url).toHaveLength(2048);
    expect(result).toEqual({ ok: true, url });
  });

  it('agrees with refusedAddress on every refused and public literal', () => {
    // Prepare
    const literal = (ip: string) => (ip.includes(':') ? `[${ip}]` : ip);

    // Act
    const refused = refusedRows.map(({ ip }) => checkWebhookUrl(`https://${literal(ip)}/`, production).ok);
    const allowed = publicAddresses.map((ip) => checkWebhookUrl(`https://${literal(ip)}/`, production).ok);

    // Assess
    expect(refused.every((ok) => !ok)).toBe(true);
    expect(allowed.every((ok) => ok)).toBe(true);
  });
});

const ipv4Ranges: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];
const ipv6Ranges: ReadonlyArray<readonly [string, number]> = [
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  ['100::', 64],
  ['2001::', 23],
];

const ipv4Int = (ip: string) => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
const dotted = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
const inIpv4Range = fc
  .constantFrom(...ipv4Ranges)
  .chain(([base, bits]) =>
    fc.integer({ min: 0, max: 2 ** (32 - bits) - 1 }).map((offset) => ipv4Int(base) + offset),
  );

const groupsOf = (ip: string) => {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => Number.parseInt(g, 16));
};
const inIpv6Range = fc.constantFrom(...ipv6Ranges).chain(([base, bits]) =>
  fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((random) =>
    groupsOf(base)
      .map((group, i) => {
        const fixed = Math.min(16, Math.max(0, bits - i * 16));
        const mask = (0xffff << (16 - fixed)) & 0xffff;
        return ((group & mask) | ((random[i] ?? 0) & ~mask & 0xffff)).toString(16);
      })
      .join(':'),
  ),
);

describe('any address inside a refused range', () => {
  it('is refused, dotted, in decimal, as an IPv4-mapped IPv6 literal and as a URL host', () => {
    fc.assert(
      fc.property(inIpv4Range, (n) => {
        // Prepare
        const ip = dotted(n);
        const mapped = `::ffff:${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`;

        // Act
        const reasons = [refusedAddress(ip), refusedAddress(`::ffff:${ip}`), refusedAddress(mapped)];
        const url = checkWebhookUrl(`https://${n}/`, production);

        // Assess
        expect(reasons.every((reason) => reason !== undefined)).toBe(true);
        expect(url.ok).toBe(false);
      }),
      { seed: 14, numRuns: 500 },
    );
  });

  it('is refused for IPv6, bare and as a bracketed URL host', () => {
    fc.assert(
      fc.property(inIpv6Range, (ip) => {
        // Act
        const reason = refusedAddress(ip);
        const url = checkWebhookUrl(`https://[${ip}]/`, production);

        // Assess
        expect(reason).toBeDefined();
        expect(url.ok).toBe(false);
      }),
      { seed: 14, numRuns: 500 },
    );
  });
});
