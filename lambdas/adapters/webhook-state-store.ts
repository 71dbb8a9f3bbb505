import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { type BreakerState, closedBreaker } from '../domain/webhooks/breaker.ts';
import type {
  EndpointDeliveryState,
  EndpointStateStore,
  VersionedEndpointState,
} from '../domain/webhooks/delivery-ports.ts';
import { WEBHOOK_LOG_DAYS } from '../domain/webhooks/endpoint.ts';
import { Keys, WebhookPartition } from '../shared/names.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';

/** Sort key of an endpoint's delivery state (partition `endpoint#<id>`, Keys.webhooks). */
export const WEBHOOK_STATE_SK = 'state';

/**
 * Each endpoint's breaker and concurrency slots in the Webhooks table, one item per endpoint
 * (`endpoint#<id>` / `state`) replaced whole under a version condition: taking a slot and passing
 * the breaker is one write, so two deliveries cannot both take the last slot or both probe. The
 * item expires WEBHOOK_LOG_DAYS after its last write: by then it says nothing (a deleted endpoint,
 * or one idle so long that a closed breaker is the truth).
 */
export class DynamoEndpointStateStore implements EndpointStateStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #clock: () => Date;

  constructor(doc: DynamoDBDocumentClient, table: string, clock: () => Date = () => new Date()) {
    this.#doc = doc;
    this.#table = table;
    this.#clock = clock;
  }

  async read(endpointId: string): Promise<VersionedEndpointState> {
    try {
      const out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: this.#key(endpointId),
          // Read before a conditional write: a stale read would only cost a conflict and a re-read.
          ConsistentRead: true,
        }),
      );
      const item = out.Item;
      if (item === undefined) return { state: { breaker: closedBreaker, leases: {} }, version: 0 };
      return {
        state: {
          breaker: item.breaker as BreakerState,
          leases: Object.fromEntries(
            Object.entries((item.leases ?? {}) as Record<string, unknown>).map(([id, until]) => [
              id,
              Number(until),
            ]),
          ),
        },
        version: Number(item.version),
      };
    } catch (error) {
      rethrow(error, 'reading a webhook endpoint’s delivery state');
    }
  }

  async write(endpointId: string, state: EndpointDeliveryState, expectedVersion: number): Promise<boolean> {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
      throw new RangeError(`a delivery state's version is a whole number from 0, got ${expectedVersion}`);
    }
    const first = expectedVersion === 0;
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...this.#key(endpointId),
            breaker: state.breaker,
            leases: state.leases,
            version: expectedVersion + 1,
            [Keys.webhooks.ttl]: Math.floor(this.#clock().getTime() / 1000) + WEBHOOK_LOG_DAYS * 86_400,
          },
          ConditionExpression: first ? 'attribute_not_exists(#pk)' : '#version = :previous',
          ExpressionAttributeNames: first ? { '#pk': Keys.webhooks.partition } : { '#version': 'version' },
          ...(first ? {} : { ExpressionAttributeValues: { ':previous': expectedVersion } }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      rethrow(error, 'writing a webhook endpoint’s delivery state');
    }
  }

  #key(endpointId: string): Record<string, string> {
    return {
      [Keys.webhooks.partition]: `${WebhookPartition.delivery}${endpointId}`,
      [Keys.webhooks.sort]: WEBHOOK_STATE_SK,
    };
  }
}
