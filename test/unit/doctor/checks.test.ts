import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CHECK_IDS,
  type CheckId,
  type CheckResult,
  type DoctorInput,
  runChecks,
  type SesView,
} from '../../../lambdas/domain/doctor/checks.ts';
import type { DnsPort } from '../../../lambdas/domain/doctor/dns.ts';
import { ZoneDns } from '../../../lambdas/domain/doctor/zone-dns.ts';
import { parseZone } from '../../../lambdas/domain/doctor/zone-file.ts';

/** example.com as Baton wants it, one line per record so that a test can change one. */
const BASE = {
  spf: '@ TXT "v=spf1 include:amazonses.com ~all"',
  dkim1: 'tok1._domainkey CNAME tok1.dkim.amazonses.com.',
  dkim2: 'tok2._domainkey CNAME tok2.dkim.amazonses.com.',
  dkim3: 'tok3._domainkey CNAME tok3.dkim.amazonses.com.',
  bounceMx: 'bounce MX 10 feedback-smtp.eu-west-1.amazonses.com.',
  bounceSpf: 'bounce TXT "v=spf1 include:amazonses.com ~all"',
  dmarc: '_dmarc TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com"',
  mtaSts: '_mta-sts TXT "v=STSv1; id=2024060101"',
  tlsRpt: '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@example.com"',
  bimi: 'default._bimi TXT "v=BIMI1; l=https://example.com/logo.svg"',
};

type Changes = Partial<Record<keyof typeof BASE, string | null>>;

function zone(changes: Changes = {}, extra: readonly string[] = []): string {
  const lines = Object.entries({ ...BASE, ...changes })
    .filter((entry): entry is [string, string] => entry[1] !== null)
    .map(([, line]) => line);
  return ['$ORIGIN example.com.', '@ MX 10 inbound.example.net.', ...lines, ...extra].join('\n');
}

async function doctor(
  text: string,
  options: { region?: string | null; ses?: SesView; domain?: string; mailFrom?: string } = {},
): Promise<Record<CheckId, CheckResult>> {
  const dns = new ZoneDns(parseZone(text, { origin: 'example.com' }), 'zone file', ['example.com']);
  const input: DoctorInput = {
    domain: options.domain ?? 'example.com',
    ses: options.ses ?? { kind: 'none' },
    region: options.region === null ? undefined : { name: options.region ?? 'eu-west-1', source: '--region' },
    ...(options.mailFrom === undefined ? {} : { mailFromDomain: options.mailFrom }),
  };
  const checks = await runChecks(input, dns);
  return Object.fromEntries(checks.map((c) => [c.id, c])) as Record<CheckId, CheckResult>;
}

function statuses(results: Record<CheckId, CheckResult>): Record<string, string> {
  return Object.fromEntries(Object.values(results).map((c) => [c.id, c.status]));
}

const SES_OK: SesView = {
  kind: 'found',
  facts: {
    identity: 'example.com',
    verifiedForSending: true,
    dkimStatus: 'SUCCESS',
    dkimSigningEnabled: true,
    dkimTokens: ['tok1', 'tok2', 'tok3'],
    mailFromDomain: 'bounce.example.com',
  },
};

function ses(changes: Partial<Extract<SesView, { kind: 'found' }>['facts']>): SesView {
  if (SES_OK.kind !== 'found') throw new Error('unreachable');
  return { kind: 'found', facts: { ...SES_OK.facts, ...changes } };
}

describe('runChecks on a zone with everything in place', () => {
  it('passes every check in the documented order, and ses_identity warns that no stack was read', async () => {
    // Act
    const results = await doctor(zone());

    // Assess
    expect(Object.keys(results)).toEqual([...CHECK_IDS]);
    expect(statuses(results)).toEqual({
      ...Object.fromEntries(CHECK_IDS.map((id) => [id, 'pass'])),
      ses_identity: 'warn',
    });
    expect(results.ses_identity.detail).toContain('not checked: no stack');
    expect(results.mta_sts.detail).toContain('not fetched');
    expect(results.bimi.detail).toMatch(/^informational/);
    expect(results.bulk_sender.detail).toContain('List-Unsubscribe=One-Click');
  });

  it('reads the committed example zone the same way', async () => {
    // Act
    const results = await doctor(readFileSync('test/fixtures/doctor/good.zone', 'utf8'));

    // Assess
    expect(
      Object.values(results)
        .filter((c) => c.status !== 'pass')
        .map((c) => c.id),
    ).toEqual(['ses_identity']);
  });
});

