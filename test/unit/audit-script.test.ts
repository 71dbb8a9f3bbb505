import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Advisory,
  type AllowlistEntry,
  AllowlistError,
  EXIT_ADVISORIES,
  EXIT_OK,
  EXIT_UNJUDGED,
  judge,
  parseAllowlist,
  parseAuditOutput,
} from '../../scripts/audit.ts';

// Hand-made `npm audit --omit=dev --json` output in the npm 10/11 shape (auditReportVersion 2).
// Nothing here reaches the network or runs npm.

const TODAY = '2025-06-15';
const REASON = 'only reachable from the build step, never at runtime';

interface ViaAdvisory {
  readonly source: number;
  readonly name: string;
  readonly title: string;
  readonly url: string;
  readonly severity: string;
  readonly range: string;
}

/** One advisory as npm lists it under `via`; the GHSA id sits in the url. */
function via(name: string, severity: string, source: number, ghsa: string): ViaAdvisory {
  return {
    source,
    name,
    title: `${severity} issue in ${name}`,
    url: `https://github.com/advisories/${ghsa}`,
    severity,
    range: '<1.2.3',
  };
}

/** One entry of `vulnerabilities`: its own advisories and/or names of vulnerable dependencies. */
function vulnerability(name: string, severity: string, viaList: readonly (ViaAdvisory | string)[]) {
  return {
    name,
    severity,
    isDirect: true,
    via: viaList.map((v) =>
      typeof v === 'string'
        ? v
        : { ...v, dependency: v.name, cwe: ['CWE-1321'], cvss: { score: 7.5, vectorString: null } },
    ),
    effects: [],
    range: '<1.2.3',
    nodes: [`node_modules/${name}`],
    fixAvailable: true,
  };
}

/** The whole `npm audit --json` report, with metadata counted by the highest severity per package. */
function report(...vulnerabilities: ReturnType<typeof vulnerability>[]): string {
  const counts: Record<string, number> = { info: 0, low: 0, moderate: 0, high: 0, critical: 0 };
  for (const v of vulnerabilities) counts[v.severity] = (counts[v.severity] ?? 0) + 1;
  return JSON.stringify({
    auditReportVersion: 2,
    vulnerabilities: Object.fromEntries(vulnerabilities.map((v) => [v.name, v])),
    metadata: {
      vulnerabilities: { ...counts, total: vulnerabilities.length },
      dependencies: { prod: 120, dev: 0, optional: 2, peer: 0, peerOptional: 0, total: 121 },
    },
  });
}

const CLEAN = report();
const HIGH = via('left-pad', 'high', 1_101_001, 'GHSA-2j3f-4x5c-6v7w');
const CRITICAL = via('qs-lite', 'critical', 1_101_002, 'GHSA-8m9p-q2r3-s4t5');
const MODERATE = via('tiny-json', 'moderate', 1_101_003, 'GHSA-c6f7-g8h9-j2k3');
const LOW = via('ms-ish', 'low', 1_101_004, 'GHSA-m4p5-q6r7-v8w9');

/** Parses a report that must be one, and returns its advisories. */
function advisoriesOf(stdout: string): readonly Advisory[] {
  const outcome = parseAuditOutput(stdout, '');
  if (outcome.kind !== 'report') throw new Error(`expected a report, got ${JSON.stringify(outcome)}`);
  return outcome.advisories;
}

function allowlist(...advisories: unknown[]): string {
  return JSON.stringify({ description: 'test', advisories });
}

function allowlistErrorOf(text: string): string {
  try {
    parseAllowlist(text);
  } catch (error) {
    if (error instanceof AllowlistError) return error.message;
    throw error;
  }
  throw new Error(`expected an AllowlistError for ${text}`);
}

