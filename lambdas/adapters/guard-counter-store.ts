import { createHash } from 'node:crypto';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  checkIncrement,
  checkScope,
  GUARD_COUNTERS,
  GUARD_RETENTION_DAYS,
  type GuardCounter,
  type GuardCounts,
  type GuardIncrement,
  type GuardScopeRef,
  type HourBucket,
  hourStart,
  hoursToRead,
} from '../domain/guard/counters.ts';
import type { GuardCounters } from '../domain/ports.ts';
import { GUARD_KEY_PREFIX, Keys } from '../shared/names.ts';
import { logger } from '../shared/observability.ts';
import { errorName, isConditionFailed, rethrow } from './aws-errors.ts';
import { batchGetAll } from './dynamo-batch.ts';

/** Writes in flight at once per `add`: enough to finish a batch fast, few enough not to self-throttle. */
export const GUARD_MAX_CONCURRENT_WRITES = 8;

export interface GuardCounterStoreOptions {
  readonly table: string;
  /** @default Keys.stats.partition */
  readonly partitionKey?: string;
  /**
   * The table's sort key, when it has one (the Guard table, as every process wires it through
   * guard-wiring.ts): each scope is then one partition with a bucket per hour, and `read` is one
   * Query. Without one (a pk-only table such as Stats, the first plan, now only in tests and
   * bench/guard-counters.ts) each bucket is its own partition, `<scope>@<hour>`, and `read` a
   * BatchGetItem of every hour in the range.
   */
  readonly sortKey?: string;
  /** @default Keys.stats.ttl */
  readonly ttlAttribute?: string;
  /** @default GUARD_RETENTION_DAYS */
  readonly retentionDays?: number;
  /** @default GUARD_MAX_CONCURRENT_WRITES */
  readonly maxConcurrentWrites?: number;
}

type Item = Record<string, unknown>;

/** Increments of one scope and hour, added up: one UpdateItem. */
interface BucketWrite {
  readonly scope: string;
  readonly hour: string;
  readonly counts: Partial<Record<GuardCounter, number>>;
  /** The event markers taken for the increments merged here, released should the write fail. */
  readonly markers: Marker[];
}

interface Marker {
  readonly event: string;
  readonly scope: string;
  readonly hour: string;
}

/**
 * The abuse guard's hourly counters (issue 13) in DynamoDB: one item per scope and hour holding a
 * number per counter, changed only by atomic ADD, with a TTL `retentionDays` after the hour.
 *
 * Once per event: an increment with an `eventId` first takes a marker item (a conditional put of
 * `guard:event:<hash of the id>` for the scope; 1 WRU), and only the increments whose marker was
 * new are added. A set of event ids on the bucket itself would make the check and the add one
 * write, but the bucket would grow by an id per event, and DynamoDB bills a write by the item's
 * size: a bounce storm of thousands of events an hour would cost tens of WRU per write and reach
 * the 400 KB item limit. Transactions (marker and ADD atomic) cost double and the emulators
 * lack them. The price of the separate marker: a crash between the marker and the ADD loses that
 * event's count (the redelivery finds the marker), the lenient direction for a guard; a write that
 * fails with an error releases its markers first, so the retry counts them.
 *
 * Event ids are stored only as a hash, so an id that names a recipient puts no address here.
 */
export class DynamoGuardCounterStore implements GuardCounters {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #pk: string;
  readonly #sk: string | undefined;
  readonly #ttl: string;
  readonly #retentionSeconds: number;
  readonly #maxHours: number;
  readonly #concurrency: number;