describe('runChecks asks DNS each name once', () => {
  it('reads every record it needs with one query per name and type, though several checks read it', async () => {
    // Arrange
    const zoneDns = new ZoneDns(parseZone(zone(), { origin: 'example.com' }), 'zone file', ['example.com']);
    const asked: string[] = [];
    const counted =
      <T>(type: string, resolve: (name: string) => Promise<T>) =>
      (name: string) => {
        asked.push(`${type} ${name}`);
        return resolve(name);
      };
    const dns: DnsPort = {
      description: zoneDns.description,
      namesUnder: (suffix) => zoneDns.namesUnder(suffix),
      resolveTxt: counted('TXT', (name) => zoneDns.resolveTxt(name)),
      resolveCname: counted('CNAME', (name) => zoneDns.resolveCname(name)),
      resolveMx: counted('MX', (name) => zoneDns.resolveMx(name)),
    };

    // Act
    const checks = await runChecks(
      { domain: 'example.com', ses: SES_OK, region: { name: 'eu-west-1', source: '--region' } },
      dns,
    );

    // Assess
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(asked).toContain('TXT example.com');
    expect(asked).toContain('TXT _dmarc.example.com');
    expect(asked.filter((query, i) => asked.indexOf(query) !== i)).toEqual([]);
  });
});

describe('ses_identity', () => {
  it('passes when SES says verified, DKIM SUCCESS and signing on', async () => {
    const results = await doctor(zone(), { ses: SES_OK });
    expect(results.ses_identity).toMatchObject({ status: 'pass', fix: '' });
  });

  it('warns while DKIM verification is pending, with the CNAMEs to publish', async () => {
    const results = await doctor(zone(), { ses: ses({ dkimStatus: 'PENDING', verifiedForSending: false }) });
    expect(results.ses_identity.status).toBe('warn');
    expect(results.ses_identity.fix).toContain('CNAME tok1._domainkey.example.com tok1.dkim.amazonses.com');
  });

  it('fails when DKIM verification failed', async () => {
    const results = await doctor(zone(), { ses: ses({ dkimStatus: 'FAILED', verifiedForSending: false }) });
    expect(results.ses_identity.status).toBe('fail');
    expect(results.ses_identity.detail).toContain('DKIM FAILED');
  });

  it('fails when the stack has no identity for the domain', async () => {
    const results = await doctor(zone(), {
      ses: { kind: 'unavailable', reason: 'example.com is not a sending domain of stack Baton' },
    });
    expect(results.ses_identity).toMatchObject({
      status: 'fail',
      detail: 'example.com is not a sending domain of stack Baton',
    });
  });
});

describe('dkim_cnames', () => {
  it("checks SES's tokens when a stack is read, and fails on a missing one with the record to publish", async () => {
    // Act
    const results = await doctor(zone({ dkim3: null }), {
      ses: ses({ dkimTokens: ['tok1', 'tok2', 'tok3'] }),
    });

    // Assess
    expect(results.dkim_cnames.status).toBe('fail');
    expect(results.dkim_cnames.detail).toContain('tok3._domainkey.example.com → nothing');
    expect(results.dkim_cnames.fix).toBe('CNAME tok3._domainkey.example.com tok3.dkim.amazonses.com');
  });

  it('fails on a relative target (the missing trailing dot appends the origin)', async () => {
    const results = await doctor(zone({ dkim2: 'tok2._domainkey CNAME tok2.dkim.amazonses.com' }));
    expect(results.dkim_cnames.status).toBe('fail');
    expect(results.dkim_cnames.detail).toContain('tok2.dkim.amazonses.com.example.com');
  });

  it('fails when fewer than three are published', async () => {
    const results = await doctor(zone({ dkim1: null }));
    expect(results.dkim_cnames.status).toBe('fail');
    expect(results.dkim_cnames.detail).toContain('2 of the 3');
  });

  it("ignores other providers' DKIM CNAMEs but catches a typo in SES's domain", async () => {
    // Act
    const others = await doctor(
      zone({}, [
        'k1._domainkey CNAME dkim.mcsv.net.',
        's1._domainkey CNAME s1.domainkey.u1.wl.sendgrid.net.',
      ]),
    );
    const typo = await doctor(zone({ dkim3: 'tok3._domainkey CNAME tok3.dkim.amzonses.com.' }));

    // Assess
    expect(others.dkim_cnames.status).toBe('pass');
    expect(typo.dkim_cnames.status).toBe('fail');
    expect(typo.dkim_cnames.fix).toBe('CNAME tok3._domainkey.example.com tok3.dkim.amazonses.com');
  });

  it('warns about CNAMEs beyond the three SES uses', async () => {
    const results = await doctor(zone({}, ['old._domainkey CNAME old.dkim.amazonses.com.']));
    expect(results.dkim_cnames.status).toBe('warn');
  });

  it("ignores a selector with its own key, such as local mode's baton._domainkey TXT", async () => {
    const results = await doctor(zone({}, ['baton._domainkey TXT "v=DKIM1; k=rsa; p=MIIB"']));
    expect(results.dkim_cnames.status).toBe('pass');
  });
});

