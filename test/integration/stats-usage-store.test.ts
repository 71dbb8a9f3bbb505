import '../support/quiet-powertools.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoUsageStore } from '../../lambdas/adapters/usage-store.ts';
import { TransientError } from '../../lambdas/shared/errors.ts';
import { synthTemplate } from '../../local/baton-local.ts';
import type { CfnTemplate } from '../../local/plan.ts';
import { credentials, documentClient, type ProvisionedStack, region } from '../support/emulators.ts';
import {
  addCallMiddleware,
  functionsWithEntry,
  IamRecorder,
  missingPermissions,
  policyOfEntry,
  policyOfFunction,
} from '../support/iam-audit.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

// DynamoUsageStore's statistics reads and writes against dynalite, on the Stats table provisioned
// from the template, and the roles that make them deployed.

let stack: ProvisionedStack;
let store: DynamoUsageStore;

withProvisionedStack((started) => {
  stack = started;
  store = new DynamoUsageStore(stack.clients.doc, stack.tables.stats);
});

type Input = Record<string, unknown>;
interface BatchGetInput {
  RequestItems: Record<string, { Keys: unknown[] }>;
}

/**
 * A store on its own client whose BatchGetItem calls are recorded (keys per call) and, when
 * `process` says so, answered for only some keys with the rest handed back as UnprocessedKeys, as
 * DynamoDB does under load.
 */
function instrumentedStore(process: (call: number, keys: number) => number = (_, keys) => keys) {
  const dynamo = new DynamoDBClient({ endpoint: stack.dynamo.endpoint, region, credentials });
  const doc = documentClient(dynamo);
  const calls: number[] = [];
  addCallMiddleware(
    doc,
    'statsTestBatchGet',
    (next, context) => async (args) => {
      if (context.commandName !== 'BatchGetCommand' && context.commandName !== 'BatchGetItemCommand') {
        return next(args);
      }
      const input = args.input as unknown as BatchGetInput;
      const [table, request] = Object.entries(input.RequestItems)[0] ?? [];
      if (table === undefined || request === undefined) return next(args);
      calls.push(request.Keys.length);
      const served = process(calls.length, request.Keys.length);
      const held = request.Keys.slice(served);
      // Nothing served: DynamoDB answers without reading (an empty Keys list would be refused).
      if (served === 0) {
        return {
          output: { $metadata: {}, Responses: { [table]: [] }, UnprocessedKeys: { [table]: request } },
        };
      }
      const result = (await next({
        ...args,
        input: {
          ...input,
          RequestItems: { [table]: { ...request, Keys: request.Keys.slice(0, served) } },
        } as Input,
      })) as { output: { UnprocessedKeys?: Record<string, unknown> } };
      if (held.length > 0) result.output.UnprocessedKeys = { [table]: { ...request, Keys: held } };
      return result;
    },
    'high',
  );
  return { store: new DynamoUsageStore(doc, stack.tables.stats), calls, destroy: () => dynamo.destroy() };
}

/** `n` consecutive days from 2024-01-01. */
const daysFrom2024 = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10));

