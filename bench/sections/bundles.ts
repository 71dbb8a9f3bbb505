/**
 * Section bundles (issue 7, part 4): each function's bundle, built with the stack's esbuild
 * settings, next to a floor bundle that imports only the AWS SDK clients the function uses (found
 * in the bundle's own metafile) and instantiates them at module scope as the handler does. What
 * Baton adds is the difference.
 *
 * - size: the minified `index.mjs`, without its source map (KB = 1,024 bytes);
 * - init: a fresh `node` process imports the bundle; the import is timed inside the process with
 *   performance.now() (median of `ctx.initRuns`), the whole process from spawn to exit as well.
 *   Bundle and floor runs alternate so drift on the machine hits both alike. The variant with
 *   --enable-source-maps and the map beside the bundle is measured too (both bundle and floor):
 *   the functions no longer run with it, for what it costs (`npm run bench:source-maps`).
 *
 * Targets: bundle ≤ floor + 250 KB; init ≤ 1.2 × floor.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';
import { EnvVar } from '../../lambdas/shared/names.ts';
import { bundleTo, lambdaBuildOptions, median, runProbe } from '../support.ts';
import type { BenchContext, BundleFigures, FunctionName, Row, Section } from './types.ts';

/** The stack's functions and their handler entries (lib/constructs: api-handler, sender-lane, …). */
export const FUNCTIONS: Readonly<Record<FunctionName, string>> = {
  api: 'lambdas/api/handler.ts',
  sender: 'lambdas/sender/handler.ts',
  feedback: 'lambdas/feedback/handler.ts',
  erasure: 'lambdas/erasure/handler.ts',
};

/** How a floor builds each SDK package a handler may use. */
const SDK_CLIENTS: Readonly<Record<string, { readonly name: string; readonly make: string }>> = {
  '@aws-sdk/client-dynamodb': { name: 'DynamoDBClient', make: 'new DynamoDBClient({})' },
  '@aws-sdk/lib-dynamodb': {
    name: 'DynamoDBDocumentClient',
    make: 'DynamoDBDocumentClient.from(new DynamoDBClient({}))',
  },
  '@aws-sdk/client-sqs': { name: 'SQSClient', make: 'new SQSClient({})' },
  '@aws-sdk/client-s3': { name: 'S3Client', make: 'new S3Client({})' },
  '@aws-sdk/client-sesv2': { name: 'SESv2Client', make: 'new SESv2Client({})' },
  '@aws-sdk/client-secrets-manager': { name: 'SecretsManagerClient', make: 'new SecretsManagerClient({})' },
};

const SIZE_MARGIN_KB = 250;
const INIT_RATIO = 1.2;

/**
 * Environment a handler needs to load outside Lambda: every Baton variable with a placeholder (no
 * request is made during init), the erasure secret given as a value (local mode's way; deployed,
 * init reads it from Secrets Manager: one network call this figure leaves out), Lambda's own
 * variables, and no Powertools overrides from the bench's own environment.
 */
export function handlerEnvironment(fn: FunctionName): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_LAMBDA_FUNCTION_NAME: `baton-${fn}`,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    AWS_LAMBDA_LOG_FORMAT: 'JSON',
    AWS_LAMBDA_LOG_LEVEL: 'INFO',
    POWERTOOLS_SERVICE_NAME: `baton-${fn}`,
    POWERTOOLS_METRICS_NAMESPACE: 'Baton',
  };
  const skip = new Set<string>([
    EnvVar.dkimKeyFile,
    EnvVar.dkimSelector,
    EnvVar.s3ForcePathStyle,
    EnvVar.erasureSecretArn,
  ]);
  for (const name of Object.values(EnvVar)) {
    if (skip.has(name)) continue;
    if (name === EnvVar.lane) env[name] = 'transactional';
    else if (name === EnvVar.erasureSecret)
      env[name] = 'bench-erasure-secret-0123456789abcdefghijklmnopqrstuvwxyz';
    else if (name.endsWith('_URL'))
      env[name] = `https://sqs.us-east-1.amazonaws.com/000000000000/${name.toLowerCase()}`;
    else if (/(RATE|CONCURRENCY|COUNT|DAYS|SECONDS)$/.test(name)) env[name] = '30';
    else env[name] = `bench-${name.toLowerCase().replace(/_/g, '-')}`;
  }
  return env;
}

/**
 * The AWS SDK packages (clients and lib-dynamodb) whose code is in a bundle: those with bytes in the
 * output, not merely parsed (a client imported by a module the handler uses only in part is shaken out).
 */
