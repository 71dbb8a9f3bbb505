import { describe, expect, it } from 'vitest';
import { NodeDns, type TxtCnameMxResolver } from '../../../lambdas/adapters/node-dns.ts';
import { DnsLookupError } from '../../../lambdas/domain/doctor/dns.ts';

function failing(code: string): TxtCnameMxResolver {
  const reject = async () => {
    throw Object.assign(new Error(`queryTxt ${code} example.com`), { code });
  };
  return { resolveTxt: reject, resolveCname: reject, resolveMx: reject };
}

describe('NodeDns', () => {
  it('answers NXDOMAIN for ENOTFOUND and NODATA for ENODATA', async () => {
    expect(await new NodeDns(failing('ENOTFOUND')).resolveTxt('example.com')).toEqual({ status: 'nxdomain' });
    expect(await new NodeDns(failing('ENODATA')).resolveCname('example.com')).toEqual({ status: 'nodata' });
  });

  it('throws a DnsLookupError keeping the code and cause for a failed lookup', async () => {
    // Act
    const lookup = new NodeDns(failing('ETIMEOUT')).resolveMx('example.com');

    // Assess
    await expect(lookup).rejects.toBeInstanceOf(DnsLookupError);
    await expect(lookup).rejects.toMatchObject({
      code: 'ETIMEOUT',
      domain: 'example.com',
      message: 'DNS lookup of example.com failed (ETIMEOUT)',
    });
  });

  it('returns the records, MX exchanges in lower case', async () => {
    // Prepare
    const resolver: TxtCnameMxResolver = {
      resolveTxt: async () => [['v=spf1 ', 'include:amazonses.com ~all']],
      resolveCname: async () => ['tok.dkim.amazonses.com'],
      resolveMx: async () => [{ exchange: 'Feedback-SMTP.eu-west-1.amazonses.com', priority: 10 }],
    };
    const dns = new NodeDns(resolver);

    // Act
    const [txt, mx] = await Promise.all([dns.resolveTxt('example.com'), dns.resolveMx('bounce.example.com')]);

    // Assess
    expect(txt).toEqual({ status: 'found', records: [['v=spf1 ', 'include:amazonses.com ~all']] });
    expect(mx).toEqual({
      status: 'found',
      records: [{ exchange: 'feedback-smtp.eu-west-1.amazonses.com', priority: 10 }],
    });
  });
});
