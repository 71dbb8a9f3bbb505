/**
 * What `--enable-source-maps` costs a Baton function on its error path (issue 11, part 15). Each
 * handler is bundled as the stack bundles it (minified, map beside it), then, in fresh processes
 * alternating without and with the flag: the cold import, the first formatting of a stack thrown
 * from inside the bundle (with the flag, Node parses the whole source map then), later formattings
 * (median), and RSS after import and after the first stack.
 *
 * Lambda gives a function CPU in proportion to its memory, a full vCPU at 1,769 MB: at 256 MB a
 * CPU-bound step takes about 1769 / 256 ≈ 6.9 times as long as on one core here. The "at 256 MB"
 * column applies that factor (an estimate; this machine's cores are shared, so figures vary).
 *
 * Run: `npm run bench:source-maps` (RUNS=n processes per variant, default 5).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FUNCTIONS, handlerEnvironment } from './sections/bundles.ts';
import type { FunctionName } from './sections/types.ts';
import { bundleTo, iterations, median, printTable, runProbe } from './support.ts';

/** Lambda's memory for one full vCPU; CPU scales linearly below it. */
const FULL_VCPU_MB = 1769;
const MEMORY_MB = 256;
const SCALE = FULL_VCPU_MB / MEMORY_MB;
const PROCESSES = iterations(5);
const STACKS_PER_PROCESS = 25;

interface ErrorPath {
  readonly importMs: number;
  readonly firstStackMs: number;
  readonly laterStackMs: number;
  readonly mappedFrames: number;
  readonly rssAfterImportMb: number;
  readonly rssAfterFirstStackMb: number;
}

async function errorPath(bundle: string, fn: FunctionName, sourceMaps: boolean): Promise<ErrorPath> {
  const env = {
    ...handlerEnvironment(fn),
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
  const { out } = await runProbe(
    'bench/probe/error-child.mjs',
    [bundle, String(STACKS_PER_PROCESS)],
    env,
    sourceMaps,
  );
  return JSON.parse(out) as ErrorPath;
}

function medians(runs: readonly ErrorPath[]): ErrorPath {
  const of = (key: keyof ErrorPath) => median(runs.map((r) => r[key]));
  return {
    importMs: of('importMs'),
    firstStackMs: of('firstStackMs'),
    laterStackMs: of('laterStackMs'),
    mappedFrames: of('mappedFrames'),
    rssAfterImportMb: of('rssAfterImportMb'),
    rssAfterFirstStackMb: of('rssAfterFirstStackMb'),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'baton-source-maps-'));
const rows: string[][] = [
  [
    'function',
    'figure',
    'no maps',
    'with maps',
    'difference',
    `difference at ${MEMORY_MB} MB (×${SCALE.toFixed(1)})`,
  ],
];
try {
  for (const [fn, entry] of Object.entries(FUNCTIONS) as [FunctionName, string][]) {
    const bundle = join(dir, fn, 'index.mjs');
    await bundleTo(entry, bundle);
    const mapKb = statSync(`${bundle}.map`).size / 1024;
    const plain: ErrorPath[] = [];
    const mapped: ErrorPath[] = [];
    // Alternating, so load on the shared machine hits both variants alike.
    for (let i = 0; i < PROCESSES; i++) {
      plain.push(await errorPath(bundle, fn, false));
      mapped.push(await errorPath(bundle, fn, true));
    }
    const [a, b] = [medians(plain), medians(mapped)];
    const ms = (v: number) => `${v.toFixed(v < 1 ? 3 : 1)} ms`;
    const mb = (v: number) => `${v.toFixed(1)} MB`;
    const time = (label: string, key: keyof ErrorPath) => {
      const d = b[key] - a[key];
      rows.push([fn, label, ms(a[key]), ms(b[key]), ms(d), ms(d * SCALE)]);
    };
    const memory = (label: string, key: keyof ErrorPath) => {
      rows.push([fn, label, mb(a[key]), mb(b[key]), mb(b[key] - a[key]), mb(b[key] - a[key])]);
    };
    time('cold import', 'importMs');
    time('first error: format its stack', 'firstStackMs');
    time(`later errors: format a stack (median of ${STACKS_PER_PROCESS})`, 'laterStackMs');
    memory('RSS after import', 'rssAfterImportMb');
    memory('RSS after the first stack', 'rssAfterFirstStackMb');
    rows.push([
      fn,
      `source map size; frames mapped to .ts (of the bundle's)`,
      '',
      `${mapKb.toFixed(0)} KB`,
      `${b.mappedFrames}`,
      '',
    ]);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
printTable(
  `--enable-source-maps on the error path (median of ${PROCESSES} fresh processes per variant, Node ${process.version})`,
  rows,
);
