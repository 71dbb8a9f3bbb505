import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoMessageStore } from '../../lambdas/adapters/message-store.ts';
import { markGaveUp } from '../../lambdas/domain/delivery/send.ts';
import type { SendJob } from '../../lambdas/domain/message.ts';
import { validateSendRequest } from '../../lambdas/domain/send/send-request.ts';
import { EnvVar } from '../../lambdas/shared/names.ts';
import { messageRecord, recipient } from '../support/builders.ts';
import { documentClient } from '../support/emulators.ts';
import {
  apiSetting,
  expectSentOnce,
  messageReaches,
  messageView,
  outboxFilesOf,
  queueDepth,
  queueDrained,
  receipt,
  sesSendsOf,
  type TestBaton,
  waitFor,
  withTestBaton,
} from '../support/local-baton.ts';

// Issue 4 "Done when", end to end through local mode: the api and sender handlers in their function
// processes, dynalite, fauxqs with the template's queues and redrive policies, the SQS event-source
// poller and the SES stand-in (told to throttle or reject where a test needs it). Tests share one
// instance and run one after another, each with its own recipient (`success+<label>@`), because
// the SES faults apply to every send.

const TENANT = 'dev'; // local mode's development key
const REJECTED_REASON = 'SES rejected the message: Message rejected by the SES stand-in (injected fault).';

let baton: TestBaton;
let lane: { url: string };
let deadLetters: { url: string };

withTestBaton((started) => {
  baton = started;
  const queue = (match: (logicalId: string) => boolean) => {
    const found = [...baton.queues].find(([logicalId]) => match(logicalId));
    if (!found) throw new Error(`no queue in ${[...baton.queues.keys()].join(', ')}`);
    return found[1];
  };
  lane = queue((id) => id.startsWith('TransactionalLaneQueue') && !id.includes('DeadLetterQueue'));
  deadLetters = queue((id) => id.startsWith('TransactionalLaneQueueDeadLetterQueue'));
});

afterEach(() => {
  baton.ses.setFaults({});
});

/** The lane queue's body for a message, as the api writes it (`SqsJobQueue`, inline). */
const jobBody = (id: string, to: string): string =>
  JSON.stringify({ v: 1, id, tenant: TENANT, message: validateSendRequest(receipt(to)) } satisfies SendJob);

async function accept(to: string): Promise<string> {
  const res = await baton.request('/v1/messages', { json: receipt(to) });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 202 || body.id === undefined) throw new Error(`not accepted: ${res.status}`);
  return body.id;
}

const view = (id: string) => messageView(baton, id);
const reaches = (id: string, status: string, timeoutMs?: number) =>
  messageReaches(baton, id, status, timeoutMs);
const depth = (url: string) => queueDepth(baton, url);
const laneDrained = () => queueDrained(baton, lane.url, 'transactional lane queue');

/** SES took the message once, it shows delivered, and nothing went to the dead-letter queue. */
async function expectDeliveredOnce(id: string): Promise<void> {
  await expectSentOnce(baton, id);
  expect((await view(id)).status).toBe('delivered');
  expect(await depth(deadLetters.url)).toBe(0);
}

/** The transactional sender's event source: records it handed the sender, and reported failed. */
const laneStats = () => {
  const poller = [...baton.pollers].find(([logicalId]) => logicalId.startsWith('TransactionalLane'))?.[1];
  if (!poller) throw new Error('no poller for the transactional lane');
  return poller.stats;
};
const reportedFailures = (): number => laneStats().failedRecords;
const handledRecords = (): number => laneStats().records;

