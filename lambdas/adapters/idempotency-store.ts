import { gunzipSync, gzipSync } from 'node:zlib';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { IdempotencyRecord, IdempotencyStore } from '../domain/ports.ts';
import { Keys } from '../shared/names.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';

interface Item {
  readonly pk: string;
  readonly bodyHash: string;
  readonly state: IdempotencyRecord['state'];
  readonly lockUntil: number;
  readonly expiresAt: number;
  /**
   * The stored response: gzip-compressed JSON, so a 207 of 100 messages stays well inside
   * DynamoDB's 400 KB item limit (JSON text keeps empty strings and nulls verbatim).
   */
  readonly response?: Uint8Array;
}

/** Idempotency-Key records in the Idempotency table; DynamoDB TTL removes them after 24 h. */
export class DynamoIdempotencyStore implements IdempotencyStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.#doc = doc;
    this.#table = table;
  }

  async begin(record: IdempotencyRecord, nowSeconds: number): Promise<boolean> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: { ...record, response: undefined },
          // TTL deletion can lag by a day or two, so an expired record counts as absent.
          ConditionExpression: 'attribute_not_exists(#pk) OR #ttl < :now',
          ExpressionAttributeNames: { '#pk': Keys.idempotency.partition, '#ttl': Keys.idempotency.ttl },
          ExpressionAttributeValues: { ':now': nowSeconds },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      rethrow(error, 'recording the idempotency key');
    }
  }

  async get(pk: string): Promise<IdempotencyRecord | undefined> {
    try {
      const out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { [Keys.idempotency.partition]: pk },
          ConsistentRead: true,
        }),
      );
      const item = out.Item as Item | undefined;
      if (!item) return undefined;
      const { response, ...rest } = item;
      return response ? { ...rest, response: JSON.parse(gunzipSync(response).toString('utf8')) } : rest;
    } catch (error) {
      rethrow(error, 'reading the idempotency key');
    }
  }

  async takeOver(pk: string, expiredLock: number, lockUntil: number, owner: string): Promise<boolean> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.idempotency.partition]: pk },
          UpdateExpression: 'SET lockUntil = :next, #owner = :owner',
          ConditionExpression: '#state = :progress AND lockUntil = :expired',
          ExpressionAttributeNames: { '#state': 'state', '#owner': 'owner' },
          ExpressionAttributeValues: {
            ':next': lockUntil,
            ':owner': owner,
            ':progress': 'in_progress',
            ':expired': expiredLock,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      rethrow(error, 'taking over the idempotency key');
    }
  }

  async complete(pk: string, response: { status: number; body: unknown }, partial = false): Promise<void> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.idempotency.partition]: pk },
          UpdateExpression: 'SET #state = :done, #response = :response',
          // A holder that finishes after its key was released must not recreate it as an item
          // without a body hash or expiry, which would block the key for good.
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: {
            '#state': 'state',
            '#response': 'response',
            '#pk': Keys.idempotency.partition,
          },
          ExpressionAttributeValues: {
            ':done': partial ? 'partial' : 'done',
            ':response': gzipSync(Buffer.from(JSON.stringify(response), 'utf8')),
          },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) return;
      rethrow(error, 'storing the idempotent response');
    }
  }

  async resume(pk: string, expectedOwner: string, lockUntil: number, owner: string): Promise<boolean> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.idempotency.partition]: pk },
          UpdateExpression: 'SET #state = :progress, lockUntil = :until, #owner = :owner',
          // The owner is the record's version: a repeat that read it before another resumed (and
          // perhaps finished) it must not run the same parts again from its stale copy.
          ConditionExpression: '#state = :partial AND #owner = :expected',
          ExpressionAttributeNames: { '#state': 'state', '#owner': 'owner' },
          ExpressionAttributeValues: {
            ':progress': 'in_progress',
            ':partial': 'partial',
            ':until': lockUntil,
            ':owner': owner,
            ':expected': expectedOwner,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      rethrow(error, 'resuming the idempotency key');
    }
  }

  async release(pk: string): Promise<void> {
    try {
      await this.#doc.send(
        new DeleteCommand({ TableName: this.#table, Key: { [Keys.idempotency.partition]: pk } }),
      );
    } catch (error) {
      rethrow(error, 'releasing the idempotency key');
    }
  }
}
