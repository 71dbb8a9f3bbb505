import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CHECK_IDS } from '../../../lambdas/domain/doctor/checks.ts';
import { parseDoctorArgs, regionFromEnvironment, UsageError } from '../../../scripts/doctor-cli.ts';

const run = promisify(execFile);
const GOOD = 'test/fixtures/doctor/good.zone';
const MISTAKES = 'test/fixtures/doctor/mistakes.zone';
const home = mkdtempSync(join(tmpdir(), 'doctor-home-'));

/** The CLI as a user runs it, with no AWS configuration but what the test gives. */
async function doctor(args: readonly string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/doctor.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: home, AWS_CONFIG_FILE: join(home, 'none'), ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('npm run doctor (child process, zone files)', () => {
  it('prints exactly one JSON object with the documented shape and exits 0 when nothing fails', async () => {
    // Act
    const { code, stdout } = await doctor(['example.com', '--zone', GOOD, '--region', 'eu-west-1', '--json']);

    // Assess
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { domain: string; checks: Record<string, unknown>[] };
    expect(Object.keys(report)).toEqual(['domain', 'checks']);
    expect(report.domain).toBe('example.com');
    expect(report.checks.map((c) => c.id)).toEqual([...CHECK_IDS]);
    for (const check of report.checks) {
      expect(Object.keys(check)).toEqual(['id', 'status', 'detail', 'fix']);
      expect(['pass', 'warn', 'fail']).toContain(check.status);
      expect(typeof check.detail).toBe('string');
      expect(typeof check.fix).toBe('string');
    }
  });

  it('exits 1 and prints one line per check with its mark and the fix indented on a zone with mistakes', async () => {
    // Act
    const { code, stdout } = await doctor(['example.com', '--zone', MISTAKES], { AWS_REGION: 'eu-west-1' });

    // Assess
    expect(code).toBe(1);
    expect(stdout).toContain('region eu-west-1 (from AWS_REGION)');
    expect(stdout).toMatch(/^✗ fail dkim_cnames: .*tok3\.dkim\.amazonses\.co /m);
    expect(stdout).toMatch(/^✗ fail mail_from_mx: .*us-west-2/m);
    expect(stdout).toMatch(/^ {6}fix: MX bounce\.example\.com 10 feedback-smtp\.eu-west-1\.amazonses\.com$/m);
    expect(stdout).toMatch(/^! warn dmarc_rua: /m);
    expect(stdout).toMatch(/^\d+ passed, \d+ warnings, \d+ failed$/m);
  });

  it('reads the region from the AWS config file when the environment names none', async () => {
    // Prepare
    const config = join(home, 'config');
    writeFileSync(config, '[default]\nregion = us-east-2\n');

    // Act
    const { stdout } = await doctor(['example.com', '--zone', GOOD], { AWS_CONFIG_FILE: config });

    // Assess
    expect(stdout).toContain(`region us-east-2 (from ${config} [default])`);
    expect(stdout).toMatch(/^✗ fail mail_from_mx: .*SES in eu-west-1/m);
  });

  it.each([
    [['--zone', GOOD], 'missing <domain>'],
    [['example.com', '--frobnicate'], 'unknown option --frobnicate'],
    [['example.com', '--zone'], '--zone needs a value'],
    [['example.com', '--zone', 'no/such.zone'], 'cannot read the zone file no/such.zone: ENOENT'],
    [['example.com', '--region', 'mars'], '"mars" is not an AWS region'],
    [['not a domain', '--zone', GOOD], '"not a domain" is not a domain name'],
  ])('exits 2 with a message for %j', async (args, message) => {
    // Act
    const { code, stdout, stderr } = await doctor(args);

    // Assess
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(message);
  });

  it('exits 2 on a zone file it cannot parse, naming the line', async () => {
    // Prepare
    const broken = join(home, 'broken.zone');
    writeFileSync(broken, '$ORIGIN example.com.\n@ TXT "unterminated\n');

    // Act
    const { code, stderr } = await doctor(['example.com', '--zone', broken]);

    // Assess
    expect(code).toBe(2);
    expect(stderr).toContain('line 2: unterminated quoted string');
  });

  it('prints the usage with --help and exits 0', async () => {
    const { code, stdout } = await doctor(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: npm run doctor -- <domain>');
  });
});

describe('parseDoctorArgs', () => {
  it('takes --flag value and --flag=value and lower-cases the domain', () => {
    // Act
    const args = parseDoctorArgs([
      'Example.COM.',
      '--stack=Baton',
      '--region',
      'eu-west-1',
      '--mail-from',
      'mail.example.com',
    ]);

    // Assess
    expect(args).toEqual({
      domain: 'example.com',
      stack: 'Baton',
      region: 'eu-west-1',
      zone: undefined,
      mailFrom: 'mail.example.com',
      json: false,
    });
  });

  it('refuses a flag given twice', () => {
    expect(() => parseDoctorArgs(['example.com', '--zone', 'a', '--zone', 'b'])).toThrow(
      new UsageError('--zone is given twice'),
    );
  });
});

describe('regionFromEnvironment', () => {
  const readFile = (text: string) => () => text;

  it('prefers AWS_REGION, then AWS_DEFAULT_REGION', () => {
    expect(
      regionFromEnvironment({ AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'us-east-1' }, readFile('')),
    ).toEqual({
      name: 'eu-west-1',
      source: 'AWS_REGION',
    });
    expect(regionFromEnvironment({ AWS_DEFAULT_REGION: 'us-east-1' }, readFile(''))?.source).toBe(
      'AWS_DEFAULT_REGION',
    );
  });

  it("reads the AWS_PROFILE's section of the config file", () => {
    // Prepare
    const text = '[default]\nregion = us-east-1\n[profile prod]\noutput = json\nregion=ap-south-1\n';

    // Act
    const region = regionFromEnvironment({ AWS_PROFILE: 'prod', AWS_CONFIG_FILE: '/cfg' }, readFile(text));

    // Assess
    expect(region).toEqual({ name: 'ap-south-1', source: '/cfg [prod]' });
  });

  it('is undefined with no environment and no readable file', () => {
    const missing = () => {
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    };
    expect(regionFromEnvironment({ HOME: '/nowhere' }, missing)).toBeUndefined();
  });
});
