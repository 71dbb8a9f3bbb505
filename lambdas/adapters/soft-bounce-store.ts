import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { type SoftBounceState, softBounceExpiry } from '../domain/feedback/soft-bounce.ts';
import type { SoftBounceStore } from '../domain/ports.ts';
import { ConflictError } from '../shared/errors.ts';
import { Keys, SOFT_BOUNCE_KEY_PREFIX } from '../shared/names.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';

/**
 * Transient-bounce counters, kept in the Suppressions table under `softbounce:<address>` (so the
 * address's data lives in one table, which erasure and PITR cover), with a TTL one window after
 * the latest bounce so counters of addresses that recovered disappear on their own.
 */
export class DynamoSoftBounceStore implements SoftBounceStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.#doc = doc;
    this.#table = table;
  }

  async get(address: string): Promise<SoftBounceState | undefined> {
    try {
      const out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { [Keys.suppressions.partition]: `${SOFT_BOUNCE_KEY_PREFIX}${address}` },
          ConsistentRead: true,
        }),
      );
      const item = out.Item as { bounces?: Record<string, number>; version?: number } | undefined;
      return item ? { address, bounces: item.bounces ?? {}, version: item.version ?? 0 } : undefined;
    } catch (error) {
      rethrow(error, 'reading the soft-bounce counter');
    }
  }

  async put(state: SoftBounceState): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            [Keys.suppressions.partition]: `${SOFT_BOUNCE_KEY_PREFIX}${state.address}`,
            bounces: state.bounces,
            version: state.version + 1,
            [Keys.suppressions.ttl]: Math.ceil(softBounceExpiry(state).getTime() / 1000),
          },
          ConditionExpression: state.version === 0 ? 'attribute_not_exists(#a)' : 'version = :v',
          ExpressionAttributeNames: state.version === 0 ? { '#a': Keys.suppressions.partition } : undefined,
          ExpressionAttributeValues: state.version === 0 ? undefined : { ':v': state.version },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) {
        throw new ConflictError('the soft-bounce counter changed meanwhile', { cause: error });
      }
      rethrow(error, 'writing the soft-bounce counter');
    }
  }
}
