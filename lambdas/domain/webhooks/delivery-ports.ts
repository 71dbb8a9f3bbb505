/**
 * What the delivery function needs beyond ports.ts (issue 14): each endpoint's delivery state (its
 * breaker and concurrency slots, written conditionally) and the HTTP client that makes an attempt.
 */
import type { BreakerState } from './breaker.ts';
import type { WebhookHeaders } from './signing.ts';

/** An endpoint's breaker and the concurrency slots in use, as one item. */
export interface EndpointDeliveryState {
  readonly breaker: BreakerState;
  /**
   * The slots in use: lease id → epoch ms when the lease ends. A lease outlives any attempt (the
   * function's timeout), so a crashed holder's slot frees itself then.
   */
  readonly leases: Readonly<Record<string, number>>;
}

export interface VersionedEndpointState {
  readonly state: EndpointDeliveryState;
  /** 0 when none is stored (a new endpoint: closed breaker, no slot in use). */
  readonly version: number;
}

/**
 * Each endpoint's delivery state. Every change is one conditional write on the version read, so
 * concurrent deliveries (many function instances) cannot both take the last slot or both probe.
 */
export interface EndpointStateStore {
  read(endpointId: string): Promise<VersionedEndpointState>;
  /** Stores `state` as version `expectedVersion + 1` if the stored one is still `expectedVersion`; false when it changed. */
  write(endpointId: string, state: EndpointDeliveryState, expectedVersion: number): Promise<boolean>;
}

/** One signed delivery request. */
export interface WebhookRequest {
  readonly url: string;
  /** The exact bytes that were signed. */
  readonly body: string;
  readonly headers: WebhookHeaders;
}

/** What an attempt got: an answer (any status, redirects included), or why none came. */
export type PostResult =
  | {
      readonly status: number;
      /** The answer's `Retry-After` header, as sent. */
      readonly retryAfter?: string;
      /** The first bytes of the answer's body (at most 4 KiB are read), as text. */
      readonly snippet: string;
      readonly latencyMs: number;
    }
  | {
      /** `refused-address`: the name resolved to an address that is not public (SSRF, DNS rebinding). */
      readonly error: 'timeout' | 'refused-address' | 'network';
      readonly detail: string;
      readonly latencyMs: number;
    };

/** Sends one delivery. Never throws: every failure is a PostResult. */
export interface HttpPoster {
  post(request: WebhookRequest): Promise<PostResult>;
}
