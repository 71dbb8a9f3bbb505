import { ConfigurationError, TransientError } from '../../shared/errors.ts';
import type { ApiKeyDirectory, ApiKeyReader, Clock } from '../ports.ts';
import type { ApiKey } from './api-key.ts';

/** How long a lookup is reused by default: a busy key reads DynamoDB about twice a minute per instance. */
export const DEFAULT_KEY_CACHE_SECONDS = 30;
/**
 * The promise (issue 3): a suspended or revoked key stops working within 60 s. An entry lives at
 * most `ttlSeconds` from the moment its read *started*, so a status change written at time T is
 * seen by every instance by T + ttl; a longer TTL would break the promise and is refused.
 */
export const MAX_KEY_CACHE_SECONDS = 60;
/** Per instance; an entry is a few hundred bytes, so the cap keeps the cache well under 1 MB. */
export const DEFAULT_KEY_CACHE_ENTRIES = 1000;

export interface KeyCacheOptions {
  /** @default DEFAULT_KEY_CACHE_SECONDS; at most MAX_KEY_CACHE_SECONDS */
  readonly ttlSeconds?: number;
  /** Bound of each of the two maps (found keys, unknown ids). @default DEFAULT_KEY_CACHE_ENTRIES */
  readonly maxEntries?: number;
  readonly clock: Clock;
}

function checkedTtl(ttlSeconds: number = DEFAULT_KEY_CACHE_SECONDS): number {
  if (!(ttlSeconds > 0 && ttlSeconds <= MAX_KEY_CACHE_SECONDS)) {
    throw new ConfigurationError(
      `the API key cache TTL must be more than 0 and at most ${MAX_KEY_CACHE_SECONDS} seconds (so a suspended key stops working within that bound), got ${ttlSeconds}`,
    );
  }
  return ttlSeconds;
}

interface Entry {
  readonly key: ApiKey | undefined;
  /** Epoch ms when the read that produced this entry started. */
  readonly readAt: number;
}

/**
 * An ApiKeyReader that remembers lookups, found and not found, for a short time, so a busy key
 * costs one DynamoDB read per instance per TTL instead of one per request. Misses are cached too
 * (a client retrying with a wrong key should not read the table each time), in their own map so a
 * flood of made-up keys can only evict other made-up keys, never the keys in real use. Both maps
 * are least-recently-used with a fixed cap. Failed reads are not cached; concurrent lookups of one
 * id share a single read.
 */
export class CachedApiKeys implements ApiKeyReader {
  readonly #source: ApiKeyReader;
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #clock: Clock;
  readonly #found = new Map<string, Entry>();
  readonly #missing = new Map<string, Entry>();
  readonly #reading = new Map<string, Promise<ApiKey | undefined>>();

  constructor(source: ApiKeyReader, options: KeyCacheOptions) {
    const ttlSeconds = checkedTtl(options.ttlSeconds);
    const maxEntries = options.maxEntries ?? DEFAULT_KEY_CACHE_ENTRIES;
    if (!(Number.isInteger(maxEntries) && maxEntries > 0)) {
      throw new ConfigurationError(`the API key cache size must be a positive integer, got ${maxEntries}`);
    }
    this.#source = source;
    this.#ttlMs = ttlSeconds * 1000;
    this.#max = maxEntries;
    this.#clock = options.clock;
  }

  /** How many lookups are held (found + missing), for tests and metrics. */
  get size(): number {
    return this.#found.size + this.#missing.size;
  }

  async get(keyId: string): Promise<ApiKey | undefined> {
    const now = this.#clock().getTime();
    const cached = this.#fresh(this.#found, keyId, now) ?? this.#fresh(this.#missing, keyId, now);
    if (cached) return cached.key;
    const pending = this.#reading.get(keyId);
    if (pending) return pending;
    const read = this.#read(keyId, now);
    this.#reading.set(keyId, read);
    try {
      return await read;
    } finally {
      this.#reading.delete(keyId);
    }
  }

  async #read(keyId: string, readAt: number): Promise<ApiKey | undefined> {
    const key = await this.#source.get(keyId);
    this.#found.delete(keyId);
    this.#missing.delete(keyId);
    const map = key === undefined ? this.#missing : this.#found;
    map.set(keyId, { key, readAt });
    // Maps iterate in insertion order, and a hit re-inserts: the first entry is the least recent.
    if (map.size > this.#max) {
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
    }
    return key;
  }

  #fresh(map: Map<string, Entry>, keyId: string, now: number): Entry | undefined {
    const entry = map.get(keyId);
    if (entry === undefined) return undefined;
    // A clock that went backwards counts as expired: the bound must hold whichever way time moves.
    if (now >= entry.readAt + this.#ttlMs || now < entry.readAt) {
      map.delete(keyId);
      return undefined;
    }
    map.delete(keyId);
    map.set(keyId, entry);
    return entry;
  }
}

