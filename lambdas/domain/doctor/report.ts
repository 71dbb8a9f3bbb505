import type { CheckResult, CheckStatus } from './checks.ts';

/** The `--json` output: one object, the checks in a stable order. */
export interface DoctorReport {
  readonly domain: string;
  readonly checks: readonly CheckResult[];
}

const MARKS: Readonly<Record<CheckStatus, string>> = { pass: '✓', warn: '!', fail: '✗' };

/** One line per check (mark, id, detail), the fix indented below it. */
export function formatReport(report: DoctorReport, header: string): string {
  const lines = [header, ''];
  for (const check of report.checks) {
    lines.push(`${MARKS[check.status]} ${check.status.padEnd(4)} ${check.id}: ${check.detail}`);
    if (check.fix !== '')
      lines.push(
        ...check.fix.split('\n').map((line, i) => `${i === 0 ? '      fix: ' : '           '}${line}`),
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
