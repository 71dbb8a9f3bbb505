import {
  CreateTableCommand,
  GetItemCommand,
  type KeyType,
  type ScalarAttributeType,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoSuppressionStore } from '../../lambdas/adapters/suppression-store.ts';
import {
  SEVERITY,
  type Suppression,
  type SuppressionReason,
} from '../../lambdas/domain/suppression/suppression.ts';
import { InvalidCursorError } from '../../lambdas/shared/errors.ts';
import type { ProvisionedStack } from '../support/emulators.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

const CREATED_AT = '2030-01-01T12:00:00.000Z';

const suppression = (
  address: string,
  reason: SuppressionReason,
  overrides: Partial<Suppression> = {},
): Suppression => ({
  address,
  reason,
  detail: `${reason} detail`,
  source: 'msg_0001',
  createdAt: CREATED_AT,
  expiresAt: null,
  severity: SEVERITY[reason],
  ...overrides,
});

describe('DynamoSuppressionStore against dynalite (Suppressions table provisioned from the template)', () => {
  let stack: ProvisionedStack;
  let store: DynamoSuppressionStore;

  withProvisionedStack((started) => {
    stack = started;
    store = new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions);
  });

  describe('getMany', () => {
    it('returns exactly the suppressed ones of 250 addresses, across the 100-key BatchGetItem limit', async () => {
      // Prepare
      const addresses = Array.from(
        { length: 250 },
        (_, i) => `many-${String(i).padStart(3, '0')}@example.org`,
      );
      const suppressed = addresses.filter((_, i) => i % 7 === 0 || i === 99 || i === 100 || i === 249);
      for (let i = 0; i < suppressed.length; i += 25) {
        await stack.clients.doc.send(
          new BatchWriteCommand({
            RequestItems: {
              [stack.tables.suppressions]: suppressed.slice(i, i + 25).map((address) => ({
                PutRequest: { Item: { address, reason: 'hard_bounce', createdAt: CREATED_AT, severity: 3 } },
              })),
            },
          }),
        );
      }

      // Act
      const found = await store.getMany(addresses);

      // Assess
      expect([...found.keys()].sort()).toEqual([...suppressed].sort());
      expect(found.get('many-249@example.org')).toEqual({
        address: 'many-249@example.org',
        reason: 'hard_bounce',
        detail: null,
        source: null,
        createdAt: CREATED_AT,
        expiresAt: null,
        severity: 3,
      });
    });

    it('reads an address given twice once (BatchGetItem refuses duplicate keys)', async () => {
      // Prepare
      await store.put(suppression('twice@example.org', 'complaint'));

      // Act
      const found = await store.getMany(['twice@example.org', 'nobody@example.org', 'twice@example.org']);

      // Assess
      expect([...found.keys()]).toEqual(['twice@example.org']);
    });

    it('answers an empty map for no addresses without calling DynamoDB', async () => {
      // Act
      const found = await store.getMany([]);

      // Assess
      expect(found.size).toBe(0);
    });
  });

  describe('putIfStronger', () => {
    it('refuses a weaker suppression after a stronger one and leaves the stronger unchanged', async () => {
      // Prepare
      const complaint = suppression('weaker-after@example.org', 'complaint');
      await store.putIfStronger(complaint);

      // Act
      const wrote = await store.putIfStronger(
        suppression('weaker-after@example.org', 'soft_bounce', { expiresAt: '2030-01-08T12:00:00.000Z' }),
      );

      // Assess
      expect(wrote).toBe(false);
      expect(await store.get('weaker-after@example.org')).toEqual(complaint);
    });

    it('replaces a weaker suppression with a stronger one', async () => {
      // Prepare
      await store.putIfStronger(
        suppression('stronger-after@example.org', 'soft_bounce', { expiresAt: '2030-01-08T12:00:00.000Z' }),
      );
      const hard = suppression('stronger-after@example.org', 'hard_bounce', { source: 'msg_0002' });

      // Act
      const wrote = await store.putIfStronger(hard);

      // Assess
      expect(wrote).toBe(true);
      expect(await store.get('stronger-after@example.org')).toEqual(hard);
    });

    it('writes the first suppression of an address and refuses the same one a second time', async () => {
      // Prepare
      const hard = suppression('same-twice@example.org', 'hard_bounce');

      // Act
      const first = await store.putIfStronger(hard);
      const second = await store.putIfStronger({ ...hard, detail: 'the same bounce, redelivered' });

      // Assess
      expect([first, second]).toEqual([true, false]);
      expect(await store.get('same-twice@example.org')).toEqual(hard);
    });
  });

  describe('expiresAt', () => {
    it('stores expiresAt as epoch seconds (the TTL attribute) and reads it back as the same ISO time', async () => {
      // Prepare
      const soft = suppression('expiring@example.org', 'soft_bounce', {
        expiresAt: '2030-01-08T12:00:00.000Z',
        evidence: { bounceType: 'Transient', bounceSubType: 'MailboxFull' },
      });

      // Act
      await store.put(soft);

      // Assess
      const raw = await stack.clients.dynamo.send(
        new GetItemCommand({
          TableName: stack.tables.suppressions,
          Key: { address: { S: 'expiring@example.org' } },
        }),
      );
      expect(raw.Item?.expiresAt).toEqual({ N: String(Date.parse('2030-01-08T12:00:00.000Z') / 1000) });
      expect(raw.Item?.expiresAt).toEqual({ N: '1894104000' });
      expect(await store.get('expiring@example.org')).toEqual(soft);
    });

    it('writes no TTL attribute for a permanent suppression', async () => {
      // Prepare
      const permanent = suppression('permanent@example.org', 'manual', { source: 'api' });

      // Act
      await store.put(permanent);

      // Assess
      const raw = await stack.clients.dynamo.send(
        new GetItemCommand({
          TableName: stack.tables.suppressions,
          Key: { address: { S: 'permanent@example.org' } },
        }),
      );
      expect(raw.Item && 'expiresAt' in raw.Item).toBe(false);
      expect(await store.get('permanent@example.org')).toEqual(permanent);
    });
  });

  describe('putIfStronger and expiry', () => {
    it('replaces an expired suppression DynamoDB has not swept yet, even by an equal one', async () => {
      // Prepare: a soft bounce that expired a day before the new evidence
      const expired = suppression('stale-soft@example.org', 'soft_bounce', {
        createdAt: '2029-12-01T12:00:00.000Z',
        expiresAt: '2029-12-31T12:00:00.000Z',
      });
      await store.put(expired);
      const fresh = suppression('stale-soft@example.org', 'soft_bounce', {
        source: 'msg_fresh',
        expiresAt: '2030-01-15T12:00:00.000Z',
      });

      // Act
      const written = await store.putIfStronger(fresh);

      // Assess
      expect(written).toBe(true);
      expect(await store.get('stale-soft@example.org')).toEqual(fresh);
    });

    it('keeps an active suppression of equal severity', async () => {
      // Prepare
      const active = suppression('live-soft@example.org', 'soft_bounce', {
        expiresAt: '2030-01-10T12:00:00.000Z',
      });
      await store.put(active);

      // Act
      const written = await store.putIfStronger(
        suppression('live-soft@example.org', 'soft_bounce', { source: 'msg_x' }),
      );

      // Assess
      expect(written).toBe(false);
      expect(await store.get('live-soft@example.org')).toEqual(active);
    });
  });

  describe('list', () => {
    it('walks every item exactly once page by page with limit and cursor', async () => {
      // Prepare: a table of its own with the template's key schema, so other tests' items do not count
      const table = stack.plan.tables.find((t) => t.logicalId === stack.tables.suppressions);
      await stack.clients.dynamo.send(
        new CreateTableCommand({
          TableName: 'SuppressionsForListing',
          BillingMode: 'PAY_PER_REQUEST',
          KeySchema: table?.keySchema.map((k) => ({
            AttributeName: k.AttributeName,
            KeyType: k.KeyType as KeyType,
          })),
          AttributeDefinitions: table?.attributeDefinitions.map((a) => ({
            AttributeName: a.AttributeName,
            AttributeType: a.AttributeType as ScalarAttributeType,
          })),
        }),
      );
      // dynalite answers CREATING; under load the table may take a moment to be ACTIVE.
      await waitUntilTableExists(
        { client: stack.clients.dynamo, maxWaitTime: 10, minDelay: 1, maxDelay: 1 },
        { TableName: 'SuppressionsForListing' },
      );
      const listed = new DynamoSuppressionStore(stack.clients.doc, 'SuppressionsForListing');
      const addresses = Array.from(
        { length: 23 },
        (_, i) => `list-${String(i).padStart(2, '0')}@example.org`,
      );
      for (const address of addresses) await listed.put(suppression(address, 'unsubscribe'));

      // Act
      const pages: Suppression[][] = [];
      let cursor: string | undefined;
      do {
        const page = await listed.list(5, cursor);
        pages.push(page.items);
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined && pages.length < 20);

      // Assess
      const seen = pages.flat().map((s) => s.address);
      expect(seen.toSorted()).toEqual(addresses);
      expect(new Set(seen).size).toBe(23);
      expect(pages.slice(0, 4).map((page) => page.length)).toEqual([5, 5, 5, 5]);
      expect(pages.flat().every((s) => s.reason === 'unsubscribe')).toBe(true);
    });
  });

  describe('scopes', () => {
    it('keeps a tenant’s entries to that tenant and answers every tenant with the global ones', async () => {
      // Prepare
      await store.put(suppression('scoped-1@example.org', 'unsubscribe', { tenant: 'tenant-a' }));
      await store.put(suppression('scoped-2@example.org', 'hard_bounce'));

      // Act
      const a = await store.getMany(['scoped-1@example.org', 'scoped-2@example.org'], 'tenant-a');
      const b = await store.getMany(['scoped-1@example.org', 'scoped-2@example.org'], 'tenant-b');
      const global = await store.getMany(['scoped-1@example.org', 'scoped-2@example.org']);

      // Assess
      expect([...a.keys()].sort()).toEqual(['scoped-1@example.org', 'scoped-2@example.org']);
      expect(a.get('scoped-1@example.org')?.tenant).toBe('tenant-a');
      expect([...b.keys()]).toEqual(['scoped-2@example.org']);
      expect([...global.keys()]).toEqual(['scoped-2@example.org']);
      expect(await store.get('scoped-1@example.org', 'tenant-b')).toBeUndefined();
      expect((await store.get('scoped-1@example.org', 'tenant-a'))?.reason).toBe('unsubscribe');
    });

    it('answers the stronger of the global and the tenant’s entry, and deletes only in the scope asked', async () => {
      // Prepare
      await store.put(suppression('scoped-3@example.org', 'manual', { tenant: 'tenant-a' }));
      await store.put(suppression('scoped-3@example.org', 'complaint'));

      // Act / Assess
      expect((await store.get('scoped-3@example.org', 'tenant-a'))?.reason).toBe('complaint');
      await store.delete('scoped-3@example.org', 'tenant-a');
      expect((await store.get('scoped-3@example.org', 'tenant-a'))?.tenant).toBeUndefined();
      await store.delete('scoped-3@example.org', 'tenant-b');
      expect((await store.get('scoped-3@example.org'))?.reason).toBe('complaint');
    });

    it('lists the global entries and the tenant’s own, never another tenant’s, and refuses a forged cursor', async () => {
      // Prepare
      await store.put(suppression('scoped-4@example.org', 'manual', { tenant: 'tenant-x' }));
      await store.put(suppression('scoped-5@example.org', 'manual', { tenant: 'tenant-y' }));

      // Act: pages of one item, so pages end on the other tenant's item too.
      const seen: Suppression[] = [];
      const cursors: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list(1, cursor, 'tenant-x');
        seen.push(...page.items);
        cursor = page.nextCursor ?? undefined;
        if (cursor) cursors.push(cursor);
      } while (cursor !== undefined);

      // Assess
      expect(seen.map((s) => s.address)).toContain('scoped-4@example.org');
      expect(seen.map((s) => s.address)).not.toContain('scoped-5@example.org');
      expect(seen.every((s) => s.tenant === undefined || s.tenant === 'tenant-x')).toBe(true);
      const decoded = cursors.map((c) => Buffer.from(c, 'base64url').toString('latin1')).join('\n');
      expect(decoded).not.toContain('tenant-y');
      const forged = Buffer.from('tenant:tenant-y:scoped-5@example.org', 'utf8').toString('base64url');
      await expect(store.list(1, forged, 'tenant-x')).rejects.toThrow(InvalidCursorError);
    });
  });

  describe('list cursors', () => {
    it('all have one length, so a page ending on another tenant’s entry does not tell how long its key is', async () => {
      // Prepare: the other tenant's entries have keys of very different lengths.
      const sealed = new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions, 'c'.repeat(40));
      await sealed.put(suppression('a@b.io', 'manual', { tenant: 'cursor-victim' }));
      await sealed.put(
        suppression(`${'long-secret-local-part'.repeat(2)}@customer-of-the-victim.example.org`, 'manual', {
          tenant: 'cursor-victim',
        }),
      );

      // Act: pages of one item, so some pages end on the victim's entries.
      const lengths = new Set<number>();
      let cursor: string | undefined;
      do {
        const page = await sealed.list(1, cursor, 'cursor-attacker');
        cursor = page.nextCursor ?? undefined;
        if (cursor) lengths.add(cursor.length);
      } while (cursor !== undefined);

      // Assess
      expect(lengths.size).toBe(1);
    });

    it('refuses a cursor handed to one tenant when another tenant presents it', async () => {
      // Prepare
      const sealed = new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions, 'c'.repeat(40));
      await sealed.put(suppression('replayed-1@example.org', 'manual', { tenant: 'cursor-owner' }));
      await sealed.put(suppression('replayed-2@example.org', 'manual', { tenant: 'cursor-owner' }));
      const { nextCursor } = await sealed.list(1, undefined, 'cursor-owner');

      // Act and assess
      expect(nextCursor).not.toBeNull();
      await expect(sealed.list(1, nextCursor ?? undefined, 'cursor-other')).rejects.toThrow(
        InvalidCursorError,
      );
      await expect(sealed.list(1, nextCursor ?? undefined)).rejects.toThrow(InvalidCursorError);
      await expect(sealed.list(1, nextCursor ?? undefined, 'cursor-owner')).resolves.toBeDefined();
    });
  });

  describe('delete', () => {
    it('removes the suppression so that get and getMany no longer find it', async () => {
      // Prepare
      await store.put(suppression('deleted@example.org', 'manual', { source: 'api' }));

      // Act
      await store.delete('deleted@example.org');

      // Assess
      expect(await store.get('deleted@example.org')).toBeUndefined();
      expect((await store.getMany(['deleted@example.org'])).size).toBe(0);
    });

    it('lets any suppression be written again after a delete', async () => {
      // Prepare
      await store.put(suppression('again@example.org', 'complaint'));
      await store.delete('again@example.org');

      // Act
      const wrote = await store.putIfStronger(suppression('again@example.org', 'soft_bounce'));

      // Assess
      expect(wrote).toBe(true);
    });

    it('succeeds for an address that was never suppressed', async () => {
      // Act
      const outcome = store.delete('never@example.org');

      // Assess
      await expect(outcome).resolves.toBeUndefined();
    });
  });
});
