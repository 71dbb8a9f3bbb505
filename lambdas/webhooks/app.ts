import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import {
  type DeliveryDecision,
  type DeliveryDeps,
  deliverJob,
  deliveryPolicy,
} from '../domain/webhooks/deliver.ts';
import type { WebhookDeliveryJob } from '../domain/webhooks/endpoint.ts';
import { WEBHOOK_EVENT_TYPES } from '../domain/webhooks/events.ts';
import { processSqsBatch } from '../shared/batch.ts';
import { WebhookMetric } from '../shared/names.ts';
import { describeError, logger, metrics } from '../shared/observability.ts';
import { Tally } from '../shared/tally.ts';

/** ChangeMessageVisibility's limit: a deferral longer than this is waited out in several. */
const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * A job whose turn comes with less than this left of the invocation is deferred instead: it may wait
 * for a slot (2 s), its request may take the whole 15 s timeout, and its outcome must still be
 * written before the function stops.
 */
const START_BY_REMAINING_MS = 22_000;

/**
 * At most `limit` tasks per key at once within one invocation, the others waiting their turn in
 * order. A batch often holds several jobs for one endpoint (a burst): without this, the jobs past
 * the endpoint's slots would be deferred by seconds (a receive each) while their own batch's
 * deliveries free the slots in milliseconds.
 */
class KeyedLimiter {
  readonly #limit: number;
  readonly #running = new Map<string, number>();
  readonly #waiting = new Map<string, Array<() => void>>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    if ((this.#running.get(key) ?? 0) >= this.#limit) {
      await new Promise<void>((resolve) => {
        const queue = this.#waiting.get(key) ?? [];
        queue.push(resolve);
        this.#waiting.set(key, queue);
      });
    }
    this.#running.set(key, (this.#running.get(key) ?? 0) + 1);
    try {
      return await task();
    } finally {
      this.#running.set(key, (this.#running.get(key) ?? 1) - 1);
      this.#waiting.get(key)?.shift()?.();
    }
  }
}

export interface WebhookDeliveryAppDeps extends DeliveryDeps {
  /** Hides a queue message again (ChangeMessageVisibility): how a job waits without an attempt. */
  readonly visibility: { delay(record: SQSRecord, seconds: number): Promise<void> };
  /**
   * The webhook queue's maxReceiveCount (BATON_MAX_RECEIVE_COUNT). Every deferral is a receive, so a
   * job that waits out a long-open breaker or a slow endpoint's full slots could reach the dead-letter
   * queue without one failed attempt: near the limit it is queued afresh instead. @default no limit
   */
  readonly maxReceiveCount?: number;
}

const epochMs = z.number().int().nonnegative();
const jobSchema = z.object({
  v: z.literal(1),
  tenant: z.string().min(1),
  endpointId: z.string().min(1),
  eventId: z.string().min(1),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  body: z.string(),
  attempt: z.number().int().nonnegative(),
  firstQueuedAt: epochMs,
  notBefore: epochMs,
  occurredAt: epochMs,
  replay: z.boolean().optional(),
});

/** A queue message that is not a delivery job: no retry can make it one. */
class MalformedWebhookJobError extends Error {
  override readonly name = 'MalformedWebhookJobError';
}

/** A job hidden until it may go (its time, the breaker, a free slot): not a failure, not an attempt. */
class DeferredDeliveryError extends Error {
  override readonly name = 'DeferredDeliveryError';
}

function parseJob(body: string): WebhookDeliveryJob {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new MalformedWebhookJobError('the queue message is not JSON');
  }
  const parsed = jobSchema.safeParse(raw);
  if (!parsed.success) {
    // Field paths only: the issue messages could quote the body.
    const fields = parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ');
    throw new MalformedWebhookJobError(`the queue message is not a webhook delivery job (${fields})`);
  }
  const { replay, ...job } = parsed.data;
  return replay === undefined ? job : { ...job, replay };
}

/** A queue message parsed once: its job, or why it is none. */
type ParsedRecord = { readonly job: WebhookDeliveryJob } | { readonly error: unknown };

function parseRecord(record: SQSRecord): ParsedRecord {
  try {
    return { job: parseJob(record.body) };
  } catch (error) {
    return { error };
  }
}

/**
 * The webhook delivery function: each record one job, the batch's jobs concurrently (each waits
 * on its own receiver, up to the 15 s timeout). A job that must wait is hidden again and reported
 * as a batch item failure, so SQS keeps it without Lambda's retry counting as Baton's attempt; a
 * store or queue error also fails the record, which SQS redelivers after the queue's visibility
 * timeout.
 */
