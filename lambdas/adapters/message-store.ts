import { randomUUID } from 'node:crypto';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type MessageRecord, waitsForClaim } from '../domain/message.ts';
import type { ClaimResult, MessagePage, MessageScanner, MessageStore } from '../domain/ports.ts';
import { ConflictError, InvalidCursorError } from '../shared/errors.ts';
import { Keys } from '../shared/names.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';
import { batchPutAll } from './dynamo-batch.ts';

/** A scan position is the last message id of a page; ids are short and never contain control characters. */
const SCAN_POSITION = /^[\x21-\x7e]{1,1024}$/;

/** The Messages table. Items are whole MessageRecords (kept small: no bodies). */
export class DynamoMessageStore implements MessageStore, MessageScanner {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.#doc = doc;
    this.#table = table;
  }

  async create(record: MessageRecord): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: record,
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': Keys.messages.partition },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) throw new ConflictError(`message ${record.id} exists already`);
      rethrow(error, 'recording the message');
    }
  }

  async createMany(records: readonly MessageRecord[]): Promise<void> {
    // BatchWriteItem has no conditions: the ids are fresh UUIDs, so there is nothing to overwrite.
    await batchPutAll(this.#doc, this.#table, records, 'recording the messages');
  }

  async get(id: string, options: { readonly consistent?: boolean } = {}): Promise<MessageRecord | undefined> {
    try {
      const out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { [Keys.messages.partition]: id },
          ConsistentRead: options.consistent ?? true,
        }),
      );
      return out.Item as MessageRecord | undefined;
    } catch (error) {
      rethrow(error, 'reading the message');
    }
  }

  async findBySesMessageId(sesMessageId: string): Promise<MessageRecord | undefined> {
    try {
      const out = await this.#doc.send(
        new QueryCommand({
          TableName: this.#table,
          IndexName: Keys.messages.sesMessageIdIndex,
          KeyConditionExpression: '#ses = :ses',
          ExpressionAttributeNames: { '#ses': Keys.messages.sesMessageId },
          ExpressionAttributeValues: { ':ses': sesMessageId },
          Limit: 1,
        }),
      );
      const id = out.Items?.[0]?.[Keys.messages.partition];
      return typeof id === 'string' ? this.get(id) : undefined;
    } catch (error) {
      rethrow(error, 'finding the message by SES id');
    }
  }

  async claim(id: string, now: Date, leaseMs: number): Promise<ClaimResult> {
    const token = randomUUID();
    try {
      const out = await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.messages.partition]: id },
          UpdateExpression:
            'SET #phase = :sending, claimToken = :token, claimUntil = :until, version = version + :one',
          // Queued; or held by an attempt whose lease ran out (it died); or given up on before it was
          // ever sent (and now redriven from the DLQ), unless it was given up on while it waited for
          // SES's evidence of an uncertain attempt and that wait has not ended.
          ConditionExpression:
            'attribute_exists(#id) AND (#phase = :queued OR (#phase = :sending AND claimUntil < :now) OR (#phase = :failed AND redrivable = :yes AND (attribute_not_exists(claimUntil) OR claimUntil < :now)))',
          ExpressionAttributeNames: { '#id': Keys.messages.partition, '#phase': 'phase' },
          ExpressionAttributeValues: {
            ':sending': 'sending',
            ':queued': 'queued',
            ':failed': 'failed',
            ':yes': true,
            ':token': token,
            ':until': now.getTime() + leaseMs,
            ':now': now.getTime(),
            ':one': 1,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { outcome: 'claimed', record: out.Attributes as MessageRecord, token };
    } catch (error) {
      if (!isConditionFailed(error)) rethrow(error, 'claiming the message');
    }
    const record = await this.get(id);
    if (!record) return { outcome: 'missing' };
    return waitsForClaim(record, now) ? { outcome: 'busy', record } : { outcome: 'done', record };
  }

  async release(id: string, token: string): Promise<void> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.messages.partition]: id },
          UpdateExpression: 'SET #phase = :queued, version = version + :one REMOVE claimToken, claimUntil',
          ConditionExpression: 'claimToken = :token AND #phase = :sending',
          ExpressionAttributeNames: { '#phase': 'phase' },
          ExpressionAttributeValues: {
            ':queued': 'queued',
            ':sending': 'sending',
            ':token': token,
            ':one': 1,
          },
        }),
      );
    } catch (error) {
      // Someone else holds or finished it: nothing of ours to give back.
      if (!isConditionFailed(error)) rethrow(error, 'releasing the claim');
    }
  }

  /**
   * Eventually consistent: a record is at most a second behind, and erasure writes with a version
   * check, so a stale copy costs a re-read, never a lost update. The filter saves transfer only;
   * DynamoDB still reads (and bills) every item of the page.
   */
  async scanTenant(
    tenant: string,
    segment: number,
    totalSegments: number,
    after?: string,
  ): Promise<MessagePage> {
    if (after !== undefined && !SCAN_POSITION.test(after)) {
      throw new InvalidCursorError('not a Messages scan position');
    }
    try {
      const out = await this.#doc.send(
        new ScanCommand({
          TableName: this.#table,
          Segment: segment,
          TotalSegments: totalSegments,
          FilterExpression: '#tenant = :tenant',
          ExpressionAttributeNames: { '#tenant': 'tenant' },
          ExpressionAttributeValues: { ':tenant': tenant },
          ...(after === undefined ? {} : { ExclusiveStartKey: { [Keys.messages.partition]: after } }),
        }),
      );
      const last = out.LastEvaluatedKey?.[Keys.messages.partition];
      return {
        records: (out.Items ?? []) as MessageRecord[],
        next: typeof last === 'string' ? last : undefined,
      };
    } catch (error) {
      rethrow(error, 'scanning the messages');
    }
  }

  async update(next: MessageRecord, expectedVersion: number, claimToken?: string): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: next,
          ConditionExpression: claimToken ? 'version = :v AND claimToken = :token' : 'version = :v',
          ExpressionAttributeValues: {
            ':v': expectedVersion,
            ...(claimToken ? { ':token': claimToken } : {}),
          },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) {
        throw new ConflictError(`message ${next.id} changed since version ${expectedVersion}`, {
          cause: error,
        });
      }
      rethrow(error, 'updating the message');
    }
  }
}
