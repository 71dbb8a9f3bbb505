import { ConfigurationError } from '../../shared/errors.ts';
import type { ApiKeyReader, Clock } from '../ports.ts';
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
    const ttlSeconds = options.ttlSeconds ?? DEFAULT_KEY_CACHE_SECONDS;
    if (!(ttlSeconds > 0 && ttlSeconds <= MAX_KEY_CACHE_SECONDS)) {
      throw new ConfigurationError(
        `the API key cache TTL must be more than 0 and at most ${MAX_KEY_CACHE_SECONDS} seconds (so a suspended key stops working within that bound), got ${ttlSeconds}`,
      );
    }
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
