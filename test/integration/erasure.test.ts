import '../support/quiet-powertools.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { BatchWriteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoApiKeyStore } from '../../lambdas/adapters/api-key-store.ts';
import { SqsErasureQueue } from '../../lambdas/adapters/erasure-queue.ts';
import { DynamoIdempotencyStore } from '../../lambdas/adapters/idempotency-store.ts';
import { SqsJobQueue } from '../../lambdas/adapters/job-queue.ts';
import { DynamoMessageStore } from '../../lambdas/adapters/message-store.ts';
import { DynamoSoftBounceStore } from '../../lambdas/adapters/soft-bounce-store.ts';
import { DynamoSuppressionStore } from '../../lambdas/adapters/suppression-store.ts';
import { DynamoUsageStore } from '../../lambdas/adapters/usage-store.ts';
import { createApi } from '../../lambdas/api/app.ts';
import {
  type ErasureDeps,
  erasedKeyFunction,
  eraseRecipient,
  TombstoneAwareSuppressions,
} from '../../lambdas/domain/erasure/erasure.ts';
import type { MessageRecord } from '../../lambdas/domain/message.ts';
import { RateLimiter } from '../../lambdas/domain/send/rate-limit.ts';
import { createErasureWorker } from '../../lambdas/erasure/app.ts';
import { InvalidCursorError } from '../../lambdas/shared/errors.ts';
import { EnvVar, SOFT_BOUNCE_KEY_PREFIX, TENANT_KEY_PREFIX } from '../../lambdas/shared/names.ts';
import { synthTemplate } from '../../local/baton-local.ts';
import { localSecretArn } from '../../local/plan.ts';
import { messageRecord, recipient, sqsRecord, suppression } from '../support/builders.ts';
import {
  credentials,
  documentClient,
  type ProvisionedStack,
  region,
  sqsClient,
} from '../support/emulators.ts';
import { InMemoryHeldJobs, issueApiKey, RecordingGuard, testClock } from '../support/fakes.ts';
import { httpEvent, jsonOf } from '../support/http-events.ts';
import {
  functionsWithEntry,
  IamRecorder,
  missingPermissions,
  policyOfEntry,
  usage,
} from '../support/iam-audit.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

const keyOf = erasedKeyFunction('integration-erasure-secret-0123456789');
const API_ENTRY = 'lambdas/api/handler.ts';
const WORKER_ENTRY = 'lambdas/erasure/handler.ts';

let stack: ProvisionedStack;
let messages: DynamoMessageStore;
let suppressions: DynamoSuppressionStore;
let erasureQueueUrl: string;
let seq = 0;

/** A fresh address (and tenant) per test: the tables are shared by the whole file. */
function fresh(): { address: string; tenant: string } {
  seq += 1;
  return { address: `erase-${seq}@example.org`, tenant: `tenant-${seq}` };
}

async function seedRecords(records: readonly MessageRecord[]): Promise<void> {
  for (let i = 0; i < records.length; i += 25) {
    await stack.clients.doc.send(
      new BatchWriteCommand({
        RequestItems: {
          [stack.tables.messages]: records.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })),
        },
      }),
    );
  }
}

function workerEnvironment(): Record<string, string> {
  const [id] = functionsWithEntry(template(), WORKER_ENTRY);
  const env = id === undefined ? undefined : stack.environments.get(id);
  if (!env) throw new Error('the template has no erasure worker');
  return env;
}

let cachedTemplate: ReturnType<typeof synthTemplate> | undefined;
function template(): ReturnType<typeof synthTemplate> {
  cachedTemplate ??= synthTemplate('example.com');
  return cachedTemplate;
}

async function drainErasureQueue(): Promise<void> {
  for (;;) {
    const out = await stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: erasureQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (!out.Messages?.length) return;
    for (const m of out.Messages) {
      await stack.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: erasureQueueUrl, ReceiptHandle: m.ReceiptHandle }),
      );
    }
  }
}

withProvisionedStack((started) => {
  stack = started;
  messages = new DynamoMessageStore(stack.clients.doc, stack.tables.messages);
  suppressions = new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions);
  erasureQueueUrl = workerEnvironment()[EnvVar.erasureQueueUrl] ?? '';
});

beforeEach(async () => {
  await drainErasureQueue();
});

function erasureDeps(clock = testClock(new Date().toISOString())): ErasureDeps {
  return {
    messages,
    suppressions,
    softBounces: new DynamoSoftBounceStore(stack.clients.doc, stack.tables.suppressions),
    queue: new SqsErasureQueue(stack.clients.sqs, erasureQueueUrl),
    keyOf,
    clock,
  };
}

