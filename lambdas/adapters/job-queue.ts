import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SendJob } from '../domain/message.ts';
import type { JobQueue } from '../domain/ports.ts';
import { TransientError } from '../shared/errors.ts';
import type { Lane } from '../shared/names.ts';
import { rethrow } from './aws-errors.ts';

export function createSqsClient(): SQSClient {
  // Queue URLs carry a host; with this off the SDK uses the regional (or configured) endpoint,
  // which is what the emulators and VPC endpoints expect.
  return new SQSClient({ useQueueUrlAsEndpoint: false });
}

/** SendMessageBatch takes 10 entries and 1 MiB in all. */
const BATCH_ENTRIES = 10;
export const SQS_MAX_BYTES = 1_048_576;

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

  async enqueueMany(items: ReadonlyArray<{ lane: Lane; job: SendJob }>): Promise<Array<Error | undefined>> {
    const results: Array<Error | undefined> = items.map(() => undefined);
    const batches: Array<{ lane: Lane; entries: Array<{ index: number; body: string }> }> = [];
    const open = new Map<
      Lane,
      { lane: Lane; entries: Array<{ index: number; body: string }>; bytes: number }
    >();
    items.forEach(({ lane, job }, index) => {
      const body = JSON.stringify(job);
      const bytes = Buffer.byteLength(body);
      let batch = open.get(lane);
      if (!batch || batch.entries.length >= BATCH_ENTRIES || batch.bytes + bytes > SQS_MAX_BYTES) {
        batch = { lane, entries: [], bytes: 0 };
        open.set(lane, batch);
        batches.push(batch);
      }
      batch.entries.push({ index, body });
      batch.bytes += bytes;
    });
    await Promise.all(
      batches.map(async ({ lane, entries }) => {
        try {
          const out = await this.#sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: this.#urls[lane],
              Entries: entries.map((e) => ({ Id: String(e.index), MessageBody: e.body })),
            }),
          );
          for (const failed of out.Failed ?? []) {
            const index = Number(failed.Id);
            results[index] = new TransientError(
              `queueing on the ${lane} lane failed: ${failed.Code ?? 'unknown'}`,
            );
          }
        } catch (error) {
          const wrapped = error instanceof Error ? error : new Error(String(error));
          for (const e of entries) results[e.index] = wrapped;
        }
      }),
    );
    return results;
  }
}
