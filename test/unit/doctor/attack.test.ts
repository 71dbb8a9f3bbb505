/**
 * Zone files written the way operators write them, not around the doctor's tests: one correct zone
 * and mistakes a real user makes, each of which must come out as fail or warn under the right check
 * with a fix that fixes it; a zone the doctor cannot read is exit 2 with a line number; nothing
 * reaches real DNS with --zone.
 */
import { execFile } from 'node:child_process';
import dns from 'node:dns';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type CheckResult, runChecks } from '../../../lambdas/domain/doctor/checks.ts';
import { DnsLookupError, type DnsPort } from '../../../lambdas/domain/doctor/dns.ts';
import { formatReport } from '../../../lambdas/domain/doctor/report.ts';
import { ZoneDns } from '../../../lambdas/domain/doctor/zone-dns.ts';
import { parseZone, ZoneSyntaxError } from '../../../lambdas/domain/doctor/zone-file.ts';
import { type DoctorDeps, runDoctor } from '../../../scripts/doctor-cli.ts';

const FIXTURES = 'test/fixtures/doctor';
const GOOD = `${FIXTURES}/attack-good.zone`;
const dir = mkdtempSync(join(tmpdir(), 'doctor-attack-'));

afterEach(() => {
  vi.restoreAllMocks();
});

