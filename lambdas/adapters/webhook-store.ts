import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Clock } from '../domain/ports.ts';
import {
  type DeliveryAttempt,
  type StoredWebhookEvent,
  WEBHOOK_ENDPOINT_ID,
  WEBHOOK_LOG_DAYS,
  type WebhookEndpoint,
} from '../domain/webhooks/endpoint.ts';
import type {
  WebhookDeliveryLog,
  WebhookEndpointStore,
  WebhookEventLog,
  WebhookReplayBudget,
} from '../domain/webhooks/ports.ts';
import { ConflictError, InvalidCursorError } from '../shared/errors.ts';
import { Keys, WebhookPartition } from '../shared/names.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';
import { batchPutAll } from './dynamo-batch.ts';
import { decodeSortCursor, encodeSortCursor } from './sort-cursor.ts';

type Item = Record<string, unknown>;

const PK = Keys.webhooks.partition;
const SK = Keys.webhooks.sort;
const TTL = Keys.webhooks.ttl;

const ENDPOINT = 'endpoint#';
const AT = 'at#';
const BY_ID = 'id#';
const ATTEMPT = 'attempt#';
const REPLAY = 'replay#';
/** Tries of a replay budget take that keeps racing another one. */
const REPLAY_TRIES = 5;
// The character after `#`: `at$` sorts after every `at#...` key, closing the range of a `since` query.
const AT_END = 'at$';

/** Well within a sort key's 1024 bytes, with its prefix. */
const MAX_ID_BYTES = 512;
const DEFAULT_EVENTS_PAGE = 100;
const DEFAULT_ATTEMPTS_PAGE = 50;
/** Query answers stop at 1 MB anyway; a bigger page would only hold an invocation longer. */
const MAX_PAGE = 1_000;
/** DynamoDB's bound on a sort key: a longer cursor cannot be one this listing handed out. */
const MAX_SORT_BYTES = 1024;

const tenantKey = (tenant: string): string => `${WebhookPartition.endpoints}${tenant}`;
const eventsKey = (tenant: string): string => `${WebhookPartition.events}${tenant}`;
/** An endpoint's item under its tenant's partition (sort key). */
const endpointKey = (id: string): string => `${ENDPOINT}${id}`;
/** The partition of an endpoint's attempts and replay budget (and its delivery state). */
const deliveryKey = (id: string): string => `${WebhookPartition.delivery}${id}`;

/**
 * The Webhooks table (Keys.webhooks): endpoints, the replay log of events, delivery attempts.
 * Every key names the tenant or an endpoint id (random and never reused), and attempts carry the
 * tenant too, so no read answers with another tenant's items.
 */
