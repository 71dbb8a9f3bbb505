import '../../support/quiet-powertools.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoGuardCounterStore } from '../../../lambdas/adapters/guard-counter-store.ts';
import type { GuardIncrement } from '../../../lambdas/domain/guard/counters.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';

const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const ddb = mockClient(doc);
const TABLE = 'Stats';

const key = (keyId: string) => ({ kind: 'key', keyId }) as const;
const tenant = (id: string) => ({ kind: 'tenant', tenant: id }) as const;
const H = '2026-03-01T10';

/** An SDK service error as the client raises it. */
function awsError(name: string, status: number): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
}

const updates = () => ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input);
const pkOf = (input: { Key?: Record<string, unknown> }) => String(input.Key?.pk);

describe('DynamoGuardCounterStore (at the SDK boundary)', () => {
  beforeEach(() => {
    ddb.reset();
    ddb.on(UpdateCommand).resolves({});
    ddb.on(PutCommand).resolves({});
    ddb.on(DeleteCommand).resolves({});
  });

  it('writes one UpdateItem per scope and hour, the counts of its increments added up', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: TABLE });
    const increments: GuardIncrement[] = [
      ...Array.from({ length: 50 }, () => ({ scope: key('k1'), hour: H, counts: { sends: 1 } })),
      { scope: key('k1'), hour: H, counts: { sends: 2, contentRefusals: 1 } },
      ...Array.from({ length: 50 }, () => ({ scope: tenant('t1'), hour: H, counts: { sends: 1 } })),
      { scope: key('k1'), hour: '2026-03-01T11', counts: { sends: 1 } },
    ];

    await store.add(increments);

    expect(updates()).toHaveLength(3);
    const first = updates().find((u) => pkOf(u) === `guard:key:k1@${H}`);
    expect(first).toEqual({
      TableName: TABLE,
      Key: { pk: `guard:key:k1@${H}` },
      UpdateExpression: 'SET #ttl = :ttl ADD #c0 :c0, #c1 :c1',
      ExpressionAttributeNames: { '#ttl': 'expiresAt', '#c0': 'sends', '#c1': 'contentRefusals' },
      ExpressionAttributeValues: {
        ':ttl': Date.parse('2026-03-01T11:00:00Z') / 1000 + 35 * 86_400,
        ':c0': 52,
        ':c1': 1,
      },
    });
    expect(updates().map(pkOf).sort()).toEqual([
      `guard:key:k1@${H}`,
      'guard:key:k1@2026-03-01T11',
      `guard:tenant:t1@${H}`,
    ]);
  });

  it('sends nothing for no increments, or increments that count nothing', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: TABLE });

    await store.add([]);
    await store.add([{ scope: key('k1'), hour: H, counts: { sends: 0 }, eventId: 'e1' }]);

    expect(ddb.calls()).toHaveLength(0);
  });

  it('keeps at most maxConcurrentWrites requests in flight', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: TABLE, maxConcurrentWrites: 3 });
    let inFlight = 0;
    let most = 0;
    const slow = async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return {};
    };
    ddb.on(PutCommand).callsFake(slow);
    ddb.on(UpdateCommand).callsFake(slow);

    await store.add(
      Array.from({ length: 20 }, (_, i) => ({
        scope: key(`k${i}`),
        hour: H,
        counts: { sends: 1 },
        eventId: `e${i}`,
      })),
    );

    expect(ddb.commandCalls(PutCommand)).toHaveLength(20);
    expect(updates()).toHaveLength(20);
    expect(most).toBe(3);
  });

  it('adds nothing for an event whose marker is already there', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: TABLE });
    ddb.on(PutCommand).rejectsOnce(awsError('ConditionalCheckFailedException', 400)).resolves({});

    await store.add([
      { scope: key('k1'), hour: H, counts: { hardBounces: 1 }, eventId: 'seen-before' },
      { scope: tenant('t1'), hour: H, counts: { hardBounces: 1 }, eventId: 'seen-before' },
    ]);

    // The first marker (the key's) was there: only the tenant's bucket is added to.
    expect(updates().map(pkOf)).toEqual([`guard:tenant:t1@${H}`]);
    const marker = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(marker?.ConditionExpression).toBe('attribute_not_exists(#pk)');
    expect(String(marker?.Item?.pk)).toMatch(/^guard:event:[0-9a-f]{32}@key:k1$/);
  });

  it('throws a TransientError when a bucket write is throttled, releasing only the markers merged into it', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: TABLE });
    ddb
      .on(UpdateCommand, { Key: { pk: `guard:tenant:t1@${H}` } })
      .rejects(awsError('ProvisionedThroughputExceededException', 400));

    const adding = store.add([
      { scope: key('k1'), hour: H, counts: { hardBounces: 1 }, eventId: 'e1' },
      { scope: tenant('t1'), hour: H, counts: { hardBounces: 1 }, eventId: 'e1' },
      { scope: tenant('t1'), hour: H, counts: { sends: 1 } },
    ]);

    await expect(adding).rejects.toThrow(TransientError);
    await expect(adding).rejects.toThrow(
      'adding to the guard counters failed: ProvisionedThroughputExceededException',
    );
    // The key's bucket was counted and keeps its marker; the tenant's marker goes, so a retry counts it.
    const released = ddb.commandCalls(DeleteCommand).map((c) => String(c.args[0].input.Key?.pk));
    expect(released).toHaveLength(1);
    expect(released[0]).toMatch(/@tenant:t1$/);
  });

  it('counts nothing when a marker cannot be written, and releases the markers it took', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: TABLE, maxConcurrentWrites: 1 });
    ddb.on(PutCommand).resolvesOnce({}).rejectsOnce(awsError('ThrottlingException', 400)).resolves({});

    const adding = store.add([
      { scope: key('k1'), hour: H, counts: { complaints: 1 }, eventId: 'e1' },
      { scope: key('k1'), hour: H, counts: { complaints: 1 }, eventId: 'e2' },
      { scope: key('k1'), hour: H, counts: { complaints: 1 }, eventId: 'e3' },
    ]);

    await expect(adding).rejects.toThrow('marking a guard event counted failed: ThrottlingException');
    expect(updates()).toHaveLength(0);
    // One at a time, in order: e1's marker was taken, e2's failed, e3's was taken; both taken go.
    const puts = ddb.commandCalls(PutCommand).map((c) => String(c.args[0].input.Item?.pk));
    const taken = [puts[0], puts[2]];
    const released = ddb.commandCalls(DeleteCommand).map((c) => String(c.args[0].input.Key?.pk));
    expect(released.sort()).toEqual(taken.sort());
  });

  it('still throws the write failure when releasing a marker fails too', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: TABLE });
    ddb.on(UpdateCommand).rejects(awsError('InternalServerError', 500));
    ddb.on(DeleteCommand).rejects(awsError('InternalServerError', 500));

    await expect(
      store.add([{ scope: key('k1'), hour: H, counts: { complaints: 1 }, eventId: 'e1' }]),
    ).rejects.toThrow('adding to the guard counters failed: InternalServerError');
  });

  it('rethrows a failure retrying cannot fix as it is', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: TABLE });
    ddb.on(UpdateCommand).rejects(awsError('ValidationException', 400));

    const adding = store.add([{ scope: key('k1'), hour: H, counts: { sends: 1 } }]);

    await expect(adding).rejects.toThrow('ValidationException');
    await expect(adding).rejects.not.toBeInstanceOf(TransientError);
  });

  it('reads the Stats layout with one BatchGetItem per 100 hours, only the counters projected', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: TABLE });
    ddb.on(BatchGetCommand).resolves({ Responses: { [TABLE]: [] }, UnprocessedKeys: {} });

    await store.read(key('k1'), '2026-03-01T00', '2026-03-07T23');

    const calls = ddb.commandCalls(BatchGetCommand).map((c) => c.args[0].input.RequestItems?.[TABLE]);
    expect(calls.map((c) => c?.Keys?.length)).toEqual([100, 68]);
    expect(calls[0]?.Keys?.[0]).toEqual({ pk: 'guard:key:k1@2026-03-01T00' });
    expect(calls[0]?.ProjectionExpression).toBe('#pk, #c0, #c1, #c2, #c3, #c4, #c5, #c6, #c7');
  });

  it('reads a sorted table with one Query over the scope and hour range, eventually consistent', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: 'Guard', sortKey: 'sk' });
    ddb.on(QueryCommand).resolves({
      Items: [
        { sk: '2026-03-01T00', sends: 4, hardBounces: 1 },
        { sk: '2026-03-05T13', sends: 2, somethingElse: 'x' },
      ],
    });

    const buckets = await store.read(tenant('t1'), '2026-03-01T00', '2026-03-30T23');

    expect(buckets).toEqual([
      { hour: '2026-03-01T00', counts: { sends: 4, hardBounces: 1 } },
      { hour: '2026-03-05T13', counts: { sends: 2 } },
    ]);
    const calls = ddb.commandCalls(QueryCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toMatchObject({
      TableName: 'Guard',
      KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': 'guard:tenant:t1',
        ':from': '2026-03-01T00',
        ':to': '2026-03-30T23',
      },
    });
    expect(calls[0]?.args[0].input.ConsistentRead).toBeUndefined();
  });

  it('follows a Query that DynamoDB splits into pages', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: 'Guard', sortKey: 'sk' });
    ddb
      .on(QueryCommand)
      .resolvesOnce({
        Items: [{ sk: '2026-03-01T00', sends: 1 }],
        LastEvaluatedKey: { pk: 'p', sk: '2026-03-01T00' },
      })
      .resolvesOnce({ Items: [{ sk: '2026-03-01T01', sends: 2 }] });

    const buckets = await store.read(key('k1'), '2026-03-01T00', '2026-03-01T05');

    expect(buckets.map((b) => b.hour)).toEqual(['2026-03-01T00', '2026-03-01T01']);
    expect(ddb.commandCalls(QueryCommand)[1]?.args[0].input.ExclusiveStartKey).toEqual({
      pk: 'p',
      sk: '2026-03-01T00',
    });
  });

  it('throws a TransientError when a read is throttled', async () => {
    const store = new DynamoGuardCounterStore(doc, { table: 'Guard', sortKey: 'sk' });
    ddb.on(QueryCommand).rejects(awsError('ThrottlingException', 400));

    await expect(store.read(key('k1'), H, H)).rejects.toThrow(TransientError);
  });

  it('refuses settings that would keep nothing or write nothing', () => {
    expect(() => new DynamoGuardCounterStore(doc, { table: TABLE, retentionDays: 0 })).toThrow(
      'retentionDays must be a whole number of days, at least 1',
    );
    expect(() => new DynamoGuardCounterStore(doc, { table: TABLE, maxConcurrentWrites: 0 })).toThrow(
      'maxConcurrentWrites must be a whole number, at least 1',
    );
  });
});
