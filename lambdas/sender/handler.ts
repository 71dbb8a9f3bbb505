import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { DynamoApiKeyStore } from '../adapters/api-key-store.ts';
import { createDocumentClient } from '../adapters/clients.ts';
import { guardAdapters, requiredHeld } from '../adapters/guard-wiring.ts';
import { createSqsClient } from '../adapters/job-queue.ts';
import { DynamoMessageStore } from '../adapters/message-store.ts';
import { createS3Client, S3PayloadStore } from '../adapters/payload-store.ts';
import { loadErasureSecret } from '../adapters/secret.ts';
import { createSesClient, SesMailer } from '../adapters/ses-mailer.ts';
import { DynamoSuppressionStore } from '../adapters/suppression-store.ts';
import { DynamoUsageStore } from '../adapters/usage-store.ts';
import { SqsVisibility } from '../adapters/visibility.ts';
import { createWebhookPublisher } from '../adapters/webhook-wiring.ts';
import { Pacer, steadyClock } from '../domain/delivery/pacer.ts';
import { erasedKeyFunction, TombstoneAwareSuppressions } from '../domain/erasure/erasure.ts';
import { CachedApiKeys, DEFAULT_KEY_CACHE_SECONDS } from '../domain/keys/key-cache.ts';
import { processSqsBatch } from '../shared/batch.ts';
import { numberEnv, optionalEnv, requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, metrics, publishMetrics } from '../shared/observability.ts';
import { CLAIM_LEASE_MS, CONFIRMATION_WINDOW_MS, createSender, loadDkim } from './app.ts';

const doc = createDocumentClient();
const lane = requiredEnv(EnvVar.lane);
// Only with a key configured (local mode) is mailauth's signer imported, here during init; the
// deployed bundle has no signer and fails here, naming the variable, if a key is ever configured.
const dkim = await loadDkim(optionalEnv(EnvVar.dkimKeyFile), optionalEnv(EnvVar.dkimSelector));
const clock = () => new Date();
const keyStore = new DynamoApiKeyStore(doc, requiredEnv(EnvVar.apiKeysTable));
// A message the guard holds at send keeps its job in the payload bucket and the held-mail index.
// One S3 client for the bucket's two uses: claim-checked jobs and held mail's jobs.
const s3 = createS3Client();
const sqs = createSqsClient();
const held = requiredHeld(guardAdapters({ doc, keyStore, s3, env: process.env }).held);
const sender = createSender({
  messages: new DynamoMessageStore(doc, requiredEnv(EnvVar.messagesTable)),
  // The batched check also reads the tombstone of every recipient (an erased address is never mailed
  // again); the erasure secret is read once, during init, and never logged.
  suppressions: new TombstoneAwareSuppressions(
    new DynamoSuppressionStore(doc, requiredEnv(EnvVar.suppressionsTable)),
    erasedKeyFunction(await loadErasureSecret()),
  ),
  mailer: new SesMailer(createSesClient(), requiredEnv(EnvVar.configurationSet)),
  // The guard's re-check before each send reads the job's key, reused for a few seconds (at most
  // 60, as the front doors): a suspension or hold reaches queued mail within that bound.
  keys: new CachedApiKeys(keyStore, {
    ttlSeconds: numberEnv(EnvVar.keyCacheSeconds, DEFAULT_KEY_CACHE_SECONDS),
    clock,
  }),
  keyTable: keyStore,
  held,
  // This instance's part of the lane's SES rate, in recipients: the event source runs at most
  // maxConcurrency. Module scope, so a warm instance remembers what its last invocation sent; on the
  // monotonic clock, so a step of the system clock is never taken for time passed.
  pacer: new Pacer(numberEnv(EnvVar.maxSendRate, 14) / numberEnv(EnvVar.maxConcurrency, 1), steadyClock),
  visibility: new SqsVisibility(sqs),
  dkim: dkim?.key,
  signDkim: dkim?.sign,
  clock,
  maxReceiveCount: numberEnv(EnvVar.maxReceiveCount, Number.POSITIVE_INFINITY),
  leaseMs: numberEnv(EnvVar.claimLeaseSeconds, CLAIM_LEASE_MS / 1000) * 1000,
  confirmationWindowMs: numberEnv(EnvVar.confirmationWindowSeconds, CONFIRMATION_WINDOW_MS / 1000) * 1000,
  payloads: new S3PayloadStore(s3, requiredEnv(EnvVar.payloadBucket)),
  // The batch's webhook events, published once at its end (issue 14); none without the Webhooks table.
  webhooks: createWebhookPublisher(process.env, { doc, sqs }),
});
const usage = new DynamoUsageStore(doc, requiredEnv(EnvVar.statsTable));
// Persistent: injectLambdaContext's resetKeys clears appended keys after every invocation.
logger.appendPersistentKeys({ lane });
// One sender per lane: every metric it writes is about that stream (the dashboard charts by it).
metrics.setDefaultDimensions({ stream: lane });

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler(async (event, context) => {
    // One batched suppression read for every recipient in the batch, before the record loop.
    // The deadline: a record the pace would reach later is handed back, never left to the timeout.
    const deadline = new Date(Date.now() + context.getRemainingTimeInMillis());
    const prepared = await sender.prepare(event.Records, { deadline });
    return processSqsBatch(event.Records, (record) => sender.sendRecord(record, prepared), {
      context,
      outcomes: prepared.outcomes,
      // One record at a time: the send rate stays predictable, and a paused account stops the rest
      // of the batch before it reaches SES.
      processInParallel: false,
      // The batch's webhook events (never throws), then its statistics: one atomic write per
      // tenant and day, not one per message.
      finish: async () => {
        await sender.publishWebhooks(prepared);
        await prepared.stats.flush(usage);
      },
    });
  });
