import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { normaliseAddress } from '../domain/address.ts';
import { isErasedKey } from '../domain/erasure.ts';
import type { SuppressionStore } from '../domain/ports.ts';
import { SUPPRESSION_REASONS, type Suppression, type SuppressionReason } from '../domain/suppression.ts';
import { InvalidCursorError } from '../shared/errors.ts';
import { Keys, SOFT_BOUNCE_KEY_PREFIX } from '../shared/names.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';
import { batchGetAll } from './dynamo-batch.ts';

interface SuppressionItem {
  readonly address: string;
  readonly reason: string;
  readonly detail?: string | null;
  readonly source?: string | null;
  readonly createdAt: string;
  /** Epoch seconds: the table's TTL attribute, so DynamoDB removes expired soft bounces. */
  readonly expiresAt?: number;
  readonly severity: number;
  readonly evidence?: Record<string, string>;
}

function toItem(s: Suppression): SuppressionItem {
  return {
    address: s.address,
    reason: s.reason,
    detail: s.detail,
    source: s.source,
    createdAt: s.createdAt,
    ...(s.expiresAt ? { expiresAt: Math.floor(Date.parse(s.expiresAt) / 1000) } : {}),
    severity: s.severity,
    ...(s.evidence ? { evidence: { ...s.evidence } } : {}),
  };
}

function fromItem(item: Record<string, unknown>): Suppression {
  const i = item as unknown as SuppressionItem;
  const reason = (SUPPRESSION_REASONS as readonly string[]).includes(i.reason)
    ? (i.reason as SuppressionReason)
    : 'manual';
  return {
    address: i.address,
    reason,
    detail: i.detail ?? null,
    source: i.source ?? null,
    createdAt: i.createdAt,
    expiresAt: typeof i.expiresAt === 'number' ? new Date(i.expiresAt * 1000).toISOString() : null,
    severity: i.severity,
    ...(i.evidence ? { evidence: i.evidence } : {}),
  };
}

/**
 * The Suppressions table, keyed by normalised address; an erased address's tombstone is keyed by
 * its pseudonym (`erased:<hex>`, see domain/erasure.ts) and is otherwise an ordinary item.
 */
export class DynamoSuppressionStore implements SuppressionStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.#doc = doc;
    this.#table = table;
  }

  async getMany(addresses: readonly string[]): Promise<Map<string, Suppression>> {
    const items = await batchGetAll(
      this.#doc,
      this.#table,
      [...new Set(addresses)].map((address) => ({ [Keys.suppressions.partition]: address })),
      'reading the suppression list',
    );
    const found = new Map<string, Suppression>();
    for (const item of items) {
      const s = fromItem(item);
      found.set(s.address, s);
    }
    return found;
  }

  async get(address: string): Promise<Suppression | undefined> {
    try {
      const out = await this.#doc.send(
        new GetCommand({ TableName: this.#table, Key: { [Keys.suppressions.partition]: address } }),
      );
      return out.Item ? fromItem(out.Item) : undefined;
    } catch (error) {
      rethrow(error, 'reading a suppression');
    }
  }

  async putIfStronger(s: Suppression): Promise<boolean> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: toItem(s),
          // Severity only rises: a late or repeated weaker event never replaces stronger evidence.
          // An expired suppression (a soft bounce DynamoDB's TTL has not swept yet, which can take
          // days) is no evidence any more and may be replaced by anything.
          ConditionExpression: 'attribute_not_exists(#a) OR severity < :severity OR #ttl < :now',
          ExpressionAttributeNames: { '#a': Keys.suppressions.partition, '#ttl': Keys.suppressions.ttl },
          ExpressionAttributeValues: {
            ':severity': s.severity,
            ':now': Math.floor(Date.parse(s.createdAt) / 1000),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      rethrow(error, 'writing a suppression');
    }
  }

  async put(s: Suppression): Promise<void> {
    try {
      await this.#doc.send(new PutCommand({ TableName: this.#table, Item: toItem(s) }));
    } catch (error) {
      rethrow(error, 'writing a suppression');
    }
  }

  async delete(address: string): Promise<void> {
    try {
      await this.#doc.send(
        new DeleteCommand({ TableName: this.#table, Key: { [Keys.suppressions.partition]: address } }),
      );
    } catch (error) {
      rethrow(error, 'deleting a suppression');
    }
  }

  async list(limit: number, cursor?: string): Promise<{ items: Suppression[]; nextCursor: string | null }> {
    const start = cursor === undefined ? undefined : decodeCursor(cursor);
    try {
      const out = await this.#doc.send(
        new ScanCommand({
          TableName: this.#table,
          Limit: limit,
          // Soft-bounce counters share the table but are not suppressions: they are the items
          // without a reason (whatever their key, so counters of the old `softbounce#` scheme stay
          // hidden too, while an address that merely looks like one is listed). The filter runs
          // after Limit, so a page may hold fewer items than asked; the cursor still moves on.
          FilterExpression: 'attribute_exists(#reason)',
          ExpressionAttributeNames: { '#reason': 'reason' },
          ...(start ? { ExclusiveStartKey: { [Keys.suppressions.partition]: start } } : {}),
        }),
      );
      const last = out.LastEvaluatedKey?.[Keys.suppressions.partition];
      return {
        items: (out.Items ?? []).map(fromItem),
        nextCursor: typeof last === 'string' ? Buffer.from(last, 'utf8').toString('base64url') : null,
      };
    } catch (error) {
      rethrow(error, 'listing suppressions');
    }
  }
}

/**
 * A cursor is the base64url of the last key of a page: a normalised address, a tombstone key or a
 * soft-bounce counter's key (a page may end on an item the filter hid). Anything else is refused,
 * not sent to DynamoDB.
 */
function decodeCursor(cursor: string): string {
  const key = /^[A-Za-z0-9_-]{1,400}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const address = key.startsWith(SOFT_BOUNCE_KEY_PREFIX) ? key.slice(SOFT_BOUNCE_KEY_PREFIX.length) : key;
  if (!isErasedKey(key) && (address === '' || normaliseAddress(address) !== address)) {
    throw new InvalidCursorError('not a suppression list cursor');
  }
  return key;
}
