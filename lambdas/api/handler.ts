import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ulid } from 'ulid';
import { DynamoApiKeyStore } from '../adapters/api-key-store.ts';
import { createDocumentClient } from '../adapters/clients.ts';
import { createSqsClient, SqsJobQueue } from '../adapters/job-queue.ts';
import { DynamoMessageStore } from '../adapters/message-store.ts';
import { DynamoSuppressionStore } from '../adapters/suppression-store.ts';
import { numberEnv, requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics } from '../shared/observability.ts';
import { createApi } from './app.ts';

// Read once per cold start; a missing variable fails the init with its name in the log.
const doc = createDocumentClient();
const api = createApi({
  keys: new DynamoApiKeyStore(doc, requiredEnv(EnvVar.apiKeysTable)),
  messages: new DynamoMessageStore(doc, requiredEnv(EnvVar.messagesTable)),
  suppressions: new DynamoSuppressionStore(doc, requiredEnv(EnvVar.suppressionsTable)),
  queue: new SqsJobQueue(createSqsClient(), {
    transactional: requiredEnv(EnvVar.transactionalQueueUrl),
    broadcast: requiredEnv(EnvVar.broadcastQueueUrl),
  }),
  clock: () => new Date(),
  newId: () => `msg_${ulid()}`,
  retentionDays: numberEnv(EnvVar.retentionDays, 30),
});

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler((event) => api(event));
