import '../support/quiet-powertools.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoUsageStore } from '../../lambdas/adapters/usage-store.ts';
import {
  credentials,
  documentClient,
  type ProvisionedStack,
  region,
  statsItem,
} from '../support/emulators.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

describe('DynamoUsageStore against dynalite (Stats table provisioned from the template)', () => {
  let stack: ProvisionedStack;
  let store: DynamoUsageStore;

  withProvisionedStack((started) => {
    stack = started;
    store = new DynamoUsageStore(stack.clients.doc, stack.tables.stats);
  });

  describe('consumeQuota', () => {
    it('counts the first messages of the day in a quota item named after the key and the day', async () => {
      // Act
      const ok = await store.consumeQuota('key-first', '2025-03-01', 2, 5);

      // Assess
      expect(ok).toBe(true);
      expect(await statsItem(stack, 'quota#key-first#2025-03-01')).toEqual({
        pk: 'quota#key-first#2025-03-01',
        keyId: 'key-first',
        day: '2025-03-01',
        used: 2,
      });
      expect(await store.quotaUsed('key-first', '2025-03-01')).toBe(2);
    });

    it('admits up to exactly the quota and refuses the message after it, changing nothing', async () => {
      // Prepare
      await store.consumeQuota('key-exact', '2025-03-01', 2, 3);

      // Act
      const last = await store.consumeQuota('key-exact', '2025-03-01', 1, 3);
      const over = await store.consumeQuota('key-exact', '2025-03-01', 1, 3);

      // Assess
      expect([last, over]).toEqual([true, false]);
      expect(await store.quotaUsed('key-exact', '2025-03-01')).toBe(3);
    });

    it('refuses a count that does not fit whole, instead of admitting part of it', async () => {
      // Prepare
      await store.consumeQuota('key-part', '2025-03-01', 8, 10);

      // Act
      const ok = await store.consumeQuota('key-part', '2025-03-01', 3, 10);

      // Assess
      expect(ok).toBe(false);
      expect(await store.quotaUsed('key-part', '2025-03-01')).toBe(8);
    });

    it('refuses a count larger than the whole quota without writing', async () => {
      // Act
      const ok = await store.consumeQuota('key-huge', '2025-03-01', 11, 10);

      // Assess
      expect(ok).toBe(false);
      expect(await statsItem(stack, 'quota#key-huge#2025-03-01')).toBeUndefined();
    });

    it('admits exactly the quota out of 20 concurrent single messages', async () => {
      // Act
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, () => store.consumeQuota('key-race', '2025-03-01', 1, 7)),
      );

      // Assess
      expect(outcomes.filter(Boolean)).toHaveLength(7);
      expect(await store.quotaUsed('key-race', '2025-03-01')).toBe(7);
    });

    it('never overshoots with 20 concurrent counts of 3 against a quota of 10', async () => {
      // Act
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, () => store.consumeQuota('key-race3', '2025-03-01', 3, 10)),
      );

      // Assess
      expect(outcomes.filter(Boolean)).toHaveLength(3);
      expect(await store.quotaUsed('key-race3', '2025-03-01')).toBe(9);
    });

    it('keeps keys and days apart', async () => {
      // Prepare
      await store.consumeQuota('key-a', '2025-03-01', 1, 1);

      // Act
      const otherKey = await store.consumeQuota('key-b', '2025-03-01', 1, 1);
      const otherDay = await store.consumeQuota('key-a', '2025-03-02', 1, 1);
      const sameKeyAndDay = await store.consumeQuota('key-a', '2025-03-01', 1, 1);

      // Assess
      expect([otherKey, otherDay, sameKeyAndDay]).toEqual([true, true, false]);
    });
  });

  describe('refundQuota', () => {
    it('gives back what consumeQuota took, so the freed quota admits again', async () => {
      // Prepare
      await store.consumeQuota('key-refund', '2025-03-01', 3, 3);

      // Act
      await store.refundQuota('key-refund', '2025-03-01', 2);
      const readmitted = await store.consumeQuota('key-refund', '2025-03-01', 2, 3);
      const over = await store.consumeQuota('key-refund', '2025-03-01', 1, 3);

      // Assess
      expect([readmitted, over]).toEqual([true, false]);
      expect(await store.quotaUsed('key-refund', '2025-03-01')).toBe(3);
    });

    it('never takes the usage below zero when a give-back comes twice (a retried write)', async () => {
      // Prepare
      await store.consumeQuota('key-twice', '2025-03-01', 1, 2);
      await store.refundQuota('key-twice', '2025-03-01', 1);

      // Act
      await store.refundQuota('key-twice', '2025-03-01', 1);
      const admitted = await Promise.all(
        [1, 2, 3].map(() => store.consumeQuota('key-twice', '2025-03-01', 1, 2)),
      );

      // Assess
      expect(admitted.filter(Boolean)).toHaveLength(2);
      expect(await store.quotaUsed('key-twice', '2025-03-01')).toBe(2);
    });

    // Regression: the give-back's only guard was "not below zero". A key that had sent 1 of a
    // quota of 2 and had a second message fail got 2 back when the SDK retried the give-back
    // whose answer was lost (used 2 -> 0), and then sent 2 more: 3 of a quota of 2.
    it('gives back once when the SDK retries a give-back whose write landed but whose answer was lost', async () => {
      // Prepare: a client whose first UpdateItem lands and then loses its answer, as a timeout
      // does; the SDK's retry sends the same request again.
      const dynamo = new DynamoDBClient({ endpoint: stack.dynamo.endpoint, region, credentials });
      let lost = false;
      dynamo.middlewareStack.add(
        (next) => async (args) => {
          const out = await next(args);
          if (!lost) {
            lost = true;
            throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError', $retryable: {} });
          }
          return out;
        },
        { step: 'deserialize', name: 'loseFirstAnswer' },
      );
      const flaky = new DynamoUsageStore(documentClient(dynamo), stack.tables.stats);
      await store.consumeQuota('key-retried', '2025-03-01', 2, 2);

      // Act
      await flaky.refundQuota('key-retried', '2025-03-01', 1);
      const admitted = await Promise.all(
        [1, 2, 3].map(() => store.consumeQuota('key-retried', '2025-03-01', 1, 2)),
      );

      // Assess
      expect(lost).toBe(true);
      expect(admitted.filter(Boolean)).toHaveLength(1);
      expect(await store.quotaUsed('key-retried', '2025-03-01')).toBe(2);
      dynamo.destroy();
    });

    it('creates no item for a key and day that used nothing (no negative usage to spend later)', async () => {
      // Act
      await store.refundQuota('key-never', '2025-03-01', 1);

      // Assess
      expect(await statsItem(stack, 'quota#key-never#2025-03-01')).toBeUndefined();
    });

    it('never throws, even when the table is missing (a batch gives back after others were queued)', async () => {
      // Prepare
      const broken = new DynamoUsageStore(stack.clients.doc, 'no-such-table');

      // Act
      const outcome = broken.refundQuota('key-refund', '2025-03-01', 1);

      // Assess
      await expect(outcome).resolves.toBeUndefined();
    });
  });

  describe('quotaUsed', () => {
    it('answers 0 for a key that sent nothing that day', async () => {
      // Act
      const used = await store.quotaUsed('key-idle', '2025-03-01');

      // Assess
      expect(used).toBe(0);
    });
  });

  describe('addStats', () => {
    it('adds to the tenant’s counters for the day with atomic ADD', async () => {
      // Prepare
      await store.addStats('acme', '2025-03-01', { accepted: 1, rejected: 2 });

      // Act
      await store.addStats('acme', '2025-03-01', { accepted: 3, suppressed: 1 });

      // Assess
      expect(await statsItem(stack, 'acme#2025-03-01')).toEqual({
        pk: 'acme#2025-03-01',
        tenant: 'acme',
        day: '2025-03-01',
        accepted: 4,
        rejected: 2,
        suppressed: 1,
      });
    });

    it('loses no increment among 20 concurrent updates', async () => {
      // Act
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.addStats('busy', '2025-03-01', i % 2 === 0 ? { accepted: 1 } : { accepted: 2, rejected: 1 }),
        ),
      );

      // Assess
      expect(await statsItem(stack, 'busy#2025-03-01')).toMatchObject({ accepted: 30, rejected: 10 });
    });

    it('keeps two tenants, and two days of one tenant, apart', async () => {
      // Act
      await store.addStats('tenant-x', '2025-03-01', { accepted: 1 });
      await store.addStats('tenant-y', '2025-03-01', { accepted: 5 });
      await store.addStats('tenant-x', '2025-03-02', { accepted: 7 });

      // Assess
      expect(await statsItem(stack, 'tenant-x#2025-03-01')).toMatchObject({
        tenant: 'tenant-x',
        accepted: 1,
      });
      expect(await statsItem(stack, 'tenant-y#2025-03-01')).toMatchObject({
        tenant: 'tenant-y',
        accepted: 5,
      });
      expect(await statsItem(stack, 'tenant-x#2025-03-02')).toMatchObject({
        tenant: 'tenant-x',
        day: '2025-03-02',
        accepted: 7,
      });
    });

    it('writes nothing for counts that are all zero or absent', async () => {
      // Act
      await store.addStats('quiet', '2025-03-01', {});
      await store.addStats('quiet', '2025-03-01', { accepted: 0 });

      // Assess
      expect(await statsItem(stack, 'quiet#2025-03-01')).toBeUndefined();
    });

    it('never throws, even when the table is missing (statistics must not undo an accepted message)', async () => {
      // Prepare
      const broken = new DynamoUsageStore(stack.clients.doc, 'no-such-table');

      // Act
      const outcome = broken.addStats('acme', '2025-03-01', { accepted: 1 });

      // Assess
      await expect(outcome).resolves.toBeUndefined();
    });

    it('does not touch the key quota items', async () => {
      // Prepare
      await store.consumeQuota('key-stats', '2025-03-01', 2, 10);

      // Act
      await store.addStats('key-stats', '2025-03-01', { accepted: 1 });

      // Assess
      expect(await store.quotaUsed('key-stats', '2025-03-01')).toBe(2);
    });
  });
});