export class DynamoWebhookStore
  implements WebhookEndpointStore, WebhookEventLog, WebhookDeliveryLog, WebhookReplayBudget
{
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #clock: Clock;

  /** `clock` sets the TTL of events and attempts (WEBHOOK_LOG_DAYS from when they are kept). */
  constructor(doc: DynamoDBDocumentClient, table: string, clock: Clock = () => new Date()) {
    this.#doc = doc;
    this.#table = table;
    this.#clock = clock;
  }

  async create(endpoint: WebhookEndpoint): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: endpointItem(endpoint),
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': PK },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) {
        throw new ConflictError(`webhook endpoint ${endpoint.id} exists already`, { cause: error });
      }
      rethrow(error, 'creating a webhook endpoint');
    }
  }

  async get(tenant: string, id: string): Promise<WebhookEndpoint | undefined> {
    // Ids come from the path: one that cannot exist is not worth a read (and could be past a key's size).
    if (!WEBHOOK_ENDPOINT_ID.test(id)) return undefined;
    let out: { Item?: Item };
    try {
      out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { [PK]: tenantKey(tenant), [SK]: endpointKey(id) },
          ConsistentRead: true,
        }),
      );
    } catch (error) {
      rethrow(error, 'reading a webhook endpoint');
    }
    return out.Item && endpointOf(out.Item);
  }

  async list(tenant: string): Promise<WebhookEndpoint[]> {
    const items = await this.#queryAll(
      {
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
        ExpressionAttributeValues: { ':pk': tenantKey(tenant), ':prefix': ENDPOINT },
        ConsistentRead: true,
      },
      'listing webhook endpoints',
    );
    return items.map(endpointOf);
  }

  async update(next: WebhookEndpoint, expectedVersion: number): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: endpointItem(next),
          ConditionExpression: '#version = :expected',
          ExpressionAttributeNames: { '#version': 'version' },
          ExpressionAttributeValues: { ':expected': expectedVersion },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) {
        throw new ConflictError(`webhook endpoint ${next.id} changed since version ${expectedVersion}`, {
          cause: error,
        });
      }
      rethrow(error, 'updating a webhook endpoint');
    }
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    if (!WEBHOOK_ENDPOINT_ID.test(id)) return false;
    try {
      const out = await this.#doc.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { [PK]: tenantKey(tenant), [SK]: endpointKey(id) },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return out.Attributes !== undefined;
    } catch (error) {
      rethrow(error, 'deleting a webhook endpoint');
    }
  }

  async append(events: readonly StoredWebhookEvent[]): Promise<void> {
    const expiresAt = this.#expiresAt();
    // Two items per event: one sorted by time (replay since), one by id (replay one). Puts are
    // idempotent, so keeping an event again rewrites the same two items.
    const items = events.flatMap((event) => {
      const fields = { ...eventFields(event), [TTL]: expiresAt };
      return [
        { [PK]: eventsKey(event.tenant), [SK]: timeSort(event), ...fields },
        { [PK]: eventsKey(event.tenant), [SK]: `${BY_ID}${event.id}`, ...fields },
      ];
    });
    await batchPutAll(this.#doc, this.#table, items, 'keeping webhook events');
  }

  async event(tenant: string, eventId: string): Promise<StoredWebhookEvent | undefined> {
    // Event ids are Baton's (short); one past a sort key's 1024 bytes cannot be one.
    if (eventId.length === 0 || Buffer.byteLength(eventId) > MAX_ID_BYTES) return undefined;
    let out: { Item?: Item };
    try {
      out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { [PK]: eventsKey(tenant), [SK]: `${BY_ID}${eventId}` },
          ConsistentRead: true,
        }),
      );
    } catch (error) {
      rethrow(error, 'reading a webhook event');
    }
    return out.Item && eventOf(out.Item);
  }

  async since(
    tenant: string,
    since: Date,
    options: { readonly limit?: number; readonly cursor?: string } = {},
  ): Promise<{ readonly events: StoredWebhookEvent[]; readonly cursor?: string }> {
    const limit = pageSize(options.limit, DEFAULT_EVENTS_PAGE);
    const from = `${AT}${since.toISOString()}`;
    const after =
      options.cursor === undefined ? undefined : decodeSortCursor(options.cursor, AT, MAX_SORT_BYTES);
    // A position before `since` lies outside the query's range, which DynamoDB refuses outright.
    if (after !== undefined && after < from) {
      throw new InvalidCursorError('the cursor is not a position of this listing');
    }
    const page = await this.#page(
      {
        KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
        ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
        ExpressionAttributeValues: { ':pk': eventsKey(tenant), ':from': from, ':to': AT_END },
        ConsistentRead: true,
      },
      eventsKey(tenant),
      after,
      limit,
      'reading webhook events',
    );
    return page.cursor === undefined
      ? { events: page.items.map(eventOf) }
      : { events: page.items.map(eventOf), cursor: page.cursor };
  }

  async record(attempt: DeliveryAttempt): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...attempt,
            [PK]: deliveryKey(attempt.endpointId),
            [SK]: `${ATTEMPT}${attempt.at}#${attempt.eventId}#${attempt.attempt}`,
            [TTL]: this.#expiresAt(),
          },
        }),
      );
    } catch (error) {
      rethrow(error, 'recording a webhook delivery attempt');
    }
  }

  async attempts(
    tenant: string,
    endpointId: string,
    options: { readonly limit?: number; readonly cursor?: string } = {},
  ): Promise<{ readonly attempts: DeliveryAttempt[]; readonly cursor?: string }> {
    const limit = pageSize(options.limit, DEFAULT_ATTEMPTS_PAGE);
    const after =
      options.cursor === undefined ? undefined : decodeSortCursor(options.cursor, ATTEMPT, MAX_SORT_BYTES);
    if (!WEBHOOK_ENDPOINT_ID.test(endpointId)) return { attempts: [] };
    const page = await this.#page(
      {
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        // Endpoint ids are unguessable and never reused, but the tenant is checked all the same.
        FilterExpression: '#tenant = :tenant',
        ExpressionAttributeNames: { '#pk': PK, '#sk': SK, '#tenant': 'tenant' },
        ExpressionAttributeValues: { ':pk': deliveryKey(endpointId), ':prefix': ATTEMPT, ':tenant': tenant },
        ScanIndexForward: false,
      },
      deliveryKey(endpointId),
      after,
      limit,
      'reading webhook delivery attempts',
    );
    return page.cursor === undefined
      ? { attempts: page.items.map(attemptOf) }
      : { attempts: page.items.map(attemptOf), cursor: page.cursor };
  }

  /**
   * The endpoint's replay count for a window: pk `endpoint#<id>`, sk `replay#<window ISO>`, expiring
   * a day after the window began. Added to under a condition that keeps it at or under `limit`.
   */
  async takeReplay(endpointId: string, window: Date, wanted: number, limit: number): Promise<number> {
    if (!WEBHOOK_ENDPOINT_ID.test(endpointId) || wanted === 0) return 0;
    const key = { [PK]: deliveryKey(endpointId), [SK]: `${REPLAY}${window.toISOString()}` };
    const add = async (n: number, condition: string, values: Item): Promise<boolean> => {
      try {
        await this.#doc.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: key,
            UpdateExpression: 'ADD #used :n SET #ttl = if_not_exists(#ttl, :ttl)',
            ConditionExpression: condition,
            ExpressionAttributeNames: { '#used': 'used', '#ttl': TTL },
            ExpressionAttributeValues: {
              ':n': n,
              ':ttl': Math.floor(window.getTime() / 1000) + 86_400,
              ...values,
            },
          }),
        );
        return true;
      } catch (error) {
        if (isConditionFailed(error)) return false;
        rethrow(error, 'counting webhook replays');
      }
    };
    if (wanted < 0) {
      // Given back only to a count that exists and holds as much.
      return (await add(wanted, '#used >= :back', { ':back': -wanted })) ? wanted : 0;
    }
    let want = wanted;
    for (let i = 0; i < REPLAY_TRIES; i++) {
      if (await add(want, 'attribute_not_exists(#used) OR #used <= :max', { ':max': limit - want })) {
        return want;
      }
      let out: { Item?: Item };
      try {
        out = await this.#doc.send(
          new GetCommand({ TableName: this.#table, Key: key, ConsistentRead: true }),
        );
      } catch (error) {
        rethrow(error, 'reading webhook replays');
      }
      const used = Number(out.Item?.used ?? 0);
      want = Math.min(wanted, limit - used);
      if (want <= 0) return 0;
    }
    return 0;
  }

  #expiresAt(): number {
    return Math.floor(this.#clock().getTime() / 1000) + WEBHOOK_LOG_DAYS * 86_400;
  }

  /**
   * `limit` items from `after` (a sort key), and a cursor when there are more: one item more than
   * the page is read, so a last full page does not hand out a cursor to nothing.
   */
  async #page(
    query: Item,
    partition: string,
    after: string | undefined,
    limit: number,
    what: string,
  ): Promise<{ readonly items: Item[]; readonly cursor?: string }> {
    const found: Item[] = [];
    let start: Item | undefined = after === undefined ? undefined : { [PK]: partition, [SK]: after };
    while (found.length <= limit) {
      let out: { Items?: Item[]; LastEvaluatedKey?: Item };
      try {
        out = await this.#doc.send(
          new QueryCommand({
            TableName: this.#table,
            ...query,
            Limit: limit + 1 - found.length,
            ...(start === undefined ? {} : { ExclusiveStartKey: start }),
          }),
        );
      } catch (error) {
        rethrow(error, what);
      }
      found.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
      if (start === undefined) break;
    }
    const items = found.slice(0, limit);
    const last = items.at(-1);
    return found.length > limit && last !== undefined
      ? { items, cursor: encodeSortCursor(String(last[SK])) }
      : { items };
  }

  async #queryAll(query: Item, what: string): Promise<Item[]> {
    const found: Item[] = [];
    let start: Item | undefined;
    do {
      let out: { Items?: Item[]; LastEvaluatedKey?: Item };
      try {
        out = await this.#doc.send(
          new QueryCommand({
            TableName: this.#table,
            ...query,
            ...(start === undefined ? {} : { ExclusiveStartKey: start }),
          }),
        );
      } catch (error) {
        rethrow(error, what);
      }
      found.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return found;
  }
}