describe('DynamoUsageStore statistics against dynalite', () => {
  it('reads back the counters addStats wrote, for the days that have any', async () => {
    // Prepare
    await store.addStats('reader', '2025-03-01', { accepted: 3, sent: 3 });
    await store.addStats('reader', '2025-03-01', { delivered: 2, bounced: 1 });
    await store.addStats('reader', '2025-03-03', { complained: 1 });

    // Act
    const found = await store.getStats('reader', ['2025-03-01', '2025-03-02', '2025-03-03']);

    // Assess
    expect(found).toEqual(
      new Map([
        ['2025-03-01', { accepted: 3, sent: 3, delivered: 2, bounced: 1 }],
        ['2025-03-03', { complained: 1 }],
      ]),
    );
  });

  it('reads only the tenant asked for', async () => {
    // Prepare
    await store.addStats('tenant-one', '2025-04-01', { accepted: 5 });
    await store.addStats('tenant-two', '2025-04-01', { accepted: 7 });

    // Act
    const one = await store.getStats('tenant-one', ['2025-04-01']);
    const none = await store.getStats('tenant-three', ['2025-04-01']);

    // Assess
    expect([one, none]).toEqual([new Map([['2025-04-01', { accepted: 5 }]]), new Map()]);
  });

  it('adds concurrent writes atomically: no increment is lost', async () => {
    // Act
    await Promise.all(
      Array.from({ length: 25 }, (_, i) => store.addStats('busy', '2025-03-01', { sent: 2, failed: i % 2 })),
    );

    // Assess
    expect(await store.getStats('busy', ['2025-03-01'])).toEqual(
      new Map([['2025-03-01', { sent: 50, failed: 12 }]]),
    );
  });

  it('does not read a key’s quota usage as statistics', async () => {
    // Prepare
    await store.consumeQuota('key-stats-read', '2025-03-01', 4, 10);
    await store.addStats('quota-neighbour', '2025-03-01', { accepted: 1 });

    // Act
    const found = await store.getStats('quota-neighbour', ['2025-03-01']);

    // Assess
    expect(found).toEqual(new Map([['2025-03-01', { accepted: 1 }]]));
  });

  it('reads at most 100 days per BatchGetItem', async () => {
    // Prepare
    const days = daysFrom2024(150);
    await store.addStats('long', '2024-01-01', { sent: 1 });
    await store.addStats('long', '2024-05-29', { sent: 2 });
    const rig = instrumentedStore();

    // Act
    const found = await rig.store.getStats('long', days);
    rig.destroy();

    // Assess
    expect(days.at(-1)).toBe('2024-05-29');
    expect(rig.calls).toEqual([100, 50]);
    expect(found).toEqual(
      new Map([
        ['2024-01-01', { sent: 1 }],
        ['2024-05-29', { sent: 2 }],
      ]),
    );
  });

  it('asks again for the keys DynamoDB left unprocessed', async () => {
    // Prepare
    const days = daysFrom2024(7);
    for (const day of days) await store.addStats('patient', day, { delivered: 1 });
    const rig = instrumentedStore((call, keys) => (call === 1 ? 3 : keys));

    // Act
    const found = await rig.store.getStats('patient', days);
    rig.destroy();

    // Assess
    expect(rig.calls).toEqual([7, 4]);
    expect([...found.keys()].sort()).toEqual(days);
  });

  it('gives up with a TransientError when keys stay unprocessed', async () => {
    // Prepare
    const rig = instrumentedStore(() => 0);

    // Act
    const outcome = rig.store.getStats('starved', ['2025-03-01']);

    // Assess
    await expect(outcome).rejects.toThrow(
      new TransientError('reading the daily statistics left requests unprocessed'),
    );
    rig.destroy();
    expect(rig.calls).toHaveLength(6);
  });
});

describe('the roles that count and read statistics', () => {
  let template: CfnTemplate;
  const recorder = new IamRecorder();
  let recorded: DynamoUsageStore;
  let dynamo: DynamoDBClient;

  beforeAll(() => {
    template = synthTemplate('example.com');
    dynamo = recorder.instrument(
      new DynamoDBClient({ endpoint: stack.dynamo.endpoint, region, credentials }),
    );
    recorded = new DynamoUsageStore(documentClient(dynamo), stack.tables.stats);
  });

  afterAll(() => {
    dynamo?.destroy();
  });

  it.each([
    ['sender', 'lambdas/sender/handler.ts'],
    ['feedback', 'lambdas/feedback/handler.ts'],
  ])('lets every %s role add to the daily counters', async (_role, entry) => {
    // Prepare
    recorder.reset();
    const functions = functionsWithEntry(template, entry);

    // Act
    await recorded.addStats('iam', '2025-03-01', { sent: 1 });

    // Assess: the transactional and broadcast senders share one entry, and both are checked.
    expect(functions.length).toBeGreaterThan(0);
    for (const id of functions) {
      expect(missingPermissions(recorder.calls(), policyOfFunction(template, id))).toEqual([]);
    }
  });

  it('lets the api role read the daily counters (GET /v1/stats)', async () => {
    // Prepare
    recorder.reset();

    // Act
    await recorded.getStats('iam', ['2025-03-01', '2025-03-02']);

    // Assess
    expect(missingPermissions(recorder.calls(), policyOfEntry(template, 'lambdas/api/handler.ts'))).toEqual(
      [],
    );
  });
});
