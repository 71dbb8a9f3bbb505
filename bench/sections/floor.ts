import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { EnvVar, Keys } from '../../lambdas/shared/names.ts';
import type { LocalBaton } from '../../local/baton-local.ts';
import { functionSetting } from '../../local/inspect.ts';
import { startBenchBaton } from '../local-pipeline.ts';
import type { Row, Section } from './types.ts';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const TEN_KB = 'x'.repeat(10 * 1024);
/** A message record of about the size Baton writes (under 1 KB). */
const RECORD_PAD = 'r'.repeat(600);

interface PipelineFigures {
  readonly messages: number;
  readonly concurrency: number;
  readonly single: { readonly deliverMs: number };
  readonly batch: { readonly deliverMs: number };
}

/**
 * The floor: the same AWS calls the pipeline made per message (counted by the requests section),
 * made straight against the same emulators from one process with the same concurrency, without
 * Baton's logic, processes, polling or IPC. Baton's time over this is what its code and its
 * Lambda-shaped plumbing cost.
 */
export const section: Section = {
  name: 'floor',
  title: 'Floor: the same emulator calls without Baton, and Baton over the floor',
  needs: ['pipeline', 'requests'],
  async run(ctx) {
    const pipeline = ctx.shared.extra?.pipeline as PipelineFigures | undefined;
    const calls = ctx.shared.extra?.requests as
      | Record<'single' | 'batch', { messages: number; calls: Record<string, number> }>
      | undefined;
    if (!pipeline || !calls) throw new Error('floor needs the pipeline and requests sections');
    const perMessage = (mode: 'single' | 'batch') =>
      Object.fromEntries(Object.entries(calls[mode].calls).map(([op, c]) => [op, c / calls[mode].messages]));

    const { baton, close } = await startBenchBaton();
    try {
      const rig = await floorRig(baton);
      const rows: Row[] = [];
      for (const mode of ['single', 'batch'] as const) {
        const mix = perMessage(mode);
        ctx.progress(`floor: ${pipeline.messages} messages' worth of ${mode}-mode calls`);
        const { ms, skipped, made } = await replay(rig, mix, pipeline.messages, pipeline.concurrency);
        const baton = pipeline[mode].deliverMs;
        const ratio = baton / ms;
        rows.push(
          {
            section: 'floor',
            figure: `${mode}: floor time, ${pipeline.messages} messages`,
            value: ms / 1000,
            unit: 's',
            note: `${made} calls (${Object.entries(mix)
              .map(([op, c]) => `${op.split(' ')[1]} ${c.toFixed(2)}`)
              .join(', ')} per message)`,
          },
          {
            section: 'floor',
            figure: `${mode}: Baton (first post → last outbox) over the floor`,
            value: baton / 1000,
            unit: 's',
            floor: Math.round(ms) / 1000,
            ratio,
            target: '≤ 1.5× floor',
            pass: ratio <= 1.5,
            ...(skipped.length ? { note: `not replayed: ${skipped.join(', ')}` } : {}),
          },
        );
      }
      rig.destroy();
      return rows;
    } finally {
      await close();
    }
  },
};

interface Rig {
  readonly doc: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly ses: SESv2Client;
  readonly messagesTable: string;
  readonly suppressionsTable: string;
  readonly queueUrl: string;
  destroy(): void;
}

async function floorRig(baton: LocalBaton): Promise<Rig> {
  const dynamo = new DynamoDBClient({ region: 'us-east-1', endpoint: baton.endpoints.dynamodb, credentials });
  const doc = DynamoDBDocumentClient.from(dynamo);
  const sqs = new SQSClient({
    region: 'us-east-1',
    endpoint: baton.endpoints.sqs,
    credentials,
    useQueueUrlAsEndpoint: false,
  });
  const ses = new SESv2Client({ region: 'us-east-1', endpoint: baton.endpoints.ses, credentials });
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'bench-floor' }));
  return {
    doc,
    sqs,
    ses,
    messagesTable: functionSetting(baton, EnvVar.messagesTable),
    suppressionsTable: functionSetting(baton, EnvVar.suppressionsTable),
    queueUrl: QueueUrl ?? '',
    destroy() {
      dynamo.destroy();
      sqs.destroy();
      ses.destroy();
    },
  };
}

