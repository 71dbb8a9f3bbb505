import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { guardFeedbackOf } from '../domain/feedback/guard-feedback.ts';
import {
  type FeedbackDeps,
  type FeedbackResult,
  PartlyAppliedError,
  processFeedback,
  UnknownMessageError,
} from '../domain/feedback/process-feedback.ts';
import { MalformedFeedbackError } from '../domain/feedback/ses-event.ts';
import type { Guard, GuardFeedback, UsageStore } from '../domain/ports.ts';
import { eventDay, feedbackCounts, StatTally } from '../domain/reporting/stats.ts';
import { WebhookBuffer } from '../domain/webhooks/produce.ts';
import { processSqsBatch } from '../shared/batch.ts';
import { describeError, logger, metrics, StreamMetrics } from '../shared/observability.ts';
import { Tally } from '../shared/tally.ts';

const kindMetric = {
  send: 'feedbackSend',
  delivery: 'messagesDelivered',
  bounce: 'messagesBounced',
  complaint: 'messagesComplained',
  delay: 'deliveryDelays',
  reject: 'messagesRejected',
  rendering_failure: 'renderingFailures',
  subscription: 'unsubscribes',
  open: 'opens',
  click: 'clicks',
} as const;

/**
 * The per-record handler for the feedback queue. A record that cannot be applied throws, so it is
 * retried and finally dead-lettered: feedback is never acknowledged without effect.
 *
 * `byStream` collects the per-stream metrics (counts by event kind, accepted → delivered latency)
 * of the batch; the handler flushes it once per batch, as it does `stats`.
 *
 * `stats` collects the tenants' daily counters (delivered, bounced, complained, failed) of events
 * newly applied, so a redelivered event is not counted twice; the handler flushes it once per
 * batch. Without it nothing is counted.
 *
 * `outcomes` counts the events by kind for the batch's one summary log line.
 *
 * `guardEvents` collects, by queue message, what the abuse guard counts of each event handled
 * (applied now or before: see {@link createFeedbackBatch}), for one call per batch.
 */
export function createFeedbackConsumer(
  deps: FeedbackDeps,
  stats?: StatTally,
  byStream?: StreamMetrics,
  outcomes?: Tally,
  guardEvents?: Map<string, GuardFeedback[]>,
) {
  return async (record: SQSRecord): Promise<void> => {
    const count = ({ event, tenant, settledSends }: FeedbackResult): void => {
      const counts = feedbackCounts(event);
      stats?.add(
        tenant,
        eventDay(event.at, deps.clock()),
        settledSends > 0 ? { ...counts, sent: settledSends } : counts,
      );
    };
    try {
      const result = await processFeedback(deps, record.body);
      const counted = guardFeedbackOf(result.event, result.record, deps.clock());
      if (counted.length > 0) guardEvents?.set(record.messageId, counted);
      // Only an event newly applied to its message counts: a redelivery counts nothing.
      if (result.applied) {
        count(result);
        byStream?.add(result.stream, kindMetric[result.event.kind], MetricUnit.Count, 1);
        if (result.event.kind === 'delivery') {
          const ms = Date.parse(result.event.at) - Date.parse(result.acceptedAt);
          if (ms >= 0) byStream?.add(result.stream, 'acceptedToDeliveredMs', MetricUnit.Milliseconds, ms);
        }
      }
      if (result.suppressed > 0) metrics.addMetric('suppressionsAdded', MetricUnit.Count, result.suppressed);
      outcomes?.add(result.applied ? result.event.kind : `${result.event.kind} (seen before)`);
      logger.debug('feedback applied', {
        messageId: result.messageId,
        kind: result.event.kind,
        applied: result.applied,
        suppressed: result.suppressed,
      });
    } catch (error) {
      // Applied, then a later step failed: the retry finds it applied and counts nothing, so now.
      if (error instanceof PartlyAppliedError) count(error.result);
      const { why } = describeError(error);
      if (error instanceof MalformedFeedbackError) {
        metrics.addMetric('feedbackMalformed', MetricUnit.Count, 1);
        logger.error('malformed feedback; it will be dead-lettered', { sqsMessageId: record.messageId, why });
      } else if (error instanceof UnknownMessageError) {
        metrics.addMetric('feedbackOrphaned', MetricUnit.Count, 1);
        logger.error('feedback for a message Baton does not know; it will be dead-lettered', {
          sqsMessageId: record.messageId,
          why,
        });
      } else {
        logger.warn('feedback not applied; will retry', { sqsMessageId: record.messageId, why });
      }
      throw error;
    }
  };
}

