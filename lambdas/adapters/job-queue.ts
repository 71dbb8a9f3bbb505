import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SendJob } from '../domain/message.ts';
import type { JobQueue } from '../domain/ports.ts';
import type { Lane } from '../shared/names.ts';
import { rethrow } from './aws-errors.ts';

export function createSqsClient(): SQSClient {
  // Queue URLs carry a host; with this off the SDK uses the regional (or configured) endpoint,
  // which is what the emulators and VPC endpoints expect.
  return new SQSClient({ useQueueUrlAsEndpoint: false });
}

/** The lane queues: one SQS message per accepted message, the body is the SendJob. */
export class SqsJobQueue implements JobQueue {
  readonly #sqs: SQSClient;
  readonly #urls: Readonly<Record<Lane, string>>;

  constructor(sqs: SQSClient, urls: Readonly<Record<Lane, string>>) {
    this.#sqs = sqs;
    this.#urls = urls;
  }

  async enqueue(lane: Lane, job: SendJob): Promise<void> {
    try {
      await this.#sqs.send(
        new SendMessageCommand({ QueueUrl: this.#urls[lane], MessageBody: JSON.stringify(job) }),
      );
    } catch (error) {
      rethrow(error, `queueing on the ${lane} lane`);
    }
  }
}
