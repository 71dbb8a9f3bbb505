import { randomUUID } from 'node:crypto';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { STAT_COUNTERS, type StatCounter, type StatCounts, type UsageStore } from '../domain/ports.ts';
import { Keys } from '../shared/names.ts';
import { logger } from '../shared/observability.ts';
import { errorName, isConditionFailed, rethrow } from './aws-errors.ts';
import { batchGetAll } from './dynamo-batch.ts';

/**
 * Daily counters in the Stats table, all by atomic ADD: `<tenant>#<day>` holds the tenant's
 * statistics (DESIGN §3), `quota#<keyId>#<day>` a key's quota usage.
 */
export class DynamoUsageStore implements UsageStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.#doc = doc;
    this.#table = table;
  }

  async consumeQuota(keyId: string, day: string, count: number, quota: number): Promise<boolean> {
    if (count > quota) return false;
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.stats.partition]: quotaKey(keyId, day) },
          UpdateExpression: 'ADD used :n SET keyId = :k, #day = :d',
          // The check and the increment are one write: concurrent requests cannot both squeeze in.
          ConditionExpression: 'attribute_not_exists(used) OR used <= :room',
          ExpressionAttributeNames: { '#day': 'day' },
          ExpressionAttributeValues: { ':n': count, ':room': quota - count, ':k': keyId, ':d': day },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      rethrow(error, 'counting the daily quota');
    }
  }

  async refundQuota(keyId: string, day: string, count: number): Promise<void> {
    if (count <= 0) return;
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.stats.partition]: quotaKey(keyId, day) },
          UpdateExpression: 'ADD used :minus SET lastGiveBack = :token',
          // Once per give-back: the SDK's retry of a write whose answer was lost resends the same
          // token and finds it written (DynamoDB has no idempotency token outside transactions,
          // which the emulators lack). A retry that lands after another give-back of the key got
          // in between still counts twice; never below zero in any case.
          ConditionExpression:
            'used >= :count AND (attribute_not_exists(lastGiveBack) OR lastGiveBack <> :token)',
          ExpressionAttributeValues: { ':minus': -count, ':count': count, ':token': randomUUID() },
        }),
      );
    } catch (error) {
      // Worst case the key loses a little of today's quota; the message itself was answered 503.
      logger.warn('quota not given back', { error: errorName(error) });
    }
  }

  async quotaUsed(keyId: string, day: string): Promise<number> {
    try {
      const out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { [Keys.stats.partition]: quotaKey(keyId, day) },
          ConsistentRead: true,
        }),
      );
      const used = out.Item?.used;
      return typeof used === 'number' ? used : 0;
    } catch (error) {
      rethrow(error, 'reading the daily quota');
    }
  }

  async addStats(tenant: string, day: string, counts: StatCounts): Promise<void> {
    const entries = Object.entries(counts).filter(([, v]) => typeof v === 'number' && v !== 0);
    if (entries.length === 0) return;
    const names: Record<string, string> = { '#day': 'day', '#tenant': 'tenant' };
    const values: Record<string, unknown> = { ':day': day, ':tenant': tenant };
    entries.forEach(([name, value], i) => {
      names[`#c${i}`] = name;
      values[`:c${i}`] = value;
    });
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.stats.partition]: statsKey(tenant, day) },
          UpdateExpression: `SET #tenant = :tenant, #day = :day ADD ${entries.map((_, i) => `#c${i} :c${i}`).join(', ')}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      logger.warn('daily statistics not updated', { error: errorName(error) });
    }
  }

  async getStats(tenant: string, days: readonly string[]): Promise<Map<string, StatCounts>> {
    const dayOf = new Map(days.map((day) => [statsKey(tenant, day), day]));
    // Only the counters travel back; eventually consistent reads cost half, and a count a second
    // old is as good as a fresh one for a statistics page.
    const names: Record<string, string> = { '#pk': Keys.stats.partition };
    STAT_COUNTERS.forEach((name, i) => {
      names[`#c${i}`] = name;
    });
    const items = await batchGetAll(
      this.#doc,
      this.#table,
      [...dayOf.keys()].map((pk) => ({ [Keys.stats.partition]: pk })),
      'reading the daily statistics',
      { expression: Object.keys(names).join(', '), names },
    );
    const found = new Map<string, StatCounts>();
    for (const item of items) {
      const day = dayOf.get(String(item[Keys.stats.partition]));
      if (day !== undefined) found.set(day, countersOf(item));
    }
    return found;
  }
}

function statsKey(tenant: string, day: string): string {
  return `${tenant}#${day}`;
}

function countersOf(item: Record<string, unknown>): Partial<Record<StatCounter, number>> {
  const counts: Partial<Record<StatCounter, number>> = {};
  for (const name of STAT_COUNTERS) {
    const value = item[name];
    if (typeof value === 'number') counts[name] = value;
  }
  return counts;
}

function quotaKey(keyId: string, day: string): string {
  return `quota#${keyId}#${day}`;
}
