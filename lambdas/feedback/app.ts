import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import {
  type FeedbackDeps,
  type FeedbackResult,
  PartlyAppliedError,
  processFeedback,
  UnknownMessageError,
} from '../domain/feedback/process-feedback.ts';
import { MalformedFeedbackError } from '../domain/feedback/ses-event.ts';
import { eventDay, feedbackCounts, type StatTally } from '../domain/reporting/stats.ts';
import { describeError, logger, metrics, type StreamMetrics } from '../shared/observability.ts';
import type { Tally } from '../shared/tally.ts';

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
 */
export function createFeedbackConsumer(
  deps: FeedbackDeps,
  stats?: StatTally,
  byStream?: StreamMetrics,
  outcomes?: Tally,
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
