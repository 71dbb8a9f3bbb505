import { ulid } from 'ulid';
import { erasedKeyFunction, TombstoneAwareSuppressions } from '../domain/erasure/erasure.ts';
import { CachedApiKeys, DEFAULT_KEY_CACHE_SECONDS } from '../domain/keys/key-cache.ts';
import { RateLimiter } from '../domain/send/rate-limit.ts';
import { PUBLISH_WAIT_MS } from '../domain/webhooks/publish.ts';
import { numberEnv, requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { DynamoApiKeyStore } from './api-key-store.ts';
import { createDocumentClient } from './clients.ts';
import { createGuard, requiredHeld } from './guard-wiring.ts';
import { DynamoIdempotencyStore } from './idempotency-store.ts';
import { createSqsClient, SqsJobQueue } from './job-queue.ts';
import { DynamoMessageStore } from './message-store.ts';
import { createS3Client, S3PayloadStore } from './payload-store.ts';
import { loadErasureSecret } from './secret.ts';
import { DynamoSuppressionStore } from './suppression-store.ts';
import { DynamoUsageStore } from './usage-store.ts';
import { createWebhookPublisher } from './webhook-wiring.ts';

/**
 * What both front doors (the HTTPS api function and the SMTP server) take mail with, built once
 * per process from the same variables, so the two cannot be wired differently: the cached key
 * lookups, the tables, the lane queues with their claim-check bucket, and the erasure secret
 * (read once, never logged) that the suppression checks and list cursors need.
 */
export async function frontDoorAdapters(env: NodeJS.ProcessEnv = process.env) {
  const doc = createDocumentClient();
  const sqs = createSqsClient();
  const erasureSecret = await loadErasureSecret(env);
  const erasedKeyOf = erasedKeyFunction(erasureSecret);
  const messages = new DynamoMessageStore(doc, requiredEnv(EnvVar.messagesTable, env));
  // List cursors are sealed under a key derived from the same per-deployment secret, so a cursor
  // handed out by one instance opens on every other.
  const suppressionTable = new DynamoSuppressionStore(
    doc,
    requiredEnv(EnvVar.suppressionsTable, env),
    erasureSecret,
  );
  const clock = () => new Date();
  const keyStore = new DynamoApiKeyStore(doc, requiredEnv(EnvVar.apiKeysTable, env));
  // One S3 client for the bucket's two uses: claim-checked jobs and held mail's jobs.
  const s3 = createS3Client(env);
  const guarded = createGuard({ doc, keyStore, s3, env, clock });
  return {
    doc,
    sqs,
    clock,
    erasedKeyOf,
    keyStore,
    suppressionTable,
    // Lookups are reused for a few seconds (at most 60): a suspended or revoked key stops working
    // within that bound, and a busy key does not read DynamoDB on every request.
    keys: new CachedApiKeys(keyStore, {
      ttlSeconds: numberEnv(EnvVar.keyCacheSeconds, DEFAULT_KEY_CACHE_SECONDS, env),
      clock,
    }),
    messages,
    // Every suppression check and lookup also consults the tombstones of erased addresses.
    suppressions: new TombstoneAwareSuppressions(suppressionTable, erasedKeyOf),
    queue: new SqsJobQueue(
      sqs,
      {
        transactional: requiredEnv(EnvVar.transactionalQueueUrl, env),
        broadcast: requiredEnv(EnvVar.broadcastQueueUrl, env),
      },
      // Jobs too large for a queue message are stored here and queued as a pointer (claim check).
      new S3PayloadStore(s3, requiredEnv(EnvVar.payloadBucket, env)),
    ),
    usage: new DynamoUsageStore(doc, requiredEnv(EnvVar.statsTable, env)),
    idempotency: new DynamoIdempotencyStore(doc, requiredEnv(EnvVar.idempotencyTable, env)),
    rateLimiter: new RateLimiter(clock),
    newId: () => `msg_${ulid()}`,
    retentionDays: numberEnv(EnvVar.retentionDays, 30, env),
    // The abuse guard: counting at accept, its decisions (on the key items read anyway), held mail.
    guard: guarded.guard,
    held: requiredHeld(guarded.held),
    // Webhook events of what was accepted (issue 14); publishes nothing without the Webhooks table.
    // Never holding a client's answer on a stalled connection: at most PUBLISH_WAIT_MS.
    webhooks: createWebhookPublisher(env, { doc, sqs }, PUBLISH_WAIT_MS),
  };
}