describe('mail_from_mx', () => {
  it('fails without an MX, with the record for the region', async () => {
    const results = await doctor(zone({ bounceMx: null }));
    expect(results.mail_from_mx).toMatchObject({
      status: 'fail',
      fix: 'MX bounce.example.com 10 feedback-smtp.eu-west-1.amazonses.com',
    });
  });

  it('fails on SES in another region, naming both', async () => {
    const results = await doctor(zone({ bounceMx: 'bounce MX 10 feedback-smtp.us-west-2.amazonses.com.' }));
    expect(results.mail_from_mx.status).toBe('fail');
    expect(results.mail_from_mx.detail).toContain('SES in us-west-2');
    expect(results.mail_from_mx.detail).toContain('sends from eu-west-1');
  });

  it('warns when the region is unknown and the MX points at some SES region', async () => {
    const results = await doctor(zone(), { region: null });
    expect(results.mail_from_mx.status).toBe('warn');
    expect(results.mail_from_mx.detail).toContain('pass --region');
  });

  it('uses the MAIL FROM domain SES reports', async () => {
    const results = await doctor(
      zone({}, [
        'mail MX 10 feedback-smtp.eu-west-1.amazonses.com.',
        'mail TXT "v=spf1 include:amazonses.com -all"',
      ]),
      {
        ses: ses({ mailFromDomain: 'mail.example.com' }),
      },
    );
    expect(results.mail_from_mx.detail).toContain('MAIL FROM mail.example.com (SES)');
    expect(results.mail_from_mx.status).toBe('pass');
  });

  it('warns when the identity has no custom MAIL FROM', async () => {
    const results = await doctor(zone(), { ses: ses({ mailFromDomain: undefined }) });
    expect(results.mail_from_mx.status).toBe('warn');
    expect(results.mail_from_spf.status).toBe('warn');
    expect(results.dmarc_alignment.status).toBe('warn');
  });
});

describe('mail_from_spf', () => {
  it('fails without a record, with the record to publish', async () => {
    const results = await doctor(zone({ bounceSpf: null }));
    expect(results.mail_from_spf).toMatchObject({
      status: 'fail',
      fix: 'TXT bounce.example.com "v=spf1 include:amazonses.com ~all"',
    });
  });

  it('fails on a record without amazonses.com and keeps its other mechanisms in the fix', async () => {
    const results = await doctor(zone({ bounceSpf: 'bounce TXT "v=spf1 ip4:192.0.2.0/24 -all"' }));
    expect(results.mail_from_spf.status).toBe('fail');
    expect(results.mail_from_spf.fix).toBe(
      'TXT bounce.example.com "v=spf1 ip4:192.0.2.0/24 include:amazonses.com -all"',
    );
  });

  it('warns when an include lies outside the zone file and cannot be evaluated', async () => {
    const results = await doctor(zone({ bounceSpf: 'bounce TXT "v=spf1 include:_spf.example.net ~all"' }));
    // Nothing else authorises SES, so the result is softfail; the detail names what was not read.
    expect(results.mail_from_spf.status).toBe('fail');
    expect(results.mail_from_spf.detail).toContain('_spf.example.net');
  });
});

describe('spf_record', () => {
  it('passes when the From domain authorises SES', async () => {
    const results = await doctor(
      zone({ spf: '@ TXT "v=spf1 include:_spf.example.net include:amazonses.com -all"' }),
    );
    expect(results.spf_record.status).toBe('pass');
  });

  it('warns, not fails, without SPF on the From domain when the MAIL FROM carries it', async () => {
    const results = await doctor(zone({ spf: null }));
    expect(results.spf_record.status).toBe('warn');
    expect(results.spf_record.detail).toContain('Not needed for mail through SES');
    expect(results.spf_record.fix).toBe('TXT example.com "v=spf1 include:amazonses.com ~all"');
  });

  it('fails without SPF anywhere SES mail could align', async () => {
    const results = await doctor(zone({ spf: null, bounceSpf: null }));
    expect(results.spf_record.status).toBe('fail');
  });

  it('fails on two SPF records (permerror) and proposes one merged record', async () => {
    const results = await doctor(zone({}, ['@ TXT "v=spf1 include:_spf.example.net ~all"']));
    expect(results.spf_record.status).toBe('fail');
    expect(results.spf_record.detail).toContain('2 SPF records');
    expect(results.spf_record.fix).toBe(
      'Publish one record instead of 2: TXT example.com "v=spf1 include:amazonses.com include:_spf.example.net ~all"',
    );
  });
});

