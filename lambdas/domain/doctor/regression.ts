import type { CheckId, CheckResult, CheckStatus } from './checks.ts';

/** The statuses a scheduled run compares the next one with, by check id. */
export type Baseline = Readonly<Partial<Record<CheckId, CheckStatus>>>;

/** Where the last run's statuses are kept between scheduled runs. */
export interface BaselineStore {
  read(domain: string): Promise<Baseline | undefined>;
  write(domain: string, baseline: Baseline): Promise<void>;
}

export interface Comparison {
  /** Checks that passed (or were recorded passing) and fail now. */
  readonly regressed: readonly CheckId[];
  /** What to store for the next run. */
  readonly next: Baseline;
}

/**
 * Compares a run with the stored baseline. A check that regressed keeps `pass` in the next baseline,
 * so it counts as regressed on every run until it is fixed: the alarm stays in ALARM instead of
 * clearing the day after. A check failing since the first run is no regression (it never passed);
 * the per-check failure metric shows it.
 */
export function compareRuns(previous: Baseline | undefined, checks: readonly CheckResult[]): Comparison {
  const regressed: CheckId[] = [];
  const next: Partial<Record<CheckId, CheckStatus>> = {};
  for (const check of checks) {
    const before = previous?.[check.id];
    if (before === 'pass' && check.status === 'fail') {
      regressed.push(check.id);
      next[check.id] = 'pass';
    } else {
      next[check.id] = check.status;
    }
  }
  return { regressed, next };
}