describe('parseAuditOutput on a report', () => {
  it('reads a clean report as no advisories, with the metadata counts', () => {
    // Act
    const outcome = parseAuditOutput(CLEAN, '');

    // Assess
    expect(outcome).toEqual({
      kind: 'report',
      advisories: [],
      counts: { info: 0, low: 0, moderate: 0, high: 0, critical: 0, total: 0 },
    });
  });

  it('reads each advisory with its GHSA id, npm number, package, severity and range', () => {
    // Act
    const advisories = advisoriesOf(report(vulnerability('left-pad', 'high', [HIGH])));

    // Assess
    expect(advisories).toEqual([
      {
        source: 1_101_001,
        ghsa: 'GHSA-2j3f-4x5c-6v7w',
        package: 'left-pad',
        title: 'high issue in left-pad',
        url: 'https://github.com/advisories/GHSA-2j3f-4x5c-6v7w',
        severity: 'high',
        range: '<1.2.3',
      },
    ]);
  });

  it('skips package names in `via` and counts an advisory shared by two packages once', () => {
    // Prepare: express is vulnerable only through left-pad; qs-lite carries the same advisory twice
    const stdout = report(
      vulnerability('express', 'high', ['left-pad']),
      vulnerability('left-pad', 'high', [HIGH]),
      vulnerability('qs-lite', 'critical', [CRITICAL, CRITICAL]),
    );

    // Act
    const advisories = advisoriesOf(stdout);

    // Assess
    expect(advisories.map((a) => [a.package, a.source])).toEqual([
      ['left-pad', 1_101_001],
      ['qs-lite', 1_101_002],
    ]);
  });

  it('leaves the GHSA id undefined for an advisory url that names none', () => {
    // Prepare
    const old = { ...HIGH, url: 'https://npmjs.com/advisories/1234' };

    // Act
    const [advisory] = advisoriesOf(report(vulnerability('left-pad', 'high', [old])));

    // Assess
    expect(advisory?.ghsa).toBeUndefined();
    expect(advisory?.source).toBe(1_101_001);
  });
});