describe('dmarc_record', () => {
  it('fails without a record', async () => {
    const results = await doctor(zone({ dmarc: null }));
    expect(results.dmarc_record).toMatchObject({
      status: 'fail',
      fix: 'TXT _dmarc.example.com "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com"',
    });
  });

  it('warns on p=none, proposing quarantine', async () => {
    const results = await doctor(zone({ dmarc: '_dmarc TXT "v=DMARC1; p=none; rua=mailto:d@example.com"' }));
    expect(results.dmarc_record.status).toBe('warn');
    expect(results.dmarc_record.fix).toBe(
      'TXT _dmarc.example.com "v=DMARC1; p=quarantine; rua=mailto:d@example.com"',
    );
  });

  it('fails on two records', async () => {
    const results = await doctor(zone({}, ['_dmarc TXT "v=DMARC1; p=reject"']));
    expect(results.dmarc_record.status).toBe('fail');
    expect(results.dmarc_record.detail).toContain('2 DMARC records');
  });

  it('reads a record without p= but with rua= as p=none', async () => {
    const results = await doctor(zone({ dmarc: '_dmarc TXT "v=DMARC1; rua=mailto:d@example.com"' }));
    expect(results.dmarc_record.status).toBe('warn');
  });

  it('fails on an unknown policy', async () => {
    const results = await doctor(zone({ dmarc: '_dmarc TXT "v=DMARC1; p=block"' }));
    expect(results.dmarc_record.status).toBe('fail');
  });

  it("finds the parent's record for a subdomain and applies its sp=", async () => {
    // Prepare
    const text = zone({ dmarc: '_dmarc TXT "v=DMARC1; p=reject; sp=none; rua=mailto:d@example.com"' }, [
      'news MX 10 inbound.example.net.',
    ]);

    // Act
    const results = await doctor(text, { domain: 'news.example.com', mailFrom: 'bounce.example.com' });

    // Assess
    expect(results.dmarc_record.status).toBe('warn');
    expect(results.dmarc_record.detail).toContain('_dmarc.example.com');
  });
});

describe('dmarc_alignment', () => {
  it('warns when only DKIM aligns because aspf=s cannot align a MAIL FROM subdomain', async () => {
    const results = await doctor(
      zone({ dmarc: '_dmarc TXT "v=DMARC1; p=reject; aspf=s; rua=mailto:d@example.com"' }),
    );
    expect(results.dmarc_alignment.status).toBe('warn');
    expect(results.dmarc_alignment.detail).toContain('aspf=s');
    expect(results.dmarc_alignment.fix).toBe(
      'TXT _dmarc.example.com "v=DMARC1; p=reject; aspf=r; rua=mailto:d@example.com"',
    );
  });

  it('fails when neither DKIM nor the MAIL FROM is in place', async () => {
    const results = await doctor(zone({ dkim1: null, dkim2: null, dkim3: null, bounceMx: null }));
    expect(results.dmarc_alignment.status).toBe('fail');
    expect(results.bulk_sender.status).toBe('fail');
  });

  it('does not align DKIM under adkim=s for a subdomain of the identity', async () => {
    // Prepare
    const text = zone({ dmarc: '_dmarc TXT "v=DMARC1; p=reject; adkim=s; rua=mailto:d@example.com"' }, [
      'news MX 10 in.example.net.',
    ]);

    // Act
    const results = await doctor(text, { domain: 'news.example.com', ses: SES_OK });

    // Assess
    expect(results.dmarc_alignment.status).toBe('warn');
    expect(results.dmarc_alignment.detail).toContain('adkim=s');
  });
});

describe('dmarc_rua', () => {
  it('warns without rua=, proposing one', async () => {
    const results = await doctor(zone({ dmarc: '_dmarc TXT "v=DMARC1; p=reject"' }));
    expect(results.dmarc_rua).toMatchObject({
      status: 'warn',
      fix: 'TXT _dmarc.example.com "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"',
    });
  });

  it('fails on a rua= that is not a mailto: address', async () => {
    const results = await doctor(zone({ dmarc: '_dmarc TXT "v=DMARC1; p=reject; rua=dmarc@example.com"' }));
    expect(results.dmarc_rua.status).toBe('fail');
  });
});