/** One call of operation `op` for message `i`, shaped like Baton's (sizes, batch widths). */
function callFor(rig: Rig, op: string, i: number): (() => Promise<unknown>) | undefined {
  const id = `floor-${i}`;
  const raw = new TextEncoder().encode(
    `From: a@example.com\r\nTo: success+f${i}@simulator.amazonses.com\r\nSubject: floor\r\n\r\n${TEN_KB}\r\n`,
  );
  switch (op) {
    case 'DynamoDB PutItem':
      return () =>
        rig.doc.send(new PutCommand({ TableName: rig.messagesTable, Item: { id, pad: RECORD_PAD, v: i } }));
    case 'DynamoDB UpdateItem':
      return () =>
        rig.doc.send(
          new UpdateCommand({
            TableName: rig.messagesTable,
            Key: { id },
            UpdateExpression: 'SET v = :v',
            ExpressionAttributeValues: { ':v': i + 1 },
          }),
        );
    case 'DynamoDB GetItem':
      return () => rig.doc.send(new GetCommand({ TableName: rig.messagesTable, Key: { id } }));
    case 'DynamoDB BatchGetItem':
      return () =>
        rig.doc.send(
          new BatchGetCommand({
            RequestItems: {
              [rig.suppressionsTable]: { Keys: [{ [Keys.suppressions.partition]: `f${i}@example.org` }] },
            },
          }),
        );
    case 'DynamoDB Query':
      return () =>
        rig.doc.send(
          new QueryCommand({
            TableName: rig.messagesTable,
            IndexName: Keys.messages.sesMessageIdIndex,
            KeyConditionExpression: '#s = :s',
            ExpressionAttributeNames: { '#s': Keys.messages.sesMessageId },
            ExpressionAttributeValues: { ':s': `ses-${i}` },
          }),
        );
    case 'DynamoDB BatchWriteItem':
      return () =>
        rig.doc.send(
          new BatchWriteCommand({
            RequestItems: {
              [rig.messagesTable]: Array.from({ length: 25 }, (_, k) => ({
                PutRequest: { Item: { id: `${id}-${k}`, pad: RECORD_PAD } },
              })),
            },
          }),
        );
    case 'SQS SendMessage':
      return () => rig.sqs.send(new SendMessageCommand({ QueueUrl: rig.queueUrl, MessageBody: TEN_KB }));
    case 'SQS SendMessageBatch':
      return () =>
        rig.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: rig.queueUrl,
            Entries: Array.from({ length: 10 }, (_, k) => ({ Id: String(k), MessageBody: TEN_KB })),
          }),
        );
    case 'SQS ReceiveMessage':
      return async () => {
        const { Messages = [] } = await rig.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: rig.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
        );
        return Messages;
      };
    case 'SQS DeleteMessage':
    case 'SQS DeleteMessageBatch':
    case 'SQS ChangeMessageVisibility':
      // Deleting needs receipt handles: receive one message and delete it (counted as one call of each).
      return async () => {
        const { Messages = [] } = await rig.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: rig.queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 0 }),
        );
        const m = Messages[0];
        if (!m?.ReceiptHandle) return;
        if (op === 'SQS DeleteMessageBatch')
          await rig.sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: rig.queueUrl,
              Entries: [{ Id: '0', ReceiptHandle: m.ReceiptHandle }],
            }),
          );
        else
          await rig.sqs.send(
            new DeleteMessageCommand({ QueueUrl: rig.queueUrl, ReceiptHandle: m.ReceiptHandle }),
          );
      };
    case 'SESv2 SendEmail':
      return () => rig.ses.send(new SendEmailCommand({ Content: { Raw: { Data: raw } } }));
    default:
      return undefined;
  }
}

/**
 * Makes `messages × perMessage[op]` calls of each operation (fractions rounded per message, so the
 * totals match), at most `concurrency` at a time, one message's calls in order.
 */
async function replay(
  rig: Rig,
  perMessage: Readonly<Record<string, number>>,
  messages: number,
  concurrency: number,
): Promise<{ ms: number; skipped: string[]; made: number }> {
  const skipped = Object.keys(perMessage).filter((op) => callFor(rig, op, 0) === undefined);
  const ops = Object.entries(perMessage).filter(([op]) => !skipped.includes(op));
  const plan = (i: number): Array<() => Promise<unknown>> => {
    const out: Array<() => Promise<unknown>> = [];
    for (const [op, rate] of ops) {
      // Calls made before message i minus calls made before: spreads fractional rates evenly.
      const n = Math.floor((i + 1) * rate) - Math.floor(i * rate);
      for (let k = 0; k < n; k++) {
        const call = callFor(rig, op, i);
        if (call) out.push(call);
      }
    }
    return out;
  };
  const started = performance.now();
  let next = 0;
  let made = 0;
  const worker = async () => {
    for (let i = next++; i < messages; i = next++) {
      for (const call of plan(i)) {
        await call();
        made++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ms: performance.now() - started, skipped, made };
}