describe('erasure against the emulators (tables and queue provisioned from the template)', () => {
  it('resolves the secret’s ARN locally, since local mode has no Secrets Manager', () => {
    // Act
    const arn = workerEnvironment()[EnvVar.erasureSecretArn];

    // Assess
    expect(arn).toMatch(/^arn:aws:secretsmanager:us-east-1:000000000000:secret:ErasureSecret/);
    expect(arn).toBe(localSecretArn(stack.plan.secrets[0] ?? ''));
  });

  it('scans one tenant’s records page by page in parallel segments, and refuses a made-up position', async () => {
    // Prepare
    const { tenant } = fresh();
    const ids = Array.from({ length: 40 }, (_, i) => `msg_scan${seq}x${String(i).padStart(2, '0')}`);
    await seedRecords([
      ...ids.map((id) => messageRecord({ id, tenant })),
      ...ids.slice(0, 10).map((id) => messageRecord({ id: `${id}other`, tenant: `${tenant}-other` })),
    ]);

    // Act
    const found: string[] = [];
    for (let segment = 0; segment < 4; segment++) {
      let after: string | undefined;
      do {
        const page = await messages.scanTenant(tenant, segment, 4, after);
        found.push(...page.records.map((r) => r.id));
        after = page.next;
      } while (after !== undefined);
    }
    const bad = messages.scanTenant(tenant, 0, 4, 'not a\nposition');

    // Assess
    expect(found.toSorted()).toEqual(ids);
    await expect(bad).rejects.toThrow(new InvalidCursorError('not a Messages scan position'));
  });

  it('erases the address from the tenant’s records, keeps the tenant’s tombstone, deletes its own entry and the counter, and leaves global evidence', async () => {
    // Prepare
    const { address, tenant } = fresh();
    const key = keyOf(address);
    await seedRecords([
      messageRecord({ id: `msg_e${seq}a`, tenant, recipients: [recipient(address, 'delivered')] }),
      messageRecord({
        id: `msg_e${seq}b`,
        tenant,
        recipients: [recipient('bob@example.org'), recipient(address.toUpperCase(), 'bounced')],
      }),
      messageRecord({ id: `msg_e${seq}c`, tenant, recipients: [recipient('bob@example.org')] }),
      messageRecord({ id: `msg_e${seq}d`, tenant: `${tenant}-other`, recipients: [recipient(address)] }),
    ]);
    await suppressions.put(suppression(address, 'hard_bounce', { detail: `550 <${address}> unknown` }));
    await suppressions.put(suppression(address, 'unsubscribe', { tenant }));
    await new DynamoSoftBounceStore(stack.clients.doc, stack.tables.suppressions).put({
      address,
      bounces: { msg_x: Date.now() },
      version: 0,
    });

    // Act
    const outcome = await eraseRecipient(erasureDeps(), tenant, address, 5_000);

    // Assess
    expect(outcome).toEqual({ key, erased: 2, complete: true });
    const item = async (k: string) =>
      (
        await stack.clients.doc.send(
          new GetCommand({ TableName: stack.tables.suppressions, Key: { address: k } }),
        )
      ).Item;
    expect(await item(`${TENANT_KEY_PREFIX}${tenant}:${address}`)).toBeUndefined();
    expect(await item(`${SOFT_BOUNCE_KEY_PREFIX}${address}`)).toBeUndefined();
    expect(await item(key)).toBeUndefined();
    expect(await item(`${TENANT_KEY_PREFIX}${tenant}:${key}`)).toMatchObject({
      address: `${TENANT_KEY_PREFIX}${tenant}:${key}`,
      tenant,
      reason: 'hard_bounce',
      detail: `550 <${key}> unknown`,
    });
    // The bounce is the other tenants' evidence too: it stays, and they learn nothing of the erasure.
    expect((await item(address))?.reason).toBe('hard_bounce');
    expect((await messages.get(`msg_e${seq}a`))?.recipients.map((r) => r.address)).toEqual([key]);
    expect((await messages.get(`msg_e${seq}b`))?.recipients.map((r) => r.address)).toEqual([
      'bob@example.org',
      key,
    ]);
    expect((await messages.get(`msg_e${seq}c`))?.version).toBe(1);
    expect((await messages.get(`msg_e${seq}d`))?.recipients.map((r) => r.address)).toEqual([address]);
  });

  it('continues an erasure through the real queue until the worker has erased every record', async () => {
    // Prepare: each scan page moves the clock 4 s, so the api's budget covers only the first pages.
    const { address, tenant } = fresh();
    const key = keyOf(address);
    const ids = Array.from({ length: 30 }, (_, i) => `msg_c${seq}x${String(i).padStart(2, '0')}`);
    await seedRecords(ids.map((id) => messageRecord({ id, tenant, recipients: [recipient(address)] })));
    const clock = testClock('2030-01-01T00:00:00.000Z');
    const slow: ErasureDeps = {
      ...erasureDeps(clock),
      messages: {
        get: (id) => messages.get(id),
        update: (next, version) => messages.update(next, version),
        scanTenant: async (...args) => {
          clock.advance(4_000);
          return messages.scanTenant(args[0], args[1], args[2], args[3]);
        },
      },
      segments: 2,
    };
    const work = createErasureWorker(slow);

    // Act
    const first = await eraseRecipient({ ...slow, segments: 2 }, tenant, address, 1_000);
    let steps = 0;
    for (;;) {
      const out = await stack.clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: erasureQueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 0 }),
      );
      const [message] = out.Messages ?? [];
      if (message === undefined) break;
      expect(message.Body).not.toContain(address);
      steps += 1;
      await work(
        sqsRecord(message.Body ?? '', { messageId: message.MessageId ?? 'sqs-1' }),
        clock().getTime() + 1_000,
      );
      await stack.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: erasureQueueUrl, ReceiptHandle: message.ReceiptHandle }),
      );
    }

    // Assess
    expect(first.complete).toBe(false);
    expect(steps).toBeGreaterThan(0);
    const after = await Promise.all(ids.map((id) => messages.get(id)));
    expect(after.map((r) => r?.recipients[0]?.address)).toEqual(ids.map(() => key));
  });

  it('keeps the other tenants’ bounces in the soft-bounce counter when a tenant that never mailed the address erases it', async () => {
    // Prepare: two transient bounces of another tenant's messages.
    const { address, tenant } = fresh();
    const other = `${tenant}-other`;
    await seedRecords([
      messageRecord({ id: `msg_k${seq}a`, tenant: other, recipients: [recipient(address, 'bounced')] }),
      messageRecord({ id: `msg_k${seq}b`, tenant: other, recipients: [recipient(address, 'bounced')] }),
    ]);
    const counters = new DynamoSoftBounceStore(stack.clients.doc, stack.tables.suppressions);
    const at = Date.now();
    await counters.put({ address, bounces: { [`msg_k${seq}a`]: at, [`msg_k${seq}b`]: at }, version: 0 });

    // Act
    await eraseRecipient(erasureDeps(), tenant, address, 5_000);

    // Assess
    expect((await counters.get(address))?.bounces).toEqual({ [`msg_k${seq}a`]: at, [`msg_k${seq}b`]: at });
  });

  it('pages through suppressions past a tombstone and never lists soft-bounce counters', async () => {
    // Prepare: pages of one item, so some page ends on the tombstone and one on the counter.
    const { address, tenant } = fresh();
    const key = keyOf(address);
    await stack.clients.doc.send(
      new PutCommand({
        TableName: stack.tables.suppressions,
        Item: { address: `${SOFT_BOUNCE_KEY_PREFIX}${address}`, bounces: {}, version: 1 },
      }),
    );
    await suppressions.put(suppression(key, 'manual', { detail: 'erased', tenant }));

    // Act
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await suppressions.list(1, cursor, tenant);
      seen.push(...page.items.map((s) => s.address));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);

    // Assess
    expect(seen).toContain(key);
    expect(seen.filter((a) => a.startsWith(SOFT_BOUNCE_KEY_PREFIX))).toEqual([]);
    expect(seen).not.toContain(address);
  });

  it('checks plain and tombstone keys of all recipients in one BatchGetItem', async () => {
    // Prepare
    const { address } = fresh();
    await eraseRecipient(erasureDeps(), 'tenant-none', address, 1_000);
    await suppressions.put(suppression('bob@example.org', 'unsubscribe', { tenant: 'tenant-other' }));
    const recorder = new IamRecorder();
    const dynamo = recorder.instrument(
      new DynamoDBClient({ endpoint: stack.dynamo.endpoint, region, credentials }),
    );
    const store = new TombstoneAwareSuppressions(
      new DynamoSuppressionStore(documentClient(dynamo), stack.tables.suppressions),
      keyOf,
    );

    // Act
    const found = await store.getMany([address, 'bob@example.org'], 'tenant-none');
    const elsewhere = await store.getMany([address, 'bob@example.org'], 'tenant-other');
    dynamo.destroy();

    // Assess: each tenant's own entries, in one BatchGetItem each.
    expect(found.get(address)?.reason).toBe('manual');
    expect(found.has('bob@example.org')).toBe(false);
    expect(elsewhere.has(address)).toBe(false);
    expect(elsewhere.get('bob@example.org')?.reason).toBe('unsubscribe');
    expect(usage(recorder.calls())).toEqual([['dynamodb:BatchGetItem', stack.tables.suppressions]]);
    expect(recorder.calls().length).toBe(2);
  });
});

