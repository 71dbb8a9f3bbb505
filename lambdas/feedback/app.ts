import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import { type FeedbackDeps, processFeedback } from '../domain/process-feedback.ts';
import { MalformedFeedbackError } from '../domain/ses-event.ts';
import { logger, metrics } from '../shared/observability.ts';

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
 */
export function createFeedbackConsumer(deps: FeedbackDeps) {
  return async (record: SQSRecord): Promise<void> => {
    try {
      const result = await processFeedback(deps, record.body);
      if (result.applied) metrics.addMetric(kindMetric[result.event.kind], MetricUnit.Count, 1);
      if (result.suppressed > 0) metrics.addMetric('suppressionsAdded', MetricUnit.Count, result.suppressed);
      logger.info('feedback applied', {
        messageId: result.messageId,
        kind: result.event.kind,
        applied: result.applied,
        suppressed: result.suppressed,
      });
    } catch (error) {
      const why = error instanceof Error ? error.message : 'unknown error';
      if (error instanceof MalformedFeedbackError) {
        metrics.addMetric('feedbackMalformed', MetricUnit.Count, 1);
        logger.error('malformed feedback; it will be dead-lettered', { sqsMessageId: record.messageId, why });
      } else {
        logger.warn('feedback not applied; will retry', { sqsMessageId: record.messageId, why });
      }
      throw error;
    }
  };
}
