/**
 * What webhook delivery needs from the outside world (issue 14). Adapters implement these over
 * DynamoDB (adapters/webhook-store.ts: one Webhooks table, Keys.webhooks) and SQS
 * (adapters/webhook-queue.ts); tests use the in-memory fakes of test/support/webhooks.ts.
 */
import type { DeliveryAttempt, StoredWebhookEvent, WebhookDeliveryJob, WebhookEndpoint } from './endpoint.ts';
import type { WebhookEvent } from './events.ts';

/** A tenant's endpoints. Never another tenant's: every read and write names the tenant. */
export interface WebhookEndpointStore {
  /** Stores a new endpoint; ConflictError when its id exists. */
  create(endpoint: WebhookEndpoint): Promise<void>;
  get(tenant: string, id: string): Promise<WebhookEndpoint | undefined>;
  /** Every endpoint of the tenant, enabled or not (a tenant has few: the api caps them). */
  list(tenant: string): Promise<WebhookEndpoint[]>;
  /** Replaces the endpoint if its stored version is still `expectedVersion`; ConflictError otherwise. */
  update(next: WebhookEndpoint, expectedVersion: number): Promise<void>;
  /** True when there was one to delete. */
  delete(tenant: string, id: string): Promise<boolean>;
}

/**
 * The tenant's enabled endpoints, as producers look them up for every state change: cached per
 * instance for a few seconds (BATON_WEBHOOK_DIRECTORY_SECONDS), so a tenant without endpoints costs
 * no read per message. A new endpoint receives events at most that long after it was registered.
 */
export interface WebhookDirectory {
  subscribers(tenant: string): Promise<readonly WebhookEndpoint[]>;
  /**
   * Every endpoint of the tenant, enabled or not (from the same cached read): the events a disabled
   * endpoint subscribes to are kept in the replay log, so its owner can replay them on re-enabling it.
   */
  registered(tenant: string): Promise<readonly WebhookEndpoint[]>;
}

/** Produced events, kept WEBHOOK_LOG_DAYS for replay (by id, or every event since a time). */
export interface WebhookEventLog {
  /** Keeps the events (batched); keeping the same event again changes nothing. */
  append(events: readonly StoredWebhookEvent[]): Promise<void>;
  /** One event by id (named `event`, not `get`, so one store can implement every port). */
  event(tenant: string, eventId: string): Promise<StoredWebhookEvent | undefined>;
  /** The tenant's events whose timestamp is at or after `since`, oldest first. */
  since(
    tenant: string,
    since: Date,
    options?: { readonly limit?: number; readonly cursor?: string },
  ): Promise<{ readonly events: StoredWebhookEvent[]; readonly cursor?: string }>;
}

/** Delivery attempts per endpoint, kept WEBHOOK_LOG_DAYS. */
export interface WebhookDeliveryLog {
  record(attempt: DeliveryAttempt): Promise<void>;
  /** The endpoint's attempts, newest first. */
  attempts(
    tenant: string,
    endpointId: string,
    options?: { readonly limit?: number; readonly cursor?: string },
  ): Promise<{ readonly attempts: DeliveryAttempt[]; readonly cursor?: string }>;
}

/**
 * How many events replays queued to each endpoint per window (the api's replay budget): one counter
 * per endpoint and window, changed atomically, so racing replays cannot together pass the limit.
 */
export interface WebhookReplayBudget {
  /**
   * Adds up to `wanted` to the endpoint's count for the window starting at `window`, never past
   * `limit`, and answers how much was added (0 when the window's budget is spent). A negative
   * `wanted` gives that much back.
   */
  takeReplay(endpointId: string, window: Date, wanted: number, limit: number): Promise<number>;
}

/**
 * The webhook queue. A job whose `notBefore` is ahead is sent with that delay (at most SQS's 15
 * minutes; the delivery function waits out the rest by hiding the message). Throws TransientError
 * when SQS refuses after its retries (some jobs may have been queued: a job queued twice is one
 * more delivery of the same `webhook-id`, which receivers drop).
 */
export interface WebhookDeliveryQueue {
  enqueue(jobs: readonly WebhookDeliveryJob[]): Promise<void>;
}

/**
 * Where producers (api, SMTP, senders, feedback, guard operations, suppression routes) hand the
 * events of a state change. Only tenants with an endpoint subscribed to an event's type cost
 * anything. Never throws: a webhook must not fail or repeat the state change that produced it;
 * a failure is logged and counted (metric WebhookPublishFailures), and what reached the event
 * log can be replayed.
 */
export interface WebhookPublisher {
  publish(events: readonly WebhookEvent[]): Promise<void>;
}
