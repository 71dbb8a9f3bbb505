import { describe, expect, it } from 'vitest';
import { DnsLookupError } from '../../../lambdas/domain/doctor/dns.ts';
import { OUTSIDE_ZONE, ZoneDns } from '../../../lambdas/domain/doctor/zone-dns.ts';
import { parseZone } from '../../../lambdas/domain/doctor/zone-file.ts';

const dns = new ZoneDns(
  parseZone(
    [
      '$ORIGIN example.com.',
      '@ MX 10 mx.example.net.',
      'alias CNAME target',
      'target TXT "v=spf1 " "-all"',
      'a.b.deep TXT "x"',
      '_dmarc CNAME _dmarc.reports.example.net.',
    ].join('\n'),
  ),
  'zone file test.zone',
  ['example.com'],
);

describe('ZoneDns', () => {
  it('answers NXDOMAIN for a name with nothing at or below it, NODATA for one that exists without the type', async () => {
    expect(await dns.resolveTxt('nothing.example.com')).toEqual({ status: 'nxdomain' });
    expect(await dns.resolveTxt('example.com')).toEqual({ status: 'nodata' });
    // An empty non-terminal exists (RFC 8020): NODATA, not NXDOMAIN.
    expect(await dns.resolveTxt('deep.example.com')).toEqual({ status: 'nodata' });
  });

  it('follows a CNAME for TXT and keeps the strings of each record apart', async () => {
    expect(await dns.resolveTxt('Alias.Example.com.')).toEqual({
      status: 'found',
      records: [['v=spf1 ', '-all']],
    });
    expect(await dns.resolveCname('alias.example.com')).toEqual({
      status: 'found',
      records: ['target.example.com'],
    });
  });

  it('fails the lookup of a name outside the zone file rather than calling it absent, also through a CNAME', async () => {
    await expect(dns.resolveTxt('example.org')).rejects.toMatchObject({
      code: OUTSIDE_ZONE,
      domain: 'example.org',
    });
    await expect(dns.resolveTxt('_dmarc.example.com')).rejects.toBeInstanceOf(DnsLookupError);
  });

  it("answers amazonses.com's SPF from the bundled copy", async () => {
    const answer = await dns.resolveTxt('amazonses.com');
    expect(answer.status === 'found' && answer.records[0]?.[0]).toMatch(/^v=spf1 .*ip4:54\.240\.0\.0\/18/);
  });

  it('lists the names at or under a suffix', () => {
    expect(dns.namesUnder('deep.example.com')).toEqual(['a.b.deep.example.com']);
  });
});
