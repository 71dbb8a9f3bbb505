/**
 * The api handler's cost per request, in process and without network (issue 3's figure):
 * CPU time of POST /v1/messages for a 10 KB message through the real routing, authentication,
 * validation, sender policy and accept logic, with in-memory stores; the same for a batch request
 * of 100 such messages; validation + sender policy alone; and the minified bundle size.
 * Run: `npm run bench:api` (prints a table; figures are medians over ITERATIONS requests), or as
 * part of `npm run bench` (section cpu).
 */
import { validateSendRequest } from '../lambdas/domain/send/send-request.ts';
import { applySenderPolicy } from '../lambdas/domain/send/sender-policy.ts';
import { Route } from '../lambdas/shared/names.ts';
import { logger } from '../lambdas/shared/observability.ts';
import { apiHarness } from '../test/support/harness.ts';
import { httpEvent } from '../test/support/http-events.ts';
import { bundleKb, iterations, measure, ms, printTable, TEN_KB_MESSAGE, type Timing } from './support.ts';

const WARMUP = 200;
/** Messages in the batch request: the most POST /v1/messages/batch accepts. */
export const API_BATCH_SIZE = 100;

export interface ApiCpu {
  readonly bodyBytes: number;
  readonly request: Timing;
  readonly batch: Timing;
  readonly batchIterations: number;
  readonly validate: Timing;
  readonly iterations: number;
}

export async function measureApiCpu(runs = iterations(2000)): Promise<ApiCpu> {
  logger.setLogLevel('SILENT');
  const body = TEN_KB_MESSAGE;
  // The api over the unit tests' in-memory stores, one key allowed to send from example.com.
  const { api, token, key, queue } = apiHarness({ allowedDomains: ['example.com'] });
  // Keep the fakes from growing without bound across iterations (outside the timing).
  const reset = () => {
    queue.jobs.length = 0;
  };

  const event = httpEvent(Route.sendMessage, { token, body });
  const request = await measure(
    async () => {
      const result = await api(event);
      if (result.statusCode !== 202) throw new Error(`unexpected ${result.statusCode}: ${result.body}`);
    },
    { iterations: runs, warmup: WARMUP, before: reset },
  );

  // A full batch request is ~100 times the work: fewer runs keep the bench short (still ≥ 50).
  const batchRuns = Math.max(50, Math.round(runs / 20));
  const batchEvent = httpEvent(Route.sendBatch, {
    token,
    body: { messages: Array.from({ length: API_BATCH_SIZE }, () => body) },
  });
  const batch = await measure(
    async () => {
      const result = await api(batchEvent);
      if (result.statusCode !== 207) throw new Error(`unexpected ${result.statusCode}: ${result.body}`);
    },
    { iterations: batchRuns, warmup: 10, before: reset },
  );

  const validate = await measure(() => applySenderPolicy(key, validateSendRequest(body)), {
    iterations: runs,
    warmup: WARMUP,
  });
  return {
    bodyBytes: Buffer.byteLength(JSON.stringify(body)),
    request,
    batch,
    batchIterations: batchRuns,
    validate,
    iterations: runs,
  };
}

if (import.meta.main) {
  const figures = await measureApiCpu();
  printTable(undefined, [
    ['message size (JSON body)', `${(figures.bodyBytes / 1024).toFixed(1)} KB`],
    ['POST /v1/messages, CPU per request (median)', ms(figures.request.cpuUs)],
    ['POST /v1/messages, wall per request (median)', ms(figures.request.wallUs)],
    [
      `POST /v1/messages/batch (${API_BATCH_SIZE} messages), CPU per message (median)`,
      ms(figures.batch.cpuUs / API_BATCH_SIZE),
    ],
    ['validate + sender policy only, CPU (median)', ms(figures.validate.cpuUs)],
    ['api bundle, minified (no source map)', `${(await bundleKb('lambdas/api/handler.ts')).toFixed(0)} KB`],
    ['iterations', `${figures.iterations} (batch ${figures.batchIterations})`],
  ]);
}
