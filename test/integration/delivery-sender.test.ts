import '../support/quiet-powertools.ts';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DynamoApiKeyStore } from '../../lambdas/adapters/api-key-store.ts';
import type { MessageRecord, SendJob } from '../../lambdas/domain/message.ts';
import { toMessageView } from '../../lambdas/domain/reporting/status.ts';
import { EnvVar } from '../../lambdas/shared/names.ts';
import { synthTemplate } from '../../local/baton-local.ts';
import type { CfnTemplate } from '../../local/plan.ts';
import { issueApiKey } from '../support/fakes.ts';
import { runSenderBatch } from '../support/sender-batch.ts';
import { type RequestTally, type SenderRig, startSenderRig } from '../support/sender-rig.ts';

// The sender app with its real adapters (DynamoMessageStore, DynamoSuppressionStore, SesMailer,
// SqsVisibility) against dynalite and fauxqs provisioned from the template and the SES stand-in:
// which AWS requests a batch costs, that the last receive's give-up and visibility change work
// against the emulators, and that every request is one the deployed sender role allows.

const MAX_RECEIVE_COUNT = 10;

let rig: SenderRig;
let template: CfnTemplate;

beforeAll(async () => {
  rig = await startSenderRig({ maxReceiveCount: MAX_RECEIVE_COUNT });
  template = synthTemplate('example.com');
});

afterEach(() => {
  rig.ses.setFaults({});
  rig.counter.reset();
});

afterAll(async () => {
  await rig?.stop();
});

const idOf = (record: SQSRecord): string => (JSON.parse(record.body) as SendJob).id;

const requests = (tallies: readonly RequestTally[]) =>
  tallies.map((t) => [t.service, t.operation, t.resource, t.calls, t.attempts]);

/** The record as Lambda hands it over on its last receive. */
const onLastReceive = (record: SQSRecord): SQSRecord => ({
  ...record,
  attributes: { ...record.attributes, ApproximateReceiveCount: String(MAX_RECEIVE_COUNT) },
});

type Json = Record<string, unknown>;
const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/**
 * IAM actions the template's transactional sender role allows, by the logical id of the table (or
 * the `<service>` for a resource that is not a table) each statement names.
 */
function senderPermissions(): Map<string, Set<string>> {
  const resources = template.Resources as Record<string, { Type: string; Properties?: Json }>;
  const sender = Object.values(resources).find(
    (r) =>
      r.Type === 'AWS::Lambda::Function' &&
      (r.Properties?.Environment as { Variables?: Json } | undefined)?.Variables?.[EnvVar.lane] ===
        'transactional',
  );
  const roleId = ((sender?.Properties?.Role as { 'Fn::GetAtt'?: string[] } | undefined)?.['Fn::GetAtt'] ??
    [])[0];
  if (!roleId) throw new Error('the template has no transactional sender role');
  const allowed = new Map<string, Set<string>>();
  for (const policy of Object.values(resources).filter((r) => r.Type === 'AWS::IAM::Policy')) {
    const roles = asArray(policy.Properties?.Roles as Json[]).map((r) => r.Ref);
    if (!roles.includes(roleId)) continue;
    const document = policy.Properties?.PolicyDocument as { Statement: Json[] };
    for (const statement of document.Statement) {
      if (statement.Effect !== 'Allow') continue;
      for (const resource of asArray(statement.Resource as unknown)) {
        const table = (resource as { 'Fn::GetAtt'?: string[] } | null)?.['Fn::GetAtt']?.[0];
        const key = table ?? 'other';
        const actions = allowed.get(key) ?? new Set<string>();
        for (const action of asArray(statement.Action as string | string[])) actions.add(action);
        allowed.set(key, actions);
      }
    }
  }
  return allowed;
}

/** DynamoDB actions the sender issued on `table`, as IAM names them. */
const dynamoActionsOn = (tallies: readonly RequestTally[], table: string): string[] =>
  tallies
    .filter((t) => t.service === 'DynamoDB' && t.resource === table)
    .map((t) => `dynamodb:${t.operation}`)
    .sort();