/** What an operator does to redrive: receive from the DLQ, send to the lane queue, delete from the DLQ. */
async function redriveFromDeadLetterQueue(): Promise<number> {
  const { Messages = [] } = await baton.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: deadLetters.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
  );
  for (const m of Messages) {
    await baton.sqs.send(new SendMessageCommand({ QueueUrl: lane.url, MessageBody: m.Body ?? '' }));
    await baton.sqs.send(
      new DeleteMessageCommand({ QueueUrl: deadLetters.url, ReceiptHandle: m.ReceiptHandle ?? '' }),
    );
  }
  return Messages.length;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('delivery through local mode', () => {
  it('calls SES once when the same job reaches the sender twice', async () => {
    // Prepare
    const to = 'success+dup-delivery@simulator.amazonses.com';
    const id = await accept(to);
    await reaches(id, 'delivered');
    const handledBefore = handledRecords();

    // Act
    await baton.sqs.send(new SendMessageCommand({ QueueUrl: lane.url, MessageBody: jobBody(id, to) }));
    await laneDrained();

    // Assess
    expect(handledRecords() - handledBefore).toBe(1);
    await expectDeliveredOnce(id);
  });

  it('retries a throttled send later and sends it once when SES takes it again', async () => {
    // Prepare
    const to = 'success+throttled@simulator.amazonses.com';
    const failuresBefore = reportedFailures();
    baton.ses.setFaults({ throttleRate: 1 });
    const id = await accept(to);
    // The SDK retries the 429 itself, then the sender reports the record failed and backs it off.
    await waitFor('the throttled record to be reported failed', async () =>
      reportedFailures() > failuresBefore ? true : undefined,
    );
    const whileThrottled = await view(id);

    // Act
    baton.ses.setFaults({});
    const delivered = await reaches(id, 'delivered', 30_000);

    // Assess
    expect(whileThrottled.status).toBe('queued');
    expect(whileThrottled.recipients.map((r) => [r.address, r.status, r.reason])).toEqual([
      [to, 'queued', null],
    ]);
    await expectSentOnce(baton, id);
    expect(delivered.recipients.map((r) => [r.address, r.status, r.reason])).toEqual([
      [to, 'delivered', null],
    ]);
    expect(delivered.events.map((e) => e.type)).toEqual(['accepted', 'sent', 'delivered']);
    await laneDrained();
    expect(await depth(deadLetters.url)).toBe(0);
  });

  it('records a permanent rejection failed with SES’s reason and does not retry it', async () => {
    // Prepare
    const to = 'success+rejected@simulator.amazonses.com';
    const failuresBefore = reportedFailures();
    baton.ses.setFaults({ rejectRate: 1 });

    // Act
    const id = await accept(to);
    const failed = await reaches(id, 'failed');

    // Assess
    expect(failed.recipients.map((r) => [r.address, r.status, r.reason])).toEqual([
      [to, 'failed', REJECTED_REASON],
    ]);
    expect(failed.events.map((e) => e.type)).toEqual(['accepted', 'failed']);
    await laneDrained();
    expect(await depth(deadLetters.url)).toBe(0);
    expect(reportedFailures()).toBe(failuresBefore);
    // Even with SES taking mail again, nothing comes back for it.
    baton.ses.setFaults({});
    await sleep(1_500);
    expect(sesSendsOf(baton, id)).toEqual([]);
    expect(outboxFilesOf(baton, id)).toEqual([]);
    expect((await view(id)).status).toBe('failed');
  });

  it('does not send again a message redriven from the DLQ after it was sent', async () => {
    // Prepare
    const to = 'success+redriven-sent@simulator.amazonses.com';
    const id = await accept(to);
    await reaches(id, 'delivered');
    await baton.sqs.send(new SendMessageCommand({ QueueUrl: deadLetters.url, MessageBody: jobBody(id, to) }));
    const handledBefore = handledRecords();

    // Act
    const redriven = await redriveFromDeadLetterQueue();
    await laneDrained();

    // Assess
    expect(redriven).toBe(1);
    expect(handledRecords() - handledBefore).toBe(1);
    await expectDeliveredOnce(id);
  });

  it('sends a never-sent message Baton gave up on once it is redriven from the DLQ', async () => {
    // Prepare
    const to = 'success+redriven-unsent@simulator.amazonses.com';
    const id = 'msg_01E2EREDRIVENNEVERSENT00';
    const table = apiSetting(baton, EnvVar.messagesTable);
    const client = new DynamoDBClient({
      endpoint: baton.endpoints.dynamodb,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const store = new DynamoMessageStore(documentClient(client), table);
    const now = new Date();
    const reason =
      'Baton gave up after 10 attempts: SES is unavailable or throttling (TooManyRequestsException). ' +
      'The message is in the dead-letter queue; redriving it sends it.';
    await store.create(
      markGaveUp(
        messageRecord({
          id,
          tenant: TENANT,
          createdAt: now.toISOString(),
          updatedAt: now.toISOString(),
          expiresAt: Math.floor(now.getTime() / 1000) + 86_400,
          recipients: [recipient(to, 'queued', { updatedAt: now.toISOString() })],
          events: [{ type: 'accepted', at: now.toISOString() }],
          version: 5,
        }),
        reason,
        now,
      ),
    );
    await baton.sqs.send(new SendMessageCommand({ QueueUrl: deadLetters.url, MessageBody: jobBody(id, to) }));
    const before = await view(id);

    // Act
    const redriven = await redriveFromDeadLetterQueue();
    const delivered = await reaches(id, 'delivered');

    // Assess
    client.destroy();
    expect(redriven).toBe(1);
    expect(before.status).toBe('failed');
    expect(before.recipients.map((r) => [r.status, r.reason])).toEqual([['failed', reason]]);
    await laneDrained();
    await expectSentOnce(baton, id);
    expect(delivered.recipients.map((r) => [r.address, r.status, r.reason])).toEqual([
      [to, 'delivered', null],
    ]);
    expect(delivered.events.map((e) => e.type)).toEqual(['accepted', 'failed', 'sent', 'delivered']);
    expect(await depth(deadLetters.url)).toBe(0);
  });
});