export interface FeedbackBatchDeps extends FeedbackDeps {
  /** Where the batch's daily statistics are written, once per tenant and day. */
  readonly usage: Pick<UsageStore, 'addStats'>;
  /** The abuse guard, told about the batch's bounces and complaints once per batch. */
  readonly guard: Pick<Guard, 'recordFeedback'>;
}

/**
 * One invocation of the feedback function: every record applied (createFeedbackConsumer), the
 * batch's webhook events published, its statistics and metrics written, then the abuse guard told about its bounces and
 * complaints in one call.
 *
 * The guard is told about an event whether or not it was applied now: a redelivery may be the
 * retry of a batch whose guard call failed after the event was applied, and skipping it would lose
 * the count. The counters keep each event id once, so a redelivery still counts once. When the
 * guard cannot count (it throws), it is told record by record, and the records it still cannot
 * count are reported failed and come back: feedback is never acknowledged uncounted, and one event
 * the guard refuses does not bring back the rest. The others (deliveries) are acknowledged.
 */
export function createFeedbackBatch(deps: FeedbackBatchDeps) {
  // Lambda runs one invocation at a time per instance, so these hold the current batch's counts
  // (and were two to overlap, each flush empties what it writes: each count is still written once).
  const stats = new StatTally();
  const outcomes = new Tally();
  const byStream = new StreamMetrics();
  const guardEvents = new Map<string, GuardFeedback[]>();
  // The batch's webhook events, published once at its end (one log write, few queue requests).
  const webhooks = new WebhookBuffer();
  const consume = createFeedbackConsumer({ ...deps, webhooks }, stats, byStream, outcomes, guardEvents);
  return async (records: SQSRecord[], context?: Context): Promise<SQSBatchResponse> => {
    guardEvents.clear();
    const response = await processSqsBatch(records, consume, {
      ...(context ? { context } : {}),
      outcomes,
      // The batch's statistics: one atomic write per tenant and day, not one per event.
      finish: async () => {
        // Never throws: a webhook must not bring an applied event back.
        await webhooks.flush(deps.webhooks);
        await stats.flush(deps.usage);
        byStream.flush();
      },
    });
    const told = [...guardEvents];
    guardEvents.clear();
    const retried = await tellGuard(deps.guard, told);
    if (retried.length === 0) return response;
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    return {
      batchItemFailures: [
        ...response.batchItemFailures,
        ...retried.filter((id) => !failed.has(id)).map((itemIdentifier) => ({ itemIdentifier })),
      ],
    };
  };
}

/**
 * Tells the guard about the batch's events (by queue message id) in one call; the ids of the
 * records it could not count come back. When the call fails, the guard is told record by record,
 * so an event it refuses (a poison pill) brings back only its own record; when its store is down,
 * every call fails and all of them come back.
 */
async function tellGuard(
  guard: Pick<Guard, 'recordFeedback'>,
  told: ReadonlyArray<readonly [string, GuardFeedback[]]>,
): Promise<string[]> {
  const events = told.flatMap(([, list]) => list);
  if (events.length === 0) return [];
  try {
    await guard.recordFeedback(events);
    return [];
  } catch (error) {
    const calls = await Promise.allSettled(told.map(([, list]) => guard.recordFeedback(list)));
    const retried = told.filter((_, i) => calls[i]?.status === 'rejected').map(([id]) => id);
    if (retried.length > 0) {
      metrics.addMetric('guardFeedbackRetried', MetricUnit.Count, retried.length);
      logger.warn('the abuse guard could not count feedback; its records will be retried', {
        records: retried.length,
        events: events.length,
        ...describeError(error),
      });
    }
    return retried;
  }
}