describe('judge', () => {
  it('passes a clean report', () => {
    // Act
    const verdict = judge(advisoriesOf(CLEAN), [], TODAY);

    // Assess
    expect(verdict).toEqual({ blocking: [], accepted: [], expired: [], stale: [] });
  });

  it.each([
    ['high', HIGH, 'GHSA-2j3f-4x5c-6v7w'],
    ['critical', CRITICAL, 'GHSA-8m9p-q2r3-s4t5'],
  ])('blocks an unlisted %s advisory', (severity, advisory, ghsa) => {
    // Prepare
    const advisories = advisoriesOf(report(vulnerability(advisory.name, severity, [advisory])));

    // Act
    const verdict = judge(advisories, [], TODAY);

    // Assess
    expect(verdict.blocking.map((a) => [a.ghsa, a.severity])).toEqual([[ghsa, severity]]);
    expect(verdict.accepted).toEqual([]);
  });

  it('passes moderate and low advisories, listed or not', () => {
    // Prepare
    const advisories = advisoriesOf(
      report(vulnerability('tiny-json', 'moderate', [MODERATE]), vulnerability('ms-ish', 'low', [LOW])),
    );

    // Act
    const verdict = judge(advisories, [], TODAY);

    // Assess
    expect(advisories).toHaveLength(2);
    expect(verdict).toEqual({ blocking: [], accepted: [], expired: [], stale: [] });
  });

  it('blocks only the high and critical ones of a mixed report', () => {
    // Prepare
    const advisories = advisoriesOf(
      report(
        vulnerability('left-pad', 'high', [HIGH]),
        vulnerability('qs-lite', 'critical', [CRITICAL]),
        vulnerability('tiny-json', 'moderate', [MODERATE]),
        vulnerability('ms-ish', 'low', [LOW]),
      ),
    );

    // Act
    const verdict = judge(advisories, [], TODAY);

    // Assess
    expect(verdict.blocking.map((a) => a.package)).toEqual(['left-pad', 'qs-lite']);
  });

  it.each([
    ['its GHSA id', 'GHSA-2j3f-4x5c-6v7w'],
    ['its npm advisory number', '1101001'],
  ])('passes an advisory allow-listed by %s', (_how, id) => {
    // Prepare
    const advisories = advisoriesOf(report(vulnerability('left-pad', 'high', [HIGH])));
    const entries = parseAllowlist(allowlist({ id, package: 'left-pad', reason: REASON }));

    // Act
    const verdict = judge(advisories, entries, TODAY);

    // Assess
    expect(verdict.blocking).toEqual([]);
    expect(verdict.accepted).toEqual([{ advisory: advisories[0], entry: entries[0] }]);
    expect(verdict.stale).toEqual([]);
  });

  it('accepts only the listed advisory and still blocks the others', () => {
    // Prepare
    const advisories = advisoriesOf(
      report(vulnerability('left-pad', 'high', [HIGH]), vulnerability('qs-lite', 'critical', [CRITICAL])),
    );
    const entries = parseAllowlist(allowlist({ id: 'GHSA-2j3f-4x5c-6v7w', reason: REASON }));

    // Act
    const verdict = judge(advisories, entries, TODAY);

    // Assess
    expect(verdict.accepted.map((a) => a.advisory.package)).toEqual(['left-pad']);
    expect(verdict.blocking.map((a) => a.package)).toEqual(['qs-lite']);
  });

  it('still accepts on the expiry day, and blocks again from the day after', () => {
    // Prepare
    const advisories = advisoriesOf(report(vulnerability('qs-lite', 'critical', [CRITICAL])));
    const entries = parseAllowlist(
      allowlist({ id: 'GHSA-8m9p-q2r3-s4t5', reason: REASON, expires: '2025-06-15' }),
    );

    // Act
    const onTheDay = judge(advisories, entries, '2025-06-15');
    const dayAfter = judge(advisories, entries, '2025-06-16');

    // Assess: an expired entry accepts nothing and is reported as expired, not as stale
    expect(onTheDay.blocking).toEqual([]);
    expect(onTheDay.expired).toEqual([]);
    expect(dayAfter.blocking.map((a) => a.package)).toEqual(['qs-lite']);
    expect(dayAfter.accepted).toEqual([]);
    expect(dayAfter.expired).toEqual(entries);
    expect(dayAfter.stale).toEqual([]);
  });

  it('reports an entry that matches no current advisory as stale', () => {
    // Prepare
    const advisories = advisoriesOf(report(vulnerability('left-pad', 'high', [HIGH])));
    const entries = parseAllowlist(
      allowlist(
        { id: 'GHSA-2j3f-4x5c-6v7w', reason: REASON },
        { id: 'GHSA-xxxx-yyyy-zzzz', package: 'gone', reason: 'the package was removed last release' },
      ),
    );

    // Act
    const verdict = judge(advisories, entries, TODAY);

    // Assess
    expect(verdict.blocking).toEqual([]);
    expect(verdict.stale).toEqual([entries[1]]);
  });

  it('does not call an entry stale while it matches a moderate advisory', () => {
    // Prepare
    const advisories = advisoriesOf(report(vulnerability('tiny-json', 'moderate', [MODERATE])));
    const entries = parseAllowlist(allowlist({ id: 'GHSA-c6f7-g8h9-j2k3', reason: REASON }));

    // Act
    const verdict = judge(advisories, entries, TODAY);

    // Assess: moderate advisories are never blocking, so never "accepted" either
    expect(verdict).toEqual({ blocking: [], accepted: [], expired: [], stale: [] });
  });

  it('reports every entry as stale against a clean report, and an expired one only as expired', () => {
    // Prepare
    const entries: AllowlistEntry[] = [
      { id: '1101001', reason: REASON },
      { id: '1101002', reason: REASON, expires: '2025-01-01' },
    ];

    // Act
    const verdict = judge(advisoriesOf(CLEAN), entries, TODAY);

    // Assess
    expect(verdict.stale).toEqual([entries[0]]);
    expect(verdict.expired).toEqual([entries[1]]);
  });
});

