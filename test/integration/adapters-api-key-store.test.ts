import { describe, expect, it } from 'vitest';
import { DynamoApiKeyStore } from '../../lambdas/adapters/api-key-store.ts';
import { type ApiKey, hashToken } from '../../lambdas/domain/keys/api-key.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

const apiKey = (keyId: string, overrides: Partial<ApiKey> = {}): ApiKey => ({
  keyId,
  secretHash: hashToken(`bt_${keyId}_${'s'.repeat(43)}`),
  tenant: 'acme',
  name: 'checkout service',
  scopes: ['send', 'read'],
  allowedDomains: ['example.com'],
  allowedCidrs: ['203.0.113.0/24'],
  senderPolicy: 'rewrite',
  defaultFrom: 'relay@example.com',
  status: 'active',
  createdAt: '2030-01-01T12:00:00.000Z',
  ...overrides,
});

describe('DynamoApiKeyStore against dynalite (ApiKeys table provisioned from the template)', () => {
  let store: DynamoApiKeyStore;

  withProvisionedStack((stack) => {
    store = new DynamoApiKeyStore(stack.clients.doc, stack.tables.apiKeys);
  });

  it('reads back exactly the key it wrote, with its scopes, domains and CIDRs', async () => {
    // Prepare
    const key = apiKey('abcd1234efgh');

    // Act
    await store.put(key);

    // Assess
    expect(await store.get('abcd1234efgh')).toEqual(key);
  });

  it('replaces a key written again under the same id (suspending it)', async () => {
    // Prepare
    await store.put(apiKey('suspendme0001'));
    const suspended = apiKey('suspendme0001', { status: 'suspended', allowedCidrs: [] });

    // Act
    await store.put(suspended);

    // Assess
    expect(await store.get('suspendme0001')).toEqual(suspended);
  });

  it('answers undefined for a key id that was never stored', async () => {
    // Act
    const found = await store.get('unknown00000');

    // Assess
    expect(found).toBeUndefined();
  });

  it('reads back a key that relays over SMTP without AUTH', async () => {
    // Prepare
    const key = apiKey('smtprelay001', { smtpWithoutAuth: true, allowedCidrs: ['10.20.0.0/16'] });

    // Act
    await store.put(key);

    // Assess
    expect((await store.get('smtprelay001'))?.smtpWithoutAuth).toBe(true);
    expect(await store.get('smtprelay001')).toEqual(key);
  });
});
