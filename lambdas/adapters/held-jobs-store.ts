import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import type { HeldEntry } from '../domain/guard/hold.ts';
// Entries per page of `list` unless asked otherwise, and the most one page may hold: the routes' own.
import { DEFAULT_HELD_PAGE, MAX_HELD_PAGE } from '../domain/guard/requests.ts';
import type { SendJob } from '../domain/message.ts';
import type { HeldJobs } from '../domain/ports.ts';
import { HELD_INDEX_PREFIX, HELD_PAYLOAD_PREFIX, Keys, type Lane } from '../shared/names.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';
import { PayloadMissingError, type S3PayloadStore } from './payload-store.ts';
import { decodeSortCursor, encodeSortCursor } from './sort-cursor.ts';

/** An index entry outlives its hold by a day, so release and cancel still find an expired one. */
const ENTRY_GRACE_SECONDS = 86_400;

/** Sort-key prefixes of the two items of an entry: by id (`get`) and by hold time (`list`). */
const BY_ID = 'id:';
const BY_TIME = 'at:';

/**
 * The object key of a held message's job. By id alone: message ids are Baton's own (`msg_<ULID>`),
 * unique across tenants; `job` still checks that the object is the entry's tenant's.
 */
export function heldJobKey(messageId: string): string {
  return `${HELD_PAYLOAD_PREFIX}${encodeURIComponent(messageId)}.json`;
}

type Item = Record<string, unknown>;

export interface HeldJobsStoreOptions {
  /** The Guard table (Keys.guard). */
  readonly table: string;
  /** The payload bucket: each job as JSON under `payloads/held/<message id>.json`. */
  readonly payloads: S3PayloadStore;
}

/**
 * Held mail (issue 13): each held message's job in the payload bucket and its entry in the Guard
 * table, in the tenant's partition `held:<tenant>`, twice: `id:<message id>` (get by id, and the
 * anchor that makes keeping twice change nothing) and `at:<held at>#<message id>` (listed oldest
 * first by one Query, paged by DynamoDB itself). Both copies are the whole entry, so neither read
 * needs the other; both expire a day after the hold does.
 *
 * Writes go job first, then the entry: a listed entry always has its job. Removal goes the other
 * way (entries, then the job). A crash between the steps leaves what a re-run completes: keeping
 * again writes a missing `at:` copy from the `id:` one; removing again deletes what is left.
 */
export class HeldJobsStore implements HeldJobs {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #payloads: S3PayloadStore;

  constructor(doc: DynamoDBDocumentClient, options: HeldJobsStoreOptions) {
    this.#doc = doc;
    this.#table = options.table;
    this.#payloads = options.payloads;
  }

