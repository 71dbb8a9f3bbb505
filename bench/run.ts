/**
 * `npm run bench`: runs the bench sections in order, prints one table of every figure (with its
 * target where it has one) and writes the same rows, with the machine they were measured on, to
 * `bench/results/latest.json`.
 *
 *   npm run bench                               every section
 *   npm run bench -- --only=cpu,bundles         some sections (and the ones they need, e.g. cost → cpu, memory)
 *   npm run bench -- --list                     the sections and what they measure
 *   npm run bench -- --markdown                 the last run's table (latest.json) as markdown
 *   BENCH_ITERATIONS=1000 BENCH_INIT_RUNS=10    timed runs per CPU figure / fresh processes per init figure
 *   BENCH_PROBE_CPU_PROF=dir BENCH_KEEP_TMP=1   CPU profiles of the handler probes; then
 *                                               `node bench/profile.ts <file.cpuprofile>` says where the time went
 *
 * A section is a module whose `section` export returns rows; sections hand results to later ones
 * through `ctx.shared` (see sections/types.ts). To add one, add it to SECTIONS below, before the
 * sections that read its results.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, Row, Section } from './sections/types.ts';
import { iterations, printTable } from './support.ts';

interface Entry {
  readonly name: string;
  readonly load: () => Promise<{ readonly section: Section }>;
}

/**
 * Every section, in run order. Planned by the lead (they need local mode): `pipeline`, `floor`,
 * `requests` (which sets `ctx.shared.requests`, read by cost in place of the probe counts) and
 * `isolation`; they go before `cost`.
 */
export const SECTIONS: readonly Entry[] = [
  { name: 'cpu', load: () => import('./sections/cpu.ts') },
  { name: 'bundles', load: () => import('./sections/bundles.ts') },
  { name: 'memory', load: () => import('./sections/memory.ts') },
  { name: 'pipeline', load: () => import('./sections/pipeline.ts') },
  { name: 'requests', load: () => import('./sections/requests.ts') },
  { name: 'floor', load: () => import('./sections/floor.ts') },
  { name: 'isolation', load: () => import('./sections/isolation.ts') },
  { name: 'smtp', load: () => import('./sections/smtp.ts') },
  { name: 'cost', load: () => import('./sections/cost.ts') },
  { name: 'guard', load: () => import('./sections/guard.ts') },
  { name: 'webhooks', load: () => import('./sections/webhooks.ts') },
];

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results', 'latest.json');

function argument(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

/** The sections to run: those asked for and, before them, those they need. */
async function plan(only: readonly string[] | undefined): Promise<{ section: Section; asked: boolean }[]> {
  const known = new Map(SECTIONS.map((e) => [e.name, e]));
  const unknown = (only ?? []).filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new Error(
      `unknown section(s) ${unknown.join(', ')}; known: ${SECTIONS.map((e) => e.name).join(', ')}`,
    );
  }
  const loaded = new Map<string, Section>();
  for (const e of SECTIONS) loaded.set(e.name, (await e.load()).section);
  const wanted = new Set(only ?? SECTIONS.map((e) => e.name));
  const add = (name: string): void => {
    for (const need of loaded.get(name)?.needs ?? []) {
      if (!wanted.has(need)) {
        wanted.add(need);
        add(need);
      }
    }
  };
  for (const name of [...wanted]) add(name);
  const asked = new Set(only ?? SECTIONS.map((e) => e.name));
  return SECTIONS.filter((e) => wanted.has(e.name)).map((e) => ({
    section: loaded.get(e.name) as Section,
    asked: asked.has(e.name),
  }));
}

/** Numbers to at most three decimals, fewer as they grow; dollars with their sign. */
export function formatValue(value: number | string, unit?: string): string {
  if (typeof value === 'string') return unit ? `${value} ${unit}` : value;
  if (unit === '$')
    return `$${value < 0.01 && value > 0 ? value.toPrecision(2) : value.toFixed(value >= 100 ? 0 : 3)}`;
  const abs = Math.abs(value);
  const text =
    Number.isInteger(value) || abs >= 100
      ? value.toFixed(0)
      : abs >= 10
        ? value.toFixed(1)
        : abs >= 1
          ? value.toFixed(2)
          : value === 0
            ? '0'
            : value.toPrecision(2);
  return unit ? `${text} ${unit}` : text;
}

