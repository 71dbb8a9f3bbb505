import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createDocumentClient } from '../adapters/clients.ts';
import { DynamoMessageStore } from '../adapters/message-store.ts';
import { loadErasureSecret } from '../adapters/secret.ts';
import { DynamoSoftBounceStore } from '../adapters/soft-bounce-store.ts';
import { DynamoSuppressionStore } from '../adapters/suppression-store.ts';
import { DynamoUsageStore } from '../adapters/usage-store.ts';
import { erasedKeyFunction, TombstoneAwareSuppressions } from '../domain/erasure/erasure.ts';
import { StatTally } from '../domain/reporting/stats.ts';
import { processSqsBatch } from '../shared/batch.ts';
import { requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics, StreamMetrics } from '../shared/observability.ts';
import { Tally } from '../shared/tally.ts';
import { createFeedbackConsumer } from './app.ts';

const doc = createDocumentClient();
const erasedKeyOf = erasedKeyFunction(await loadErasureSecret());
// Lambda runs one invocation at a time per instance, so the tally holds the current batch's counts
// (and were two to overlap, flush empties it before writing: each count is still written once).
const stats = new StatTally();
const outcomes = new Tally();
const byStream = new StreamMetrics();
const usage = new DynamoUsageStore(doc, requiredEnv(EnvVar.statsTable));
const consumer = createFeedbackConsumer(
  {
    messages: new DynamoMessageStore(doc, requiredEnv(EnvVar.messagesTable)),
    // Evidence about an erased address lands on its tombstone, never back under the address.
    suppressions: new TombstoneAwareSuppressions(
      new DynamoSuppressionStore(doc, requiredEnv(EnvVar.suppressionsTable)),
      erasedKeyOf,
    ),
    erasedKeyOf,
    softBounces: new DynamoSoftBounceStore(doc, requiredEnv(EnvVar.suppressionsTable)),
    clock: () => new Date(),
  },
  stats,
  byStream,
  outcomes,
);

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler((event, context) =>
    processSqsBatch(event.Records, consumer, {
      context,
      outcomes,
      // The batch's statistics: one atomic write per tenant and day, not one per event.
      finish: async () => {
        await stats.flush(usage);
        byStream.flush();
      },
    }),
  );