  constructor(doc: DynamoDBDocumentClient, options: GuardCounterStoreOptions) {
    const retentionDays = options.retentionDays ?? GUARD_RETENTION_DAYS;
    const concurrency = options.maxConcurrentWrites ?? GUARD_MAX_CONCURRENT_WRITES;
    if (!Number.isInteger(retentionDays) || retentionDays < 1) {
      throw new RangeError('retentionDays must be a whole number of days, at least 1');
    }
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError('maxConcurrentWrites must be a whole number, at least 1');
    }
    this.#doc = doc;
    this.#table = options.table;
    this.#pk = options.partitionKey ?? Keys.stats.partition;
    this.#sk = options.sortKey;
    this.#ttl = options.ttlAttribute ?? Keys.stats.ttl;
    this.#retentionSeconds = retentionDays * 86_400;
    this.#maxHours = retentionDays * 24;
    this.#concurrency = concurrency;
  }

  async add(increments: readonly GuardIncrement[]): Promise<void> {
    const { plain, evented } = distinct(increments);
    const taken = await this.#takeMarkers(evented);
    const writes = merge([...plain, ...taken]);
    const results = await settleBounded(writes, this.#concurrency, (w) => this.#write(w));
    const failed = writes.filter((_, i) => results[i]?.status === 'rejected');
    if (failed.length === 0) return;
    await this.#releaseMarkers(failed.flatMap((w) => w.markers));
    throw firstFailure(results);
  }

  async read(scope: GuardScopeRef, fromHour: string, toHour: string): Promise<HourBucket[]> {
    const partition = bucketPartition(scopeKey(scope));
    const hours = hoursToRead(fromHour, toHour, this.#maxHours);
    if (hours.length === 0) return [];
    const names: Record<string, string> = {};
    GUARD_COUNTERS.forEach((counter, i) => {
      names[`#c${i}`] = counter;
    });
    const counters = Object.keys(names).join(', ');
    // Eventually consistent reads cost half; a count a second old decides as well as a fresh one.
    if (this.#sk !== undefined) {
      const buckets: HourBucket[] = [];
      let after: Item | undefined;
      do {
        try {
          const out = await this.#doc.send(
            new QueryCommand({
              TableName: this.#table,
              KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
              ProjectionExpression: `#sk, ${counters}`,
              ExpressionAttributeNames: { ...names, '#pk': this.#pk, '#sk': this.#sk },
              ExpressionAttributeValues: { ':pk': partition, ':from': fromHour, ':to': toHour },
              ExclusiveStartKey: after,
            }),
          );
          for (const item of out.Items ?? [])
            buckets.push({ hour: String(item[this.#sk]), counts: countsOf(item) });
          after = out.LastEvaluatedKey;
        } catch (error) {
          rethrow(error, 'reading the guard counters');
        }
      } while (after !== undefined);
      return buckets;
    }
    const hourOfKey = new Map(hours.map((hour) => [String(this.#key(partition, hour)[this.#pk]), hour]));
    const items = await batchGetAll(
      this.#doc,
      this.#table,
      hours.map((hour) => this.#key(partition, hour)),
      'reading the guard counters',
      { expression: `#pk, ${counters}`, names: { ...names, '#pk': this.#pk } },
    );
    const buckets: HourBucket[] = [];
    for (const item of items) {
      const hour = hourOfKey.get(String(item[this.#pk]));
      if (hour !== undefined) buckets.push({ hour, counts: countsOf(item) });
    }
    return buckets.sort((a, b) => (a.hour < b.hour ? -1 : a.hour > b.hour ? 1 : 0));
  }

  /** The item key of `partition` and `sort`, in this table's layout. */
  #key(partition: string, sort: string): Item {
    return this.#sk === undefined
      ? { [this.#pk]: `${partition}@${sort}` }
      : { [this.#pk]: partition, [this.#sk]: sort };
  }

  #expiresAt(hour: string): number {
    return Math.floor(hourStart(hour).getTime() / 1000) + 3600 + this.#retentionSeconds;
  }

  /**
   * Takes each increment's marker; returns the increments whose marker was new (with it). When a
   * marker cannot be written, releases those taken and throws: nothing of the call is counted.
   */
  async #takeMarkers(evented: readonly EventedIncrement[]): Promise<EventedIncrement[]> {
    const results = await settleBounded(evented, this.#concurrency, async ({ marker }) => {
      try {
        await this.#doc.send(
          new PutCommand({
            TableName: this.#table,
            Item: { ...this.#markerKey(marker), [this.#ttl]: this.#expiresAt(marker.hour) },
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': this.#pk },
          }),
        );
        return true;
      } catch (error) {
        if (isConditionFailed(error)) return false;
        rethrow(error, 'marking a guard event counted');
      }
    });
    const taken = evented.filter((_, i) => {
      const r = results[i];
      return r?.status === 'fulfilled' && r.value;
    });
    if (results.some((r) => r.status === 'rejected')) {
      await this.#releaseMarkers(taken.map((t) => t.marker));
      throw firstFailure(results);
    }
    return taken;
  }

  /** Best effort: a marker left behind only means its event is not counted (never twice). */
  async #releaseMarkers(markers: readonly Marker[]): Promise<void> {
    const results = await settleBounded(markers, this.#concurrency, (marker) =>
      this.#doc.send(new DeleteCommand({ TableName: this.#table, Key: this.#markerKey(marker) })),
    );
    const lost = results.filter((r) => r.status === 'rejected');
    if (lost.length > 0) {
      const first = lost[0] as PromiseRejectedResult;
      logger.warn('guard event markers not released', {
        markers: lost.length,
        error: errorName(first.reason),
      });
    }
  }

  #markerKey(marker: Marker): Item {
    return this.#key(`${GUARD_KEY_PREFIX}event:${marker.event}`, marker.scope);
  }

  async #write(write: BucketWrite): Promise<void> {
    const entries = Object.entries(write.counts);
    const names: Record<string, string> = { '#ttl': this.#ttl };
    const values: Record<string, unknown> = { ':ttl': this.#expiresAt(write.hour) };
    entries.forEach(([counter, n], i) => {
      names[`#c${i}`] = counter;
      values[`:c${i}`] = n;
    });
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: this.#key(bucketPartition(write.scope), write.hour),
          UpdateExpression: `SET #ttl = :ttl ADD ${entries.map((_, i) => `#c${i} :c${i}`).join(', ')}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      rethrow(error, 'adding to the guard counters');
    }
  }
}

interface PlainIncrement {
  readonly scope: string;
  readonly hour: string;
  readonly counts: GuardCounts;
}

interface EventedIncrement extends PlainIncrement {
  readonly marker: Marker;
}

/**
 * Checks every increment (before anything is written), drops those that count nothing and repeats
 * of an event for a scope already in the call, and splits them by whether they carry an event.
 */
function distinct(increments: readonly GuardIncrement[]): {
  plain: PlainIncrement[];
  evented: EventedIncrement[];
} {
  for (const increment of increments) checkIncrement(increment);
  const plain: PlainIncrement[] = [];
  const evented: EventedIncrement[] = [];
  const seen = new Set<string>();
  for (const { scope, hour, counts, eventId } of increments) {
    if (!Object.values(counts).some((n) => n > 0)) continue;
    const increment = { scope: scopeKey(scope), hour, counts };
    if (eventId === undefined) {
      plain.push(increment);
      continue;
    }
    const event = createHash('sha256').update(eventId).digest('hex').slice(0, 32);
    const once = `${event} ${increment.scope}`;
    if (seen.has(once)) continue;
    seen.add(once);
    evented.push({ ...increment, marker: { event, scope: increment.scope, hour } });
  }
  return { plain, evented };
}

/** One write per scope and hour, whatever the number of increments for it. */
function merge(increments: readonly (PlainIncrement | EventedIncrement)[]): BucketWrite[] {
  const writes = new Map<string, BucketWrite>();
  for (const increment of increments) {
    const at = `${increment.scope}@${increment.hour}`;
    let write = writes.get(at);
    if (write === undefined) {
      write = { scope: increment.scope, hour: increment.hour, counts: {}, markers: [] };
      writes.set(at, write);
    }
    for (const [counter, n] of Object.entries(increment.counts) as [GuardCounter, number][]) {
      if (n > 0) write.counts[counter] = (write.counts[counter] ?? 0) + n;
    }
    if ('marker' in increment) write.markers.push(increment.marker);
  }
  return [...writes.values()];
}

/**
 * `key:<keyId>` or `tenant:<tenant>`, the id percent-encoded: no id can hold the ":" or "@" that
 * separate the parts of an item key, so no two scopes (or a scope and an hour) share one.
 */
export function scopeKey(scope: GuardScopeRef): string {
  checkScope(scope);
  // At most 9 characters per UTF-16 unit of a 200-unit id: under DynamoDB's 2048-byte partition key.
  return `${scope.kind}:${encodeURIComponent(scope.kind === 'key' ? scope.keyId : scope.tenant)}`;
}

function bucketPartition(scope: string): string {
  return `${GUARD_KEY_PREFIX}${scope}`;
}

function countsOf(item: Item): GuardCounts {
  const counts: Partial<Record<GuardCounter, number>> = {};
  for (const counter of GUARD_COUNTERS) {
    const n = item[counter];
    if (typeof n === 'number') counts[counter] = n;
  }
  return counts;
}

/**
 * `fn` over every item, at most `limit` at a time, each outcome in the item's place: one failure
 * neither stops the others nor hides which ones succeeded.
 */
async function settleBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i] as T) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function firstFailure(results: readonly PromiseSettledResult<unknown>[]): unknown {
  return (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
}
