import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import type { SuppressionStore } from '../domain/ports.ts';
import {
  SUPPRESSION_REASONS,
  type Suppression,
  type SuppressionReason,
  stronger,
} from '../domain/suppression/suppression.ts';
import { InvalidCursorError } from '../shared/errors.ts';
import { Keys, TENANT_KEY_PREFIX } from '../shared/names.ts';
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
  /** The owning tenant of a tenant's entry (also spelled in its key); absent on a global entry. */
  readonly tenant?: string;
}

/**
 * Cursor plaintexts are padded to a multiple of this many bytes: longer than any key Baton writes
 * (`tenant:` + 64-character tenant + `:` + 254-character address, or a counter's key).
 */
const CURSOR_BLOCK = 512;

/** What a cursor is bound to: the tenant it was handed to, or the operator's unscoped list. */
function cursorScope(tenant: string | undefined): Buffer {
  return Buffer.from(tenant === undefined ? 'global' : `tenant ${tenant}`, 'utf8');
}

/** The table key of an address's (or pseudonym's) entry: plain when global, prefixed for a tenant. */
function itemKey(address: string, tenant: string | undefined): string {
  return tenant === undefined ? address : `${TENANT_KEY_PREFIX}${tenant}:${address}`;
}

function toItem(s: Suppression): SuppressionItem {
  return {
    address: itemKey(s.address, s.tenant),
    ...(s.tenant === undefined ? {} : { tenant: s.tenant }),
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
  const tenant = typeof i.tenant === 'string' ? i.tenant : undefined;
  return {
    address: i.address.slice(itemKey('', tenant).length),
    reason,
    detail: i.detail ?? null,
    source: i.source ?? null,
    createdAt: i.createdAt,
    expiresAt: typeof i.expiresAt === 'number' ? new Date(i.expiresAt * 1000).toISOString() : null,
    severity: i.severity,
    ...(i.evidence ? { evidence: i.evidence } : {}),
    ...(tenant === undefined ? {} : { tenant }),
  };
}

/**
 * The Suppressions table: global entries keyed by the normalised address, a tenant's entries by
 * `tenant:<tenant>:<address>`, soft-bounce counters by `softbounce:<address>` (no `reason`), and an
 * erased address's tombstone by its pseudonym (`erased:<hex>`, see domain/erasure/erasure.ts) in the scope
 * of the tenant that erased it (older tombstones, from before scopes, are global).
 *
 * List cursors are sealed (AES-256-GCM under `cursorSecret`): a page may end on an item the caller
 * must not see (another tenant's entry, a counter), and its key is the position to go on from.
 */
export class DynamoSuppressionStore implements SuppressionStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #cursorKey: Buffer;

  /**
   * @param cursorSecret what list cursors are sealed under; every function that answers the list
   *   must get the same one. @default a random one (cursors then work only in this process)
   */
  constructor(doc: DynamoDBDocumentClient, table: string, cursorSecret?: string) {
    this.#doc = doc;
    this.#table = table;
    this.#cursorKey =
      cursorSecret === undefined
        ? randomBytes(32)
        : createHmac('sha256', cursorSecret).update('baton suppression list cursor').digest();
  }

  async getMany(addresses: readonly string[], tenant?: string): Promise<Map<string, Suppression>> {
    const unique = [...new Set(addresses)];
    const keys = unique.flatMap((a) => (tenant === undefined ? [a] : [a, itemKey(a, tenant)]));
    const items = await batchGetAll(
      this.#doc,
      this.#table,
      keys.map((key) => ({ [Keys.suppressions.partition]: key })),
      'reading the suppression list',
    );
    const found = new Map<string, Suppression>();
    for (const item of items) {
      // A counter under a legacy `softbounce#…` key (itself a valid address) is no suppression.
      if (typeof item.reason !== 'string') continue;
      const s = fromItem(item);
      const best = stronger(found.get(s.address), s);
      if (best) found.set(s.address, best);
    }
    return found;
  }

  async get(address: string, tenant?: string): Promise<Suppression | undefined> {
    const [global, own] = await Promise.all([
      this.#getItem(address),
      tenant === undefined ? undefined : this.#getItem(itemKey(address, tenant)),
    ]);
    return stronger(global, own);
  }

  async #getItem(key: string): Promise<Suppression | undefined> {
    try {
      const out = await this.#doc.send(
        new GetCommand({ TableName: this.#table, Key: { [Keys.suppressions.partition]: key } }),
      );
      // A soft-bounce counter is no suppression (only a legacy `softbounce#…` key can be read here).
      return out.Item && typeof out.Item.reason === 'string' ? fromItem(out.Item) : undefined;
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
          // A counter left under the old `softbounce#<address>` key (itself a valid address) is no
          // evidence either: it has no reason, and the address's own suppression replaces it.
          ConditionExpression:
            'attribute_not_exists(#a) OR attribute_not_exists(#reason) OR severity < :severity OR #ttl < :now',
          ExpressionAttributeNames: {
            '#a': Keys.suppressions.partition,
            '#reason': 'reason',
            '#ttl': Keys.suppressions.ttl,
          },
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

  async delete(address: string, tenant?: string): Promise<void> {
    try {
      await this.#doc.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { [Keys.suppressions.partition]: itemKey(address, tenant) },
        }),
      );
    } catch (error) {
      rethrow(error, 'deleting a suppression');
    }
  }

  async list(
    limit: number,
    cursor?: string,
    tenant?: string,
  ): Promise<{ items: Suppression[]; nextCursor: string | null }> {
    const start = cursor === undefined ? undefined : this.#openCursor(cursor, tenant);
    try {
      const out = await this.#doc.send(
        new ScanCommand({
          TableName: this.#table,
          Limit: limit,
          // Soft-bounce counters share the table but are not suppressions: they are the items
          // without a reason (whatever their key, so counters of the old `softbounce#` scheme stay
          // hidden too, while an address that merely looks like one is listed). Besides, only
          // global entries (a plain address: tombstones from before scopes have no "@") and the
          // caller's own. The filter runs after Limit, so a page may hold fewer items than asked;
          // the cursor still moves on.
          FilterExpression:
            tenant === undefined
              ? 'attribute_exists(#reason) AND attribute_not_exists(#tenant) AND contains(#a, :at)'
              : 'attribute_exists(#reason) AND (#tenant = :tenant OR (attribute_not_exists(#tenant) AND contains(#a, :at)))',
          ExpressionAttributeNames: {
            '#reason': 'reason',
            '#tenant': 'tenant',
            '#a': Keys.suppressions.partition,
          },
          ExpressionAttributeValues: { ':at': '@', ...(tenant === undefined ? {} : { ':tenant': tenant }) },
          ...(start ? { ExclusiveStartKey: { [Keys.suppressions.partition]: start } } : {}),
        }),
      );
      const last = out.LastEvaluatedKey?.[Keys.suppressions.partition];
      return {
        items: (out.Items ?? []).map(fromItem),
        nextCursor: typeof last === 'string' ? this.#sealCursor(last, tenant) : null,
      };
    } catch (error) {
      rethrow(error, 'listing suppressions');
    }
  }

  /**
   * GCM's ciphertext is as long as its plaintext, and a page may end on another tenant's entry:
   * the key is padded to a fixed size first (a longer one, which no address makes, to a multiple
   * of it), or the cursor's length would tell that tenant's tenant-and-address length, entry by
   * entry. The tenant it was handed to is bound in as associated data, so it opens for no other.
   */
  #sealCursor(key: string, tenant: string | undefined): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#cursorKey, iv);
    cipher.setAAD(cursorScope(tenant));
    const body = Buffer.from(key, 'utf8');
    const size = Math.ceil((body.length + 2) / CURSOR_BLOCK) * CURSOR_BLOCK;
    const padded = Buffer.alloc(size);
    padded.writeUInt16BE(body.length, 0);
    body.copy(padded, 2);
    const sealed = Buffer.concat([cipher.update(padded), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
  }

  /**
   * Anything but a cursor this store sealed for this tenant is refused, not sent to DynamoDB. The
   * longest one seals DynamoDB's largest key (2048 bytes, padded to 2560): 3451 characters.
   */
  #openCursor(cursor: string, tenant: string | undefined): string {
    const raw = /^[A-Za-z0-9_-]{40,3500}$/.test(cursor) ? Buffer.from(cursor, 'base64url') : Buffer.alloc(0);
    try {
      if (raw.length < 28 + CURSOR_BLOCK) throw new InvalidCursorError('not a suppression list cursor');
      const decipher = createDecipheriv('aes-256-gcm', this.#cursorKey, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      decipher.setAAD(cursorScope(tenant));
      const padded = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
      const length = padded.readUInt16BE(0);
      if (length + 2 > padded.length) throw new InvalidCursorError('not a suppression list cursor');
      return padded.subarray(2, 2 + length).toString('utf8');
    } catch (error) {
      throw new InvalidCursorError('not a suppression list cursor', { cause: error });
    }
  }
}