/** The CLI in-process with no AWS and no real DNS: any DNS lookup outside the zone throws. */
async function doctor(args: readonly string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const deps: DoctorDeps = {
    env: { HOME: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent' },
    readFile: (path) => readFileSync(path, 'utf8'),
    dns: () => {
      throw new Error('real DNS used with --zone');
    },
    describeStack: () => Promise.reject(new Error('AWS used')),
    readIdentity: () => Promise.reject(new Error('AWS used')),
    out: (text) => out.push(text),
    err: (text) => err.push(text),
  };
  const code = await runDoctor(args, deps);
  const stdout = out.join('\n');
  const checks = code === 2 ? [] : (JSON.parse(stdout) as { checks: CheckResult[] }).checks;
  const byId = new Map<string, CheckResult>(checks.map((c) => [c.id, c]));
  return { code, stdout, stderr: err.join('\n'), checks, byId };
}

/** The good zone with one edit (each `from` must be in it): a mistake made on a correct zone. */
function goodWith(name: string, ...edits: readonly [string, string][]): string {
  let text = readFileSync(GOOD, 'utf8');
  for (const [from, to] of edits) {
    expect(text).toContain(from);
    text = text.replace(from, to);
  }
  const file = join(dir, `${name}.zone`);
  writeFileSync(file, text);
  return file;
}

const APEX_SPF = '@\tIN\tTXT\t"v=spf1 include:amazonses.com include:_spf.example.com -all"';
const BOUNCE_SPF = 'bounce\tIN\tTXT\t"v=spf1 include:amazonses.com -all"';
const DKIM3 = 'cdefghijklmnopqrstuvwxyz23456723.dkim.amazonses.com.';

describe('the doctor on zone files it was not written around', () => {
  it('passes every check of a correct zone written in a mixed style (warns only that no stack was given)', async () => {
    // Act
    const { code, checks } = await doctor(['example.com', '--zone', GOOD, '--region', 'eu-west-1', '--json']);

    // Assess
    expect(code).toBe(0);
    expect(checks.filter((c) => c.status !== 'pass').map((c) => c.id)).toEqual(['ses_identity']);
  });

  // [what, edits, check id, status, a fix that fixes it]
  const mistakes: [string, [string, string][], string, 'warn' | 'fail', RegExp][] = [
    [
      'a DKIM target with a typo',
      [[DKIM3, 'cdefghijklmnopqrstuvwxyz2345672.dkim.amazonses.com.']],
      'dkim_cnames',
      'fail',
      /^CNAME cdefghijklmnopqrstuvwxyz23456723\._domainkey\.example\.com cdefghijklmnopqrstuvwxyz23456723\.dkim\.amazonses\.com$/,
    ],
    [
      'a DKIM target without its trailing dot',
      [[DKIM3, 'cdefghijklmnopqrstuvwxyz23456723.dkim.amazonses.com']],
      'dkim_cnames',
      'fail',
      /cdefghijklmnopqrstuvwxyz23456723\.dkim\.amazonses\.com$/,
    ],
    [
      'the MAIL FROM MX in another region',
      [['feedback-smtp.eu-west-1', 'feedback-smtp.us-east-1']],
      'mail_from_mx',
      'fail',
      /^MX bounce\.example\.com 10 feedback-smtp\.eu-west-1\.amazonses\.com$/,
    ],
    [
      'the MAIL FROM SPF without include:amazonses.com',
      [[BOUNCE_SPF, 'bounce\tIN\tTXT\t"v=spf1 ip4:192.0.2.0/24 -all"']],
      'mail_from_spf',
      'fail',
      /^TXT bounce\.example\.com "v=spf1 ip4:192\.0\.2\.0\/24 include:amazonses\.com -all"$/,
    ],
    [
      'a second SPF record at the apex',
      [[APEX_SPF, `${APEX_SPF}\n@\tIN\tTXT\t"v=spf1 include:_spf.google.com ~all"`]],
      'spf_record',
      'fail',
      /include:amazonses\.com include:_spf\.example\.com include:_spf\.google\.com -all"$/,
    ],
    [
      '+all at the apex',
      [[APEX_SPF, APEX_SPF.replace('-all', '+all')]],
      'spf_record',
      'fail',
      /^TXT example\.com "v=spf1 include:amazonses\.com include:_spf\.example\.com ~all"$/,
    ],
    [
      'a bare all (+ is the default qualifier) on the MAIL FROM',
      [[BOUNCE_SPF, BOUNCE_SPF.replace('-all', 'all')]],
      'mail_from_spf',
      'fail',
      /^TXT bounce\.example\.com "v=spf1 include:amazonses\.com ~all"$/,
    ],
    [
      'ptr in the apex SPF',
      [[APEX_SPF, APEX_SPF.replace('-all', 'ptr -all')]],
      'spf_record',
      'warn',
      /^TXT example\.com "v=spf1 include:amazonses\.com include:_spf\.example\.com -all"$/,
    ],
    [
      'eleven DNS-querying terms in the apex SPF (SES matches before the limit)',
      [
        [
          APEX_SPF,
          APEX_SPF.replace(
            '-all',
            'a mx a:a1.example.com a:a2.example.com a:a3.example.com a:a4.example.com a:a5.example.com a:a6.example.com a:a7.example.com -all',
          ),
        ],
      ],
      'spf_record',
      'fail',
      /^TXT example\.com "v=spf1 /,
    ],
    [
      'an include of a name of the zone with no SPF record',
      [[APEX_SPF, APEX_SPF.replace('include:_spf', 'include:_spf2')]],
      'spf_record',
      'fail',
      /^TXT example\.com "v=spf1 include:amazonses\.com -all"$/,
    ],
    [
      'a MAIL FROM SPF that redirects to the senders of the zone (the fix keeps the redirect)',
      [[BOUNCE_SPF, 'bounce\tIN\tTXT\t"v=spf1 redirect=_spf.example.com"']],
      'mail_from_spf',
      'fail',
      /^TXT bounce\.example\.com "v=spf1 include:amazonses\.com redirect=_spf\.example\.com"$/,
    ],
    [
      'DMARC p=none',
      [['p=rej" "ect;', 'p=no" "ne;']],
      'dmarc_record',
      'warn',
      /^TXT _dmarc\.example\.com "v=DMARC1; p=quarantine; rua=mailto:dmarc@example\.com; /,
    ],
    [
      'DMARC pct=0',
      [['fo=1" )', 'fo=1; pct=0" )']],
      'dmarc_record',
      'warn',
      /^TXT _dmarc\.example\.com "v=DMARC1; p=reject; .*pct=100"$/,
    ],
    [
      'DMARC sp=none under p=reject',
      [['fo=1" )', 'fo=1; sp=none" )']],
      'dmarc_record',
      'warn',
      /^TXT _dmarc\.example\.com "v=DMARC1; p=reject; .*sp=reject"$/,
    ],
    [
      'DMARC with v=DMARC1 not first',
      [['"v=DMARC1; p=rej" "ect;', '"p=rej" "ect; v=DMARC1;']],
      'dmarc_record',
      'fail',
      /^Replace it with: TXT _dmarc\.example\.com "v=DMARC1; p=reject; rua=mailto:dmarc@example\.com; /,
    ],
    [
      'DMARC published at _dmarc. (the root) instead of _dmarc.example.com',
      [['_dmarc\tIN\tTXT', '_dmarc.\tIN\tTXT']],
      'dmarc_record',
      'fail',
      /^TXT _dmarc\.example\.com "v=DMARC1; p=quarantine/,
    ],
    [
      'DMARC only on the MAIL FROM subdomain',
      [['_dmarc\tIN\tTXT', '_dmarc.bounce\tIN\tTXT']],
      'dmarc_record',
      'fail',
      /^TXT _dmarc\.example\.com "v=DMARC1; p=quarantine/,
    ],
    [
      'two DMARC records',
      [['_dmarc\tIN\tTXT', '_dmarc\tIN\tTXT\t"v=DMARC1; p=none"\n_dmarc\tIN\tTXT']],
      'dmarc_record',
      'fail',
      /^Keep one record at _dmarc\.example\.com/,
    ],
    [
      'rua without mailto:',
      [['rua=mailto:dmarc@example.com', 'rua=dmarc@example.com']],
      'dmarc_rua',
      'fail',
      /rua=mailto:dmarc@example\.com;/,
    ],
    [
      'MTA-STS without id',
      [['"v=STSv1; id=20261201T000000;"', '"v=STSv1;"']],
      'mta_sts',
      'fail',
      /^TXT _mta-sts\.example\.com "v=STSv1; id=/,
    ],
    [
      'TLS-RPT without rua',
      [['"v=TLSRPTv1; rua=mailto:tlsrpt@example.com"', '"v=TLSRPTv1;"']],
      'tls_rpt',
      'fail',
      /^TXT _smtp\._tls\.example\.com "v=TLSRPTv1; rua=mailto:/,
    ],
    ['BIMI while DMARC is p=none', [['p=rej" "ect;', 'p=no" "ne;']], 'bimi', 'warn', /p=quarantine/],
  ];

  it.each(mistakes)('reports %s', async (what, edits, id, status, fix) => {
    // Arrange
    const file = goodWith(what.replace(/\W+/g, '-'), ...edits);

    // Act
    const { code, byId } = await doctor(['example.com', '--zone', file, '--region', 'eu-west-1', '--json']);

    // Assess
    const found = byId.get(id);
    expect(found?.status, found?.detail).toBe(status);
    expect(found?.fix).toMatch(fix);
    expect(code).toBe(status === 'fail' ? 1 : 0);
  });

  it.each(mistakes.filter(([what]) => !what.startsWith('eleven')))(
    'publishing the fix for %s makes its check pass',
    async (what, edits, id) => {
      // Arrange: the zone with the mistake, then the fix's records in place of the ones they replace.
      const file = goodWith(`${what.replace(/\W+/g, '-')}-fixed`, ...edits);
      const before = await doctor(['example.com', '--zone', file, '--region', 'eu-west-1', '--json']);
      let records = parseZone(readFileSync(file, 'utf8'), { origin: 'example.com' });
      for (const line of (before.byId.get(id)?.fix ?? '').split('\n')) {
        const record = /(TXT|MX|CNAME) (\S+) (.+)$/.exec(line);
        if (record === null) continue;
        const [, type, name, value] = record as unknown as [string, string, string, string];
        const spf = value.startsWith('"v=spf1');
        records = records.filter(
          (r) =>
            r.name !== name ||
            r.type !== type ||
            (type === 'TXT' && !name.startsWith('_') && spf !== r.data.join('').startsWith('v=spf1')),
        );
        const data =
          type === 'TXT' ? [value.replace(/^"|"$/g, '')] : type === 'MX' ? value.split(' ') : [value];
        records.push({ name, ttl: undefined, type, data });
      }

      // Act
      const after = await runChecks(
        { domain: 'example.com', ses: { kind: 'none' }, region: { name: 'eu-west-1', source: 'test' } },
        new ZoneDns(records, 'fixed', ['example.com']),
      );

      // Assess
      const fixed = after.find((c) => c.id === id);
      expect(fixed?.status, fixed?.detail).toBe('pass');
    },
  );

  it('reads a provider export (absolute upper-case names, no $ORIGIN): the DKIM target without its dot, the MAIL FROM SPF without SES', async () => {
    // Act
    const { code, byId } = await doctor([
      'example.com',
      '--zone',
      `${FIXTURES}/attack-fqdn.zone`,
      '--mail-from',
      'mail.example.com',
      '--region',
      'us-east-1',
      '--json',
    ]);

    // Assess
    expect(code).toBe(1);
    expect(byId.get('dkim_cnames')?.status).toBe('fail');
    expect(byId.get('dkim_cnames')?.detail).toContain(
      'bb8bb8bb8bb8bb8bb8bb8bb8bb8bb8bb.dkim.amazonses.com.example.com',
    );
    expect(byId.get('mail_from_mx')?.status).toBe('pass');
    expect(byId.get('mail_from_spf')?.status).toBe('fail');
    expect(byId.get('mail_from_spf')?.fix).toBe(
      'TXT mail.example.com "v=spf1 mx include:amazonses.com ~all"',
    );
    for (const id of ['spf_record', 'dmarc_record', 'dmarc_rua', 'mta_sts', 'tls_rpt'])
      expect(byId.get(id)?.status, id).toBe('pass');
  });

  it('reads a relative, owner-omitting zone: two apex SPF records, p=none, rua without mailto:, TLS-RPT without rua', async () => {
    // Act
    const { code, byId } = await doctor([
      'example.com',
      '--zone',
      `${FIXTURES}/attack-relative.zone`,
      '--region',
      'eu-west-1',
      '--json',
    ]);

    // Assess
    expect(code).toBe(1);
    expect(byId.get('dkim_cnames')?.status).toBe('pass');
    expect(byId.get('mail_from_mx')?.status).toBe('pass');
    expect(byId.get('mail_from_spf')?.status).toBe('pass');
    expect(byId.get('spf_record')?.status).toBe('fail');
    expect(byId.get('dmarc_record')?.status).toBe('warn');
    expect(byId.get('dmarc_rua')?.status).toBe('fail');
    // The address meant keeps receiving the reports, now as a mailto: URI.
    expect(byId.get('dmarc_rua')?.fix).toBe(
      'TXT _dmarc.example.com "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"',
    );
    expect(byId.get('tls_rpt')?.status).toBe('fail');
  });

  it("reads the parent domain's zone for a subdomain From: its DMARC, its MAIL FROM, and sp=none", async () => {
    // Act
    const { byId } = await doctor([
      'news.example.com',
      '--zone',
      `${FIXTURES}/attack-parent.zone`,
      '--mail-from',
      'bounce.example.com',
      '--region',
      'eu-west-1',
      '--json',
    ]);

    // Assess: the names of example.com are in the file, not "not in the zone file".
    expect(byId.get('mail_from_mx')?.status).toBe('pass');
    expect(byId.get('mail_from_spf')?.status).toBe('pass');
    // sp=none is the policy of news.example.com, and sp= is the tag to change.
    expect(byId.get('dmarc_record')?.status).toBe('warn');
    expect(byId.get('dmarc_record')?.detail).toContain('sp=none');
    expect(byId.get('dmarc_record')?.fix).toBe(
      'TXT _dmarc.example.com "v=DMARC1; p=reject; sp=quarantine; adkim=s; rua=mailto:d@example.com"',
    );
    // bounce.example.com and news.example.com share example.com: relaxed SPF alignment holds.
    expect(byId.get('dmarc_alignment')?.detail).toContain(
      'SPF via MAIL FROM bounce.example.com aligns (relaxed)',
    );
  });

  it.each([
    [
      'a CNAME at the apex beside SOA, NS and MX',
      [['@\t300\tIN\tA\t192.0.2.10', '@\tIN\tCNAME\texample.net.']],
    ],
    ['a $INCLUDE line', [['; custom MAIL FROM for SES', '$INCLUDE /etc/bind/ses.zone']]],
    [
      'a DKIM key pasted as one string longer than 255 bytes',
      [['; custom MAIL FROM for SES', `k2._domainkey\tTXT\t"v=DKIM1; k=rsa; p=${'A'.repeat(392)}"`]],
    ],
    ['a zone for another origin', [['$ORIGIN example.com.', '$ORIGIN example.org.']]],
    [
      'a second CNAME at a DKIM name',
      [[DKIM3, `${DKIM3}\ncdefghijklmnopqrstuvwxyz23456723._domainkey CNAME x.example.net.`]],
    ],
  ] as [string, [string, string][]][])(
    'exits 2 on %s, naming the problem, with nothing on stdout',
    async (what, edits) => {
      // Arrange
      const file = goodWith(what.replace(/\W+/g, '-'), ...edits);

      // Act
      const { code, stdout, stderr } = await doctor(['example.com', '--zone', file, '--json']);

      // Assess
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(/line \d+|not for example\.com/);
    },
  );

  it('never reaches real DNS with --zone, whatever the records name outside the zone', async () => {
    // Arrange
    const resolvers = [
      'resolve',
      'resolveTxt',
      'resolveMx',
      'resolve4',
      'resolve6',
      'resolveCname',
      'reverse',
    ] as const;
    for (const name of resolvers) {
      vi.spyOn(dns.promises, name).mockRejectedValue(new Error(`real DNS: ${name}`));
      vi.spyOn(dns, name).mockImplementation(() => {
        throw new Error(`real DNS: ${name}`);
      });
    }
    const file = goodWith('outside', [
      APEX_SPF,
      '@\tTXT\t"v=spf1 mx:mail.example.net a:web.example.org exists:%{i}.x.example.net include:spf.mailgun.org include:amazonses.com ptr:example.org -all"',
    ]);

    // Act
    const { code, byId } = await doctor(['example.com', '--zone', file, '--region', 'eu-west-1', '--json']);

    // Assess: SES passes; ptr still warns; the other domains authorise nothing offline.
    expect(code).toBe(0);
    expect(byId.get('spf_record')?.status).toBe('warn');
    expect(byId.get('spf_record')?.detail).toContain('ptr');
    for (const name of resolvers) {
      expect(dns.promises[name]).not.toHaveBeenCalled();
      expect(dns[name]).not.toHaveBeenCalled();
    }
  });

  it('never throws anything but a ZoneSyntaxError on random or hostile input, and the checks run on whatever parses', async () => {
    // Arrange
    let seed = 15;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const pieces = [
      ' ',
      '\t',
      '\n',
      ';',
      '(',
      ')',
      '"',
      '\\',
      '$ORIGIN ',
      '$TTL ',
      '@',
      '.',
      'IN ',
      'TXT ',
      'MX ',
      'CNAME ',
      'SOA ',
      '10 ',
      'v=spf1 ',
      'include:',
      'amazonses.com',
      'v=DMARC1; p=reject',
      '_dmarc',
      '_domainkey',
      'bounce',
      '\\065',
      '\\999',
      'é',
      '\u0000',
    ];
    const inputs: string[] = [
      `x IN TXT "${'a'.repeat(1_000_000)}`,
      `x IN TXT ${'('.repeat(100_000)}"a"${')'.repeat(100_000)}`,
      '('.repeat(100_000),
      `@ TXT ${'"a" '.repeat(100_000)}`,
    ];
    for (let n = 0; n < 1500; n++) {
      let text = '';
      const length = Math.floor(random() * 60);
      for (let i = 0; i < length; i++)
        text +=
          n % 2 === 0
            ? pieces[Math.floor(random() * pieces.length)]
            : String.fromCharCode(Math.floor(random() * 256));
      inputs.push(text);
    }

    // Act + Assess
    for (const text of inputs) {
      let records: ReturnType<typeof parseZone>;
      try {
        records = parseZone(text, { origin: 'example.com' });
      } catch (error) {
        expect(error, JSON.stringify(text.slice(0, 200))).toBeInstanceOf(ZoneSyntaxError);
        expect((error as ZoneSyntaxError).line).toBeGreaterThanOrEqual(1);
        continue;
      }
      const checks = await runChecks(
        { domain: 'example.com', ses: { kind: 'none' }, region: { name: 'eu-west-1', source: 'test' } },
        new ZoneDns(records, 'fuzz', ['example.com']),
      );
      expect(checks).toHaveLength(12);
    }
  }, 60_000);
});

describe('npm run doctor --json on a zone with warnings (child process)', () => {
  it('prints exactly one JSON object on stdout and nothing on stderr, exit 0', async () => {
    // Arrange
    const file = goodWith('warnings', ['p=rej" "ect;', 'p=no" "ne;']);

    // Act
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['scripts/doctor.ts', 'example.com', '--zone', file, '--region', 'eu-west-1', '--json'],
      { env: { PATH: process.env.PATH ?? '', HOME: dir, AWS_CONFIG_FILE: join(dir, 'none') } },
    );

    // Assess
    expect(stderr).toBe('');
    const report = JSON.parse(stdout) as { checks: CheckResult[] };
    expect(stdout.trim().startsWith('{') && stdout.trim().endsWith('}')).toBe(true);
    expect(report.checks.filter((c) => c.status === 'warn').map((c) => c.id)).toEqual([
      'ses_identity',
      'dmarc_record',
      'bimi',
    ]);
  });
});

