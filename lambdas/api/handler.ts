import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ulid } from 'ulid';
import { DynamoApiKeyStore } from '../adapters/api-key-store.ts';
import { createDocumentClient } from '../adapters/clients.ts';
import { SqsErasureQueue } from '../adapters/erasure-queue.ts';
import { DynamoIdempotencyStore } from '../adapters/idempotency-store.ts';
import { createSqsClient, SqsJobQueue } from '../adapters/job-queue.ts';
import { DynamoMessageStore } from '../adapters/message-store.ts';
import { createS3Client, S3PayloadStore } from '../adapters/payload-store.ts';
import { loadErasureSecret } from '../adapters/secret.ts';
import { DynamoSoftBounceStore } from '../adapters/soft-bounce-store.ts';
import { DynamoSuppressionStore } from '../adapters/suppression-store.ts';
import { DynamoUsageStore } from '../adapters/usage-store.ts';
import { erasedKeyFunction, TombstoneAwareSuppressions } from '../domain/erasure/erasure.ts';
import { CachedApiKeys, DEFAULT_KEY_CACHE_SECONDS } from '../domain/keys/key-cache.ts';
import { RateLimiter } from '../domain/send/rate-limit.ts';
import { numberEnv, requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics } from '../shared/observability.ts';
import { createApi } from './app.ts';

// Read once per cold start; a missing variable fails the init with its name in the log.
const doc = createDocumentClient();
const sqs = createSqsClient();
// The erasure secret is read once, during init (top-level await), and never logged.
const erasureSecret = await loadErasureSecret();
const erasedKeyOf = erasedKeyFunction(erasureSecret);
const messages = new DynamoMessageStore(doc, requiredEnv(EnvVar.messagesTable));
// List cursors are sealed under a key derived from the same per-deployment secret, so a cursor
// handed out by one instance opens on every other.
const suppressionTable = new DynamoSuppressionStore(
  doc,
  requiredEnv(EnvVar.suppressionsTable),
  erasureSecret,
);
const clock = () => new Date();
const api = createApi({
  // Lookups are reused for a few seconds (at most 60): a suspended or revoked key stops working
  // within that bound, and a busy key does not read DynamoDB on every request.
  keys: new CachedApiKeys(new DynamoApiKeyStore(doc, requiredEnv(EnvVar.apiKeysTable)), {
    ttlSeconds: numberEnv(EnvVar.keyCacheSeconds, DEFAULT_KEY_CACHE_SECONDS),
    clock,
  }),
  messages,
  // Every suppression check and lookup also consults the tombstones of erased addresses.
  suppressions: new TombstoneAwareSuppressions(suppressionTable, erasedKeyOf),
  queue: new SqsJobQueue(
    sqs,
    {
      transactional: requiredEnv(EnvVar.transactionalQueueUrl),
      broadcast: requiredEnv(EnvVar.broadcastQueueUrl),
    },
    // Jobs too large for a queue message are stored here and queued as a pointer (claim check).
    new S3PayloadStore(createS3Client(), requiredEnv(EnvVar.payloadBucket)),
  ),
  usage: new DynamoUsageStore(doc, requiredEnv(EnvVar.statsTable)),
  idempotency: new DynamoIdempotencyStore(doc, requiredEnv(EnvVar.idempotencyTable)),
  rateLimiter: new RateLimiter(clock),
  clock,
  newId: () => `msg_${ulid()}`,
  retentionDays: numberEnv(EnvVar.retentionDays, 30),
  erasure: {
    messages,
    suppressions: suppressionTable,
    softBounces: new DynamoSoftBounceStore(doc, requiredEnv(EnvVar.suppressionsTable)),
    queue: new SqsErasureQueue(sqs, requiredEnv(EnvVar.erasureQueueUrl)),
    keyOf: erasedKeyOf,
    clock,
  },
});

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler((event) => api(event));
