import { describe, expect, it, vi } from 'vitest';
import type { ApiKey } from '../../lambdas/domain/keys/api-key.ts';
import {
  CachedApiKeys,
  CachedKeyDirectory,
  DEFAULT_KEY_CACHE_SECONDS,
  MAX_KEY_CACHE_SECONDS,
} from '../../lambdas/domain/keys/key-cache.ts';
import { ConfigurationError, TransientError } from '../../lambdas/shared/errors.ts';
import { failureOf } from '../support/failures.ts';
import { InMemoryApiKeys, issueApiKey, testClock } from '../support/fakes.ts';

function setUp(options: { ttlSeconds?: number; maxEntries?: number } = {}) {
  const table = new InMemoryApiKeys();
  const { key } = issueApiKey();
  table.add(key);
  const reads = vi.spyOn(table, 'get');
  const clock = testClock();
  const cache = new CachedApiKeys(table, { clock, ...options });
  return { table, key, reads, clock, cache };
}

describe('CachedApiKeys', () => {
  it('reads the table once for repeated lookups of a busy key', async () => {
    // Prepare
    const { key, reads, clock, cache } = setUp();

    // Act
    const found: Array<ApiKey | undefined> = [];
    for (let i = 0; i < 100; i += 1) {
      found.push(await cache.get(key.keyId));
      clock.advance(200);
    }

    // Assess
    expect(reads).toHaveBeenCalledTimes(1);
    expect(found.every((k) => k?.keyId === key.keyId)).toBe(true);
  });

  it('reads again once the entry is 30 seconds old by default', async () => {
    // Prepare
    const { key, reads, clock, cache } = setUp();
    await cache.get(key.keyId);

    // Act
    clock.advance(DEFAULT_KEY_CACHE_SECONDS * 1000 - 1);
    await cache.get(key.keyId);
    const beforeExpiry = reads.mock.calls.length;
    clock.advance(1);
    await cache.get(key.keyId);

    // Assess
    expect(beforeExpiry).toBe(1);
    expect(reads).toHaveBeenCalledTimes(2);
  });

  it('remembers an unknown key id too, so a client retrying a wrong key does not read each time', async () => {
    // Prepare
    const { reads, clock, cache } = setUp();

    // Act
    const first = await cache.get('unknown00000');
    clock.advance(10_000);
    const second = await cache.get('unknown00000');

    // Assess
    expect(first).toBeUndefined();
    expect(second).toBeUndefined();
    expect(reads).toHaveBeenCalledTimes(1);
  });

  it('finds a key created after a miss was cached once the miss expires', async () => {
    // Prepare
    const { table, clock, cache } = setUp();
    const { key: late } = issueApiKey();
    await cache.get(late.keyId);
    table.add(late);

    // Act
    clock.advance(DEFAULT_KEY_CACHE_SECONDS * 1000);
    const found = await cache.get(late.keyId);

    // Assess
    expect(found?.keyId).toBe(late.keyId);
  });

  it.each([
    ['suspended', 'suspended'],
    ['revoked', 'revoked'],
  ] as const)('sees a key %s in the table within 60 s, whatever the TTL allowed', async (_what, status) => {
    // Prepare
    const { table, key, clock, cache } = setUp({ ttlSeconds: MAX_KEY_CACHE_SECONDS });
    await cache.get(key.keyId);
    clock.advance(59_999);
    // The worst case: the change lands right after a fresh read is cached.
    clock.advance(1);
    await cache.get(key.keyId);

    // Act
    await table.setStatus(key.keyId, status, clock());
    const seen: Array<{ afterMs: number; status: string | undefined }> = [];
    for (let ms = 0; ms <= 60_000; ms += 1_000) {
      seen.push({ afterMs: ms, status: (await cache.get(key.keyId))?.status });
      clock.advance(1_000);
    }

    // Assess
    expect(seen.find((s) => s.status === status)?.afterMs).toBe(60_000);
    expect(seen.filter((s) => s.status === 'active').length).toBe(60);
  });

  it('sees a suspension within 30 s with the default TTL', async () => {
    // Prepare
    const { table, key, clock, cache } = setUp();
    await cache.get(key.keyId);

    // Act
    await table.setStatus(key.keyId, 'suspended', clock());
    clock.advance(29_999);
    const justBefore = await cache.get(key.keyId);
    clock.advance(1);
    const after = await cache.get(key.keyId);

    // Assess
    expect(justBefore?.status).toBe('active');
    expect(after?.status).toBe('suspended');
  });

  it('counts an entry’s age from when its read started, so a slow read cannot stretch the bound', async () => {
    // Prepare
    const { table, key, clock } = setUp();
    let reads = 0;
    const slowTable = {
      get: async (keyId: string) => {
        reads += 1;
        clock.advance(4_000);
        return table.get(keyId);
      },
    };
    const cache = new CachedApiKeys(slowTable, { ttlSeconds: 10, clock });
    await cache.get(key.keyId);

    // Act
    clock.advance(6_000);
    await cache.get(key.keyId);

    // Assess
    expect(reads).toBe(2);
  });

  it('does not cache a failed read: the next request tries the table again', async () => {
    // Prepare
    const { key, reads, cache } = setUp();
    reads.mockRejectedValueOnce(new TransientError('reading the API key failed: ThrottlingException'));

    // Act
    const failure = await cache.get(key.keyId).then(
      () => undefined,
      (error: unknown) => error,
    );
    const retried = await cache.get(key.keyId);

    // Assess
    expect(failure).toBeInstanceOf(TransientError);
    expect((failure as Error).message).toBe('reading the API key failed: ThrottlingException');
    expect(retried?.keyId).toBe(key.keyId);
    expect(reads).toHaveBeenCalledTimes(2);
  });

  it('shares one read between concurrent lookups of the same key', async () => {
    // Prepare
    const { key, reads, cache } = setUp();

    // Act
    const found = await Promise.all([cache.get(key.keyId), cache.get(key.keyId), cache.get(key.keyId)]);

    // Assess
    expect(reads).toHaveBeenCalledTimes(1);
    expect(found.map((k) => k?.keyId)).toEqual([key.keyId, key.keyId, key.keyId]);
  });

  it('holds at most maxEntries keys and evicts the least recently used', async () => {
    // Prepare
    const { table, reads, cache } = setUp({ maxEntries: 2 });
    const [a, b, c] = [issueApiKey().key, issueApiKey().key, issueApiKey().key];
    table.add(a, b, c);
    await cache.get(a.keyId);
    await cache.get(b.keyId);
    await cache.get(a.keyId);

    // Act
    await cache.get(c.keyId);
    reads.mockClear();
    await cache.get(a.keyId);
    await cache.get(c.keyId);
    await cache.get(b.keyId);

    // Assess
    expect(reads.mock.calls.map(([id]) => id)).toEqual([b.keyId]);
  });

  it('keeps misses apart, so a flood of made-up keys never evicts a key in use', async () => {
    // Prepare
    const { key, reads, cache } = setUp({ maxEntries: 10 });
    await cache.get(key.keyId);

    // Act
    for (let i = 0; i < 1_000; i += 1) await cache.get(`madeup${String(i).padStart(6, '0')}`);
    reads.mockClear();
    await cache.get(key.keyId);

    // Assess
    expect(reads).not.toHaveBeenCalled();
    expect(cache.size).toBe(11);
  });

  it('treats an entry from the future as expired when the clock steps back', async () => {
    // Prepare
    const { key, reads, clock, cache } = setUp();
    await cache.get(key.keyId);

    // Act
    clock.advance(-5_000);
    await cache.get(key.keyId);

    // Assess
    expect(reads).toHaveBeenCalledTimes(2);
  });

  it.each([0, -1, 61, Number.NaN])('refuses a TTL of %s seconds, which would break the 60 s bound', (ttl) => {
    // Prepare
    const table = new InMemoryApiKeys();

    // Act
    const build = () => new CachedApiKeys(table, { ttlSeconds: ttl, clock: testClock() });

    // Assess
    expect(build).toThrow(ConfigurationError);
    expect(build).toThrow(
      `the API key cache TTL must be more than 0 and at most 60 seconds (so a suspended key stops working within that bound), got ${ttl}`,
    );
  });

  it('refuses a size that is not a positive integer', () => {
    // Act
    const build = () => new CachedApiKeys(new InMemoryApiKeys(), { maxEntries: 0, clock: testClock() });

    // Assess
    expect(build).toThrow('the API key cache size must be a positive integer, got 0');
  });
});

