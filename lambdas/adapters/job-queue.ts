import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SendJob } from '../domain/message.ts';
import type { JobQueue } from '../domain/ports.ts';
import { TransientError } from '../shared/errors.ts';
import type { Lane } from '../shared/names.ts';
import { rethrow } from './aws-errors.ts';
import { payloadKey } from './payload-store.ts';

export function createSqsClient(): SQSClient {
  // Queue URLs carry a host; with this off the SDK uses the regional (or configured) endpoint,
  // which is what the emulators and VPC endpoints expect.
  return new SQSClient({ useQueueUrlAsEndpoint: false });
}

/** SendMessageBatch takes 10 entries and 1 MiB in all. */
const BATCH_ENTRIES = 10;
export const SQS_MAX_BYTES = 1_048_576;

/**
 * The largest job body sent inline. SQS counts message attributes (names, types and values) into
 * the 1 MiB, so the margin leaves room for any a future version or a redrive tool adds.
 */
export const INLINE_MAX_BYTES = SQS_MAX_BYTES - 64 * 1024;

/** Where a claim-checked job is stored. */
export interface PayloadLocation {
  readonly bucket: string;
  readonly key: string;
}

/**
 * The queue body of a job too large for SQS (the claim check of the SQS extended client): the
 * job's JSON is stored at `payload`, and the pointer keeps the id and tenant so a parked DLQ
 * message still says whose message it is. This is the queue's wire format, not a domain concept:
 * the domain only ever sees the SendJob the sender reads back.
 */
export interface SendJobPointer {
  readonly v: 1;
  readonly id: string;
  readonly tenant: string;
  readonly payload: PayloadLocation;
}

/** Where SqsJobQueue stores what does not fit in a queue message (an `S3PayloadStore`). */
export interface PayloadWriter {
  readonly bucket: string;
  put(key: string, bytes: Uint8Array): Promise<void>;
}

/**
 * The lane queues: one SQS message per accepted message, the body is the SendJob, or a
 * {@link SendJobPointer} to it when it is larger than {@link INLINE_MAX_BYTES} and a payload store
 * is configured. Without one, every job is sent inline (and SQS refuses the oversized ones).
 */
export class SqsJobQueue implements JobQueue {
  readonly #sqs: SQSClient;
  readonly #urls: Readonly<Record<Lane, string>>;
  readonly #payloads: PayloadWriter | undefined;

  constructor(sqs: SQSClient, urls: Readonly<Record<Lane, string>>, payloads?: PayloadWriter) {
    this.#sqs = sqs;
    this.#urls = urls;
    this.#payloads = payloads;
  }

  async enqueue(lane: Lane, job: SendJob): Promise<void> {
    // A payload that cannot be stored throws here, before anything is queued. The reverse (stored,
    // then the send fails) leaves an object no pointer names, which the bucket's lifecycle removes.
    const body = await this.#body(job);
    try {
      await this.#sqs.send(new SendMessageCommand({ QueueUrl: this.#urls[lane], MessageBody: body }));
    } catch (error) {
      rethrow(error, `queueing on the ${lane} lane`);
    }
  }

  async enqueueMany(items: ReadonlyArray<{ lane: Lane; job: SendJob }>): Promise<Array<Error | undefined>> {
    const results: Array<Error | undefined> = items.map(() => undefined);
    // Large payloads are stored first, in parallel; a job whose payload could not be stored is
    // reported failed and never queued, so no pointer ever names a missing object.
    const bodies = await Promise.all(
      items.map(({ job }, index) =>
        this.#body(job).catch((error: unknown) => {
          results[index] = error instanceof Error ? error : new Error(String(error));
          return undefined;
        }),
      ),
    );
    const batches: Array<{ lane: Lane; entries: Array<{ index: number; body: string }> }> = [];
    const open = new Map<
      Lane,
      { lane: Lane; entries: Array<{ index: number; body: string }>; bytes: number }
    >();
    items.forEach(({ lane }, index) => {
      const body = bodies[index];
      if (body === undefined) return;
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

  /** The job as JSON, or a pointer to it once stored, when it is too large to go inline. */
  async #body(job: SendJob): Promise<string> {
    const body = JSON.stringify(job);
    if (this.#payloads === undefined || Buffer.byteLength(body) <= INLINE_MAX_BYTES) return body;
    const key = payloadKey(job.id);
    await this.#payloads.put(key, Buffer.from(body));
    const pointer: SendJobPointer = {
      v: 1,
      id: job.id,
      tenant: job.tenant,
      payload: { bucket: this.#payloads.bucket, key },
    };
    return JSON.stringify(pointer);
  }
}
