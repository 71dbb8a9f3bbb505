/**
 * A tenant's webhook endpoint (issue 14) and the shapes the pieces of webhook delivery share: the
 * endpoint as stored, the job the delivery queue carries, an event as the replay log keeps it, and
 * one delivery attempt as `GET /v1/webhooks/{id}/deliveries` lists it.
 */
import type { WebhookEventType } from './events.ts';

/** `wh_` and 24 base62 characters (random): ids are unguessable and never reused. */
export const WEBHOOK_ENDPOINT_ID = /^wh_[A-Za-z0-9]{24}$/;

/** How long an old secret keeps signing after a rotation, so receivers can roll over without a gap. */
export const SECRET_OVERLAP_SECONDS = 24 * 60 * 60;

/** How long produced events (the replay log) and delivery attempts are kept. */
export const WEBHOOK_LOG_DAYS = 30;

export interface WebhookSecret {
  /** `whsec_` + base64 of 32 random bytes (signing.ts newWebhookSecret). */
  readonly secret: string;
  readonly createdAt: string;
  /** Set on the previous secret at a rotation: it signs until then, and is dropped after. */
  readonly expiresAt?: string;
}

export interface WebhookEndpoint {
  readonly id: string;
  readonly tenant: string;
  /** As accepted by checkWebhookUrl (its normalised form). */
  readonly url: string;
  /** The event types delivered to it (registration with none named stores every type). */
  readonly events: readonly WebhookEventType[];
  readonly description: string;
  readonly enabled: boolean;
  /**
   * Why Baton disabled it: `gone` (it answered 410) or `failing` (every attempt failed for three
   * days); null when enabled or disabled by its owner (PATCH enabled=false).
   */
  readonly disabledReason: 'gone' | 'failing' | null;
  /** Newest first: the current secret, then at most one previous one still within its overlap. */
  readonly secrets: readonly WebhookSecret[];
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Optimistic-concurrency counter: every write checks and bumps it (1 for a new endpoint). */
  readonly version: number;
}

/** The secrets that sign a delivery at `now`: the current one and a previous one still in its overlap. */
export function activeSecrets(endpoint: WebhookEndpoint, now: Date): string[] {
  return endpoint.secrets
    .filter((s) => s.expiresAt === undefined || Date.parse(s.expiresAt) > now.getTime())
    .map((s) => s.secret);
}

/** Whether an event of `type` goes to the endpoint now. */
export function subscribes(endpoint: WebhookEndpoint, type: WebhookEventType): boolean {
  return endpoint.enabled && endpoint.events.includes(type);
}

/** One delivery of one event to one endpoint, as the webhook queue carries it (JSON). */
export interface WebhookDeliveryJob {
  readonly v: 1;
  readonly tenant: string;
  readonly endpointId: string;
  /** The event id: the `webhook-id` header, the same on every retry and replay. */
  readonly eventId: string;
  readonly type: WebhookEventType;
  /** The exact body to sign and send (serialised once, when the event was produced). */
  readonly body: string;
  /** Attempts already made (0 for a new job): Baton's own count, never SQS's receive count. */
  readonly attempt: number;
  /** Epoch ms when the first attempt was queued: the three-day retry window starts there. */
  readonly firstQueuedAt: number;
  /** Epoch ms before which it must not be attempted (a retry's wait; SQS delays at most 15 min). */
  readonly notBefore: number;
  /** Epoch ms of the state change (the event's timestamp), for the change-to-attempt latency. */
  readonly occurredAt: number;
  /** Set when an operator or the tenant replayed it (POST /v1/webhooks/{id}/replay). */
  readonly replay?: boolean;
}

/** An event as the replay log keeps it: the exact body that was (and will again be) signed. */
export interface StoredWebhookEvent {
  readonly id: string;
  readonly tenant: string;
  readonly type: WebhookEventType;
  /** The payload's `timestamp` (ISO): when the state changed. */
  readonly timestamp: string;
  readonly body: string;
}

/** What one attempt ended as, for the deliveries log. */
export type AttemptOutcome =
  /** 2xx. */
  | 'success'
  /** It failed and will be tried again (`nextAttemptAt`). */
  | 'retry'
  /** It failed and the three days are over (or the endpoint is disabled): no more attempts. */
  | 'gave-up'
  /** 410 Gone: the endpoint is now disabled. */
  | 'disabled';

/** One attempt, as `GET /v1/webhooks/{id}/deliveries` lists it (newest first). */
export interface DeliveryAttempt {
  readonly tenant: string;
  readonly endpointId: string;
  readonly eventId: string;
  readonly type: WebhookEventType;
  /** Baton's count, from 1. */
  readonly attempt: number;
  /** When the request was sent (ISO). */
  readonly at: string;
  /** The answer's status; null when none came (timeout, refused address, network error). */
  readonly statusCode: number | null;
  readonly latencyMs: number;
  /** The first bytes of the answer's body (at most 1 KiB, as text), or why there was none. */
  readonly response: string;
  readonly outcome: AttemptOutcome;
  /** When the next attempt is due (ISO), for `retry`. */
  readonly nextAttemptAt?: string;
  readonly replay?: boolean;
}
