import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { FunctionPool, InvokeResult } from './function-pool.ts';

export interface PollerSpec {
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly batchSize: number;
  /** Not emulated: a receive returns at once with what is there (batches can only be smaller). */
  readonly maxBatchingWindowSeconds: number;
  readonly maxConcurrency: number;
  readonly reportBatchItemFailures: boolean;
}

export interface PollerStats {
  invocations: number;
  records: number;
  failedRecords: number;
  errors: number;
}

/**
 * What Lambda's SQS event source mapping does, against the emulator: receive up to `batchSize`
 * messages, invoke the function, then delete what succeeded. With ReportBatchItemFailures the
 * records the function names stay on the queue; a function error, a timeout or an invalid
 * response keeps the whole batch. Kept messages come back after their visibility timeout (or the
 * delay the function set), and the queue's redrive policy moves them to the DLQ after
 * maxReceiveCount receives: both enforced by the queue itself, as on AWS.
 */
export class SqsPoller {
  readonly stats: PollerStats = { invocations: 0, records: 0, failedRecords: 0, errors: 0 };
  readonly #sqs: SQSClient;
  readonly #pool: FunctionPool;
  readonly #spec: PollerSpec;
  readonly #abort = new AbortController();
  #loops: Promise<void>[] = [];

  constructor(sqs: SQSClient, pool: FunctionPool, spec: PollerSpec) {
    this.#sqs = sqs;
    this.#pool = pool;
    this.#spec = spec;
  }

  start(): void {
    const loops = Math.max(1, this.#spec.maxConcurrency);
    this.#loops = Array.from({ length: loops }, () => this.#loop());
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#loops);
  }

  async #loop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let messages: Message[];
      try {
        // Short long-polls: quick to notice new work and quick to stop.
        messages = await this.#receive(this.#spec.batchSize, 1, signal);
        if (messages.length > 0) await this.#fill(messages, signal);
      } catch {
        if (signal.aborted) return;
        this.stats.errors++;
        await sleep(500, signal);
        continue;
      }
      if (messages.length === 0) continue;
      await this.#invoke(messages);
    }
  }

  /**
   * The batching window, as Lambda applies it: once a batch has begun, keep receiving until it is
   * full or the window has passed since its first record (fewer, fuller invocations: each one
   * costs a receive, a delete and a statistics write).
   */
  async #fill(messages: Message[], signal: AbortSignal): Promise<void> {
    const windowMs = this.#spec.maxBatchingWindowSeconds * 1000;
    const deadline = Date.now() + windowMs;
    while (messages.length < this.#spec.batchSize && !signal.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      messages.push(
        ...(await this.#receive(this.#spec.batchSize - messages.length, Math.ceil(left / 1000), signal)),
      );
    }
  }

  /** One receive of up to `max` records (10 at most, as SQS allows), waiting up to 1 s. */
  async #receive(max: number, waitSeconds: number, signal: AbortSignal): Promise<Message[]> {
    const out = await this.#sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.#spec.queueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: Math.min(1, waitSeconds),
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      { abortSignal: signal },
    );
    return out.Messages ?? [];
  }

  async #invoke(messages: Message[]): Promise<void> {
    const records = messages.map((m) => sqsRecordOf(m, this.#spec.queueArn));
    this.stats.invocations++;
    this.stats.records += records.length;
    const result = await this.#pool.invoke({ Records: records } satisfies SQSEvent);
    const failed = this.#failedIds(result, records);
    this.stats.failedRecords += failed.size;
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ''));
    if (done.length === 0) return;
    try {
      await this.#sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.#spec.queueUrl,
          Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
        }),
      );
    } catch {
      // Not deleted means redelivered: at-least-once, as on AWS. The sender's claim absorbs it.
      this.stats.errors++;
    }
  }

  /** The ids Lambda would leave on the queue for this invocation result. */
  #failedIds(result: InvokeResult, records: SQSRecord[]): Set<string> {
    const all = new Set(records.map((r) => r.messageId));
    if (!result.ok) return all;
    if (!this.#spec.reportBatchItemFailures) return new Set();
    const value = result.result as { batchItemFailures?: unknown } | null | undefined;
    if (value === null || value === undefined) return new Set();
    if (typeof value !== 'object') return all;
    const failures = value.batchItemFailures;
    if (failures === undefined || failures === null) return new Set();
    if (!Array.isArray(failures)) return all;
    const ids = new Set<string>();
    for (const f of failures) {
      const id = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
      // Lambda treats an empty or unknown identifier as a failure of the whole batch.
      if (typeof id !== 'string' || !all.has(id)) return all;
      ids.add(id);
    }
    return ids;
  }
}

/**
 * An SQS message as Lambda's event source hands it to the function. The region is the queue's,
 * read from its ARN (`arn:aws:sqs:<region>:<account>:<name>`), as Lambda reports it.
 */
export function sqsRecordOf(m: Message, queueArn: string): SQSRecord {
  const attrs = m.Attributes ?? {};
  return {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attrs.ApproximateReceiveCount ?? '1',
      SentTimestamp: attrs.SentTimestamp ?? String(Date.now()),
      SenderId: attrs.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attrs.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([name, a]) => [
        name,
        {
          dataType: a.DataType ?? 'String',
          ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : {}),
          ...(a.BinaryValue !== undefined
            ? { binaryValue: Buffer.from(a.BinaryValue).toString('base64') }
            : {}),
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: queueArn.split(':')[3] ?? '',
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
