/**
 * `node scripts/audit.ts`: the CI gate on known vulnerabilities in production dependencies. Runs
 * `npm audit --omit=dev --json` and fails on every high or critical advisory that is not accepted,
 * with a written reason, in `.ci/audit-allowlist.json`.
 *
 * Exit codes:
 * - 0: no unaccepted high or critical advisory, or the audit endpoint could not be reached (a loud
 *   warning names the error; set `BATON_AUDIT_STRICT=1` to make that a failure too)
 * - 1: at least one high or critical advisory that the allowlist does not accept
 * - 2: the audit could not be judged: malformed allowlist, npm failing for another reason than
 *   the endpoint, output that is not an audit report, or the endpoint unreachable under strict mode
 *
 * `--report <file>` reads a saved `npm audit --json` output instead of running npm.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ALLOWLIST_PATH = join(ROOT, '.ci', 'audit-allowlist.json');

export const EXIT_OK = 0;
export const EXIT_ADVISORIES = 1;
export const EXIT_UNJUDGED = 2;

/** Severities that fail the build. */
const BLOCKING = new Set(['high', 'critical']);

/** Network-level error codes: the registry's audit endpoint was not reached. */
const UNREACHABLE_CODES =
  /^(E\d{3}|ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH|ERR_SOCKET_TIMEOUT|EPROXY)$/;

/** One accepted advisory: `id` is the GHSA id (preferred) or npm's numeric advisory id. */
export interface AllowlistEntry {
  readonly id: string;
  readonly package?: string;
  /** Why it does not affect Baton, or why it cannot be fixed yet. */
  readonly reason: string;
  /** `YYYY-MM-DD`: from the day after, the advisory blocks again. */
  readonly expires?: string;
}

/** One advisory in one package, as `npm audit --json` reports it under `via`. */
export interface Advisory {
  readonly source: number;
  readonly ghsa: string | undefined;
  readonly package: string;
  readonly title: string;
  readonly url: string;
  readonly severity: string;
  readonly range: string;
}

export type AuditOutcome =
  | {
      readonly kind: 'report';
      readonly advisories: readonly Advisory[];
      readonly counts: Record<string, number>;
    }
  | { readonly kind: 'unreachable'; readonly error: string }
  | { readonly kind: 'failed'; readonly error: string };

export class AllowlistError extends Error {
  override readonly name = 'AllowlistError';
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `YYYY-MM-DD` naming a real day: `2025-13-01` or `2025-02-30` would compare as dates that do not exist. */
const isCalendarDate = (text: string): boolean =>
  /^\d{4}-\d{2}-\d{2}$/.test(text) &&
  !Number.isNaN(Date.parse(text)) &&
  new Date(text).toISOString().slice(0, 10) === text;

/** Reads and validates the allowlist: every entry needs an id and a reason of a few words. */
export function parseAllowlist(text: string): AllowlistEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AllowlistError(`not JSON: ${(error as Error).message}`);
  }
  if (!isRecord(json) || !Array.isArray(json.advisories)) {
    throw new AllowlistError('expected an object with an "advisories" array');
  }
  return json.advisories.map((entry: unknown, index): AllowlistEntry => {
    const where = `advisories[${index}]`;
    if (!isRecord(entry)) throw new AllowlistError(`${where} is not an object`);
    const { id, reason, expires } = entry;
    if (typeof id !== 'string' || !/^(GHSA(-[0-9a-z]{4}){3}|\d+)$/.test(id)) {
      throw new AllowlistError(
        `${where}.id must be a GHSA id or an npm advisory number, got ${JSON.stringify(id)}`,
      );
    }
    if (typeof reason !== 'string' || reason.trim().split(/\s+/).length < 5) {
      throw new AllowlistError(`${where} (${id}) needs a reason of at least five words`);
    }
    if (expires !== undefined && (typeof expires !== 'string' || !isCalendarDate(expires))) {
      throw new AllowlistError(`${where} (${id}).expires must be a YYYY-MM-DD date`);
    }
    if (entry.package !== undefined && typeof entry.package !== 'string') {
      throw new AllowlistError(`${where} (${id}).package must be a string`);
    }
    return {
      id,
      reason,
      ...(typeof entry.package === 'string' ? { package: entry.package } : {}),
      ...(expires === undefined ? {} : { expires }),
    };
  });
}