export function createWebhookDelivery(deps: WebhookDeliveryAppDeps) {
  const outcomes = new Tally();

  const handle = async (record: SQSRecord, parsed: ParsedRecord): Promise<void> => {
    if ('error' in parsed) {
      metrics.addMetric('WebhookMalformedJobs', MetricUnit.Count, 1);
      logger.error('webhook job dropped', { sqsMessageId: record.messageId, ...describeError(parsed.error) });
      outcomes.add('malformed');
      return;
    }
    const { job } = parsed;
    const ids = { endpointId: job.endpointId, eventId: job.eventId, attempt: job.attempt };
    let decision: DeliveryDecision;
    try {
      decision = await deliverJob(job, deps);
    } catch (error) {
      outcomes.add('error');
      logger.warn('webhook delivery will be retried', { ...ids, ...describeError(error) });
      throw error;
    }
    if ('deferSeconds' in decision) {
      const receives = Number(record.attributes.ApproximateReceiveCount) || 1;
      // One receive kept spare, for a store error on the next one.
      if (receives >= (deps.maxReceiveCount ?? Number.POSITIVE_INFINITY) - 1) {
        outcomes.add('deferred (queued afresh)');
        // The same attempt number: a deferral is not an attempt. Never earlier than the job's own
        // time (a deferral is at most the 12 h a message can be hidden).
        const notBefore = Math.max(job.notBefore, deps.clock().getTime() + decision.deferSeconds * 1000);
        await deps.queue.enqueue([{ ...job, notBefore }]);
        return;
      }
      outcomes.add('deferred');
      await deps.visibility.delay(record, Math.min(decision.deferSeconds, MAX_VISIBILITY_SECONDS));
      throw new DeferredDeliveryError(`webhook job deferred ${decision.deferSeconds} s`);
    }
    if (decision.dropped !== undefined) {
      outcomes.add(`dropped (${decision.dropped})`);
      logger.info('webhook job dropped', { ...ids, tenant: job.tenant, reason: decision.dropped });
      return;
    }
    const attempt = decision.attempt;
    if (attempt === undefined) return;
    outcomes.add(attempt.outcome);
    metrics.addMetric(WebhookMetric.attempts, MetricUnit.Count, 1);
    if (job.attempt === 0 && !job.replay) {
      const ms = attempt.startedAt.getTime() - job.occurredAt;
      if (ms >= 0) metrics.addMetric(WebhookMetric.firstAttemptLatency, MetricUnit.Milliseconds, ms);
    }
    if (attempt.outcome === 'success') metrics.addMetric(WebhookMetric.delivered, MetricUnit.Count, 1);
    else metrics.addMetric(WebhookMetric.failedAttempts, MetricUnit.Count, 1);
    if (attempt.outcome === 'gave-up') metrics.addMetric('WebhookGaveUp', MetricUnit.Count, 1);
    if (attempt.endpointDisabled) {
      metrics.addMetric('WebhookEndpointDisabled', MetricUnit.Count, 1);
      logger.warn('webhook endpoint disabled', { ...ids, tenant: job.tenant, outcome: attempt.outcome });
    }
    logger.debug('webhook attempt', { ...ids, outcome: attempt.outcome });
  };

  /** A job that waited its turn too long to finish within this invocation: hidden briefly instead. */
  const postpone = async (record: SQSRecord): Promise<void> => {
    outcomes.add('deferred (out of time)');
    await deps.visibility.delay(record, deliveryPolicy.slotsFullSeconds);
    throw new DeferredDeliveryError('webhook job deferred: too little of the invocation left');
  };

  return (records: SQSRecord[], context?: Context): Promise<SQSBatchResponse> => {
    const turns = new KeyedLimiter(deliveryPolicy.slots);
    const inTurn = (record: SQSRecord) => {
      const parsed = parseRecord(record);
      // Jobs take turns by endpoint; a message that is no job goes alone.
      const key = 'job' in parsed ? parsed.job.endpointId : `record:${record.messageId}`;
      return turns.run(key, () =>
        context !== undefined && context.getRemainingTimeInMillis() < START_BY_REMAINING_MS
          ? postpone(record)
          : handle(record, parsed),
      );
    };
    return processSqsBatch(records, inTurn, {
      ...(context ? { context } : {}),
      outcomes,
      processInParallel: true,
    });
  };
}
