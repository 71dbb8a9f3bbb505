import type { SQSClient } from '@aws-sdk/client-sqs';
import type { WebhookDeliveryJob } from '../domain/webhooks/endpoint.ts';
import type { WebhookDeliveryQueue } from '../domain/webhooks/ports.ts';

// CONTRACT SKELETON (issue 14): the production helper replaces the body below.

/** The webhook delivery queue (SendMessageBatch, a job's `notBefore` as its delay, at most 900 s). */
export class SqsWebhookQueue implements WebhookDeliveryQueue {
  readonly #sqs: SQSClient;
  readonly #url: string;

  constructor(sqs: SQSClient, queueUrl: string) {
    this.#sqs = sqs;
    this.#url = queueUrl;
  }

  async enqueue(_jobs: readonly WebhookDeliveryJob[]): Promise<void> {
    throw new Error(`not built yet (${this.#url}, ${typeof this.#sqs})`);
  }
}
