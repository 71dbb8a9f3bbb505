import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ApiKey } from '../domain/api-key.ts';
import type { ApiKeyReader } from '../domain/ports.ts';
import { Keys } from '../shared/names.ts';
import { rethrow } from './aws-errors.ts';

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
}
