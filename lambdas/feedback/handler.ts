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
import type { Guard } from '../domain/ports.ts';
import { requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics } from '../shared/observability.ts';
import { createFeedbackBatch } from './app.ts';

const doc = createDocumentClient();
const erasedKeyOf = erasedKeyFunction(await loadErasureSecret());
// MERGER (issue 13): replace with the GuardService (lambdas/domain/guard/service.ts, branch wt-gsvc)
// over `guardAdapters({ doc, keyStore, env: process.env })` (lambdas/adapters/guard-wiring.ts,
// branch wt-gadp), and give this function the Guard table's env var and grants. Until then the
// feedback is applied as before and the guard counts nothing (said once per batch, never silently).
const guard: Pick<Guard, 'recordFeedback'> = {
  recordFeedback: async (events) => {
    logger.warn('abuse guard not wired into the feedback function: feedback not counted', {
      events: events.length,
    });
  },
};
const feedback = createFeedbackBatch({
  messages: new DynamoMessageStore(doc, requiredEnv(EnvVar.messagesTable)),
  // Evidence about an erased address lands on its tombstone, never back under the address.
  suppressions: new TombstoneAwareSuppressions(
    new DynamoSuppressionStore(doc, requiredEnv(EnvVar.suppressionsTable)),
    erasedKeyOf,
  ),
  erasedKeyOf,
  softBounces: new DynamoSoftBounceStore(doc, requiredEnv(EnvVar.suppressionsTable)),
  clock: () => new Date(),
  usage: new DynamoUsageStore(doc, requiredEnv(EnvVar.statsTable)),
  guard,
});

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler((event, context) => feedback(event.Records, context));