/** Classifies `npm audit --json` output: a report, an unreachable endpoint, or another failure. */
export function parseAuditOutput(stdout: string, stderr: string): AuditOutcome {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    return {
      kind: 'failed',
      error: `npm audit printed no JSON report. stderr: ${stderr.trim() || '(empty)'}`,
    };
  }
  if (!isRecord(json)) return { kind: 'failed', error: 'npm audit printed JSON that is not an object' };

  if (isRecord(json.vulnerabilities) && json.auditReportVersion !== undefined) {
    const advisories = new Map<number, Advisory>();
    for (const vulnerability of Object.values(json.vulnerabilities)) {
      if (!isRecord(vulnerability) || !Array.isArray(vulnerability.via)) continue;
      // A string in `via` names another vulnerable package, listed with its own advisories.
      for (const via of vulnerability.via) {
        if (!isRecord(via) || typeof via.source !== 'number') continue;
        const url = String(via.url ?? '');
        advisories.set(via.source, {
          source: via.source,
          ghsa: /GHSA(-[0-9a-z]{4}){3}/.exec(url)?.[0],
          package: String(via.name ?? vulnerability.name ?? '?'),
          title: String(via.title ?? ''),
          url,
          severity: String(via.severity ?? 'unknown'),
          range: String(via.range ?? ''),
        });
      }
    }
    const metadata =
      isRecord(json.metadata) && isRecord(json.metadata.vulnerabilities) ? json.metadata.vulnerabilities : {};
    const counts = Object.fromEntries(
      Object.entries(metadata).filter((entry): entry is [string, number] => typeof entry[1] === 'number'),
    );
    return { kind: 'report', advisories: [...advisories.values()], counts };
  }

  // npm's JSON error: `{ message, statusCode, uri, ... }` for HTTP errors, `{ error: { code, summary } }` otherwise.
  const error = isRecord(json.error) ? json.error : {};
  const code = String(json.code ?? error.code ?? '');
  const message = [json.message, error.summary, error.detail]
    .filter((part) => typeof part === 'string' && part !== '')
    .join(' | ');
  const text = message || stderr.trim() || JSON.stringify(json);
  const unreachable =
    typeof json.statusCode === 'number' || UNREACHABLE_CODES.test(code) || /audit endpoint/i.test(stderr);
  return { kind: unreachable ? 'unreachable' : 'failed', error: code ? `${code}: ${text}` : text };
}

export interface Verdict {
  readonly blocking: readonly Advisory[];
  readonly accepted: readonly { readonly advisory: Advisory; readonly entry: AllowlistEntry }[];
  /** Allowlist entries past their expiry date (they no longer accept anything). */
  readonly expired: readonly AllowlistEntry[];
  /** Allowlist entries that match no current advisory: remove them. */
  readonly stale: readonly AllowlistEntry[];
}

/** Which high and critical advisories block, given the allowlist and today's date (`YYYY-MM-DD`). */
export function judge(
  advisories: readonly Advisory[],
  allowlist: readonly AllowlistEntry[],
  today: string,
): Verdict {
  const live = allowlist.filter((entry) => entry.expires === undefined || entry.expires >= today);
  const expired = allowlist.filter((entry) => !live.includes(entry));
  const matches = (advisory: Advisory, entry: AllowlistEntry): boolean =>
    entry.id === advisory.ghsa || entry.id === String(advisory.source);
  const blocking: Advisory[] = [];
  const accepted: { advisory: Advisory; entry: AllowlistEntry }[] = [];
  for (const advisory of advisories.filter((a) => BLOCKING.has(a.severity))) {
    const entry = live.find((candidate) => matches(advisory, candidate));
    if (entry === undefined) blocking.push(advisory);
    else accepted.push({ advisory, entry });
  }
  const stale = live.filter((entry) => !advisories.some((advisory) => matches(advisory, entry)));
  return { blocking, accepted, expired, stale };
}

