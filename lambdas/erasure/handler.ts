import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createDocumentClient } from '../adapters/clients.ts';
import { SqsErasureQueue } from '../adapters/erasure-queue.ts';
import { createSqsClient } from '../adapters/job-queue.ts';
import { DynamoMessageStore } from '../adapters/message-store.ts';
import { loadErasureSecret } from '../adapters/secret.ts';
import { erasedKeyFunction } from '../domain/erasure/erasure.ts';
import { requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics } from '../shared/observability.ts';
import { createErasureWorker, ERASURE_STEP_MARGIN_MS } from './app.ts';

const doc = createDocumentClient();
const worker = createErasureWorker({
  messages: new DynamoMessageStore(doc, requiredEnv(EnvVar.messagesTable)),
  queue: new SqsErasureQueue(createSqsClient(), requiredEnv(EnvVar.erasureQueueUrl)),
  // Read once, during init (top-level await), and never logged.
  keyOf: erasedKeyFunction(await loadErasureSecret()),
  clock: () => new Date(),
});
const processor = new BatchProcessor(EventType.SQS);

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler((event, context) =>
    processPartialResponse(
      event,
      // Each step gets what is left of the invocation, less the margin to finish and hand over.
      (record: SQSRecord) =>
        worker(record, Date.now() + context.getRemainingTimeInMillis() - ERASURE_STEP_MARGIN_MS),
      processor,
      { context, throwOnFullBatchFailure: false },
    ),
  );
