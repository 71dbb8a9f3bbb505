import { ChangeMessageVisibilityCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { rethrow } from './aws-errors.ts';

/** `arn:aws:sqs:<region>:<account>:<name>` → the queue URL SQS expects. */
export function queueUrlFromArn(arn: string): string {
  const [, partition = 'aws', , region = '', account = '', name = ''] = arn.split(':');
  const suffix = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://sqs.${region}.${suffix}/${account}/${name}`;
}

/** Delays the redelivery of an SQS message: how a failed record backs off instead of spinning. */
export class SqsVisibility {
  readonly #sqs: SQSClient;

  constructor(sqs: SQSClient) {
    this.#sqs = sqs;
  }

  async delay(record: { eventSourceARN: string; receiptHandle: string }, seconds: number): Promise<void> {
    try {
      await this.#sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrlFromArn(record.eventSourceARN),
          ReceiptHandle: record.receiptHandle,
          VisibilityTimeout: Math.max(0, Math.min(43_200, Math.round(seconds))),
        }),
      );
    } catch (error) {
      rethrow(error, 'delaying the retry');
    }
  }
}
