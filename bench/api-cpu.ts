/**
 * The api handler's cost per request, in process and without network (issue 3's figure):
 * CPU time of POST /v1/messages for a 10 KB message through the real routing, authentication,
 * validation, sender policy and accept logic, with in-memory stores; and the minified bundle size.
 * Run: `npm run bench:api` (prints a table; figures are medians over ITERATIONS requests).
 */
import { build } from 'esbuild';
import { createApi } from '../lambdas/api/app.ts';
import { RateLimiter } from '../lambdas/domain/rate-limit.ts';
import { validateSendRequest } from '../lambdas/domain/send-request.ts';
import { applySenderPolicy } from '../lambdas/domain/sender-policy.ts';
import { Route } from '../lambdas/shared/names.ts';
import { logger } from '../lambdas/shared/observability.ts';
import {
  InMemoryApiKeys,
  InMemoryIdempotencyStore,
  InMemoryJobQueue,
  InMemoryMessageStore,
  InMemorySuppressionStore,
  InMemoryUsageStore,
  issueApiKey,
} from '../test/support/fakes.ts';
import { httpEvent } from '../test/support/http-events.ts';
import { median, TEN_KB_MESSAGE } from './support.ts';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 2000);
const WARMUP = 200;

logger.setLogLevel('SILENT');

const body = TEN_KB_MESSAGE;
const bodyBytes = Buffer.byteLength(JSON.stringify(body));

const keys = new InMemoryApiKeys();
const { token, key } = issueApiKey({ allowedDomains: ['example.com'] });
keys.add(key);
let ids = 0;
const messages = new InMemoryMessageStore();
const queue = new InMemoryJobQueue();
const api = createApi({
  keys,
  messages,
  suppressions: new InMemorySuppressionStore(),
  queue,
  usage: new InMemoryUsageStore(),
  idempotency: new InMemoryIdempotencyStore(),
  rateLimiter: new RateLimiter(() => new Date()),
  clock: () => new Date(),
  newId: () => `msg_${++ids}`,
  retentionDays: 30,
});

async function measure(run: () => Promise<unknown> | unknown): Promise<{ cpuUs: number; wallUs: number }> {
  for (let i = 0; i < WARMUP; i++) await run();
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    wall.push((performance.now() - t0) * 1000);
    const c = process.cpuUsage(c0);
    cpu.push(c.user + c.system);
  }
  return { cpuUs: median(cpu), wallUs: median(wall) };
}

const event = httpEvent(Route.sendMessage, { token, body });
const request = await measure(async () => {
  const result = await api(event);
  if (result.statusCode !== 202) throw new Error(`unexpected ${result.statusCode}: ${result.body}`);
  // Keep the fakes from growing without bound across iterations.
  queue.jobs.length = 0;
});
const validate = await measure(() => applySenderPolicy(key, validateSendRequest(body)));

const bundle = await build({
  entryPoints: ['lambdas/api/handler.ts'],
  bundle: true,
  minify: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  mainFields: ['module', 'main'],
  write: false,
  logLevel: 'silent',
});
const bundleKb = (bundle.outputFiles[0]?.contents.byteLength ?? 0) / 1024;

const rows = [
  ['message size (JSON body)', `${(bodyBytes / 1024).toFixed(1)} KB`],
  ['POST /v1/messages, CPU per request (median)', `${(request.cpuUs / 1000).toFixed(3)} ms`],
  ['POST /v1/messages, wall per request (median)', `${(request.wallUs / 1000).toFixed(3)} ms`],
  ['validate + sender policy only, CPU (median)', `${(validate.cpuUs / 1000).toFixed(3)} ms`],
  ['api bundle, minified (no source map)', `${bundleKb.toFixed(0)} KB`],
  ['iterations', String(ITERATIONS)],
];
const width = Math.max(...rows.map(([k]) => k?.length ?? 0));
for (const [k, v] of rows) console.log(`${(k ?? '').padEnd(width)}  ${v}`);