describe('zone files from other editors and hands', () => {
  it('reads a zone saved by a Windows editor (byte order mark, CRLF) like the same zone without', async () => {
    // Arrange
    const file = join(dir, 'windows.zone');
    writeFileSync(file, `\uFEFF${readFileSync(GOOD, 'utf8').replace(/\n/g, '\r\n')}`);

    // Act
    const { code, checks } = await doctor(['example.com', '--zone', file, '--region', 'eu-west-1', '--json']);

    // Assess
    expect(code).toBe(0);
    expect(checks.filter((c) => c.status !== 'pass').map((c) => c.id)).toEqual(['ses_identity']);
  });

  it('says where a record went when its owner was written absolute without the final dot', async () => {
    // Arrange: under $ORIGIN example.com., "_dmarc.example.com" is _dmarc.example.com.example.com.
    const file = goodWith(
      'owner-without-dot',
      ['_dmarc\tIN\tTXT', '_dmarc.example.com\tIN\tTXT'],
      ['bounce\tIN\tMX', 'bounce.example.com\tIN\tMX'],
      [
        'cdefghijklmnopqrstuvwxyz23456723._domainkey\t',
        'cdefghijklmnopqrstuvwxyz23456723._domainkey.example.com\t',
      ],
    );

    // Act
    const { byId } = await doctor(['example.com', '--zone', file, '--region', 'eu-west-1', '--json']);

    // Assess
    expect(byId.get('dmarc_record')?.status).toBe('fail');
    expect(byId.get('dmarc_record')?.detail).toContain('_dmarc.example.com.example.com');
    expect(byId.get('mail_from_mx')?.status).toBe('fail');
    expect(byId.get('mail_from_mx')?.detail).toContain('bounce.example.com.example.com');
    expect(byId.get('dkim_cnames')?.status).toBe('fail');
    expect(byId.get('dkim_cnames')?.detail).toContain(
      'cdefghijklmnopqrstuvwxyz23456723._domainkey.example.com.example.com',
    );
  });
});

