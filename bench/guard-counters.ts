/**
 * DynamoDB capacity the abuse guard's counters consume (issue 13, for issue 16's cost cap), as
 * dynalite reports it (ReturnConsumedCapacity, computed from item sizes as DynamoDB does): the
 * writes of an accepted request (one message, and a batch of 100), of a feedback batch of bounce
 * events, of a redelivered event, and the reads of the guard's windows in both key layouts.
 * Run: `node bench/guard-counters.ts` (prints a table). dynalite reports nothing for a conditional
 * write whose condition failed; DynamoDB bills it (1 WRU per marker of a redelivered event).
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoGuardCounterStore } from '../lambdas/adapters/guard-counter-store.ts';
import { addHours, type GuardIncrement } from '../lambdas/domain/guard/counters.ts';
import { startDynamo } from '../local/emulators/dynamodb.ts';
import { credentials, documentClient, region } from '../test/support/emulators.ts';
import { BUSY_HOUR } from './sections/guard.ts';

const dynamo = await startDynamo({ port: 0 });
const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials });
const doc = documentClient(client);
let units = 0;
doc.middlewareStack.add(
  (next) => async (args) => {
    (args.input as Record<string, unknown>).ReturnConsumedCapacity = 'TOTAL';
    const out = await next(args);
    const consumed = (out.output as { ConsumedCapacity?: unknown }).ConsumedCapacity;
    for (const c of [consumed].flat())
      units += (c as { CapacityUnits?: number } | undefined)?.CapacityUnits ?? 0;
    return out;
  },
  { step: 'initialize', name: 'countCapacity' },
);

for (const [name, sk] of [
  ['Stats', undefined],
  ['Guard', 'sk'],
] as const) {
  await client.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        ...(sk ? [{ AttributeName: sk, AttributeType: 'S' as const }] : []),
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        ...(sk ? [{ AttributeName: sk, KeyType: 'RANGE' as const }] : []),
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
}
const stats = new DynamoGuardCounterStore(doc, { table: 'Stats' });
const sorted = new DynamoGuardCounterStore(doc, { table: 'Guard', sortKey: 'sk' });

async function measure(what: () => Promise<unknown>): Promise<number> {
  units = 0;
  await what();
  return units;
}

const key = { kind: 'key', keyId: '01jexamplekeyid0' } as const;
const tenant = { kind: 'tenant', tenant: 'acme-shop' } as const;
const NOW = '2026-03-31T12';
const accept = (n: number): GuardIncrement[] => [
  { scope: key, hour: NOW, counts: { sends: n, newRecipientDomains: 1 } },
  { scope: tenant, hour: NOW, counts: { sends: n, newRecipientDomains: 1 } },
];
const bounce = (i: number): GuardIncrement[] =>
  [key, tenant].map((scope) => ({
    scope,
    hour: NOW,
    counts: { hardBounces: 1 },
    eventId: `0100018f-${i}-000000#0`,
  }));

const rows: Array<[string, string]> = [];
for (const [layout, store] of [
  ['Stats (pk only)', stats],
  ['sorted (pk + sk)', sorted],
] as const) {
  // Every hour of 30 days holds every counter, as a busy key's and tenant's would.
  for (let h = 0; h < 30 * 24; h++) {
    const hour = addHours(NOW, -h);
    await store.add(
      [key, tenant].map((scope) => ({
        scope,
        hour,
        counts: BUSY_HOUR,
      })),
    );
  }
  rows.push([`${layout}: accept, 1 message`, `${await measure(() => store.add(accept(1)))} WRU`]);
  rows.push([`${layout}: accept, batch of 100`, `${await measure(() => store.add(accept(100)))} WRU`]);
  const events = Array.from({ length: 10 }, (_, i) =>
    bounce(i + (layout === 'Stats (pk only)' ? 0 : 100)),
  ).flat();
  rows.push([`${layout}: feedback, 10 bounces`, `${await measure(() => store.add(events))} WRU`]);
  rows.push([`${layout}: the same 10 again`, `${await measure(() => store.add(events))} WRU`]);
  for (const [window, hours] of [
    ['current hour', 1],
    ['24 h', 24],
    ['7 days', 7 * 24],
    ['30 days', 30 * 24],
  ] as const) {
    const read = await measure(() => store.read(tenant, addHours(NOW, 1 - hours), NOW));
    rows.push([`${layout}: read ${window}`, `${read} RRU`]);
  }
}

for (const [what, figure] of rows) process.stdout.write(`${what.padEnd(44)} ${figure}\n`);
client.destroy();
await dynamo.stop();
