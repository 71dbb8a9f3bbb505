import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  type ApiKey,
  ApiKeyNotFoundError,
  ApiKeyRevokedError,
  type ApiKeySummary,
  type KeyStatus,
  summarise,
} from '../domain/keys/api-key.ts';
import type { ApiKeyReader } from '../domain/ports.ts';
import { Keys } from '../shared/names.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';

/** The ApiKeys table. Items hold the SHA-256 of the key, never the key. */
export class DynamoApiKeyStore implements ApiKeyReader {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.#doc = doc;
    this.#table = table;
  }

  async get(keyId: string): Promise<ApiKey | undefined> {
    try {
      const out = await this.#doc.send(
        new GetCommand({ TableName: this.#table, Key: { [Keys.apiKeys.partition]: keyId } }),
      );
      return out.Item as ApiKey | undefined;
    } catch (error) {
      rethrow(error, 'reading the API key');
    }
  }

  async put(key: ApiKey): Promise<void> {
    try {
      await this.#doc.send(new PutCommand({ TableName: this.#table, Item: key }));
    } catch (error) {
      rethrow(error, 'writing the API key');
    }
  }

  /**
   * Every key, without its hash, ordered by tenant then key id. A Scan that follows every page:
   * the table holds one small item per key, so this is an operator's command, never a request path.
   * `pageSize` caps the items per Scan request (DynamoDB's own cap is 1 MB per page).
   */
  async list(options: { readonly pageSize?: number } = {}): Promise<ApiKeySummary[]> {
    const keys: ApiKeySummary[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      try {
        const out = await this.#doc.send(
          new ScanCommand({
            TableName: this.#table,
            ...(options.pageSize ? { Limit: options.pageSize } : {}),
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        for (const item of out.Items ?? []) keys.push(summarise(item as ApiKey));
        start = out.LastEvaluatedKey;
      } catch (error) {
        rethrow(error, 'listing the API keys');
      }
    } while (start);
    return keys.sort((a, b) =>
      a.tenant === b.tenant ? a.keyId.localeCompare(b.keyId) : a.tenant.localeCompare(b.tenant),
    );
  }

  /**
   * Sets a key's status in one conditional write: the key must exist, and a revoked key stays
   * revoked (revoking again is allowed and changes nothing but `updatedAt`). Throws
   * ApiKeyNotFoundError or ApiKeyRevokedError; returns the status it had and the key as it is now.
   */
  async setStatus(
    keyId: string,
    status: KeyStatus,
    now: Date = new Date(),
  ): Promise<{ previous: KeyStatus; key: ApiKeySummary }> {
    const condition =
      status === 'revoked' ? 'attribute_exists(#id)' : 'attribute_exists(#id) AND #status <> :revoked';
    try {
      const out = await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.apiKeys.partition]: keyId },
          UpdateExpression: 'SET #status = :status, #updatedAt = :now',
          ConditionExpression: condition,
          ExpressionAttributeNames: {
            '#id': Keys.apiKeys.partition,
            '#status': 'status',
            '#updatedAt': 'updatedAt',
          },
          ExpressionAttributeValues: {
            ':status': status,
            ':now': now.toISOString(),
            ...(status === 'revoked' ? {} : { ':revoked': 'revoked' }),
          },
          ReturnValues: 'ALL_OLD',
        }),
      );
      const before = out.Attributes as ApiKey;
      return {
        previous: before.status,
        key: summarise({ ...before, status, updatedAt: now.toISOString() }),
      };
    } catch (error) {
      if (!isConditionFailed(error)) rethrow(error, 'updating the API key');
      // Which condition failed: the key is gone, or it is revoked. A second read tells them apart.
      const current = await this.get(keyId);
      if (current === undefined) throw new ApiKeyNotFoundError(keyId, { cause: error });
      throw new ApiKeyRevokedError(keyId, { cause: error });
    }
  }
}