  async keep(entry: HeldEntry, job: SendJob): Promise<void> {
    if (job.id !== entry.id || job.tenant !== entry.tenant) {
      throw new RangeError(`held job ${job.id} of ${job.tenant} does not belong to entry ${entry.id}`);
    }
    await this.#payloads.put(heldJobKey(entry.id), Buffer.from(JSON.stringify(job)));
    let kept = entry;
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: this.#item(entry, BY_ID),
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': Keys.guard.partition },
        }),
      );
    } catch (error) {
      if (!isConditionFailed(error)) rethrow(error, 'keeping a held message');
      // Kept before (a redelivered job held again): the first entry stands, its list copy is made sure of.
      kept = (await this.get(entry.tenant, entry.id)) ?? entry;
    }
    try {
      await this.#doc.send(new PutCommand({ TableName: this.#table, Item: this.#item(kept, BY_TIME) }));
    } catch (error) {
      rethrow(error, 'listing a held message');
    }
  }

  async list(
    tenant: string,
    options: { readonly lane?: Lane; readonly limit?: number; readonly cursor?: string } = {},
  ): Promise<{ readonly entries: HeldEntry[]; readonly cursor?: string }> {
    const limit = options.limit ?? DEFAULT_HELD_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HELD_PAGE) {
      throw new RangeError(`limit is a whole number from 1 to ${MAX_HELD_PAGE}, got ${limit}`);
    }
    const partition = partitionOf(tenant);
    let start: Item | undefined =
      options.cursor === undefined
        ? undefined
        : { [Keys.guard.partition]: partition, [Keys.guard.sort]: decodeSortCursor(options.cursor, BY_TIME) };
    const found: Item[] = [];
    // One more than the page: whether there is a next page is then known without another request.
    while (found.length <= limit) {
      let out: { Items?: Item[]; LastEvaluatedKey?: Item };
      try {
        out = await this.#doc.send(
          new QueryCommand({
            TableName: this.#table,
            KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :at)',
            ExpressionAttributeNames: {
              '#pk': Keys.guard.partition,
              '#sk': Keys.guard.sort,
              ...(options.lane === undefined ? {} : { '#entry': 'entry', '#lane': 'lane' }),
            },
            ExpressionAttributeValues: {
              ':pk': partition,
              ':at': BY_TIME,
              ...(options.lane === undefined ? {} : { ':lane': options.lane }),
            },
            ...(options.lane === undefined ? {} : { FilterExpression: '#entry.#lane = :lane' }),
            // Never a tiny page: with a lane filter, a page of 2 over a long run of the other lane's
            // entries would take a request per 2 entries.
            Limit: Math.min(MAX_HELD_PAGE, Math.max(DEFAULT_HELD_PAGE, limit + 1)),
            ConsistentRead: true,
            ...(start === undefined ? {} : { ExclusiveStartKey: start }),
          }),
        );
      } catch (error) {
        rethrow(error, 'listing held messages');
      }
      found.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
      if (start === undefined) break;
    }
    const page = found.slice(0, limit);
    const last = page.at(-1);
    return found.length > limit && last !== undefined
      ? { entries: page.map(entryOf), cursor: encodeSortCursor(String(last[Keys.guard.sort])) }
      : { entries: page.map(entryOf) };
  }

  async get(tenant: string, id: string): Promise<HeldEntry | undefined> {
    try {
      const out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { [Keys.guard.partition]: partitionOf(tenant), [Keys.guard.sort]: `${BY_ID}${id}` },
          ConsistentRead: true,
        }),
      );
      return out.Item === undefined ? undefined : entryOf(out.Item);
    } catch (error) {
      rethrow(error, 'reading a held message');
    }
  }

  /** The job, only if it is the entry's tenant's: an entry made up for another tenant's id gets nothing. */
  async job(entry: HeldEntry): Promise<SendJob | undefined> {
    let bytes: Uint8Array;
    try {
      bytes = await this.#payloads.get(heldJobKey(entry.id));
    } catch (error) {
      if (error instanceof PayloadMissingError) return undefined;
      throw error;
    }
    const job = JSON.parse(Buffer.from(bytes).toString('utf8')) as SendJob;
    return job.tenant === entry.tenant && job.id === entry.id ? job : undefined;
  }

  async remove(entry: HeldEntry): Promise<void> {
    const stored = await this.get(entry.tenant, entry.id);
    const times = new Set([entry.heldAt, ...(stored === undefined ? [] : [stored.heldAt])]);
    for (const heldAt of times) await this.#delete(entry.tenant, `${BY_TIME}${heldAt}#${entry.id}`);
    await this.#delete(entry.tenant, `${BY_ID}${entry.id}`);
    // The job is deleted only when it is this tenant's: without an entry (a re-run after a crash,
    // or an entry made up for another tenant's message id) its content says whose it is.
    if (stored !== undefined || (await this.job(entry)) !== undefined) {
      await this.#payloads.delete(heldJobKey(entry.id));
    }
  }

  async #delete(tenant: string, sort: string): Promise<void> {
    try {
      await this.#doc.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { [Keys.guard.partition]: partitionOf(tenant), [Keys.guard.sort]: sort },
        }),
      );
    } catch (error) {
      rethrow(error, 'removing a held message');
    }
  }

  #item(entry: HeldEntry, kind: typeof BY_ID | typeof BY_TIME): Item {
    const expiresAt = Math.floor(Date.parse(entry.until) / 1000) + ENTRY_GRACE_SECONDS;
    if (!Number.isFinite(expiresAt) || Number.isNaN(Date.parse(entry.heldAt))) {
      throw new RangeError(`held entry ${entry.id}: heldAt and until must be ISO times`);
    }
    return {
      [Keys.guard.partition]: partitionOf(entry.tenant),
      [Keys.guard.sort]: kind === BY_ID ? `${BY_ID}${entry.id}` : `${BY_TIME}${entry.heldAt}#${entry.id}`,
      [Keys.guard.ttl]: expiresAt,
      entry,
    };
  }
}

function partitionOf(tenant: string): string {
  if (typeof tenant !== 'string' || tenant === '') throw new RangeError('a held entry needs a tenant');
  return `${HELD_INDEX_PREFIX}${encodeURIComponent(tenant)}`;
}

function entryOf(item: Item): HeldEntry {
  return item.entry as HeldEntry;
}