describe('a DMARC record hosted by a provider (a CNAME out of the zone file)', () => {
  it('is not checked, and neither bulk_sender nor bimi reads the unknown policy as missing or p=none', async () => {
    // Arrange: a correct zone whose DMARC is delegated to a reporting service.
    const file = goodWith('dmarc-cname', [
      '_dmarc\tIN\tTXT',
      '_dmarc\tIN\tCNAME\t_dmarc.example.net.\nold-dmarc\tIN\tTXT',
    ]);

    // Act
    const { code, byId } = await doctor(['example.com', '--zone', file, '--region', 'eu-west-1', '--json']);

    // Assess
    expect(code).toBe(0);
    for (const id of ['dmarc_record', 'bulk_sender', 'bimi']) {
      expect(byId.get(id)?.status, id).toBe('warn');
      expect(byId.get(id)?.detail, id).toContain('not checked');
    }
  });
});

describe('DNS that times out (real DNS, no stack)', () => {
  it('fails no check: what could not be looked up is not checked, alignment included', async () => {
    // Arrange
    const timeout = async (name: string): Promise<never> => {
      throw new DnsLookupError(name, 'ETIMEOUT');
    };
    const dns: DnsPort = {
      description: 'DNS',
      resolveTxt: timeout,
      resolveMx: timeout,
      resolveCname: timeout,
    };

    // Act
    const checks = await runChecks(
      { domain: 'example.com', ses: { kind: 'none' }, region: { name: 'eu-west-1', source: 'test' } },
      dns,
    );

    // Assess
    expect(checks.filter((c) => c.status === 'fail').map((c) => `${c.id}: ${c.detail}`)).toEqual([]);
  });
});

