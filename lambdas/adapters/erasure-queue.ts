import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { ErasureJob } from '../domain/erasure/erasure.ts';
import type { ErasureQueue } from '../domain/ports.ts';
import { rethrow } from './aws-errors.ts';

/**
 * The erasure worker's queue. A job is a few hundred bytes (the tenant, the pseudonym and one scan
 * position per segment); it never holds the erased address.
 */
export class SqsErasureQueue implements ErasureQueue {
  readonly #sqs: SQSClient;
  readonly #url: string;

  constructor(sqs: SQSClient, url: string) {
    this.#sqs = sqs;
    this.#url = url;
  }

  async enqueue(job: ErasureJob): Promise<void> {
    try {
      await this.#sqs.send(new SendMessageCommand({ QueueUrl: this.#url, MessageBody: JSON.stringify(job) }));
    } catch (error) {
      rethrow(error, 'queueing the rest of an erasure');
    }
  }
}
