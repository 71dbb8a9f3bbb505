import '../support/quiet-powertools.ts';
import { createHash } from 'node:crypto';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoGuardCounterStore } from '../../lambdas/adapters/guard-counter-store.ts';
import { type ProvisionedStack, statsItem } from '../support/emulators.ts';
import { guardCountersContract } from '../support/guard-counters-contract.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

/** A table of the shape a dedicated guard table would have: the scope as partition, the hour as sort key. */
const SORTED_TABLE = 'GuardCountersSorted';

let stack: ProvisionedStack;
let stats: DynamoGuardCounterStore;
let sorted: DynamoGuardCounterStore;

withProvisionedStack(async (started) => {
  stack = started;
  stats = new DynamoGuardCounterStore(stack.clients.doc, { table: stack.tables.stats });
  await stack.clients.dynamo.send(
    new CreateTableCommand({
      TableName: SORTED_TABLE,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  sorted = new DynamoGuardCounterStore(stack.clients.doc, { table: SORTED_TABLE, sortKey: 'sk' });
});

/** Epoch seconds at which a bucket of `hour` expires: 35 days after the hour ends. */
const expiry = (hour: string): number => Date.parse(`${hour}:00:00Z`) / 1000 + 3600 + 35 * 86_400;

describe('DynamoGuardCounterStore in the Stats table (one partition per scope and hour)', () => {
  guardCountersContract(() => stats);

  it('keeps a bucket under guard:<scope>@<hour>, the id percent-encoded, with a TTL 35 days after the hour', async () => {
    await stats.add([
      {
        scope: { kind: 'key', keyId: 'lay:out@1' },
        hour: '2026-04-01T07',
        counts: { sends: 3, hardBounces: 1 },
      },
      { scope: { kind: 'tenant', tenant: 'layout' }, hour: '2026-04-01T07', counts: { sends: 3 } },
    ]);

    expect(await statsItem(stack, 'guard:key:lay%3Aout%401@2026-04-01T07')).toEqual({
      pk: 'guard:key:lay%3Aout%401@2026-04-01T07',
      sends: 3,
      hardBounces: 1,
      expiresAt: expiry('2026-04-01T07'),
    });
    expect(await statsItem(stack, 'guard:tenant:layout@2026-04-01T07')).toEqual({
      pk: 'guard:tenant:layout@2026-04-01T07',
      sends: 3,
      expiresAt: expiry('2026-04-01T07'),
    });
  });

  it('marks a counted event by a hash of its id, per scope, with the TTL of its bucket', async () => {
    const eventId = 'feedback-0100018f#ana@example.org';
    await stats.add([
      {
        scope: { kind: 'key', keyId: 'marker1' },
        hour: '2026-04-01T08',
        counts: { hardBounces: 1 },
        eventId,
      },
    ]);

    const hash = createHash('sha256').update(eventId).digest('hex').slice(0, 32);
    expect(await statsItem(stack, `guard:event:${hash}@key:marker1`)).toEqual({
      pk: `guard:event:${hash}@key:marker1`,
      expiresAt: expiry('2026-04-01T08'),
    });
    // No item anywhere holds the event id, which here names a recipient.
    const all = await stack.clients.doc.send(new ScanCommand({ TableName: stack.tables.stats }));
    expect(JSON.stringify(all.Items)).not.toContain('ana@example.org');
  });
});

describe('DynamoGuardCounterStore in a table with a sort key (one partition per scope, read by one Query)', () => {
  guardCountersContract(() => sorted);

  it('keeps a scope in one partition, an item per hour', async () => {
    await sorted.add([
      { scope: { kind: 'key', keyId: 'part1' }, hour: '2026-04-01T07', counts: { sends: 1 } },
      { scope: { kind: 'key', keyId: 'part1' }, hour: '2026-04-01T08', counts: { sends: 2 } },
    ]);

    const out = await stack.clients.doc.send(
      new GetCommand({ TableName: SORTED_TABLE, Key: { pk: 'guard:key:part1', sk: '2026-04-01T08' } }),
    );
    expect(out.Item).toEqual({
      pk: 'guard:key:part1',
      sk: '2026-04-01T08',
      sends: 2,
      expiresAt: expiry('2026-04-01T08'),
    });
  });
});