describe('--mail-from SES would not accept', () => {
  it.each([
    ['example.com', 'the domain itself'],
    ['example.com.', 'the domain itself'],
    ['bounce.example.org', 'not under example.com'],
  ])(
    'refuses --mail-from %s (exit 2) rather than advise an MX that takes the inbound mail away',
    async (mailFrom, why) => {
      // Act
      const { code, stdout, stderr } = await doctor([
        'example.com',
        '--zone',
        GOOD,
        '--region',
        'eu-west-1',
        '--mail-from',
        mailFrom,
        '--json',
      ]);

      // Assess
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(why);
    },
  );

  it('accepts the MAIL FROM of the parent identity for a subdomain From', async () => {
    // Act
    const { code } = await doctor([
      'news.example.com',
      '--zone',
      `${FIXTURES}/attack-parent.zone`,
      '--mail-from',
      'bounce.example.com',
      '--json',
    ]);

    // Assess
    expect(code).not.toBe(2);
  });
});

describe('adkim=s with the identity at the parent (deployed, a subdomain From)', () => {
  it('warns in dmarc_alignment with adkim=r as the fix, and bulk_sender does not ask to publish DKIM that is in place', async () => {
    // Arrange
    const text = readFileSync(`${FIXTURES}/attack-parent.zone`, 'utf8').replace('sp=none; ', '');
    const records = parseZone(text, { origin: 'example.com' });
    const ses = {
      kind: 'found' as const,
      facts: {
        identity: 'example.com',
        verifiedForSending: true,
        dkimStatus: 'SUCCESS',
        dkimSigningEnabled: true,
        dkimTokens: ['tok1', 'tok2', 'tok3'],
        mailFromDomain: 'bounce.example.com',
      },
    };

    // Act
    const checks = await runChecks(
      { domain: 'news.example.com', ses, region: { name: 'eu-west-1', source: 'test' } },
      new ZoneDns(records, 'zone', ['example.com', 'news.example.com']),
    );

    // Assess
    const byId = new Map<string, CheckResult>(checks.map((c) => [c.id, c]));
    expect(byId.get('dkim_cnames')?.status).toBe('pass');
    expect(byId.get('dmarc_alignment')?.status).toBe('warn');
    expect(byId.get('dmarc_alignment')?.fix).toContain('adkim=r');
    expect(byId.get('bulk_sender')?.status, byId.get('bulk_sender')?.detail).toBe('pass');
  });
});