/** After a failed read, how long the directory waits before reading the table again. */
export const DIRECTORY_RETRY_MS = 1_000;

export interface KeyDirectoryCacheOptions {
  /** @default DEFAULT_KEY_CACHE_SECONDS; at most MAX_KEY_CACHE_SECONDS */
  readonly ttlSeconds?: number;
  readonly clock: Clock;
}

/**
 * The whole key list, read at most once per TTL per process and shared by every caller (the SMTP
 * server asks it on each connection, to find the key of a source address). Concurrent callers
 * share one read, and the list's age counts from when its read started, as in CachedApiKeys.
 *
 * Past the TTL, the caller that finds the list old starts a refresh and, like every caller while
 * it runs, is answered from the last list at once, as long as that list is younger than
 * MAX_KEY_CACHE_SECONDS; so a slow Scan never holds connections up, and a change is seen by the
 * callers after the refresh lands (TTL plus one Scan). When a refresh fails, the last list is
 * served on under the same bound: a key revoked or suspended at T must stop relaying by T + 60 s
 * even while DynamoDB is unreachable, so past that the caller gets a TransientError (SMTP: 451,
 * the client retries) instead of an older answer. With a 30 s TTL that leaves 30 s of outage
 * unnoticed by clients; with a 60 s TTL none. After a failure the table is not read again for
 * DIRECTORY_RETRY_MS, so an outage does not become one Scan per connection.
 */
export class CachedKeyDirectory implements ApiKeyDirectory {
  readonly #source: ApiKeyDirectory;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  #last: { readonly keys: readonly ApiKey[]; readonly readAt: number } | undefined;
  #failure: { readonly at: number; readonly error: unknown } | undefined;
  #reading: Promise<readonly ApiKey[]> | undefined;

  constructor(source: ApiKeyDirectory, options: KeyDirectoryCacheOptions) {
    this.#source = source;
    this.#ttlMs = checkedTtl(options.ttlSeconds) * 1000;
    this.#clock = options.clock;
  }

  async list(): Promise<ApiKey[]> {
    const now = this.#clock().getTime();
    const age = this.#ageOf(now);
    if (age < this.#ttlMs) return [...(this.#last?.keys ?? [])];
    const failure = this.#failure;
    if (failure !== undefined && now >= failure.at && now < failure.at + DIRECTORY_RETRY_MS) {
      return this.#staleOr(now, failure.error);
    }
    const reading = this.#refresh(now);
    // Past the TTL but within the bound, the last list answers at once while the refresh runs,
    // so a slow Scan never holds a connection up; past the bound, only the refresh may answer.
    if (this.#last !== undefined && age < MAX_KEY_CACHE_SECONDS * 1000) return [...this.#last.keys];
    try {
      return [...(await reading)];
    } catch (error) {
      return this.#staleOr(this.#clock().getTime(), error);
    }
  }

  /** The refresh under way, or a new one: one at a time, whoever asks. */
  #refresh(now: number): Promise<readonly ApiKey[]> {
    if (this.#reading === undefined) {
      const reading = this.#read(now).finally(() => {
        this.#reading = undefined;
      });
      // Nobody may be waiting for it: #read keeps the failure for the callers that come next.
      reading.catch(() => undefined);
      this.#reading = reading;
    }
    return this.#reading;
  }

  async #read(readAt: number): Promise<readonly ApiKey[]> {
    try {
      const keys = await this.#source.list();
      this.#last = { keys, readAt };
      this.#failure = undefined;
      return keys;
    } catch (error) {
      this.#failure = { at: this.#clock().getTime(), error };
      throw error;
    }
  }

  /** The last good list while it is within the bound; otherwise the failure, as a TransientError. */
  #staleOr(now: number, error: unknown): ApiKey[] {
    if (this.#last !== undefined && this.#ageOf(now) < MAX_KEY_CACHE_SECONDS * 1000) {
      return [...this.#last.keys];
    }
    const why = error instanceof Error ? error.message : String(error);
    throw new TransientError(
      this.#last === undefined
        ? `the API key list could not be read: ${why}`
        : `the API key list could not be read, and the last one read is ${MAX_KEY_CACHE_SECONDS} s old or more (a revoked key must stop within ${MAX_KEY_CACHE_SECONDS} s): ${why}`,
      { cause: error },
    );
  }

  /** Age of the last good list; infinite without one, or when the clock stepped back past it. */
  #ageOf(now: number): number {
    if (this.#last === undefined || now < this.#last.readAt) return Number.POSITIVE_INFINITY;
    return now - this.#last.readAt;
  }
}