const describe = (a: Advisory): string =>
  `${a.severity.toUpperCase()} ${a.ghsa ?? a.source} in ${a.package} ${a.range}: ${a.title} (${a.url})`;

function runNpmAudit(): AuditOutcome {
  const result = spawnSync('npm', ['audit', '--omit=dev', '--json'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error !== undefined) {
    return { kind: 'failed', error: `could not run npm audit: ${result.error.message}` };
  }
  // npm audit exits 1 when it finds vulnerabilities: the JSON decides, not the exit code.
  return parseAuditOutput(result.stdout, result.stderr);
}

function main(argv: readonly string[]): number {
  const out = (text: string): void => {
    process.stdout.write(`${text}\n`);
  };
  const err = (text: string): void => {
    process.stderr.write(`${text}\n`);
  };

  let allowlist: AllowlistEntry[];
  try {
    allowlist = parseAllowlist(readFileSync(ALLOWLIST_PATH, 'utf8'));
  } catch (error) {
    err(`audit: ${ALLOWLIST_PATH}: ${(error as Error).message}`);
    return EXIT_UNJUDGED;
  }

  const reportIndex = argv.indexOf('--report');
  const reportFile = reportIndex === -1 ? undefined : argv[reportIndex + 1];
  const outcome =
    reportFile === undefined ? runNpmAudit() : parseAuditOutput(readFileSync(reportFile, 'utf8'), '');

  if (outcome.kind === 'unreachable') {
    const strict = process.env.BATON_AUDIT_STRICT === '1';
    err('');
    err(
      '!! audit: WARNING: the npm audit endpoint could not be reached; production dependencies were NOT checked.',
    );
    err(`!! audit: ${outcome.error}`);
    err(
      strict
        ? '!! audit: BATON_AUDIT_STRICT=1: failing.'
        : '!! audit: passing anyway (set BATON_AUDIT_STRICT=1 to fail instead). Run it where the registry is reachable.',
    );
    err('');
    return strict ? EXIT_UNJUDGED : EXIT_OK;
  }
  if (outcome.kind === 'failed') {
    err(`audit: npm audit failed: ${outcome.error}`);
    return EXIT_UNJUDGED;
  }

  const verdict = judge(outcome.advisories, allowlist, new Date().toISOString().slice(0, 10));
  const counts = ['critical', 'high', 'moderate', 'low', 'info']
    .map((severity) => `${outcome.counts[severity] ?? 0} ${severity}`)
    .join(', ');
  out(`audit: production dependencies: ${counts} (vulnerable packages, by highest severity)`);
  for (const { advisory, entry } of verdict.accepted) {
    out(`audit: accepted ${describe(advisory)}\n         reason: ${entry.reason}`);
  }
  for (const entry of verdict.expired) {
    out(`audit: note: allowlist entry ${entry.id} expired on ${entry.expires} and accepts nothing any more`);
  }
  for (const entry of verdict.stale) {
    out(`audit: note: allowlist entry ${entry.id} matches no current advisory; remove it`);
  }
  if (verdict.blocking.length > 0) {
    err(
      `audit: ${verdict.blocking.length} high or critical advisory(ies) not accepted in .ci/audit-allowlist.json:`,
    );
    for (const advisory of verdict.blocking) err(`  ${describe(advisory)}`);
    err(
      'audit: upgrade the dependency, or add the advisory id with a reason (and an expiry) to the allowlist.',
    );
    return EXIT_ADVISORIES;
  }
  out('audit: no unaccepted high or critical advisory');
  return EXIT_OK;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
