/**
 * `npm run soak`: the full fault soak (10,000 messages by default, `--messages=N` to change it),
 * then the fuzz suites at 100,000+ cases. Prints the figures and exits non-zero on any failed check.
 */
import { spawnSync } from 'node:child_process';
import { formatReport, runSoak } from './soak.ts';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const messages = Number(arg('messages') ?? 10_000);
const fuzzRuns = arg('fuzz-runs') ?? '100000';
const started = Date.now();

const report = await runSoak({
  messages,
  kills: Number(arg('kills') ?? 6),
  seed: Number(arg('seed') ?? 1),
  concurrency: Number(arg('concurrency') ?? 16),
  leaseSeconds: Number(arg('lease') ?? 20),
  visibilitySeconds: Number(arg('visibility') ?? 30),
  log: (line) => console.log(`[soak] ${line}`),
});
console.log(`\n${formatReport(report)}\n`);
for (const p of report.problems) console.log(`FAIL ${p}`);

let fuzzOk = true;
if (fuzzRuns !== '0') {
  console.log(`[soak] fuzz suites with BATON_FUZZ_RUNS=${fuzzRuns}`);
  const fuzz = spawnSync(
    'npx',
    [
      'vitest',
      'run',
      '--project',
      'unit',
      // Ten times the cases of npm test: the per-test timeout of the unit tier does not fit them.
      '--testTimeout=900000',
      'test/unit/api/fuzz.test.ts',
      'test/unit/feedback/fuzz.test.ts',
      'test/unit/domain/html-url-schemes.test.ts',
      'test/unit/smtp/fuzz.test.ts',
    ],
    { stdio: 'inherit', env: { ...process.env, BATON_FUZZ_RUNS: fuzzRuns } },
  );
  fuzzOk = fuzz.status === 0;
}
console.log(`[soak] total ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(report.problems.length === 0 && fuzzOk ? 0 : 1);
