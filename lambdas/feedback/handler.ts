import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { DynamoApiKeyStore } from '../adapters/api-key-store.ts';
import { createDocumentClient } from '../adapters/clients.ts';
import { createGuard } from '../adapters/guard-wiring.ts';
import { DynamoMessageStore } from '../adapters/message-store.ts';
import { loadErasureSecret } from '../adapters/secret.ts';
import { DynamoSoftBounceStore } from '../adapters/soft-bounce-store.ts';
import { DynamoSuppressionStore } from '../adapters/suppression-store.ts';
import { DynamoUsageStore } from '../adapters/usage-store.ts';
import { createWebhookPublisher } from '../adapters/webhook-wiring.ts';
import { erasedKeyFunction, TombstoneAwareSuppressions } from '../domain/erasure/erasure.ts';
import { requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics } from '../shared/observability.ts';
import { createFeedbackBatch } from './app.ts';

const doc = createDocumentClient();
const erasedKeyOf = erasedKeyFunction(await loadErasureSecret());
const clock = () => new Date();
// The abuse guard counts each bounce and complaint against the message's key and tenant, once per
// event, and acts on what it measures (the same GuardService as the front doors).
const { guard } = createGuard({
  doc,
  keyStore: new DynamoApiKeyStore(doc, requiredEnv(EnvVar.apiKeysTable)),
  env: process.env,
  clock,
});
const feedback = createFeedbackBatch({
  messages: new DynamoMessageStore(doc, requiredEnv(EnvVar.messagesTable)),
  // Evidence about an erased address lands on its tombstone, never back under the address.
  suppressions: new TombstoneAwareSuppressions(
    new DynamoSuppressionStore(doc, requiredEnv(EnvVar.suppressionsTable)),
    erasedKeyOf,
  ),
  erasedKeyOf,
  softBounces: new DynamoSoftBounceStore(doc, requiredEnv(EnvVar.suppressionsTable)),
  clock,
  usage: new DynamoUsageStore(doc, requiredEnv(EnvVar.statsTable)),
  guard,
  // Delivered, bounced, complained... and the suppressions they add (issue 14); none without the table.
  webhooks: createWebhookPublisher(process.env, { doc }),
});

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler((event, context) => feedback(event.Records, context));