describe('parseAllowlist', () => {
  it('reads the entries, keeping package and expires only when given', () => {
    // Act
    const entries = parseAllowlist(
      allowlist(
        { id: 'GHSA-2j3f-4x5c-6v7w', package: 'left-pad', reason: REASON, expires: '2025-12-31' },
        { id: '1101002', reason: REASON },
      ),
    );

    // Assess
    expect(entries).toEqual([
      { id: 'GHSA-2j3f-4x5c-6v7w', package: 'left-pad', reason: REASON, expires: '2025-12-31' },
      { id: '1101002', reason: REASON },
    ]);
  });

  it('reads the empty allowlist that CI ships with', () => {
    expect(parseAllowlist(allowlist())).toEqual([]);
  });

  it.each([
    ['not JSON', '{ advisories: [', /^not JSON/],
    ['a bare array', '[]', /"advisories" array/],
    ['advisories that are not an array', '{"advisories":{"id":"1101001"}}', /"advisories" array/],
    ['no advisories at all', '{"description":"x"}', /"advisories" array/],
    ['an entry that is not an object', allowlist('1101001'), /advisories\[0\] is not an object/],
  ])('refuses %s', (_what, text, message) => {
    expect(allowlistErrorOf(text)).toMatch(message);
  });

  it.each([
    ['a missing reason', { id: '1101001' }, /advisories\[0\] \(1101001\) needs a reason/],
    ['a reason of four words', { id: '1101001', reason: 'not used at runtime' }, /needs a reason/],
    ['a blank reason', { id: '1101001', reason: '     ' }, /needs a reason/],
    ['a reason that is not a string', { id: '1101001', reason: 12345 }, /needs a reason/],
    ['a missing id', { reason: REASON }, /advisories\[0\]\.id must be a GHSA id/],
    ['an id in another form', { id: 'CVE-2024-12345', reason: REASON }, /\.id must be a GHSA id/],
    ['an upper-case GHSA id', { id: 'GHSA-2J3F-4X5C-6V7W', reason: REASON }, /\.id must be a GHSA id/],
    ['an expiry in another format', { id: '1101001', reason: REASON, expires: '15/06/2025' }, /YYYY-MM-DD/],
    ['an expiry with a time', { id: '1101001', reason: REASON, expires: '2025-06-15T00:00' }, /YYYY-MM-DD/],
    ['an expiry in month 13', { id: '1101001', reason: REASON, expires: '2025-13-01' }, /YYYY-MM-DD/],
    ['an expiry on 30 February', { id: '1101001', reason: REASON, expires: '2025-02-30' }, /YYYY-MM-DD/],
    ['an expiry that is a number', { id: '1101001', reason: REASON, expires: 20250615 }, /YYYY-MM-DD/],
    ['a package that is not a string', { id: '1101001', reason: REASON, package: ['a'] }, /package must be/],
  ])('refuses an entry with %s', (_what, entry, message) => {
    expect(allowlistErrorOf(allowlist(entry))).toMatch(message);
  });

  it('names the failing entry by its index', () => {
    // Act
    const message = allowlistErrorOf(allowlist({ id: '1101001', reason: REASON }, { id: '1101002' }));

    // Assess
    expect(message).toMatch(/^advisories\[1\] \(1101002\)/);
  });

  it('accepts an expiry on 29 February of a leap year', () => {
    expect(parseAllowlist(allowlist({ id: '1101001', reason: REASON, expires: '2024-02-29' }))).toHaveLength(
      1,
    );
  });
});