describe('CachedKeyDirectory', () => {
  function directory(options: { ttlSeconds?: number } = {}) {
    const table = new InMemoryApiKeys();
    const { key } = issueApiKey();
    table.add(key);
    const lists = vi.spyOn(table, 'list');
    const clock = testClock();
    const cache = new CachedKeyDirectory(table, { clock, ...options });
    return { table, key, lists, clock, cache };
  }

  it('lists the table once for the connections of one TTL, and again after it', async () => {
    // Prepare
    const { key, lists, clock, cache } = directory();

    // Act
    const seen: string[][] = [];
    for (let i = 0; i < 30; i += 1) {
      seen.push((await cache.list()).map((k) => k.keyId));
      clock.advance(1_000);
    }
    const afterTtl = lists.mock.calls.length;

    // Assess: 30 lists over 30 s with the default 30 s TTL read the table once; the 31st reads again
    expect(afterTtl).toBe(1);
    expect(seen.every((ids) => ids.length === 1 && ids[0] === key.keyId)).toBe(true);
    await cache.list();
    expect(lists).toHaveBeenCalledTimes(2);
  });

  it('shares one read between concurrent callers', async () => {
    // Prepare
    const { lists, cache } = directory();

    // Act
    const all = await Promise.all([cache.list(), cache.list(), cache.list()]);

    // Assess
    expect(lists).toHaveBeenCalledTimes(1);
    expect(all.map((keys) => keys.length)).toEqual([1, 1, 1]);
  });

  it('hands each caller its own array, so a caller cannot change what the next one sees', async () => {
    // Prepare
    const { cache } = directory();
    const first = await cache.list();

    // Act
    first.length = 0;

    // Assess
    expect(await cache.list()).toHaveLength(1);
  });

  it.each([
    ['suspended', 'suspended'],
    ['revoked', 'revoked'],
  ] as const)('sees a key %s within 60 s with the longest TTL', async (_what, status) => {
    // Prepare
    const { table, key, clock, cache } = directory({ ttlSeconds: MAX_KEY_CACHE_SECONDS });
    await cache.list();

    // Act
    await table.setStatus(key.keyId, status, clock());
    clock.advance(59_999);
    const justBefore = (await cache.list())[0]?.status;
    clock.advance(1);
    const after = (await cache.list())[0]?.status;

    // Assess
    expect(justBefore).toBe('active');
    expect(after).toBe(status);
  });

  it('counts the list’s age from when its read started', async () => {
    // Prepare
    const { table, clock } = directory();
    let reads = 0;
    const slow = {
      list: async () => {
        reads += 1;
        clock.advance(4_000);
        return table.list();
      },
    };
    const cache = new CachedKeyDirectory(slow, { ttlSeconds: 10, clock });
    await cache.list();

    // Act
    clock.advance(6_000);
    await cache.list();

    // Assess
    expect(reads).toBe(2);
  });

  it('answers from the last list at once while a refresh is under way, so a slow table does not hold connections up', async () => {
    // Prepare: a table whose second read never answers
    const { table, key, clock } = directory();
    let reads = 0;
    const hanging = {
      list: (): Promise<ApiKey[]> => {
        reads += 1;
        return reads === 1 ? table.list() : new Promise<ApiKey[]>(() => {});
      },
    };
    const cache = new CachedKeyDirectory(hanging, { clock });
    await cache.list();

    // Act
    clock.advance(30_000);
    const during = await Promise.all([cache.list(), cache.list()]);
    clock.advance(29_999);
    const lastMoment = await cache.list();
    clock.advance(1);
    const pastBound = await Promise.race([
      cache.list().then(() => 'answered'),
      new Promise((resolve) => setTimeout(() => resolve('waiting'), 50)),
    ]);

    // Assess: one refresh for all, the old list meanwhile, and nothing older than 60 s
    expect(reads).toBe(2);
    expect(during.map((keys) => keys.map((k) => k.keyId))).toEqual([[key.keyId], [key.keyId]]);
    expect(lastMoment.map((k) => k.keyId)).toEqual([key.keyId]);
    expect(pastBound).toBe('waiting');
  });

  it('sees a suspension once the refresh after the TTL lands', async () => {
    // Prepare
    const { table, key, clock, cache } = directory();
    await cache.list();
    await table.setStatus(key.keyId, 'suspended', clock());

    // Act
    clock.advance(30_000);
    const first = await cache.list();
    await new Promise((resolve) => setImmediate(resolve));
    const next = await cache.list();

    // Assess: the caller that started the refresh may get the old list; the next one does not
    expect(first[0]?.status).toBe('active');
    expect(next[0]?.status).toBe('suspended');
  });

  it('keeps serving the last list while the table fails, until that list is 60 s old, then throws TransientError', async () => {
    // Prepare: a good list at t=0, then the table fails from t=30 s (the default TTL) on
    const { key, lists, clock, cache } = directory();
    await cache.list();
    const outage = new TransientError('listing the API keys failed: ThrottlingException');
    lists.mockRejectedValue(outage);

    // Act
    clock.advance(30_000);
    const during = await cache.list();
    clock.advance(29_999);
    const lastMoment = await cache.list();
    clock.advance(1);
    const failure = await failureOf(cache.list());

    // Assess
    expect(during.map((k) => k.keyId)).toEqual([key.keyId]);
    expect(lastMoment.map((k) => k.keyId)).toEqual([key.keyId]);
    expect(failure).toBeInstanceOf(TransientError);
    expect((failure as Error).message).toBe(
      'the API key list could not be read, and the last one read is 60 s old or more (a revoked key must stop within 60 s): listing the API keys failed: ThrottlingException',
    );
    expect((failure as Error).cause).toBe(outage);
  });

  it('after a failure, waits a second before reading the table again (no read per connection during an outage)', async () => {
    // Prepare
    const { lists, clock, cache } = directory();
    await cache.list();
    clock.advance(30_000);
    lists.mockRejectedValueOnce(new TransientError('listing the API keys failed: ThrottlingException'));
    await cache.list();

    // Act
    for (let i = 0; i < 10; i += 1) {
      await cache.list();
      clock.advance(99);
    }
    const duringBackoff = lists.mock.calls.length;
    clock.advance(10);
    await cache.list();

    // Assess
    expect(duringBackoff).toBe(2);
    expect(lists).toHaveBeenCalledTimes(3);
  });

  it('throws TransientError when the very first read fails, and reads again after the pause', async () => {
    // Prepare
    const { key, lists, clock, cache } = directory();
    lists.mockRejectedValueOnce(new Error('connect ECONNREFUSED 127.0.0.1:8000'));

    // Act
    const failure = await failureOf(cache.list());
    const paused = await failureOf(cache.list());
    const readsWhilePaused = lists.mock.calls.length;
    clock.advance(1_000);
    const recovered = await cache.list();

    // Assess
    expect(failure).toBeInstanceOf(TransientError);
    expect((failure as Error).message).toBe(
      'the API key list could not be read: connect ECONNREFUSED 127.0.0.1:8000',
    );
    expect(paused).toBeInstanceOf(TransientError);
    expect(readsWhilePaused).toBe(1);
    expect(recovered.map((k) => k.keyId)).toEqual([key.keyId]);
  });

  it('does not serve a list from the future when the clock steps back', async () => {
    // Prepare
    const { lists, clock, cache } = directory();
    await cache.list();

    // Act
    clock.advance(-5_000);
    await cache.list();

    // Assess
    expect(lists).toHaveBeenCalledTimes(2);
  });

  it.each([0, 61, Number.NaN])('refuses a TTL of %s seconds', (ttl) => {
    // Act
    const build = () =>
      new CachedKeyDirectory(new InMemoryApiKeys(), { ttlSeconds: ttl, clock: testClock() });

    // Assess
    expect(build).toThrow(
      `the API key cache TTL must be more than 0 and at most 60 seconds (so a suspended key stops working within that bound), got ${ttl}`,
    );
  });
});
