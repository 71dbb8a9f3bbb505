import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { WebhookEvent } from '../domain/webhooks/events.ts';
import type { WebhookPublisher } from '../domain/webhooks/ports.ts';
import { CachedWebhookDirectory, type PublishStep, WebhookFanout } from '../domain/webhooks/publish.ts';
import { numberEnv, optionalEnv, requiredEnv } from '../shared/env.ts';
import { EnvVar, WebhookMetric } from '../shared/names.ts';
import { describeError, logger, metrics } from '../shared/observability.ts';
import { createDocumentClient } from './clients.ts';
import { createSqsClient } from './job-queue.ts';
import { SqsWebhookQueue } from './webhook-queue.ts';
import { DynamoWebhookStore } from './webhook-store.ts';

/** EMF metric (namespace Baton): events a producer could not log or queue (the state change stands). */
export const WEBHOOK_PUBLISH_FAILURES = WebhookMetric.publishFailures;

/** Seconds a producer reuses a tenant's endpoints when BATON_WEBHOOK_DIRECTORY_SECONDS is unset. */
export const DEFAULT_WEBHOOK_DIRECTORY_SECONDS = 10;

/** Publishes nothing: a deployment (or a test's environment) without the Webhooks table. */
const NO_WEBHOOKS: WebhookPublisher = {
  async publish(_events: readonly WebhookEvent[]): Promise<void> {},
};

/**
 * WebhookFanout's `onError`: a warning with the step, the event count and the error's name and
 * redacted text (never a body, an address or a secret), and the metric WebhookPublishFailures by
 * event count, written at once (an SMTP session has no flush). Never throws.
 */
export function onWebhookPublishError(error: unknown, count: number, step: PublishStep): void {
  try {
    logger.warn('webhook publish failed', { step, events: count, ...describeError(error) });
    metrics.singleMetric().addMetric(WEBHOOK_PUBLISH_FAILURES, MetricUnit.Count, count);
  } catch {
    // Nothing better to do: the state change that produced the events is written already.
  }
}

/**
 * The publisher a function's handler hands its producers, from its environment: a no-op when
 * BATON_WEBHOOKS_TABLE is unset; else the fan-out over the Webhooks table (endpoints cached per
 * instance for BATON_WEBHOOK_DIRECTORY_SECONDS, 10 by default; the replay log) and the webhook
 * queue (BATON_WEBHOOK_QUEUE_URL, required then). Pass the process's clients to share them.
 */
export function createWebhookPublisher(
  env: NodeJS.ProcessEnv = process.env,
  clients: { readonly doc?: DynamoDBDocumentClient; readonly sqs?: SQSClient } = {},
  /** The front door's bound on waiting for publishing (PUBLISH_WAIT_MS); absent, no bound. */
  waitMs?: number,
): WebhookPublisher {
  const table = optionalEnv(EnvVar.webhooksTable, env);
  if (table === undefined) return NO_WEBHOOKS;
  const queueUrl = requiredEnv(EnvVar.webhookQueueUrl, env);
  const clock = () => new Date();
  const store = new DynamoWebhookStore(clients.doc ?? createDocumentClient(), table);
  return new WebhookFanout({
    directory: new CachedWebhookDirectory(store, {
      seconds: numberEnv(EnvVar.webhookDirectorySeconds, DEFAULT_WEBHOOK_DIRECTORY_SECONDS, env),
      clock,
    }),
    log: store,
    queue: new SqsWebhookQueue(clients.sqs ?? createSqsClient(), queueUrl, clock),
    clock,
    onError: onWebhookPublishError,
    ...(waitMs === undefined ? {} : { waitMs }),
  });
}