describe('parseAuditOutput when npm gives no report', () => {
  it.each([
    [
      'the JSON error of a registry that refuses the endpoint (E405)',
      JSON.stringify({
        error: {
          code: 'E405',
          summary: '405 Method Not Allowed - POST https://registry.example/-/npm/v1/security/advisories/bulk',
          detail:
            'In most cases you or one of your dependencies are requesting a package version that is forbidden.',
        },
      }),
      '',
      /^E405: 405 Method Not Allowed .* \| In most cases/,
    ],
    [
      'the HTTP error of the audit endpoint',
      JSON.stringify({
        message: '503 Service Unavailable - POST https://registry.npmjs.org/-/npm/v1/security/audits/quick',
        method: 'POST',
        uri: 'https://registry.npmjs.org/-/npm/v1/security/audits/quick',
        headers: {},
        statusCode: 503,
        body: 'unavailable',
      }),
      'npm error audit endpoint returned an error',
      /^503 Service Unavailable/,
    ],
    [
      'a DNS failure',
      JSON.stringify({
        error: {
          code: 'ENOTFOUND',
          summary: 'request to https://registry.npmjs.org/-/npm/v1/security/advisories/bulk failed',
          detail: 'getaddrinfo ENOTFOUND registry.npmjs.org',
        },
      }),
      '',
      /^ENOTFOUND: request to /,
    ],
    [
      'a connection refused',
      JSON.stringify({ error: { code: 'ECONNREFUSED', summary: 'connect ECONNREFUSED 127.0.0.1:4873' } }),
      '',
      /^ECONNREFUSED: connect ECONNREFUSED/,
    ],
    [
      'an error with no code whose stderr names the audit endpoint',
      JSON.stringify({ message: 'request to https://registry.npmjs.org failed, reason: socket hang up' }),
      'npm warn audit request failed\nnpm error audit endpoint returned an error\n',
      /^request to .* socket hang up$/,
    ],
  ])('calls %s unreachable', (_what, stdout, stderr, error) => {
    // Act
    const outcome = parseAuditOutput(stdout, stderr);

    // Assess
    expect(outcome.kind).toBe('unreachable');
    expect(outcome.kind !== 'report' && outcome.error).toMatch(error);
  });

  it.each([
    ['empty output', '', 'npm error code ENOENT', /no JSON report\. stderr: npm error code ENOENT/],
    ['empty output and stderr', '', '', /no JSON report\. stderr: \(empty\)/],
    ['output that is not JSON', 'found 0 vulnerabilities\n', '', /no JSON report/],
    ['a report truncated mid-way', CLEAN.slice(0, 40), '', /no JSON report/],
    ['JSON that is not an object', '[]', '', /JSON that is not an object/],
    ['JSON null', 'null', '', /JSON that is not an object/],
    [
      'a missing lockfile (ENOLOCK)',
      JSON.stringify({ error: { code: 'ENOLOCK', summary: 'This command requires an existing lockfile.' } }),
      '',
      /^ENOLOCK: This command requires an existing lockfile\.$/,
    ],
    ['an object that is no report and no error', '{"hello":"world"}', '', /^\{"hello":"world"\}$/],
    [
      'vulnerabilities without auditReportVersion (not npm 7+ output)',
      JSON.stringify({ vulnerabilities: {}, metadata: {} }),
      '',
      /vulnerabilities/,
    ],
  ])('calls %s a failure', (_what, stdout, stderr, error) => {
    // Act
    const outcome = parseAuditOutput(stdout, stderr);

    // Assess
    expect(outcome.kind).toBe('failed');
    expect(outcome.kind !== 'report' && outcome.error).toMatch(error);
  });
});

// `main` is not exported: run the script on a saved report (`--report`), which never spawns npm.
describe('node scripts/audit.ts --report', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-audit-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function run(stdout: string, strict: boolean) {
    const file = join(dir, `report-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, stdout);
    const env = { ...process.env };
    delete env.BATON_AUDIT_STRICT;
    if (strict) env.BATON_AUDIT_STRICT = '1';
    const result = spawnSync(process.execPath, ['scripts/audit.ts', '--report', file], {
      cwd: join(import.meta.dirname, '..', '..'),
      env,
      encoding: 'utf8',
      timeout: 20_000,
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  const E405 = JSON.stringify({ error: { code: 'E405', summary: '405 Method Not Allowed' } });

  it('passes a clean report', () => {
    // Act
    const result = run(CLEAN, false);

    // Assess
    expect(result.code).toBe(EXIT_OK);
    expect(result.stdout).toContain('audit: no unaccepted high or critical advisory');
  });

  it('fails on an unlisted critical advisory and names it', () => {
    // Act
    const result = run(report(vulnerability('qs-lite', 'critical', [CRITICAL])), false);

    // Assess
    expect(result.code).toBe(EXIT_ADVISORIES);
    expect(result.stderr).toContain('CRITICAL GHSA-8m9p-q2r3-s4t5 in qs-lite');
  });

  it('warns loudly but passes when the endpoint is unreachable', () => {
    // Act
    const result = run(E405, false);

    // Assess
    expect(result.code).toBe(EXIT_OK);
    expect(result.stderr).toContain('production dependencies were NOT checked');
    expect(result.stderr).toContain('E405: 405 Method Not Allowed');
    expect(result.stderr).toContain('set BATON_AUDIT_STRICT=1 to fail instead');
  });

  it('fails as unjudged when the endpoint is unreachable under BATON_AUDIT_STRICT=1', () => {
    // Act
    const result = run(E405, true);

    // Assess
    expect(result.code).toBe(EXIT_UNJUDGED);
    expect(result.stderr).toContain('BATON_AUDIT_STRICT=1: failing');
  });

  it('fails as unjudged on output that is not a report, strict or not', () => {
    // Act
    const results = [run('not json', false), run('not json', true)];

    // Assess
    for (const result of results) {
      expect(result.code).toBe(EXIT_UNJUDGED);
      expect(result.stderr).toContain('audit: npm audit failed: npm audit printed no JSON report');
    }
  });
});
