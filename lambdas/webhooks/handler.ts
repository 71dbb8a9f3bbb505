import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createDocumentClient } from '../adapters/clients.ts';
import { createSqsClient } from '../adapters/job-queue.ts';
import { SqsVisibility } from '../adapters/visibility.ts';
import { WebhookHttpPoster } from '../adapters/webhook-http.ts';
import { SqsWebhookQueue } from '../adapters/webhook-queue.ts';
import { DynamoEndpointStateStore } from '../adapters/webhook-state-store.ts';
import { DynamoWebhookStore } from '../adapters/webhook-store.ts';
import { createWebhookPublisher } from '../adapters/webhook-wiring.ts';
import { numberEnv, optionalEnv, requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics } from '../shared/observability.ts';
import { createWebhookDelivery } from './app.ts';

const doc = createDocumentClient();
const sqs = createSqsClient();
const table = requiredEnv(EnvVar.webhooksTable);
const webhooks = new DynamoWebhookStore(doc, table);
const clock = () => new Date();
const deliver = createWebhookDelivery({
  endpoints: webhooks,
  log: webhooks,
  state: new DynamoEndpointStateStore(doc, table, clock),
  // Loopback receivers only in local mode, and only for URLs that name loopback (a developer's laptop).
  poster: new WebhookHttpPoster({ allowLoopback: optionalEnv(EnvVar.webhookAllowLoopback) === '1' }),
  queue: new SqsWebhookQueue(sqs, requiredEnv(EnvVar.webhookQueueUrl)),
  // Tells the tenant's other endpoints when one is disabled.
  publisher: createWebhookPublisher(process.env, { doc, sqs }),
  visibility: new SqsVisibility(sqs),
  clock,
  random: Math.random,
  leaseId: randomUUID,
  sleep,
  maxReceiveCount: numberEnv(EnvVar.maxReceiveCount, Number.POSITIVE_INFINITY),
});

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler((event, context) => deliver(event.Records, context));
