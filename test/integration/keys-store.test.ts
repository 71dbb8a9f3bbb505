import { DeleteCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { DynamoApiKeyStore, RELAY_LOCK_ID } from '../../lambdas/adapters/api-key-store.ts';
import {
  type ApiKey,
  ApiKeyNotFoundError,
  ApiKeyRevokedError,
  hashToken,
  summarise,
} from '../../lambdas/domain/keys/api-key.ts';
import { ApiKeyLockedError, RelayNetworksOverlapError } from '../../lambdas/domain/keys/relay.ts';
import { ConflictError } from '../../lambdas/shared/errors.ts';
import type { ProvisionedStack } from '../support/emulators.ts';
import { failureOf } from '../support/failures.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

const apiKey = (keyId: string, overrides: Partial<ApiKey> = {}): ApiKey => ({
  keyId,
  secretHash: hashToken(`bt_${keyId}_${'s'.repeat(43)}`),
  tenant: 'acme',
  scopes: ['send', 'read'],
  allowedDomains: ['example.com'],
  allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'],
  senderPolicy: 'reject',
  status: 'active',
  createdAt: '2030-01-01T12:00:00.000Z',
  ...overrides,
});

const T1 = new Date('2030-02-01T00:00:00.000Z');

describe('DynamoApiKeyStore list and setStatus against dynalite (table provisioned from the template)', () => {
  let stack: ProvisionedStack;
  let store: DynamoApiKeyStore;

  withProvisionedStack((started) => {
    stack = started;
    store = new DynamoApiKeyStore(stack.clients.doc, stack.tables.apiKeys);
  });

  describe('list', () => {
    it('answers an empty list for an empty table', async () => {
      // Act
      const keys = await store.list();

      // Assess
      expect(keys).toEqual([]);
    });

    it('follows every Scan page and returns each key once, by tenant then id, whole (the SMTP relay matches on them)', async () => {
      // Prepare
      const written = Array.from({ length: 25 }, (_, i) =>
        apiKey(`listkey${String(i).padStart(5, '0')}`, { tenant: i % 2 === 0 ? 'zeta' : 'alpha' }),
      );
      for (const key of written) await store.put(key);
      const send = vi.spyOn(stack.clients.doc, 'send');

      // Act
      const keys = await store.list({ pageSize: 4 });

      // Assess
      const expected = [...written].sort((a, b) =>
        a.tenant === b.tenant ? a.keyId.localeCompare(b.keyId) : a.tenant.localeCompare(b.tenant),
      );
      expect(keys).toEqual(expected);
      // 25 items, 4 a page: six full pages and a last one with one item.
      const scans = send.mock.calls.filter(([command]) => command instanceof ScanCommand).length;
      send.mockRestore();
      expect(scans).toBe(7);
    });
  });

  describe('setStatus', () => {
    it('suspends a key, stamps updatedAt and reports the status it had', async () => {
      // Prepare
      const key = apiKey('suspend00001');
      await store.put(key);

      // Act
      const result = await store.setStatus('suspend00001', 'suspended', T1);

      // Assess
      const expected = { ...key, status: 'suspended' as const, updatedAt: T1.toISOString() };
      expect(result).toEqual({ previous: 'active', key: summarise(expected) });
      expect(await store.get('suspend00001')).toEqual(expected);
    });

    it('resumes a suspended key', async () => {
      // Prepare
      await store.put(apiKey('resume000001', { status: 'suspended' }));

      // Act
      const result = await store.setStatus('resume000001', 'active', T1);

      // Assess
      expect(result.previous).toBe('suspended');
      expect((await store.get('resume000001'))?.status).toBe('active');
    });

    it('refuses an unknown key and creates nothing', async () => {
      // Act
      const error = await failureOf(store.setStatus('missing00001', 'suspended', T1));

      // Assess
      expect(error).toBeInstanceOf(ApiKeyNotFoundError);
      expect(error.message).toBe('no API key has the id missing00001');
      expect(await store.get('missing00001')).toBeUndefined();
    });

    it.each(['active', 'suspended'] as const)(
      'keeps a revoked key revoked when asked to make it %s',
      async (status) => {
        // Prepare
        const key = apiKey(`revoked${status.slice(0, 5)}`, { status: 'revoked' });
        await store.put(key);

        // Act
        const error = await failureOf(store.setStatus(key.keyId, status, T1));

        // Assess
        expect(error).toBeInstanceOf(ApiKeyRevokedError);
        expect(error.message).toBe(
          `the API key ${key.keyId} is revoked, which is permanent; create a new key instead`,
        );
        expect(await store.get(key.keyId)).toEqual(key);
      },
    );

    it('revokes a key, and revoking it again changes nothing but updatedAt', async () => {
      // Prepare
      await store.put(apiKey('revoke000001'));
      await store.setStatus('revoke000001', 'revoked', T1);

      // Act
      const again = await store.setStatus('revoke000001', 'revoked', new Date('2030-03-01T00:00:00.000Z'));

      // Assess
      expect(again.previous).toBe('revoked');
      expect(await store.get('revoke000001')).toEqual(
        apiKey('revoke000001', { status: 'revoked', updatedAt: '2030-03-01T00:00:00.000Z' }),
      );
    });
  });

  describe('create', () => {
    const relay = (keyId: string, allowedCidrs: string[], overrides: Partial<ApiKey> = {}): ApiKey =>
      apiKey(keyId, { allowedCidrs, smtpWithoutAuth: true, scopes: ['send'], ...overrides });

    it('writes a new key, and keeps smtpWithoutAuth', async () => {
      // Prepare
      const key = relay('relay0000001', ['198.18.1.0/24']);

      // Act
      await store.create(key);

      // Assess
      expect(await store.get(key.keyId)).toEqual(key);
    });

    it('never replaces a key with the same id', async () => {
      // Prepare
      const first = apiKey('create000001');
      await store.create(first);

      // Act
      const error = await failureOf(store.create(apiKey('create000001', { tenant: 'other' })));

      // Assess
      expect(error).toBeInstanceOf(ConflictError);
      expect(error.message).toBe('an API key with the id create000001 exists already; nothing was written');
      expect(await store.get('create000001')).toEqual(first);
    });

    it('refuses a no-AUTH key whose networks overlap another non-revoked one, naming it, and writes nothing', async () => {
      // Prepare
      await store.create(relay('relay0000010', ['198.18.10.0/24', '2001:db8:10::/48'], { tenant: 'shop' }));
      await store.setStatus('relay0000010', 'suspended', T1);

      // Act
      const error = await failureOf(
        store.create(relay('relay0000011', ['::ffff:198.18.10.7', '198.18.11.0/24'])),
      );

      // Assess
      expect(error).toBeInstanceOf(RelayNetworksOverlapError);
      expect(error.message).toBe(
        'its SMTP networks without AUTH overlap those of key relay0000010 (tenant shop): ::ffff:198.18.10.7 with 198.18.10.0/24. ' +
          'A connection must map to at most one key: narrow --cidrs, or revoke the other key first.',
      );
      expect(await store.get('relay0000011')).toBeUndefined();
    });

    it('accepts the same networks once the other key is revoked, and for a key that needs AUTH', async () => {
      // Prepare
      await store.create(relay('relay0000020', ['198.18.20.0/24']));
      await store.create(apiKey('authkey00020', { allowedCidrs: ['198.18.20.0/24'] }));
      await store.setStatus('relay0000020', 'revoked', T1);

      // Act
      await store.create(relay('relay0000021', ['198.18.20.0/25']));

      // Assess
      expect((await store.get('relay0000021'))?.smtpWithoutAuth).toBe(true);
    });

    it('lets exactly one of several concurrent overlapping creations through (the relay lock)', async () => {
      // Prepare: separate stores, as separate operators' terminals would be
      const stores = Array.from(
        { length: 4 },
        () => new DynamoApiKeyStore(stack.clients.doc, stack.tables.apiKeys, { relayLock: { pollMs: 5 } }),
      );

      // Act
      const outcomes = await Promise.allSettled(
        stores.map((s, i) => s.create(relay(`race00000${i}`, ['198.18.30.0/24']))),
      );

      // Assess
      const created = outcomes.filter((o) => o.status === 'fulfilled').length;
      const refused = outcomes.filter(
        (o) => o.status === 'rejected' && o.reason instanceof RelayNetworksOverlapError,
      ).length;
      expect({ created, refused }).toEqual({ created: 1, refused: 3 });
      const keys = await store.list();
      expect(keys.filter((k) => k.keyId.startsWith('race')).length).toBe(1);
    });

    it('leaves no lock behind, and list never shows one', async () => {
      // Act
      await store.create(relay('relay0000040', ['198.18.40.0/24']));
      const items = await stack.clients.doc.send(new ScanCommand({ TableName: stack.tables.apiKeys }));

      // Assess
      expect(items.Items?.some((i) => i.keyId === RELAY_LOCK_ID)).toBe(false);
    });

    it('waits for a lock another creation holds, and takes over one whose holder died', async () => {
      // Prepare: a lock left by a creation that crashed, its lease running out in 300 ms
      await stack.clients.doc.send(
        new PutCommand({
          TableName: stack.tables.apiKeys,
          Item: { keyId: RELAY_LOCK_ID, lockOwner: 'crashed', lockUntil: Date.now() + 300 },
        }),
      );
      expect((await store.list()).some((k) => k.keyId === RELAY_LOCK_ID)).toBe(false);
      const patient = new DynamoApiKeyStore(stack.clients.doc, stack.tables.apiKeys, {
        relayLock: { pollMs: 20, waitMs: 5_000 },
      });
      const started = Date.now();

      // Act
      await patient.create(relay('relay0000050', ['198.18.50.0/24']));

      // Assess
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect((await store.get('relay0000050'))?.smtpWithoutAuth).toBe(true);
    });

    it('gives up in words when the lock stays held past its wait', async () => {
      // Prepare
      await stack.clients.doc.send(
        new PutCommand({
          TableName: stack.tables.apiKeys,
          Item: { keyId: RELAY_LOCK_ID, lockOwner: 'busy', lockUntil: Date.now() + 60_000 },
        }),
      );
      const impatient = new DynamoApiKeyStore(stack.clients.doc, stack.tables.apiKeys, {
        relayLock: { pollMs: 20, waitMs: 200 },
      });

      // Act
      const error = await failureOf(impatient.create(relay('relay0000060', ['198.18.60.0/24'])));

      // Assess
      expect(error).toBeInstanceOf(ApiKeyLockedError);
      expect(error.message).toMatch(
        /^another creation of an SMTP key without AUTH holds the lock on their networks until \d{4}-\d\d-\d\dT[0-9:.]+Z; try again then$/,
      );
      expect(await store.get('relay0000060')).toBeUndefined();
      await stack.clients.doc.send(
        new DeleteCommand({ TableName: stack.tables.apiKeys, Key: { keyId: RELAY_LOCK_ID } }),
      );
    });
  });
});