function sdkPackages(metafile: Metafile): string[] {
  const bytes = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const match = /node_modules\/(@aws-sdk\/(?:client-[a-z0-9-]+|lib-dynamodb))\//.exec(input);
      if (match?.[1]) bytes.set(match[1], (bytes.get(match[1]) ?? 0) + bytesInOutput);
    }
  }
  return [...bytes]
    .filter(([, n]) => n > 0)
    .map(([pkg]) => pkg)
    .sort();
}

export function floorSource(packages: readonly string[]): string {
  const lines: string[] = [];
  const makes: string[] = [];
  for (const pkg of packages) {
    const client = SDK_CLIENTS[pkg];
    if (client === undefined) throw new Error(`the floor does not know how to build a client from ${pkg}`);
    lines.push(`import { ${client.name} } from '${pkg}';`);
    makes.push(client.make);
  }
  if (packages.includes('@aws-sdk/lib-dynamodb') && !packages.includes('@aws-sdk/client-dynamodb')) {
    throw new Error('lib-dynamodb without client-dynamodb');
  }
  return [
    ...lines,
    '// The clients, made once per cold start at module scope, as a handler makes them.',
    `const clients = [${makes.join(', ')}];`,
    'export const handler = async () => ({ clients: clients.length });',
    '',
  ].join('\n');
}

interface InitRun {
  readonly importMs: number;
  readonly importCpuMs: number;
  readonly processMs: number;
}

async function runInit(file: string, env: Record<string, string>, sourceMaps: boolean): Promise<InitRun> {
  const { out, processMs } = await runProbe('bench/probe/init-child.mjs', [file], env, sourceMaps);
  const { importMs, importCpuMs } = JSON.parse(out) as { importMs: number; importCpuMs: number };
  return { importMs, importCpuMs, processMs };
}

interface InitMedians {
  readonly importMs: number;
  readonly importCpuMs: number;
  readonly processMs: number;
  readonly floorImportMs: number;
  readonly floorImportCpuMs: number;
  readonly floorProcessMs: number;
}

async function initMedians(
  ctx: BenchContext,
  bundle: string,
  floor: string,
  env: Record<string, string>,
  sourceMaps: boolean,
): Promise<InitMedians> {
  // One untimed pair first: the file cache is then warm for both, as it is on Lambda after download.
  await runInit(bundle, env, sourceMaps);
  await runInit(floor, env, sourceMaps);
  const runs: InitRun[] = [];
  const floorRuns: InitRun[] = [];
  for (let i = 0; i < ctx.initRuns; i++) {
    // Alternate which goes first so neither always follows the other.
    if (i % 2 === 0) {
      runs.push(await runInit(bundle, env, sourceMaps));
      floorRuns.push(await runInit(floor, env, sourceMaps));
    } else {
      floorRuns.push(await runInit(floor, env, sourceMaps));
      runs.push(await runInit(bundle, env, sourceMaps));
    }
  }
  return {
    importMs: median(runs.map((r) => r.importMs)),
    importCpuMs: median(runs.map((r) => r.importCpuMs)),
    processMs: median(runs.map((r) => r.processMs)),
    floorImportMs: median(floorRuns.map((r) => r.importMs)),
    floorImportCpuMs: median(floorRuns.map((r) => r.importCpuMs)),
    floorProcessMs: median(floorRuns.map((r) => r.processMs)),
  };
}

/** Builds every function's bundle and floor into `ctx.tmp` (once; the memory section reuses them). */
export async function buildBundles(
  ctx: BenchContext,
): Promise<
  Record<FunctionName, { file: string; bytes: number; floorFile: string; floorBytes: number; sdk: string[] }>
> {
  const out = {} as Record<
    FunctionName,
    { file: string; bytes: number; floorFile: string; floorBytes: number; sdk: string[] }
  >;
  for (const [fn, entry] of Object.entries(FUNCTIONS) as [FunctionName, string][]) {
    const dir = join(ctx.tmp, 'bundles', fn);
    const floorDir = join(ctx.tmp, 'bundles', `${fn}-floor`);
    mkdirSync(dir, { recursive: true });
    mkdirSync(floorDir, { recursive: true });
    const file = join(dir, 'index.mjs');
    const { bytes, metafile } = await bundleTo(entry, file);
    // The metafile names the packages the bundle took code from: the floor imports the same clients.
    const sdk = sdkPackages(metafile);
    const floorFile = join(floorDir, 'index.mjs');
    const floorBytes = (await bundleTo({ contents: floorSource(sdk) }, floorFile)).bytes;
    out[fn] = { file, bytes, floorFile, floorBytes, sdk };
  }
  return out;
}

