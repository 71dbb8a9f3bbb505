/**
 * The api handler's cost per request, in process and without network (issue 3's figure):
 * CPU time of POST /v1/messages for a 10 KB message through the real routing, authentication,
 * validation, sender policy and accept logic, with in-memory stores; and the minified bundle size.
 * Run: `npm run bench:api` (prints a table; figures are medians over ITERATIONS requests).
 */
import { validateSendRequest } from '../lambdas/domain/send-request.ts';
import { applySenderPolicy } from '../lambdas/domain/sender-policy.ts';
import { Route } from '../lambdas/shared/names.ts';
import { logger } from '../lambdas/shared/observability.ts';
import { apiHarness } from '../test/support/harness.ts';
import { httpEvent } from '../test/support/http-events.ts';
import { bundleKb, iterations, measure, ms, printTable, TEN_KB_MESSAGE } from './support.ts';

const ITERATIONS = iterations(2000);
const WARMUP = 200;

logger.setLogLevel('SILENT');

const body = TEN_KB_MESSAGE;
const bodyBytes = Buffer.byteLength(JSON.stringify(body));

// The api over the unit tests' in-memory stores, one key allowed to send from example.com.
const { api, token, key, queue } = apiHarness({ allowedDomains: ['example.com'] });

const event = httpEvent(Route.sendMessage, { token, body });
const request = await measure(
  async () => {
    const result = await api(event);
    if (result.statusCode !== 202) throw new Error(`unexpected ${result.statusCode}: ${result.body}`);
  },
  {
    iterations: ITERATIONS,
    warmup: WARMUP,
    // Keep the fakes from growing without bound across iterations (outside the timing).
    before: () => {
      queue.jobs.length = 0;
    },
  },
);
const validate = await measure(() => applySenderPolicy(key, validateSendRequest(body)), {
  iterations: ITERATIONS,
  warmup: WARMUP,
});

printTable(undefined, [
  ['message size (JSON body)', `${(bodyBytes / 1024).toFixed(1)} KB`],
  ['POST /v1/messages, CPU per request (median)', ms(request.cpuUs)],
  ['POST /v1/messages, wall per request (median)', ms(request.wallUs)],
  ['validate + sender policy only, CPU (median)', ms(validate.cpuUs)],
  ['api bundle, minified (no source map)', `${(await bundleKb('lambdas/api/handler.ts')).toFixed(0)} KB`],
  ['iterations', String(ITERATIONS)],
]);