function tableRows(rows: readonly Row[]): string[][] {
  return [
    ['section', 'figure', 'value', 'floor / base', 'ratio', 'target', 'ok', 'note'],
    ...rows.map((r) => [
      r.section,
      r.figure,
      formatValue(r.value, r.unit),
      r.floor === undefined ? '' : formatValue(r.floor, typeof r.floor === 'number' ? r.unit : undefined),
      r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`,
      r.target ?? '',
      r.pass === undefined ? '' : r.pass ? 'yes' : 'MISS',
      r.note ?? '',
    ]),
  ];
}

async function main(): Promise<number> {
  const only = argument('only')
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (process.argv.includes('--markdown')) {
    // The last run's table for docs/performance.md (notes stay in latest.json).
    const { rows } = JSON.parse(readFileSync(RESULTS, 'utf8')) as { rows: Row[] };
    for (const [i, cells] of tableRows(rows).entries()) {
      const row = cells.slice(0, 7).map((c) => c.replaceAll('|', '\\|'));
      console.log(`| ${row.join(' | ')} |`);
      if (i === 0) console.log(`|${row.map(() => ' --- ').join('|')}|`);
    }
    return 0;
  }
  if (process.argv.includes('--list')) {
    for (const { section } of await plan(undefined)) {
      console.log(
        `${section.name.padEnd(10)} ${section.title}${section.needs ? ` (needs ${section.needs.join(', ')})` : ''}`,
      );
    }
    return 0;
  }
  const started = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), 'baton-bench-'));
  const ctx: BenchContext = {
    iterations: iterations(2000, 1000),
    initRuns: Math.max(3, Number(process.env.BENCH_INIT_RUNS ?? 10)),
    tmp,
    shared: {},
    progress: (message) =>
      process.stderr.write(
        `[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`,
      ),
  };
  const loadBefore = loadavg()[0] ?? 0;
  const rows: Row[] = [];
  const failures: { section: string; error: string }[] = [];
  try {
    for (const { section, asked } of await plan(only)) {
      ctx.progress(`${section.name}: ${section.title}${asked ? '' : ' (needed by a section asked for)'}`);
      const t0 = performance.now();
      try {
        rows.push(...(await section.run(ctx)));
      } catch (error) {
        const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
        failures.push({ section: section.name, error: text });
        rows.push({
          section: section.name,
          figure: 'section failed',
          value: 'error',
          pass: false,
          note: text.split('\n')[0] ?? '',
        });
        ctx.progress(`${section.name} failed: ${text}`);
      }
      ctx.progress(`${section.name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    // BENCH_KEEP_TMP=1 keeps the bundles (and their maps), e.g. to read a probe's CPU profile.
    if (process.env.BENCH_KEEP_TMP === '1') ctx.progress(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }

  const seconds = (performance.now() - started) / 1000;
  const cpu = cpus();
  const machine = {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    totalMemoryMb: Math.round(totalmem() / 2 ** 20),
    // Load average (1 min) when the run started and ended: timings from a busy machine are noisy.
    loadAverage: { start: Number(loadBefore.toFixed(2)), end: Number((loadavg()[0] ?? 0).toFixed(2)) },
  };
  printTable(
    `Baton bench: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node} ${machine.arch}, load ${machine.loadAverage.start}→${machine.loadAverage.end}, ${new Date().toISOString()}, ${seconds.toFixed(0)} s`,
    tableRows(rows),
  );
  const misses = rows.filter((r) => r.pass === false);
  console.log(
    `\n${rows.filter((r) => r.pass === true).length} figures meet their target, ${misses.length} miss` +
      (misses.length > 0 ? `: ${misses.map((r) => `${r.section}/${r.figure}`).join('; ')}` : ''),
  );

  mkdirSync(dirname(RESULTS), { recursive: true });
  const partial = `${RESULTS}.${process.pid}.tmp`;
  writeFileSync(
    partial,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        durationSeconds: Math.round(seconds),
        machine,
        settings: { only: only ?? null, iterations: ctx.iterations, initRuns: ctx.initRuns },
        rows,
        failures,
        details: ctx.shared.extra ?? {},
      },
      null,
      2,
    )}\n`,
  );
  renameSync(partial, RESULTS);
  console.log(`written to ${RESULTS}`);
  return failures.length > 0 ? 1 : 0;
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  return 2;
});
