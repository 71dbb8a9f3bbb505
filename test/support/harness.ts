/**
 * The api and accept logic wired to in-memory fakes, as the unit tests set them up: ids count up
 * from msg_1, the clock stands at T0 until a test moves it.
 */
import { type ApiDeps, createApi } from '../../lambdas/api/app.ts';
import type { ApiKey } from '../../lambdas/domain/keys/api-key.ts';
import type { AcceptDeps } from '../../lambdas/domain/send/accept.ts';
import { RateLimiter } from '../../lambdas/domain/send/rate-limit.ts';
import { T0 } from './builders.ts';
import {
  InMemoryApiKeys,
  InMemoryHeldJobs,
  InMemoryIdempotencyStore,
  InMemoryJobQueue,
  InMemoryMessageStore,
  InMemorySuppressionStore,
  InMemoryUsageStore,
  issueApiKey,
  RecordingGuard,
  testClock,
} from './fakes.ts';

export type KeyOverrides = Partial<Omit<ApiKey, 'keyId' | 'secretHash'>>;

/** Stores to use instead of fresh fakes: a subclass that counts writes, say. */
export interface HarnessStores {
  readonly messages?: InMemoryMessageStore;
  readonly suppressions?: InMemorySuppressionStore;
}

/** acceptMessage / acceptBatch dependencies and one issued key. */
export function acceptHarness(keyOverrides: KeyOverrides = {}, stores: HarnessStores = {}) {
  const messages = stores.messages ?? new InMemoryMessageStore();
  const suppressions = stores.suppressions ?? new InMemorySuppressionStore();
  const queue = new InMemoryJobQueue();
  const usage = new InMemoryUsageStore();
  const clock = testClock(T0);
  const held = new InMemoryHeldJobs();
  const guard = new RecordingGuard();
  let ids = 0;
  const deps: AcceptDeps = {
    messages,
    suppressions,
    queue,
    usage,
    clock,
    newId: () => {
      ids += 1;
      return `msg_${ids}`;
    },
    retentionDays: 30,
    held,
    guard,
  };
  const { key, token } = issueApiKey(keyOverrides);
  return { deps, messages, suppressions, queue, usage, clock, held, guard, key, token };
}

export type AcceptHarness = ReturnType<typeof acceptHarness>;

export interface ApiHarnessOptions extends HarnessStores {
  /**
   * Dependencies to add or replace, given the harness's fakes: erasure, a tombstone-aware view of
   * the suppressions, other message ids.
   */
  readonly deps?: (harness: AcceptHarness) => Partial<ApiDeps>;
}

/** createApi over the same fakes, with the key registered. */
export function apiHarness(keyOverrides: KeyOverrides = {}, options: ApiHarnessOptions = {}) {
  const harness = acceptHarness(keyOverrides, options);
  const { deps, key, token, ...stores } = harness;
  const keys = new InMemoryApiKeys();
  keys.add(key);
  const idempotency = new InMemoryIdempotencyStore();
  // The abuse guard's fakes (the accept harness's): a release's pacing moves the clock.
  const { guard, held } = stores;
  const api = createApi({
    ...deps,
    messages: stores.messages,
    suppressions: stores.suppressions,
    keys,
    idempotency,
    rateLimiter: new RateLimiter(stores.clock),
    guard,
    held,
    release: {
      sleep: async (ms: number) => {
        stores.clock.advance(ms);
      },
    },
    ...options.deps?.(harness),
  });
  /** Issues another key on the same API and returns its token. */
  const addKey = (overrides: KeyOverrides = {}): string => {
    const issued = issueApiKey(overrides);
    keys.add(issued.key);
    return issued.token;
  };
  return { api, token, key, keys, idempotency, addKey, ...stores };
}
