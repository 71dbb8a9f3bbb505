/**
 * Import first (before any module under `lambdas/`) in unit tests that run handler apps: the
 * Powertools logger and metrics are created when `shared/observability.ts` loads, and read these
 * variables then. Without them every request prints a JSON log line and an EMF blob, which buries
 * the test report. Log and metric content is not what the unit tier checks.
 */
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';
