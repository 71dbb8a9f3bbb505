import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { GuardScopeRef } from '../domain/guard/counters.ts';
import type { GuardStateStore, TenantGuardRecord } from '../domain/ports.ts';
import { Keys } from '../shared/names.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';
import { scopeKey } from './guard-counter-store.ts';

/** Sort key of a tenant's guard record (partition `tenant:<tenant>`). */
export const GUARD_STATE_SK = 'state';
/** Sort key of a scope's evaluation claim (partition `key:<keyId>` or `tenant:<tenant>`). */
export const GUARD_EVAL_SK = 'eval';
/**
 * How long an evaluation claim outlives its minute: a scope that stops sending leaves nothing
 * behind for long, and one that goes on rewrites the same item.
 */
const EVAL_TTL_SECONDS = 86_400;

/**
 * The abuse guard's own state in the Guard table (Keys.guard): each tenant's record (its state in
 * force, policy override and a version for optimistic concurrency) and each scope's evaluation
 * claim. Partitions are `tenant:<tenant>` and `key:<keyId>`, ids percent-encoded as the counters'
 * are; the counters' own partitions all start with `guard:` and the held-mail index's with
 * `held:`, so none of these items can be mistaken for another kind.
 */
export class DynamoGuardStateStore implements GuardStateStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.#doc = doc;
    this.#table = table;
  }

  async tenant(tenant: string): Promise<TenantGuardRecord | undefined> {
    try {
      const out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: this.#key({ kind: 'tenant', tenant }, GUARD_STATE_SK),
          // Read before a versioned write: a stale read would only cost a conflict, but the reputation
          // view and the evaluation should see an operator's resume at once.
          ConsistentRead: true,
        }),
      );
      const item = out.Item;
      if (item === undefined) return undefined;
      return {
        tenant,
        state: item.state as TenantGuardRecord['state'],
        ...(item.override === undefined ? {} : { override: item.override as TenantGuardRecord['override'] }),
        version: Number(item.version),
      };
    } catch (error) {
      rethrow(error, 'reading the tenant’s guard state');
    }
  }

  async putTenant(record: TenantGuardRecord): Promise<boolean> {
    if (!Number.isSafeInteger(record.version) || record.version < 1) {
      throw new RangeError(`a tenant guard record's version is a whole number from 1, got ${record.version}`);
    }
    const first = record.version === 1;
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...this.#key({ kind: 'tenant', tenant: record.tenant }, GUARD_STATE_SK),
            tenant: record.tenant,
            state: record.state,
            ...(record.override === undefined ? {} : { override: record.override }),
            version: record.version,
          },
          ConditionExpression: first ? 'attribute_not_exists(#pk)' : '#version = :previous',
          ExpressionAttributeNames: first ? { '#pk': Keys.guard.partition } : { '#version': 'version' },
          ...(first ? {} : { ExpressionAttributeValues: { ':previous': record.version - 1 } }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      rethrow(error, 'writing the tenant’s guard state');
    }
  }

  async claimEvaluation(scope: GuardScopeRef, now: Date, intervalMs: number): Promise<boolean> {
    const at = now.getTime();
    // A negative or missing interval would let every caller win every time: evaluation unbounded.
    if (!Number.isFinite(at) || !Number.isFinite(intervalMs) || intervalMs < 0) {
      throw new RangeError(
        `an evaluation claim needs a valid time and an interval of 0 ms or more, got ${intervalMs}`,
      );
    }
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: this.#key(scope, GUARD_EVAL_SK),
          UpdateExpression: 'SET #at = :now, #ttl = :ttl',
          ConditionExpression: 'attribute_not_exists(#at) OR #at <= :cutoff',
          ExpressionAttributeNames: { '#at': 'evaluatedAt', '#ttl': Keys.guard.ttl },
          ExpressionAttributeValues: {
            ':now': at,
            ':cutoff': at - intervalMs,
            ':ttl': Math.floor(at / 1000) + EVAL_TTL_SECONDS,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      rethrow(error, 'claiming a guard evaluation');
    }
  }

  #key(scope: GuardScopeRef, sort: string): Record<string, string> {
    return { [Keys.guard.partition]: scopeKey(scope), [Keys.guard.sort]: sort };
  }
}
