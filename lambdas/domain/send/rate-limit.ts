import type { Clock } from '../ports.ts';

/**
 * Per-key request rate, enforced in the memory of each api instance (a token bucket per key:
 * `rate` tokens per second, bursts up to one second's worth). It costs no I/O, and the price is
 * precision: N concurrent instances together admit up to N × rate. API Gateway's stage throttling
 * is the hard ceiling across instances (docs/sending.md "Limits, and how exact they are").
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #clock: Clock;
  readonly #maxKeys: number;

  constructor(clock: Clock, maxKeys = 10_000) {
    this.#clock = clock;
    this.#maxKeys = maxKeys;
  }

  /** Takes one token; returns the seconds to wait when there is none (for Retry-After). */
  take(keyId: string, rate: number): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const now = this.#clock().getTime();
    const bucket = this.#buckets.get(keyId) ?? { tokens: rate, at: now };
    const refilled = Math.min(rate, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    if (refilled < 1) {
      this.#remember(keyId, { tokens: refilled, at: now });
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - refilled) / rate)) };
    }
    this.#remember(keyId, { tokens: refilled - 1, at: now });
    return { ok: true };
  }

  /**
   * Returns the token a request took when it failed on Baton's side (5xx): the client is told to
   * retry, and that retry must not be refused for the failure's own request. Never beyond the
   * bucket's size; nothing for a key the limiter no longer holds (its bucket is full anyway).
   */
  giveBack(keyId: string, rate: number): void {
    const bucket = this.#buckets.get(keyId);
    if (bucket !== undefined) bucket.tokens = Math.min(rate, bucket.tokens + 1);
  }

  #remember(keyId: string, bucket: { tokens: number; at: number }): void {
    this.#buckets.delete(keyId);
    this.#buckets.set(keyId, bucket);
    // Oldest first in a Map: drop the least recently used key when full.
    if (this.#buckets.size > this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
  }
}

/** `YYYY-MM-DD` of a date in UTC: quotas and statistics count per UTC day. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** Whole seconds until the next UTC midnight, when a daily quota starts again. */
export function secondsUntilNextUtcDay(at: Date): number {
  const next = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - at.getTime()) / 1000));
}