describe('the erasure paths’ calls, against their deployed roles', () => {
  it('lets the api role erase a recipient and hand the rest of the scan to the worker’s queue', async () => {
    // Prepare
    const { address, tenant } = fresh();
    const recorder = new IamRecorder();
    const dynamo = recorder.instrument(
      new DynamoDBClient({ endpoint: stack.dynamo.endpoint, region, credentials }),
    );
    const sqs = recorder.instrument(sqsClient(stack.sqsSns.endpoint));
    const doc = documentClient(dynamo);
    const clock = testClock(new Date().toISOString());
    const { key, token } = issueApiKey({ tenant });
    await new DynamoApiKeyStore(stack.clients.doc, stack.tables.apiKeys).put(key);
    await seedRecords(
      ['a', 'b', 'c'].map((s) =>
        messageRecord({ id: `msg_i${seq}${s}`, tenant, recipients: [recipient(address)] }),
      ),
    );
    const apiMessages = new DynamoMessageStore(doc, stack.tables.messages);
    const table = new DynamoSuppressionStore(doc, stack.tables.suppressions);
    let pages = 0;
    const api = createApi({
      keys: new DynamoApiKeyStore(doc, stack.tables.apiKeys),
      messages: apiMessages,
      suppressions: new TombstoneAwareSuppressions(table, keyOf),
      queue: new SqsJobQueue(sqs, {
        transactional: stack.queues.transactional.url,
        broadcast: stack.queues.broadcast.url,
      }),
      usage: new DynamoUsageStore(doc, stack.tables.stats),
      idempotency: new DynamoIdempotencyStore(doc, stack.tables.idempotency),
      rateLimiter: new RateLimiter(clock),
      clock,
      newId: () => `msg_never${seq}`,
      retentionDays: 30,
      held: new InMemoryHeldJobs(),
      guard: new RecordingGuard(),
      erasure: {
        messages: {
          get: (id) => apiMessages.get(id),
          update: (next, version) => apiMessages.update(next, version),
          // The first round of pages uses up the budget, so the rest is queued.
          scanTenant: (...args) => {
            pages += 1;
            if (pages === 1) clock.advance(60_000);
            return apiMessages.scanTenant(...args);
          },
        },
        suppressions: table,
        softBounces: new DynamoSoftBounceStore(doc, stack.tables.suppressions),
        queue: new SqsErasureQueue(sqs, erasureQueueUrl),
        keyOf,
        clock,
      },
    });
    await suppressions.put(suppression(address, 'complaint'));

    // Act
    const result = await api(
      httpEvent('DELETE /v1/recipients/{address}', { token, pathParameters: { address } }),
    );
    const worker = createErasureWorker({
      messages: new DynamoMessageStore(doc, stack.tables.messages),
      queue: new SqsErasureQueue(sqs, erasureQueueUrl),
      keyOf,
      clock: () => new Date(),
    });
    const apiCalls = recorder.calls();
    recorder.reset();
    const out = await stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: erasureQueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 0 }),
    );
    await worker(sqsRecord(out.Messages?.[0]?.Body ?? ''), Date.now() + 5_000);
    const workerCalls = recorder.calls();
    dynamo.destroy();
    sqs.destroy();

    // Assess
    expect(result.statusCode).toBe(202);
    expect((jsonOf(result) as { complete?: boolean }).complete).toBe(false);
    expect(new Set(usage(apiCalls).map(([action]) => action))).toEqual(
      new Set([
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:DeleteItem',
        'dynamodb:Scan',
        'sqs:SendMessage',
      ]),
    );
    expect(missingPermissions(apiCalls, policyOfEntry(template(), API_ENTRY))).toEqual([]);
    expect(usage(workerCalls).map(([action]) => action)).toContain('dynamodb:Scan');
    expect(missingPermissions(workerCalls, policyOfEntry(template(), WORKER_ENTRY))).toEqual([]);
  });
});
