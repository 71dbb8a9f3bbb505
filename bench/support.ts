/** What the benches share: the 10 KB message they measure with, the timing loop, bundling and output. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import { SENDER_BUNDLE_DEFINE } from '../lib/constructs/sender-lane.ts';

const SENDER_ENTRY = 'lambdas/sender/handler.ts';

const paragraph = 'Thank you for your order. Your items will ship within two business days. ';

/** A POST /v1/messages body of about 10 KB: 5 KB of text, 5 KB of table-laid-out HTML. */
export const TEN_KB_MESSAGE = {
  from: 'Shop <orders@example.com>',
  to: ['ana@example.org'],
  subject: 'Your receipt #12345',
  text: paragraph.repeat(Math.ceil(5_000 / paragraph.length)).slice(0, 5_000),
  html: `<html><body><table width="600"><tr><td style="font-family:Arial">${`<p>${paragraph}</p>`.repeat(70)}</td></tr></table></body></html>`.slice(
    0,
    5_200,
  ),
  tags: { campaign: 'receipts' },
  headers: { 'X-Order-Id': '12345' },
} as const;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Runs to time: `BENCH_ITERATIONS` (the short setting) or `fallback`, never fewer than `minimum`. */
export function iterations(fallback: number, minimum = 1): number {
  return Math.max(minimum, Number(process.env.BENCH_ITERATIONS ?? fallback));
}

export interface MeasureOptions {
  readonly iterations: number;
  /** Untimed runs first, so the JIT and the fakes are warm. */
  readonly warmup: number;
  /** Untimed set-up before each run (seeding a record, say); warm-up runs get negative indices. */
  readonly before?: (i: number) => void;
}

/** Medians, in microseconds, of the CPU time (user + system) and the wall time of one run. */
export interface Timing {
  readonly cpuUs: number;
  readonly wallUs: number;
}

export async function measure(run: (i: number) => unknown, options: MeasureOptions): Promise<Timing> {
  for (let i = -options.warmup; i < 0; i++) {
    options.before?.(i);
    await run(i);
  }
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < options.iterations; i++) {
    options.before?.(i);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run(i);
    wall.push((performance.now() - t0) * 1000);
    const c = process.cpuUsage(c0);
    cpu.push(c.user + c.system);
  }
  return { cpuUs: median(cpu), wallUs: median(wall) };
}

/** `1234` µs → `1.234 ms`. */
export function ms(us: number): string {
  return `${(us / 1000).toFixed(3)} ms`;
}

const FUNCTION_SOURCE = fileURLToPath(new URL('../lib/constructs/baton-function.ts', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The esbuild options `BatonFunction` gives NodejsFunction (lib/constructs/baton-function.ts):
 * ES module, node24, module builds first, minified, the AWS SDK bundled (no externals), the
 * `require` banner, a linked source map without sources. `drift` lists the settings this copy
 * could not find in that file, so a change there shows up in the bench output instead of going
 * unnoticed.
 */
export function lambdaBuildOptions(): { options: BuildOptions; drift: string[] } {
  const source = readFileSync(FUNCTION_SOURCE, 'utf8');
  const banner = /const ESM_REQUIRE_BANNER =\s*"([^"]+)";/.exec(source)?.[1];
  const expected = [
    'format: OutputFormat.ESM',
    "mainFields: ['module', 'main']",
    'banner: ESM_REQUIRE_BANNER',
    "target: 'node24'",
    'minify: true',
    'sourceMap: true',
    'sourcesContent: false',
    'bundleAwsSDK: true',
  ];
  const drift = expected.filter((setting) => !source.includes(setting));
  if (banner === undefined) drift.push('ESM_REQUIRE_BANNER');
  return {
    options: {
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      mainFields: ['module', 'main'],
      minify: true,
      sourcemap: 'linked',
      sourcesContent: false,
      ...(banner === undefined ? {} : { banner: { js: banner } }),
      logLevel: 'silent',
    },
    drift,
  };
}

/**
 * Bundles `entry` (a path under the repository, or source text resolved from the repository root)
 * as the stack does, into `outfile` (`.mjs`, with its `.map` beside it). Returns the size in bytes
 * of the bundle itself, without the source map, and esbuild's metafile (what went into it).
 */
export async function bundleTo(
  entry: string | { readonly contents: string },
  outfile: string,
): Promise<{ bytes: number; metafile: Metafile }> {
  const { options } = lambdaBuildOptions();
  // The stack bundles the sender without the DKIM signer (SES signs deployed): so does the bench.
  const define = entry === SENDER_ENTRY ? { ...options.define, ...SENDER_BUNDLE_DEFINE } : options.define;
  const result = await build({
    ...options,
    ...(define ? { define } : {}),
    ...(typeof entry === 'string'
      ? { entryPoints: [join(REPO_ROOT, entry)] }
      : { stdin: { contents: entry.contents, resolveDir: REPO_ROOT, sourcefile: 'floor.ts', loader: 'ts' } }),
    outfile,
    write: true,
    metafile: true,
  });
  return { bytes: statSync(outfile).size, metafile: result.metafile };
}

/** Size in KB of a handler bundled as the stack bundles it, without its source map. */
export async function bundleKb(entry: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bundle-'));
  try {
    return (await bundleTo(entry, join(dir, 'index.mjs'))).bytes / 1024;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Prints rows as columns padded to their widest cell, under an optional title. */
export function printTable(title: string | undefined, rows: readonly (readonly string[])[]): void {
  if (title !== undefined) console.log(`\n${title}`);
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  for (const r of rows) {
    console.log(
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
        .join('  ')
        .trimEnd(),
    );
  }
}

/**
 * Runs a probe script (plain .mjs under bench/probe) in a fresh `node` with `env` only, optionally
 * with --enable-source-maps, and returns its stdout and how long the process took, spawn to exit.
 */
export function runProbe(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  sourceMaps: boolean,
): Promise<{ out: string; processMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [...(sourceMaps ? ['--enable-source-maps'] : []), join(REPO_ROOT, script), ...args],
      { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const processMs = performance.now() - t0;
      if (code !== 0) {
        reject(
          new Error(
            `${script} ${args.join(' ')} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`,
          ),
        );
        return;
      }
      resolve({ out, processMs });
    });
  });
}

/** DynamoDB request units counted on the wire (see {@link countCapacity}). */
export interface CapacityCount {
  wru: number;
  rru: number;
}

/**
 * Counts the request units of every call the document client makes into `units`. dynalite reports no
 * capacity for a conditional write whose condition failed; DynamoDB bills 1 WRU for it, added here.
 */
export function countCapacity(doc: DynamoDBDocumentClient, units: CapacityCount): void {
  doc.middlewareStack.add(
    (next, context) => async (args) => {
      (args.input as Record<string, unknown>).ReturnConsumedCapacity = 'TOTAL';
      const read = /^(Get|BatchGet|Query|Scan)/.test(context.commandName ?? '');
      try {
        const out = await next(args);
        for (const c of [(out.output as { ConsumedCapacity?: unknown }).ConsumedCapacity].flat()) {
          units[read ? 'rru' : 'wru'] += (c as { CapacityUnits?: number } | undefined)?.CapacityUnits ?? 0;
        }
        return out;
      } catch (error) {
        if ((error as { name?: string }).name === 'ConditionalCheckFailedException') units.wru += 1;
        throw error;
      }
    },
    { step: 'initialize', name: 'countCapacity' },
  );
}