describe('DNS data with control characters in the text report', () => {
  it('prints them escaped: no terminal escape sequence, no forged check line', () => {
    // Arrange: a DMARC record (possibly a parent's, or someone else's) with ESC and a newline.
    const report = {
      domain: 'example.com',
      checks: [
        {
          id: 'dmarc_record' as const,
          status: 'warn' as const,
          detail: '_dmarc.example.com "v=DMARC1; p=none; x=\u001b[2J\n✓ pass dkim_cnames: all good"',
          fix: 'TXT _dmarc.example.com "v=DMARC1; p=quarantine; x=\u001b[2J"',
        },
      ],
    };

    // Act
    const text = formatReport(report, 'header');

    // Assess
    expect(text).not.toContain('\u001b');
    expect(text).not.toMatch(/^✓ pass dkim_cnames/m);
    expect(text).toContain('x=\\027[2J\\010✓ pass dkim_cnames');
  });
});

describe('an error of the doctor itself', () => {
  it('is exit 2 with a message on stderr and nothing on stdout, not exit 1 (a failed check) with a stack trace', async () => {
    // Arrange: a DNS port that breaks in a way no lookup error describes.
    const out: string[] = [];
    const err: string[] = [];
    const broken = async (): Promise<never> => {
      throw new TypeError('resolver exploded');
    };
    const deps: DoctorDeps = {
      env: { HOME: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent' },
      readFile: (path) => readFileSync(path, 'utf8'),
      dns: () => ({ description: 'DNS', resolveTxt: broken, resolveMx: broken, resolveCname: broken }),
      describeStack: () => Promise.reject(new Error('AWS used')),
      readIdentity: () => Promise.reject(new Error('AWS used')),
      out: (text) => out.push(text),
      err: (text) => err.push(text),
    };

    // Act
    const code = await runDoctor(['example.com', '--region', 'eu-west-1', '--json'], deps);

    // Assess
    expect(code).toBe(2);
    expect(out).toEqual([]);
    expect(err.join('\n')).toContain('resolver exploded');
  });
});

describe("BIND's own dump format", () => {
  it('reads a zone as named-compilezone writes it ($ORIGIN ., blank owners, \\; in TXT) and passes it', async () => {
    // Act
    const { code, byId } = await doctor([
      'example.com',
      '--zone',
      `${FIXTURES}/attack-bind-dump.zone`,
      '--region',
      'ap-southeast-2',
      '--json',
    ]);

    // Assess
    expect(code).toBe(0);
    for (const id of [
      'dkim_cnames',
      'mail_from_mx',
      'mail_from_spf',
      'spf_record',
      'dmarc_record',
      'dmarc_rua',
      'tls_rpt',
    ])
      expect(byId.get(id)?.status, id).toBe('pass');
    expect(byId.get('mta_sts')?.status).toBe('warn');
  });
});