describe('the sender with its real adapters (dynalite, fauxqs, SES stand-in)', () => {
  it('spends one suppression read per batch and one claim, one SES call and one status write per message', async () => {
    // Prepare
    const records = await rig.queueBatch('cost', 3);

    // Act
    const response = await runSenderBatch(rig.sender, records);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(requests(rig.counter.tallies())).toEqual([
      ['DynamoDB', 'BatchGetItem', rig.stack.tables.suppressions, 1, 1],
      ['DynamoDB', 'PutItem', rig.stack.tables.messages, 3, 3],
      ['DynamoDB', 'UpdateItem', rig.stack.tables.messages, 3, 3],
      ['SESv2', 'SendEmail', rig.configurationSet, 3, 3],
    ]);
    expect(rig.ses.sent().filter((s) => records.map(idOf).includes(s.batonMessageId ?? ''))).toHaveLength(3);
  });

  it('re-checks the key of a batch’s jobs with one read, however many jobs name it', async () => {
    // Prepare
    const { key } = issueApiKey({ tenant: 'tenant-a' });
    await new DynamoApiKeyStore(rig.stack.clients.doc, rig.stack.tables.apiKeys).put(key);
    const records = await rig.queueBatch('keyed', 3, { keyId: key.keyId });

    // Act
    const response = await runSenderBatch(rig.sender, records);

    // Assess: the batch of one key costs one GetItem more than the same batch without one.
    expect(response).toEqual({ batchItemFailures: [] });
    expect(requests(rig.counter.tallies())).toEqual([
      ['DynamoDB', 'BatchGetItem', rig.stack.tables.suppressions, 1, 1],
      ['DynamoDB', 'GetItem', rig.stack.tables.apiKeys, 1, 1],
      ['DynamoDB', 'PutItem', rig.stack.tables.messages, 3, 3],
      ['DynamoDB', 'UpdateItem', rig.stack.tables.messages, 3, 3],
      ['SESv2', 'SendEmail', rig.configurationSet, 3, 3],
    ]);
  });

  it('holds the queued mail of a suspended key: per message one read and one write of its record, no SES', async () => {
    // Prepare
    const { key } = issueApiKey({ tenant: 'tenant-a', status: 'suspended' });
    await new DynamoApiKeyStore(rig.stack.clients.doc, rig.stack.tables.apiKeys).put(key);
    const records = await rig.queueBatch('suspended', 3, { keyId: key.keyId });

    // Act
    const response = await runSenderBatch(rig.sender, records);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(requests(rig.counter.tallies())).toEqual([
      ['DynamoDB', 'BatchGetItem', rig.stack.tables.suppressions, 1, 1],
      // The tally is per operation (named by the first call's table): the key once, each record once.
      ['DynamoDB', 'GetItem', rig.stack.tables.apiKeys, 1 + 3, 1 + 3],
      ['DynamoDB', 'PutItem', rig.stack.tables.messages, 3, 3],
    ]);
    for (const record of records) {
      const stored = await rig.records.get(idOf(record));
      expect(toMessageView(stored as MessageRecord, new Date())).toMatchObject({
        status: 'held',
        recipients: [{ status: 'held', reason: 'the API key was suspended by an operator' }],
      });
    }
    expect(rig.held.entries.size).toBe(3);
  });

  it('acknowledges a second delivery of a sent message after one conditional write, without SES', async () => {
    // Prepare
    const records = await rig.queueBatch('twice', 1);
    await runSenderBatch(rig.sender, records);
    rig.counter.reset();

    // Act
    const response = await runSenderBatch(rig.sender, records);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(requests(rig.counter.tallies())).toEqual([
      ['DynamoDB', 'BatchGetItem', rig.stack.tables.suppressions, 1, 1],
      ['DynamoDB', 'GetItem', rig.stack.tables.messages, 1, 1],
      ['DynamoDB', 'UpdateItem', rig.stack.tables.messages, 1, 1],
    ]);
  });

  it('records a message still throttled on its last receive failed and redrivable, and makes it visible at once', async () => {
    // Prepare
    const [record] = await rig.queueBatch('lastthrottled', 1);
    if (!record) throw new Error('nothing queued');
    rig.ses.setFaults({ throttleRate: 1 });

    // Act
    const response = await runSenderBatch(rig.sender, [onLastReceive(record)]);
    const issued = requests(rig.counter.tallies());

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: record.messageId }] });
    const stored = (await rig.records.get(idOf(record))) as MessageRecord;
    expect(stored).toMatchObject({ phase: 'failed', redrivable: true });
    expect(toMessageView(stored, new Date()).recipients.map((r) => [r.status, r.reason])).toEqual([
      [
        'failed',
        `Baton gave up after ${MAX_RECEIVE_COUNT} attempts: SES is unavailable or throttling (TooManyRequestsException). ` +
          'The message is in the dead-letter queue; redriving it sends it.',
      ],
    ]);
    // The SDK retried the 429 itself (3 HTTP requests for the one SendEmail call); claim and release
    // are the two UpdateItems, giveUp's read and write the GetItem and PutItem.
    expect(issued).toEqual([
      ['DynamoDB', 'BatchGetItem', rig.stack.tables.suppressions, 1, 1],
      ['DynamoDB', 'GetItem', rig.stack.tables.messages, 1, 1],
      ['DynamoDB', 'PutItem', rig.stack.tables.messages, 1, 1],
      ['DynamoDB', 'UpdateItem', rig.stack.tables.messages, 2, 2],
      ['SESv2', 'SendEmail', rig.configurationSet, 1, 3],
      ['SQS', 'ChangeMessageVisibility', rig.stack.queues.transactional.name, 1, 1],
    ]);
    // Visibility 0: the queue hands it out again at once (on AWS, to the DLQ past maxReceiveCount).
    const again = await rig.stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: rig.stack.queues.transactional.url, WaitTimeSeconds: 1 }),
    );
    expect(again.Messages?.map((m) => m.MessageId)).toEqual([record.messageId]);
    await rig.stack.clients.sqs.send(
      new DeleteMessageCommand({
        QueueUrl: rig.stack.queues.transactional.url,
        ReceiptHandle: again.Messages?.[0]?.ReceiptHandle ?? '',
      }),
    );
  });

  it('lets the deployed sender role read the suppression list the way the adapter does', async () => {
    // Prepare
    const records = await rig.queueBatch('iamsupp', 2);

    // Act
    await runSenderBatch(rig.sender, records);

    // Assess
    const issued = dynamoActionsOn(rig.counter.tallies(), rig.stack.tables.suppressions);
    const allowed = senderPermissions().get(rig.stack.tables.suppressions) ?? new Set();
    expect(issued).toEqual(['dynamodb:BatchGetItem']);
    expect(issued.filter((a) => !allowed.has(a))).toEqual([]);
  });

  // Regression: the sender role lacked PutItem on Messages, so deployed status writes failed after SES accepted (and the message was sent again).
  it('lets the deployed sender role write the Messages table the way the adapter does', async () => {
    // Prepare
    const records = await rig.queueBatch('iammsg', 2);

    // Act
    await runSenderBatch(rig.sender, records);

    // Assess
    const issued = dynamoActionsOn(rig.counter.tallies(), rig.stack.tables.messages);
    const allowed = senderPermissions().get(rig.stack.tables.messages) ?? new Set();
    expect(issued).toEqual(['dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(issued.filter((a) => !allowed.has(a))).toEqual([]);
  });
});