function pageSize(limit: number | undefined, fallback: number): number {
  const size = limit ?? fallback;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE) {
    throw new RangeError(`limit is a whole number from 1 to ${MAX_PAGE}, got ${size}`);
  }
  return size;
}

function endpointItem(endpoint: WebhookEndpoint): Item {
  return { ...endpoint, [PK]: tenantKey(endpoint.tenant), [SK]: endpointKey(endpoint.id) };
}

function endpointOf(item: Item): WebhookEndpoint {
  const { [PK]: _pk, [SK]: _sk, ...endpoint } = item;
  return endpoint as unknown as WebhookEndpoint;
}

function eventFields(event: StoredWebhookEvent): StoredWebhookEvent {
  return {
    id: event.id,
    tenant: event.tenant,
    type: event.type,
    timestamp: event.timestamp,
    body: event.body,
  };
}

/**
 * The time-sorted key. The timestamp is rewritten as `toISOString` gives it, so every key has the
 * same shape and sorts by time (`10:00:00Z` would sort after `10:00:00.500Z` as text).
 */
function timeSort(event: StoredWebhookEvent): string {
  const at = new Date(event.timestamp);
  const normalised = Number.isNaN(at.getTime()) ? event.timestamp : at.toISOString();
  return `${AT}${normalised}#${event.id}`;
}

function eventOf(item: Item): StoredWebhookEvent {
  return {
    id: String(item.id),
    tenant: String(item.tenant),
    type: item.type as StoredWebhookEvent['type'],
    timestamp: String(item.timestamp),
    body: String(item.body),
  };
}

function attemptOf(item: Item): DeliveryAttempt {
  const { [PK]: _pk, [SK]: _sk, [TTL]: _ttl, ...attempt } = item;
  return attempt as unknown as DeliveryAttempt;
}
