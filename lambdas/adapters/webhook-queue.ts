import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { WebhookDeliveryJob } from '../domain/webhooks/endpoint.ts';
import type { WebhookDeliveryQueue } from '../domain/webhooks/ports.ts';
import { TransientError } from '../shared/errors.ts';
import { rethrow } from './aws-errors.ts';

/** SendMessageBatch takes 10 entries; webhook jobs are small, so a batch is kept under 256 KiB. */
const BATCH_ENTRIES = 10;
const BATCH_BYTES = 256 * 1024;

/** SQS's largest DelaySeconds: a longer wait is the delivery function's to serve (it hides the job). */
export const MAX_DELAY_SECONDS = 900;

/** A job's delay on the queue: the seconds until its `notBefore`, rounded up, within SQS's bounds. */
export function delaySeconds(job: WebhookDeliveryJob, now: Date): number {
  const seconds = Math.ceil((job.notBefore - now.getTime()) / 1000);
  return Math.min(MAX_DELAY_SECONDS, Math.max(0, seconds));
}

/**
 * The webhook delivery queue: SendMessageBatch in chunks of 10, a job's `notBefore` as its delay
 * (at most 900 s). Entries SQS refused are sent once more; any still refused make the call throw
 * TransientError (the others stay queued: a job queued twice is one more delivery of the same
 * `webhook-id`, which receivers drop).
 */
export class SqsWebhookQueue implements WebhookDeliveryQueue {
  readonly #sqs: SQSClient;
  readonly #url: string;
  readonly #clock: () => Date;

  constructor(sqs: SQSClient, queueUrl: string, clock: () => Date = () => new Date()) {
    this.#sqs = sqs;
    this.#url = queueUrl;
    this.#clock = clock;
  }

  async enqueue(jobs: readonly WebhookDeliveryJob[]): Promise<void> {
    if (jobs.length === 0) return;
    const now = this.#clock();
    const entries = jobs.map(
      (job, index): SendMessageBatchRequestEntry => ({
        Id: String(index),
        MessageBody: JSON.stringify(job),
        DelaySeconds: delaySeconds(job, now),
      }),
    );
    const refused = (await Promise.all(chunks(entries).map((chunk) => this.#send(chunk)))).flat();
    if (refused.length === 0) return;
    const still = (await Promise.all(chunks(refused).map((chunk) => this.#send(chunk)))).flat();
    if (still.length > 0) {
      throw new TransientError(`queueing ${still.length} of ${jobs.length} webhook jobs failed twice`);
    }
  }

  /** Sends one batch; answers the entries SQS refused. */
  async #send(entries: readonly SendMessageBatchRequestEntry[]): Promise<SendMessageBatchRequestEntry[]> {
    try {
      const out = await this.#sqs.send(
        new SendMessageBatchCommand({ QueueUrl: this.#url, Entries: [...entries] }),
      );
      const failed = new Set((out.Failed ?? []).map((f) => f.Id));
      return entries.filter((e) => failed.has(e.Id));
    } catch (error) {
      rethrow(error, 'queueing webhook jobs');
    }
  }
}

function chunks(entries: readonly SendMessageBatchRequestEntry[]): SendMessageBatchRequestEntry[][] {
  const out: SendMessageBatchRequestEntry[][] = [];
  let current: SendMessageBatchRequestEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(entry.MessageBody ?? '');
    if (current.length > 0 && (current.length >= BATCH_ENTRIES || bytes + size > BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