export const section: Section = {
  name: 'bundles',
  title: 'bundle size and init time vs a floor of the same AWS SDK clients',
  async run(ctx) {
    const { drift } = lambdaBuildOptions();
    ctx.progress('bundles: building the functions and their floors (esbuild, as the stack)');
    const built = await buildBundles(ctx);
    const rows: Row[] = [];
    const figures: Partial<Record<FunctionName, BundleFigures>> = {};
    // Wall time from a busy machine says more about the machine than the bundle.
    const busy = () => {
      const load = loadavg()[0] ?? 0;
      return load > availableParallelism()
        ? `; machine busy (load ${load.toFixed(1)} on ${availableParallelism()} CPUs): the CPU ratio is the steadier figure, and at Lambda's fraction of a vCPU it is the one init time follows`
        : '';
    };
    const deployedInit: Record<string, InitMedians> = {};
    for (const [fn, b] of Object.entries(built) as [FunctionName, (typeof built)[FunctionName]][]) {
      const env = handlerEnvironment(fn);
      ctx.progress(`bundles: ${fn} init, ${ctx.initRuns} fresh processes each for bundle and floor`);
      const init = await initMedians(ctx, b.file, b.floorFile, env, false);
      deployedInit[fn] = await initMedians(ctx, b.file, b.floorFile, { ...env }, true);
      figures[fn] = {
        fn,
        file: b.file,
        bytes: b.bytes,
        floorFile: b.floorFile,
        floorBytes: b.floorBytes,
        importMs: init.importMs,
        floorImportMs: init.floorImportMs,
        processMs: init.processMs,
        floorProcessMs: init.floorProcessMs,
      };
      const kb = b.bytes / 1024;
      const floorKb = b.floorBytes / 1024;
      const clients = b.sdk.map((p) => p.replace('@aws-sdk/', '')).join(', ');
      rows.push(
        {
          section: 'bundles',
          figure: `${fn}: bundle size (minified, no map)`,
          value: kb,
          unit: 'KB',
          floor: floorKb,
          ratio: kb / floorKb,
          target: `≤ floor + ${SIZE_MARGIN_KB} KB`,
          pass: kb <= floorKb + SIZE_MARGIN_KB,
          note: `Baton adds ${(kb - floorKb).toFixed(0)} KB; floor = ${clients}`,
        },
        {
          section: 'bundles',
          figure: `${fn}: init (import in a fresh node, median of ${ctx.initRuns})`,
          value: init.importMs,
          unit: 'ms',
          floor: init.floorImportMs,
          ratio: init.importMs / init.floorImportMs,
          target: `≤ ${INIT_RATIO} × floor`,
          pass: init.importMs <= INIT_RATIO * init.floorImportMs,
          note:
            `import CPU ${init.importCpuMs.toFixed(0)} vs ${init.floorImportCpuMs.toFixed(0)} ms (${(init.importCpuMs / init.floorImportCpuMs).toFixed(2)}×); ` +
            `whole process ${init.processMs.toFixed(0)} vs ${init.floorProcessMs.toFixed(0)} ms (${(init.processMs / init.floorProcessMs).toFixed(2)}×)${busy()}`,
        },
        {
          section: 'bundles',
          figure: `${fn}: init with --enable-source-maps, map beside (not deployed: bench:source-maps)`,
          value: deployedInit[fn].importMs,
          unit: 'ms',
          floor: deployedInit[fn].floorImportMs,
          ratio: deployedInit[fn].importMs / deployedInit[fn].floorImportMs,
          note:
            `import CPU ${deployedInit[fn].importCpuMs.toFixed(0)} vs ${deployedInit[fn].floorImportCpuMs.toFixed(0)} ms; ` +
            `whole process ${deployedInit[fn].processMs.toFixed(0)} vs ${deployedInit[fn].floorProcessMs.toFixed(0)} ms; map ${(readFileSync(`${b.file}.map`).length / 1024).toFixed(0)} KB`,
        },
      );
    }
    ctx.shared.bundles = figures;
    ctx.shared.extra = { ...ctx.shared.extra, bundlesDeployedInit: deployedInit };
    if (drift.length > 0) {
      rows.push({
        section: 'bundles',
        figure: 'esbuild settings match lib/constructs/baton-function.ts',
        value: 'no',
        pass: false,
        note: `not found there: ${drift.join(', ')}; update lambdaBuildOptions in bench/support.ts`,
      });
    }
    return rows;
  },
};
