import type { CheckResult, CheckStatus } from './checks.ts';

/** The `--json` output: one object, the checks in a stable order. */
export interface DoctorReport {
  readonly domain: string;
  readonly checks: readonly CheckResult[];
}

const MARKS: Readonly<Record<CheckStatus, string>> = { pass: '✓', warn: '!', fail: '✗' };

/**
 * Control characters as the zone-file escape `\DDD`: details and fixes quote DNS data, which whoever
 * publishes it chooses (an include: target, a parent's DMARC record), and a terminal must not run
 * its escape sequences, nor a newline in it start a line that reads like another check's result.
 */
function printable(text: string): string {
  let out = '';
  for (const c of text) {
    const code = c.charCodeAt(0);
    out += code < 0x20 || (code >= 0x7f && code <= 0x9f) ? `\\${String(code).padStart(3, '0')}` : c;
  }
  return out;
}

/** One line per check (mark, id, detail), the fix indented below it. */
export function formatReport(report: DoctorReport, header: string): string {
  const lines = [header, ''];
  for (const check of report.checks) {
    lines.push(`${MARKS[check.status]} ${check.status.padEnd(4)} ${check.id}: ${printable(check.detail)}`);
    if (check.fix !== '')
      lines.push(
        ...check.fix
          .split('\n')
          .map((line, i) => `${i === 0 ? '      fix: ' : '           '}${printable(line)}`),
      );
  }
  const count = (status: CheckStatus) => report.checks.filter((c) => c.status === status).length;
  lines.push('', `${count('pass')} passed, ${count('warn')} warnings, ${count('fail')} failed`);
  return lines.join('\n');
}

/** Only the documented fields, in the documented order, whatever a check carries. */
export function reportJson(report: DoctorReport): string {
  return JSON.stringify({
    domain: report.domain,
    checks: report.checks.map(({ id, status, detail, fix }) => ({ id, status, detail, fix })),
  });
}

/** 1 when any check failed, else 0. */
export function exitCodeOf(checks: readonly CheckResult[]): 0 | 1 {
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}
