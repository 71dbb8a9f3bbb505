import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { SqsErasureQueue } from '../adapters/erasure-queue.ts';
import { frontDoorAdapters } from '../adapters/front-door.ts';
import { DynamoSoftBounceStore } from '../adapters/soft-bounce-store.ts';
import { SqsWebhookQueue } from '../adapters/webhook-queue.ts';
import { DynamoWebhookStore } from '../adapters/webhook-store.ts';
import type { WebhookAdminDeps } from '../domain/webhooks/operations.ts';
import { optionalEnv, requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics } from '../shared/observability.ts';
import { createApi } from './app.ts';

// Read once per cold start; a missing variable fails the init with its name in the log.
const door = await frontDoorAdapters();
const webhooksTable = optionalEnv(EnvVar.webhooksTable);
// Without the Webhooks table the deployment has no webhooks: the routes answer 501.
const webhookEndpoints: WebhookAdminDeps | undefined =
  webhooksTable === undefined
    ? undefined
    : {
        store: new DynamoWebhookStore(door.doc, webhooksTable, door.clock),
        queue: new SqsWebhookQueue(door.sqs, requiredEnv(EnvVar.webhookQueueUrl)),
        allowLoopbackHttp: optionalEnv(EnvVar.webhookAllowLoopback) === '1',
      };
const api = createApi({
  keys: door.keys,
  keyTable: door.keyStore,
  messages: door.messages,
  suppressions: door.suppressions,
  queue: door.queue,
  usage: door.usage,
  idempotency: door.idempotency,
  rateLimiter: door.rateLimiter,
  clock: door.clock,
  newId: door.newId,
  retentionDays: door.retentionDays,
  held: door.held,
  guard: door.guard,
  webhooks: door.webhooks,
  erasure: {
    messages: door.messages,
    suppressions: door.suppressionTable,
    softBounces: new DynamoSoftBounceStore(door.doc, requiredEnv(EnvVar.suppressionsTable)),
    queue: new SqsErasureQueue(door.sqs, requiredEnv(EnvVar.erasureQueueUrl)),
    keyOf: door.erasedKeyOf,
    clock: door.clock,
  },
  ...(webhookEndpoints === undefined ? {} : { webhookEndpoints }),
});

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler((event) => api(event));
