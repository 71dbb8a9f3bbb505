import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createDocumentClient } from '../adapters/clients.ts';
import { DynamoMessageStore } from '../adapters/message-store.ts';
import { DynamoSoftBounceStore } from '../adapters/soft-bounce-store.ts';
import { DynamoSuppressionStore } from '../adapters/suppression-store.ts';
import { requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics } from '../shared/observability.ts';
import { createFeedbackConsumer } from './app.ts';

const doc = createDocumentClient();
const consumer = createFeedbackConsumer({
  messages: new DynamoMessageStore(doc, requiredEnv(EnvVar.messagesTable)),
  suppressions: new DynamoSuppressionStore(doc, requiredEnv(EnvVar.suppressionsTable)),
  softBounces: new DynamoSoftBounceStore(doc, requiredEnv(EnvVar.suppressionsTable)),
  clock: () => new Date(),
});
const processor = new BatchProcessor(EventType.SQS);

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler((event, context) =>
    processPartialResponse(event, consumer, processor, { context, throwOnFullBatchFailure: false }),
  );
