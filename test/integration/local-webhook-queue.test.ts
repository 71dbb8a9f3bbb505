/**
 * What webhook delivery relies on from SQS (issue 14), on local mode's emulator and event source:
 * a retry is a new message sent with a delay (SendMessageBatch DelaySeconds, at most 900 s), a job
 * not yet due is hidden with ChangeMessageVisibility and reported as a batch item failure, and it
 * must then come back when the function said, not at once and not after the queue's visibility.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/paths.ts';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { startSqsSns } from '../../local/emulators/sqs-sns.ts';
import { FunctionPool } from '../../local/runtime/function-pool.ts';
import { SqsPoller } from '../../local/runtime/sqs-poller.ts';
import { createQueueWithArn, eventually, region, sqsClient, tempDir } from '../support/emulators.ts';

/**
 * A handler that treats each record the way the delivery function treats a job: `hide:<s>` hides
 * the message for s seconds and reports it failed (a job not yet due); `retry:<s>` queues a new
 * message `done` with a delay of s seconds and succeeds (a retry); anything else succeeds. It
 * appends what it saw to OUT, since the poller keeps no results.
 */
const HANDLER = `
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(process.env.REPO_PACKAGE);
const { SQSClient, ChangeMessageVisibilityCommand, SendMessageBatchCommand } = require('@aws-sdk/client-sqs');
const sqs = new SQSClient({
  region: 'us-east-1',
  endpoint: process.env.SQS_ENDPOINT,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  useQueueUrlAsEndpoint: false,
});
export const handler = async (event) => {
  const failures = [];
  for (const record of event.Records) {
    appendFileSync(process.env.OUT, JSON.stringify({
      body: record.body,
      receiveCount: record.attributes.ApproximateReceiveCount,
      at: Date.now(),
    }) + '\\n');
    const [verb, seconds] = record.body.split(':');
    if (verb === 'hide') {
      await sqs.send(new ChangeMessageVisibilityCommand({
        QueueUrl: process.env.QUEUE_URL,
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: Number(seconds),
      }));
      failures.push({ itemIdentifier: record.messageId });
    } else if (verb === 'retry') {
      await sqs.send(new SendMessageBatchCommand({
        QueueUrl: process.env.QUEUE_URL,
        Entries: [{ Id: '0', MessageBody: 'done', DelaySeconds: Number(seconds) }],
      }));
    }
  }
  return { batchItemFailures: failures };
};`;

interface Seen {
  readonly body: string;
  readonly receiveCount: string;
  readonly at: number;
}

const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });

describe('the webhook queue’s SQS behaviours on local mode’s emulator and event source', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let fauxqs: LocalEmulator;
  let sqs: SQSClient;
  let queues = 0;
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    dir = await tempDir('webhook-queue');
    await writeFile(join(dir.path, 'delivery.mjs'), HANDLER);
    fauxqs = await startSqsSns({ port: 0, region });
    sqs = sqsClient(fauxqs.endpoint);
  });

  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  afterAll(async () => {
    sqs.destroy();
    await fauxqs.stop();
    await dir.remove();
  });

  /** A queue with the given visibility timeout and a DLQ after five receives, as the stack's. */
  const queue = async (visibilityTimeout: number): Promise<{ url: string; arn: string }> => {
    const name = `webhooks-${++queues}`;
    const create = (queueName: string, attributes: Record<string, string>) =>
      createQueueWithArn(sqs, queueName, attributes);
    const dlq = await create(`${name}-dlq`, {});
    return create(name, {
      VisibilityTimeout: String(visibilityTimeout),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 5 }),
    });
  };

  /** The delivery-like handler in a function process, drained by the event source as local mode does. */
  const drain = (target: { url: string; arn: string }, out: string): SqsPoller => {
    const pool = new FunctionPool({
      name: 'WebhooksHandler',
      entry: join(dir.path, 'delivery.mjs'),
      env: {
        REPO_PACKAGE: join(REPO_ROOT, 'package.json'),
        SQS_ENDPOINT: fauxqs.endpoint,
        QUEUE_URL: target.url,
        OUT: out,
      },
      timeoutMs: 10_000,
      maxConcurrency: 1,
      log: discard,
    });
    const poller = new SqsPoller(sqs, pool, {
      queueUrl: target.url,
      queueArn: target.arn,
      batchSize: 10,
      maxBatchingWindowSeconds: 0,
      maxConcurrency: 1,
      reportBatchItemFailures: true,
    });
    stops.push(
      () => pool.stop(),
      () => poller.stop(),
    );
    poller.start();
    return poller;
  };

  const send = async (url: string, entries: ReadonlyArray<{ body: string; delaySeconds?: number }>) => {
    const out = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: entries.map((e, i) => ({
          Id: String(i),
          MessageBody: e.body,
          ...(e.delaySeconds === undefined ? {} : { DelaySeconds: e.delaySeconds }),
        })),
      }),
    );
    expect(out.Failed ?? []).toEqual([]);
  };

  const seen = async (out: string): Promise<Seen[]> => {
    const text = await readFile(out, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Seen);
  };

  const counts = async (url: string): Promise<Record<string, string>> => {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    return Attributes;
  };

  it('holds back each SendMessageBatch entry for its own DelaySeconds, up to the 900 s maximum', async () => {
    // Prepare
    const target = await queue(180);
    const sentAt = Date.now();

    // Act
    await send(target.url, [
      { body: 'now' },
      { body: 'in 2 s', delaySeconds: 2 },
      { body: 'in 15 min', delaySeconds: 900 },
    ]);
    const first = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: target.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    const second = await eventually('the delayed message', async () => {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: target.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      return Messages.length > 0 ? { messages: Messages, at: Date.now() } : undefined;
    });

    // Assess
    expect((first.Messages ?? []).map((m) => m.Body)).toEqual(['now']);
    expect(second.messages.map((m) => m.Body)).toEqual(['in 2 s']);
    expect(second.at - sentAt).toBeGreaterThanOrEqual(1_900);
    expect(second.at - sentAt).toBeLessThan(5_000);
    expect(await counts(target.url)).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesDelayed: '1',
    });
  });

  it('refuses a delay beyond 900 s as SQS does: the batch entry fails, a single send throws', async () => {
    // Prepare
    const target = await queue(180);
    const reason =
      'Value 901 for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.';

    // Act
    const batch = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: target.url,
        Entries: [
          { Id: 'ok', MessageBody: 'in 15 min', DelaySeconds: 900 },
          { Id: 'late', MessageBody: 'in 15 min and 1 s', DelaySeconds: 901 },
        ],
      }),
    );
    const allLate = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: target.url,
        Entries: [{ Id: 'late', MessageBody: 'too late', DelaySeconds: 901 }],
      }),
    );
    const single = sqs.send(
      new SendMessageCommand({ QueueUrl: target.url, MessageBody: 'x', DelaySeconds: 901 }),
    );

    // Assess
    expect(batch.Successful?.map((s) => s.Id)).toEqual(['ok']);
    expect(batch.Failed).toEqual([
      { Id: 'late', SenderFault: true, Code: 'InvalidParameterValue', Message: reason },
    ]);
    expect(allLate.Successful ?? []).toEqual([]);
    expect(allLate.Failed?.map((f) => f.Id)).toEqual(['late']);
    await expect(single).rejects.toThrow(reason);
    expect(await counts(target.url)).toMatchObject({ ApproximateNumberOfMessagesDelayed: '1' });
  });

  it('brings a message the function hid for 3 s and reported failed back after 3 s, not at once nor after the queue’s 30 s', async () => {
    // Prepare
    const target = await queue(30);
    const out = join(dir.path, 'hidden.jsonl');
    await send(target.url, [{ body: 'hide:3' }, { body: 'ok' }]);

    // Act
    const poller = drain(target, out);
    const records = await eventually('the hidden job’s second receive', async () => {
      const all = await seen(out);
      return all.filter((s) => s.body === 'hide:3').length >= 2 ? all : undefined;
    });
    await poller.stop();

    // Assess: the job that succeeded was deleted; the hidden one came back once, when it was due.
    const [firstTry, secondTry] = records.filter((s) => s.body === 'hide:3');
    expect(records.filter((s) => s.body === 'ok')).toHaveLength(1);
    expect([firstTry?.receiveCount, secondTry?.receiveCount]).toEqual(['1', '2']);
    const waited = (secondTry?.at ?? 0) - (firstTry?.at ?? 0);
    expect(waited).toBeGreaterThanOrEqual(2_900);
    expect(waited).toBeLessThan(8_000);
  });

  it('brings a message hidden for 0 s and reported failed back at once, as SQS does', async () => {
    // Prepare
    const target = await queue(30);
    const out = join(dir.path, 'zero.jsonl');
    await send(target.url, [{ body: 'hide:0' }]);

    // Act
    const poller = drain(target, out);
    const records = await eventually('a second receive', async () => {
      const all = await seen(out);
      return all.length >= 2 ? all : undefined;
    });
    await poller.stop();

    // Assess
    expect((records[1]?.at ?? 0) - (records[0]?.at ?? 0)).toBeLessThan(3_000);
  });

  it('delivers a retry the function queued with a delay after that delay, and deletes the attempt that queued it', async () => {
    // Prepare
    const target = await queue(30);
    const out = join(dir.path, 'retry.jsonl');
    await send(target.url, [{ body: 'retry:2' }]);

    // Act
    const poller = drain(target, out);
    const records = await eventually('the retry', async () => {
      const all = await seen(out);
      return all.some((s) => s.body === 'done') ? all : undefined;
    });
    await poller.stop();

    // Assess: a new message (first receive), about 2 s later; the original was never received again.
    expect(records.map((s) => [s.body, s.receiveCount])).toEqual([
      ['retry:2', '1'],
      ['done', '1'],
    ]);
    const waited = (records[1]?.at ?? 0) - (records[0]?.at ?? 0);
    expect(waited).toBeGreaterThanOrEqual(1_900);
    expect(waited).toBeLessThan(6_000);
    expect(await counts(target.url)).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
    });
  });
});
