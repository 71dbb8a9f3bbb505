import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoApiKeyStore } from '../../lambdas/adapters/api-key-store.ts';
import { type ApiKey, generateApiKey, hashToken } from '../../lambdas/domain/keys/api-key.ts';
import { EnvVar } from '../../lambdas/shared/names.ts';
import { documentClient } from './emulators.ts';
import { apiSetting, localState, type TestBaton } from './local-baton.ts';

/**
 * Puts a new API key straight into a running local mode's ApiKeys table (found through the state
 * file local mode writes for the keys tool), for keys the development key cannot stand in for: a
 * daily quota, a request rate, another tenant. Returns the token to send as `Bearer <token>`.
 */
export async function seedApiKey(
  baton: TestBaton,
  overrides: Partial<Omit<ApiKey, 'keyId' | 'secretHash'>> = {},
): Promise<string> {
  const table = apiSetting(baton, EnvVar.apiKeysTable);
  const dynamo = new DynamoDBClient({
    endpoint: baton.endpoints.dynamodb,
    region: localState(baton).region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    const { keyId, token } = generateApiKey();
    await new DynamoApiKeyStore(documentClient(dynamo), table).put({
      keyId,
      secretHash: hashToken(token),
      tenant: 'e2e',
      scopes: ['send', 'read', 'suppressions'],
      allowedDomains: ['example.com'],
      allowedCidrs: [],
      senderPolicy: 'reject',
      status: 'active',
      createdAt: new Date().toISOString(),
      ...overrides,
    });
    return token;
  } finally {
    dynamo.destroy();
  }
}
