import '../support/quiet-powertools.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoEndpointStateStore } from '../../lambdas/adapters/webhook-state-store.ts';
import { type DeliveryDeps, deliverJob } from '../../lambdas/domain/webhooks/deliver.ts';
import type { EndpointDeliveryState } from '../../lambdas/domain/webhooks/delivery-ports.ts';
import { TransientError } from '../../lambdas/shared/errors.ts';
import { startDynamo } from '../../local/emulators/dynamodb.ts';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { createPkSkTable, credentials, documentClient, region, unreachable } from '../support/emulators.ts';

const TABLE = 'Webhooks';
const NOW = new Date('2026-12-06T10:00:00.000Z');

let dynamo: LocalEmulator;
let client: DynamoDBClient;
let store: DynamoEndpointStateStore;

beforeAll(async () => {
  dynamo = await startDynamo({ port: 0 });
  client = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials });
  await createPkSkTable(client, TABLE);
  store = new DynamoEndpointStateStore(documentClient(client), TABLE, () => NOW);
});

afterAll(async () => {
  client?.destroy();
  await dynamo?.stop();
});

const opened: EndpointDeliveryState = {
  breaker: {
    status: 'open',
    consecutiveFailures: 5,
    failingSince: '2026-12-06T09:00:00.000Z',
    cooldownSeconds: 60,
    retryAt: '2026-12-06T10:01:00.000Z',
  },
  leases: { a: NOW.getTime() + 45_000 },
};

describe('DynamoEndpointStateStore', () => {
  it('reads a closed breaker with no slot in use, version 0, for an endpoint never written', async () => {
    // Act
    const read = await store.read('wh_never');

    // Assess
    expect(read).toEqual({
      state: { breaker: { status: 'closed', consecutiveFailures: 0 }, leases: {} },
      version: 0,
    });
  });

  it('stores the state under endpoint#<id> / state with a version and a TTL, and reads it back', async () => {
    // Act
    const written = await store.write('wh_one', opened, 0);
    const read = await store.read('wh_one');

    // Assess
    expect(written).toBe(true);
    expect(read).toEqual({ state: opened, version: 1 });
    const raw = await documentClient(client).send(
      new GetCommand({ TableName: TABLE, Key: { pk: 'endpoint#wh_one', sk: 'state' } }),
    );
    expect(raw.Item?.expiresAt).toBe(NOW.getTime() / 1000 + 30 * 86_400);
  });

  it('refuses a write on a version that changed', async () => {
    // Prepare
    await store.write('wh_two', opened, 0);

    // Act
    const again = await store.write('wh_two', opened, 0);
    const stale = await store.write('wh_two', opened, 5);
    const current = await store.write('wh_two', { ...opened, leases: {} }, 1);

    // Assess
    expect([again, stale, current]).toEqual([false, false, true]);
    expect(await store.read('wh_two')).toEqual({ state: { ...opened, leases: {} }, version: 2 });
  });

  it('lets exactly one of two writers on the same version win', async () => {
    // Prepare
    await store.write('wh_two_writers', opened, 0);
    const { state, version } = await store.read('wh_two_writers');

    // Act
    const results = await Promise.all([
      store.write('wh_two_writers', { ...state, leases: { ...state.leases, p: 1 } }, version),
      store.write('wh_two_writers', { ...state, leases: { ...state.leases, q: 2 } }, version),
    ]);

    // Assess
    expect(results.sort()).toEqual([false, true]);
    expect((await store.read('wh_two_writers')).version).toBe(2);
  });

  it('lets only one of two racing deliveries take the last slot', async () => {
    // Prepare: three of four slots in use.
    const busy = Object.fromEntries(['x', 'y', 'z'].map((id) => [id, NOW.getTime() + 30_000]));
    await store.write('wh_race', { breaker: { status: 'closed', consecutiveFailures: 0 }, leases: busy }, 0);
    let posts = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const deps: DeliveryDeps = {
      endpoints: {
        get: async () => ({
          id: 'wh_race',
          tenant: 'acme',
          url: 'https://hooks.example/x',
          events: ['message.sent'],
          description: '',
          enabled: true,
          disabledReason: null,
          secrets: [
            { secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}`, createdAt: NOW.toISOString() },
          ],
          createdAt: NOW.toISOString(),
          updatedAt: NOW.toISOString(),
          version: 1,
        }),
        create: async () => {},
        list: async () => [],
        update: async () => {},
        delete: async () => false,
      },
      state: store,
      poster: {
        post: async () => {
          posts++;
          await held;
          return { status: 200, snippet: '', latencyMs: 1 };
        },
      },
      log: { record: async () => {}, attempts: async () => ({ attempts: [] }) },
      queue: { enqueue: async () => {} },
      publisher: { publish: async () => {} },
      clock: () => NOW,
      random: () => 0,
      leaseId: (() => {
        let n = 0;
        return () => `racer-${n++}`;
      })(),
    };
    const job = {
      v: 1 as const,
      tenant: 'acme',
      endpointId: 'wh_race',
      eventId: 'evt_1',
      type: 'message.sent' as const,
      body: '{}',
      attempt: 0,
      firstQueuedAt: NOW.getTime(),
      notBefore: NOW.getTime(),
      occurredAt: NOW.getTime(),
    };

    // Act
    const racing = [deliverJob(job, deps), deliverJob({ ...job, eventId: 'evt_2' }, deps)];
    const first = await Promise.race(racing);
    release();
    const both = await Promise.all(racing);

    // Assess
    expect(first).toEqual({ deferSeconds: 2 });
    expect(posts).toBe(1);
    expect(both.filter((d) => 'done' in d)).toHaveLength(1);
    expect(Object.keys((await store.read('wh_race')).state.leases).sort()).toEqual(['x', 'y', 'z']);
  });

  it('reports an unreachable table as a transient error', async () => {
    // Prepare
    const down = new DynamoEndpointStateStore(documentClient(new DynamoDBClient(unreachable)), TABLE);

    // Act
    const reading = down.read('wh_one');

    // Assess
    await expect(reading).rejects.toBeInstanceOf(TransientError);
  });
});