describe('mta_sts', () => {
  it('warns when absent and says it protects receiving', async () => {
    const results = await doctor(zone({ mtaSts: null }));
    expect(results.mta_sts.status).toBe('warn');
    expect(results.mta_sts.fix).toContain('https://mta-sts.example.com/.well-known/mta-sts.txt');
  });

  it('fails on a record without a valid id', async () => {
    const results = await doctor(zone({ mtaSts: '_mta-sts TXT "v=STSv1; id=2024-06-01"' }));
    expect(results.mta_sts.status).toBe('fail');
  });
});

describe('tls_rpt', () => {
  it('warns when absent', async () => {
    const results = await doctor(zone({ tlsRpt: null }));
    expect(results.tls_rpt).toMatchObject({
      status: 'warn',
      fix: 'TXT _smtp._tls.example.com "v=TLSRPTv1; rua=mailto:tls-reports@example.com"',
    });
  });

  it('fails without a usable rua=', async () => {
    const results = await doctor(zone({ tlsRpt: '_smtp._tls TXT "v=TLSRPTv1; rua=tls@example.com"' }));
    expect(results.tls_rpt.status).toBe('fail');
  });
});

describe('bimi', () => {
  it('passes, as informational, when absent', async () => {
    const results = await doctor(zone({ bimi: null }));
    expect(results.bimi).toMatchObject({ status: 'pass', fix: '' });
    expect(results.bimi.detail).toContain('informational: no BIMI record');
  });

  it('warns when published under a DMARC policy of none', async () => {
    const results = await doctor(zone({ dmarc: '_dmarc TXT "v=DMARC1; p=none; rua=mailto:d@example.com"' }));
    expect(results.bimi.status).toBe('warn');
  });

  it('fails on a logo that is not an https SVG', async () => {
    const results = await doctor(
      zone({ bimi: 'default._bimi TXT "v=BIMI1; l=http://example.com/logo.png"' }),
    );
    expect(results.bimi.status).toBe('fail');
  });
});

describe('bulk_sender', () => {
  it('passes with p=none, which is enough for Gmail and Yahoo', async () => {
    const results = await doctor(zone({ dmarc: '_dmarc TXT "v=DMARC1; p=none; rua=mailto:d@example.com"' }));
    expect(results.bulk_sender.status).toBe('pass');
    expect(results.bulk_sender.detail).toContain('p=none is enough');
  });

  it('warns when DKIM is missing though SPF aligns', async () => {
    const results = await doctor(zone({ dkim1: null }));
    expect(results.bulk_sender.status).toBe('warn');
  });

  it('fails without DMARC', async () => {
    const results = await doctor(zone({ dmarc: null }));
    expect(results.bulk_sender).toMatchObject({
      status: 'fail',
      fix: 'TXT _dmarc.example.com "v=DMARC1; p=none; rua=mailto:dmarc@example.com"',
    });
  });
});

describe('a zone with realistic mistakes', () => {
  it('reports each one', async () => {
    // Act
    const results = await doctor(readFileSync('test/fixtures/doctor/mistakes.zone', 'utf8'));

    // Assess
    expect(results.dkim_cnames.status).toBe('fail');
    expect(results.dkim_cnames.detail).toContain('tok3.dkim.amazonses.co (expected tok3.dkim.amazonses.com)');
    expect(results.mail_from_mx.status).toBe('fail');
    expect(results.mail_from_mx.detail).toContain('us-west-2');
    expect(results.mail_from_spf.status).toBe('fail');
    expect(results.mail_from_spf.fix).toBe(
      'TXT bounce.example.com "v=spf1 include:_spf.google.com include:amazonses.com ~all"',
    );
    expect(results.spf_record.status).toBe('fail');
    expect(results.spf_record.detail).toContain('2 SPF records');
    expect(results.dmarc_record.status).toBe('warn');
    expect(results.dmarc_rua.status).toBe('warn');
  });
});

describe('lookups the zone cannot answer', () => {
  it('warns "not checked" for a domain outside the zone file instead of failing', async () => {
    const results = await doctor(zone(), { domain: 'example.org' });
    expect(results.dmarc_record.status).toBe('warn');
    expect(results.dmarc_record.detail).toContain('not in the zone file');
  });
});
