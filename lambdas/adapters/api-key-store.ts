import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { ScopeGuardState } from '../domain/guard/evaluate.ts';
import { readGuardMark } from '../domain/guard/state.ts';
import {
  type ApiKey,
  ApiKeyNotFoundError,
  ApiKeyRevokedError,
  type ApiKeySummary,
  type KeyStatus,
  summarise,
} from '../domain/keys/api-key.ts';
import { ApiKeyLockedError, assertRelayNetworksFree } from '../domain/keys/relay.ts';
import type { ApiKeyDirectory, ApiKeyReader, Clock, GuardKeyWriter } from '../domain/ports.ts';
import { ConflictError } from '../shared/errors.ts';
import { Keys } from '../shared/names.ts';
import { logger } from '../shared/observability.ts';
import { isConditionFailed, rethrow } from './aws-errors.ts';

/**
 * The item that serialises creations of no-AUTH keys (see `create`). Not a key: key ids are
 * lower-case letters and digits (`keyIdOf`), so no token ever looks it up, and `list` skips it.
 */
export const RELAY_LOCK_ID = '#lock:smtp-relay-networks';

export interface RelayLockOptions {
  /** How long a holder may keep the lock before another creation may take it over. @default 15000 */
  readonly leaseMs?: number;
  /** How long a creation waits for a held lock before giving up. @default 20000 (one lease and some) */
  readonly waitMs?: number;
  /** Pause between attempts to take a held lock. @default 200 */
  readonly pollMs?: number;
}

/**
 * A key item as the doors and the guard read it. A `guard` mark the guard did not write (a corrupt
 * or hand-edited item) reads as no mark for that scope and is reported, so the key's requests are
 * not all answered 500 and the guard's next evaluation writes a good state over it.
 */
function keyOf(item: Record<string, unknown> | undefined): ApiKey {
  const key = item as unknown as ApiKey;
  if (key.guard === undefined) return key;
  const { mark, problems } = readGuardMark(key.guard);
  if (problems.length === 0) return key;
  logger.warn('API key guard mark unreadable; read as none', { keyId: key.keyId, problems });
  const { guard: _corrupt, ...rest } = key;
  return mark === undefined ? rest : { ...rest, guard: mark };
}

/** Keys of one tenant written at once by `markTenant`: a tenant has a handful of keys. */
const MARK_CONCURRENCY = 8;

/**
 * The ApiKeys table. Items hold the SHA-256 of the key, never the key. It is also where the abuse
 * guard writes its decisions (GuardKeyWriter): the key item is read by every request anyway, so the
 * guard's state on it costs the hot path nothing.
 */
export class DynamoApiKeyStore implements ApiKeyReader, ApiKeyDirectory, GuardKeyWriter {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #lock: Required<RelayLockOptions>;
  readonly #clock: Clock;

  constructor(
    doc: DynamoDBDocumentClient,
    table: string,
    options: { readonly relayLock?: RelayLockOptions; readonly clock?: Clock } = {},
  ) {
    this.#doc = doc;
    this.#table = table;
    this.#lock = { leaseMs: 15_000, waitMs: 20_000, pollMs: 200, ...options.relayLock };
    this.#clock = options.clock ?? (() => new Date());
  }

