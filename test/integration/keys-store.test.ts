import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { DynamoApiKeyStore } from '../../lambdas/adapters/api-key-store.ts';
import {
  type ApiKey,
  ApiKeyNotFoundError,
  ApiKeyRevokedError,
  hashToken,
  summarise,
} from '../../lambdas/domain/keys/api-key.ts';
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

    it('follows every Scan page and returns each key once, by tenant then id, without hashes', async () => {
      // Prepare
      const written = Array.from({ length: 25 }, (_, i) =>
        apiKey(`listkey${String(i).padStart(5, '0')}`, { tenant: i % 2 === 0 ? 'zeta' : 'alpha' }),
      );
      for (const key of written) await store.put(key);
      const send = vi.spyOn(stack.clients.doc, 'send');

      // Act
      const keys = await store.list({ pageSize: 4 });

      // Assess
      const expected = written
        .map(summarise)
        .sort((a, b) =>
          a.tenant === b.tenant ? a.keyId.localeCompare(b.keyId) : a.tenant.localeCompare(b.tenant),
        );
      expect(keys).toEqual(expected);
      expect(JSON.stringify(keys)).not.toContain('secretHash');
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
});
