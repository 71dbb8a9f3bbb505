import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { type CheckResult, runChecks, type SesView } from '../domain/doctor/checks.ts';
import type { DnsPort } from '../domain/doctor/dns.ts';
import { type BaselineStore, compareRuns } from '../domain/doctor/regression.ts';
import { DoctorMetric } from '../shared/names.ts';
import { describeError, logger, metrics } from '../shared/observability.ts';

export interface ScheduledDoctorDeps {
  readonly dns: DnsPort;
  readonly readIdentity: (domain: string) => Promise<SesView>;
  readonly baseline: BaselineStore;
  /** The region the function (and SES) runs in. */
  readonly region: string;
}

/** What one scheduled run found for one domain. */
export interface DomainOutcome {
  readonly domain: string;
  readonly failed: readonly string[];
  readonly regressed: readonly string[];
}

/**
 * The daily run of the domain doctor against real DNS and SES, for each sending domain: one
 * `doctorCheckFailed` datapoint per failing check (dimension `check`), and `doctorChecksRegressed`,
 * the checks that passed before and fail now, compared with the baseline the last run stored. A
 * domain whose checks could not run (SES or the table failing) fails the invocation after the
 * others ran, so the function's error alarm says so.
 */
export function createScheduledDoctor(deps: ScheduledDoctorDeps, domains: readonly string[]) {
  return async (): Promise<DomainOutcome[]> => {
    const outcomes: DomainOutcome[] = [];
    let regressedTotal = 0;
    let firstError: unknown;
    for (const domain of domains) {
      try {
        const ses = await deps.readIdentity(domain);
        const checks = await runChecks(
          { domain, ses, region: { name: deps.region, source: 'the function' } },
          deps.dns,
        );
        const comparison = compareRuns(await deps.baseline.read(domain), checks);
        await deps.baseline.write(domain, comparison.next);
        const failed = checks.filter((c) => c.status === 'fail');
        for (const check of failed) recordFailure(check);
        regressedTotal += comparison.regressed.length;
        const outcome = { domain, failed: failed.map((c) => c.id), regressed: comparison.regressed };
        outcomes.push(outcome);
        logger.info('domain doctor ran', {
          ...outcome,
          warned: checks.filter((c) => c.status === 'warn').map((c) => c.id),
        });
      } catch (error) {
        logger.error('domain doctor could not run', { domain, ...describeError(error) });
        firstError ??= error;
      }
    }
    metrics.addMetric(DoctorMetric.checksRegressed, MetricUnit.Count, regressedTotal);
    if (firstError !== undefined) throw firstError;
    return outcomes;
  };
}

function recordFailure(check: CheckResult): void {
  const single = metrics.singleMetric();
  single.addDimension(DoctorMetric.checkDimension, check.id);
  single.addMetric(DoctorMetric.checkFailed, MetricUnit.Count, 1);
}