  async get(keyId: string): Promise<ApiKey | undefined> {
    try {
      const out = await this.#doc.send(
        new GetCommand({ TableName: this.#table, Key: { [Keys.apiKeys.partition]: keyId } }),
      );
      return out.Item === undefined ? undefined : keyOf(out.Item);
    } catch (error) {
      rethrow(error, 'reading the API key');
    }
  }

  async put(key: ApiKey): Promise<void> {
    try {
      await this.#doc.send(new PutCommand({ TableName: this.#table, Item: key }));
    } catch (error) {
      rethrow(error, 'writing the API key');
    }
  }

  /**
   * Writes a new key; never replaces one (ConflictError if the id is taken). A key that relays
   * over SMTP without AUTH is refused (RelayNetworksOverlapError) when another non-revoked such
   * key relays for an address of its networks. That check reads every key and then writes, so two
   * creations at once could each miss the other: they are serialised by a lock item taken with a
   * conditional write (DynamoDB transactions would do it in one step, but local mode's emulator
   * has none). The lock is a lease: a creation that dies holding it blocks the next one for at
   * most `leaseMs`. What the lease cannot stop: a holder paused longer than the lease between its
   * read and its write (a laptop put to sleep), or clocks of two operators' machines apart by
   * more than it; `relayKeyFor` then relays for neither key rather than pick one.
   */
  async create(key: ApiKey): Promise<void> {
    if (key.smtpWithoutAuth !== true) return this.#insert(key);
    const owner = randomUUID();
    await this.#takeRelayLock(owner);
    try {
      assertRelayNetworksFree(key, await this.list({ consistent: true }));
      await this.#insert(key);
    } finally {
      await this.#releaseRelayLock(owner);
    }
  }

  async #insert(key: ApiKey): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: key,
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': Keys.apiKeys.partition },
        }),
      );
    } catch (error) {
      if (!isConditionFailed(error)) rethrow(error, 'writing the API key');
      throw new ConflictError(`an API key with the id ${key.keyId} exists already; nothing was written`, {
        cause: error,
      });
    }
  }

  async #takeRelayLock(owner: string): Promise<void> {
    const giveUpAt = Date.now() + this.#lock.waitMs;
    for (;;) {
      const now = Date.now();
      try {
        await this.#doc.send(
          new PutCommand({
            TableName: this.#table,
            Item: {
              [Keys.apiKeys.partition]: RELAY_LOCK_ID,
              lockOwner: owner,
              lockUntil: now + this.#lock.leaseMs,
            },
            ConditionExpression: 'attribute_not_exists(#id) OR #until < :now',
            ExpressionAttributeNames: { '#id': Keys.apiKeys.partition, '#until': 'lockUntil' },
            ExpressionAttributeValues: { ':now': now },
          }),
        );
        return;
      } catch (error) {
        if (!isConditionFailed(error)) rethrow(error, 'taking the SMTP relay lock');
        if (Date.now() >= giveUpAt) {
          const held = (await this.get(RELAY_LOCK_ID)) as { readonly lockUntil?: unknown } | undefined;
          const until = Number(held?.lockUntil ?? now);
          throw new ApiKeyLockedError(new Date(until), { cause: error });
        }
      }
      await sleep(this.#lock.pollMs);
    }
  }

  /** Gives the lock back if it is still ours; a failure only delays the next creation by a lease. */
  async #releaseRelayLock(owner: string): Promise<void> {
    try {
      await this.#doc.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { [Keys.apiKeys.partition]: RELAY_LOCK_ID },
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'lockOwner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
    } catch {
      // Taken over after our lease ran out, or unreachable: the lease frees it either way.
    }
  }

  /**
   * Sets `guard.key` (and `status` when given) in one conditional write: the key must exist and
   * not be revoked. Only the `key` part of the guard map is written, so a concurrent `markTenant`
   * (which writes `guard.tenant`) is never lost.
   */
  async setKeyGuard(keyId: string, state: ScopeGuardState, status?: 'active' | 'suspended'): Promise<ApiKey> {
    if (keyId === RELAY_LOCK_ID) throw new ApiKeyNotFoundError(keyId);
    if (status !== undefined && status !== 'active' && status !== 'suspended') {
      throw new RangeError(`the guard sets a key active or suspended, never ${String(status)}`);
    }
    await this.#ensureGuardMap(keyId);
    const now = this.#clock().toISOString();
    try {
      const out = await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.apiKeys.partition]: keyId },
          UpdateExpression: `SET #guard.#scope = :state, #updatedAt = :now${status === undefined ? '' : ', #status = :status'}`,
          ConditionExpression: 'attribute_exists(#id) AND #status <> :revoked',
          ExpressionAttributeNames: {
            '#id': Keys.apiKeys.partition,
            '#guard': 'guard',
            '#scope': 'key',
            '#status': 'status',
            '#updatedAt': 'updatedAt',
          },
          ExpressionAttributeValues: {
            ':state': state,
            ':now': now,
            ':revoked': 'revoked',
            ...(status === undefined ? {} : { ':status': status }),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return keyOf(out.Attributes);
    } catch (error) {
      if (!isConditionFailed(error)) rethrow(error, 'writing the guard state of the API key');
      const current = await this.get(keyId);
      if (current === undefined) throw new ApiKeyNotFoundError(keyId, { cause: error });
      throw new ApiKeyRevokedError(keyId, { cause: error });
    }
  }

  /**
   * Writes `guard.tenant` on each of the tenant's keys, revoked ones too (only that field: a
   * revoked key stays revoked): a revoked key sends nothing new, but the mail it queued before it
   * was revoked is still sent, and the sender reads the tenant's hold from the key of each job, so
   * a key left unmarked would send its queued mail through the tenant's pause. Returns every key of
   * the tenant as it is now, revoked ones included (GuardService keeps the list as the tenant's keys, as `keysOf` gives
   * them); a key deleted meanwhile is left out. A consistent scan, so a key created a moment ago is
   * marked too.
   */
  async markTenant(tenant: string, state: ScopeGuardState): Promise<ApiKey[]> {
    const keys = await this.#scan({ tenant, consistent: true });
    const result: ApiKey[] = [];
    for (let i = 0; i < keys.length; i += MARK_CONCURRENCY) {
      const written = await Promise.all(
        keys.slice(i, i + MARK_CONCURRENCY).map((k) => this.#markTenantOn(k.keyId, state)),
      );
      for (const key of written) if (key !== undefined) result.push(key);
    }
    return result.sort((a, b) => a.keyId.localeCompare(b.keyId));
  }

  async keysOf(tenant: string): Promise<ApiKey[]> {
    return (await this.#scan({ tenant })).sort((a, b) => a.keyId.localeCompare(b.keyId));
  }

  async #markTenantOn(keyId: string, state: ScopeGuardState): Promise<ApiKey | undefined> {
    await this.#ensureGuardMap(keyId, { revoked: true });
    try {
      const out = await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.apiKeys.partition]: keyId },
          UpdateExpression: 'SET #guard.#scope = :state',
          ConditionExpression: 'attribute_exists(#id)',
          ExpressionAttributeNames: {
            '#id': Keys.apiKeys.partition,
            '#guard': 'guard',
            '#scope': 'tenant',
          },
          ExpressionAttributeValues: { ':state': state },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return keyOf(out.Attributes);
    } catch (error) {
      // Deleted since the scan: not listed.
      if (isConditionFailed(error)) return this.get(keyId);
      rethrow(error, 'writing the tenant’s guard state on an API key');
    }
  }

  /**
   * Creates an empty `guard` map on the key unless it has one (or is revoked, unless `revoked`:
   * only the tenant's copy is ever written on a revoked key). DynamoDB cannot SET a nested path
   * whose parent map is missing, and one expression cannot both create the map and set inside it
   * (overlapping paths); a read-modify-write of the whole map would lose a concurrent write to the
   * other half. So: create it if absent (a no-op when there or when the key is gone), then set
   * the half. Two writes, paid only when the guard acts.
   */
  async #ensureGuardMap(keyId: string, options: { readonly revoked?: boolean } = {}): Promise<void> {
    const ofRevoked = options.revoked === true;
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.apiKeys.partition]: keyId },
          UpdateExpression: 'SET #guard = :empty',
          // A mark that is not a map (a corrupt item) is replaced too: nothing could be set inside it.
          ConditionExpression: `attribute_exists(#id) AND (attribute_not_exists(#guard) OR NOT attribute_type(#guard, :map))${ofRevoked ? '' : ' AND #status <> :revoked'}`,
          ExpressionAttributeNames: {
            '#id': Keys.apiKeys.partition,
            '#guard': 'guard',
            ...(ofRevoked ? {} : { '#status': 'status' }),
          },
          ExpressionAttributeValues: {
            ':empty': {},
            ':map': 'M',
            ...(ofRevoked ? {} : { ':revoked': 'revoked' }),
          },
        }),
      );
    } catch (error) {
      if (!isConditionFailed(error)) rethrow(error, 'preparing the API key for the guard state');
    }
  }

  /** Every key (the relay lock skipped), or one tenant's, following every page of the Scan. */
  async #scan(
    options: { readonly tenant?: string; readonly pageSize?: number; readonly consistent?: boolean } = {},
  ): Promise<ApiKey[]> {
    const keys: ApiKey[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      try {
        const out = await this.#doc.send(
          new ScanCommand({
            TableName: this.#table,
            ...(options.tenant === undefined
              ? {}
              : {
                  FilterExpression: '#tenant = :tenant',
                  ExpressionAttributeNames: { '#tenant': 'tenant' },
                  ExpressionAttributeValues: { ':tenant': options.tenant },
                }),
            ...(options.pageSize ? { Limit: options.pageSize } : {}),
            ...(options.consistent ? { ConsistentRead: true } : {}),
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        for (const item of out.Items ?? []) {
          if (item[Keys.apiKeys.partition] !== RELAY_LOCK_ID) keys.push(keyOf(item));
        }
        start = out.LastEvaluatedKey;
      } catch (error) {
        rethrow(error, 'listing the API keys');
      }
    } while (start);
    return keys;
  }

  /**
   * Every key, whole (with its hash: the SMTP relay works with them as `get` returns them),
   * ordered by tenant then key id. A Scan that follows every page: one small item per key, read
   * by the CLI and, through CachedKeyDirectory, once per TTL by each SMTP task. `pageSize` caps
   * the items per Scan request (DynamoDB's own cap is 1 MB per page); `consistent` reads every
   * write that finished before it (the overlap check).
   */
  async list(options: { readonly pageSize?: number; readonly consistent?: boolean } = {}): Promise<ApiKey[]> {
    const keys = await this.#scan(options);
    return keys.sort((a, b) =>
      a.tenant === b.tenant ? a.keyId.localeCompare(b.keyId) : a.tenant.localeCompare(b.tenant),
    );
  }

  /**
   * Sets a key's status in one conditional write: the key must exist, and a revoked key stays
   * revoked (revoking again is allowed and changes nothing but `updatedAt`). Throws
   * ApiKeyNotFoundError or ApiKeyRevokedError; returns the status it had and the key as it is now.
   */
  async setStatus(
    keyId: string,
    status: KeyStatus,
    now: Date = new Date(),
  ): Promise<{ previous: KeyStatus; key: ApiKeySummary }> {
    const condition =
      status === 'revoked' ? 'attribute_exists(#id)' : 'attribute_exists(#id) AND #status <> :revoked';
    try {
      const out = await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [Keys.apiKeys.partition]: keyId },
          UpdateExpression: 'SET #status = :status, #updatedAt = :now',
          ConditionExpression: condition,
          ExpressionAttributeNames: {
            '#id': Keys.apiKeys.partition,
            '#status': 'status',
            '#updatedAt': 'updatedAt',
          },
          ExpressionAttributeValues: {
            ':status': status,
            ':now': now.toISOString(),
            ...(status === 'revoked' ? {} : { ':revoked': 'revoked' }),
          },
          ReturnValues: 'ALL_OLD',
        }),
      );
      const before = out.Attributes as ApiKey;
      return {
        previous: before.status,
        key: summarise({ ...before, status, updatedAt: now.toISOString() }),
      };
    } catch (error) {
      if (!isConditionFailed(error)) rethrow(error, 'updating the API key');
      // Which condition failed: the key is gone, or it is revoked. A second read tells them apart.
      const current = await this.get(keyId);
      if (current === undefined) throw new ApiKeyNotFoundError(keyId, { cause: error });
      throw new ApiKeyRevokedError(keyId, { cause: error });
    }
  }
}
