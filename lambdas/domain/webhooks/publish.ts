/**
 * How producers hand webhook events on (issue 14): each event goes to the tenant's enabled
 * endpoints subscribed to its type, as one job per endpoint on the webhook queue, after it was kept
 * in the replay log. Publishing happens after the state change was written and never fails it.
 */
import type { Clock } from '../ports.ts';
import {
  type StoredWebhookEvent,
  subscribes,
  type WebhookDeliveryJob,
  type WebhookEndpoint,
} from './endpoint.ts';
import type { WebhookEvent } from './events.ts';
import type {
  WebhookDeliveryQueue,
  WebhookDirectory,
  WebhookEndpointStore,
  WebhookEventLog,
  WebhookPublisher,
} from './ports.ts';

/** Which step of publishing failed, for the log line (never an address or a body). */
export type PublishStep = 'directory' | 'log' | 'enqueue' | 'timeout';

/**
 * How long the front door (api, SMTP) waits for publishing at most (WebhookFanoutDeps.waitMs): it
 * answers its client only after publishing, and a stalled connection to the Webhooks table or
 * queue must not hold the answer of a send accepted and queued already (a client that times out
 * retries, and the mail goes twice). Publishing one request's events takes a few tens of ms.
 */
export const PUBLISH_WAIT_MS = 3_000;

export interface WebhookFanoutDeps {
  readonly directory: WebhookDirectory;
  readonly log: Pick<WebhookEventLog, 'append'>;
  readonly queue: WebhookDeliveryQueue;
  readonly clock: Clock;
  /**
   * Told when a step failed, with the number of events it failed for (the wiring logs it and adds
   * the metric WebhookPublishFailures). Must not throw; should it, the error goes no further.
   */
  readonly onError: (error: unknown, count: number, step: PublishStep) => void;
  /**
   * Past this, `publish` returns and reports step `timeout` (what is under way may still finish).
   * The front door passes PUBLISH_WAIT_MS; the queue consumers wait (a batch's events take longer,
   * and their state changes are acknowledged only at the batch's end). @default no bound
   */
  readonly waitMs?: number;
}

/**
 * The publisher producers use. Events of a tenant without a subscribed endpoint cost nothing past
 * the (cached) directory lookup: no log write, no job. Those a disabled endpoint subscribes to are
 * kept in the log (no job), so its owner can replay them on re-enabling it; those of a tenant whose
 * endpoints cannot be read are kept too, for a replay (whom to send them to is unknown). Each
 * payload is serialised once, so the replay log and every endpoint's job carry the very bytes that
 * are signed. The log is written before the jobs are queued: an event whose enqueue failed can
 * still be replayed. A log that fails does not stop the jobs (delivering an event matters more than
 * being able to replay it).
 */
export class WebhookFanout implements WebhookPublisher {
  readonly #deps: WebhookFanoutDeps;

  constructor(deps: WebhookFanoutDeps) {
    this.#deps = deps;
  }

  async publish(events: readonly WebhookEvent[]): Promise<void> {
    const { waitMs } = this.#deps;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited =
      waitMs === undefined
        ? new Promise<never>(() => {})
        : new Promise<'timeout'>((resolve) => {
            timer = setTimeout(() => resolve('timeout'), waitMs);
          });
    try {
      const outcome = await Promise.race([this.#publish(events), waited]);
      if (outcome === 'timeout') {
        this.#report(new Error('publishing webhook events took too long'), events.length, 'timeout');
      }
    } catch (error) {
      // Only a bug reaches here (each step reports its own failure): never the producer's problem.
      this.#report(error, events.length, 'enqueue');
    } finally {
      clearTimeout(timer);
    }
  }

  async #publish(events: readonly WebhookEvent[]): Promise<void> {
    if (events.length === 0) return;
    const byTenant = new Map<string, WebhookEvent[]>();
    for (const event of events) {
      const list = byTenant.get(event.tenant) ?? [];
      list.push(event);
      byTenant.set(event.tenant, list);
    }
    const now = this.#deps.clock().getTime();
    const stored: StoredWebhookEvent[] = [];
    const jobs: WebhookDeliveryJob[] = [];
    await Promise.all(
      [...byTenant].map(async ([tenant, tenantEvents]) => {
        let endpoints: readonly WebhookEndpoint[];
        let registered: readonly WebhookEndpoint[];
        try {
          [endpoints, registered] = await Promise.all([
            this.#deps.directory.subscribers(tenant),
            this.#deps.directory.registered(tenant),
          ]);
        } catch (error) {
          this.#report(error, tenantEvents.length, 'directory');
          // Whom to send them to is unknown, but they are kept: a replay can still send them.
          for (const event of tenantEvents) stored.push(storedEvent(event));
          return;
        }
        for (const event of tenantEvents) {
          const { type } = event.payload;
          const to = endpoints.filter((endpoint) => subscribes(endpoint, type));
          // A disabled endpoint subscribed to it gets no job, but its owner can replay it once re-enabled.
          if (to.length === 0 && !registered.some((e) => e.events.includes(type))) continue;
          const kept = storedEvent(event);
          stored.push(kept);
          const { body } = kept;
          const occurredAt = Date.parse(event.payload.timestamp);
          for (const endpoint of to) {
            jobs.push({
              v: 1,
              tenant,
              endpointId: endpoint.id,
              eventId: event.id,
              type,
              body,
              attempt: 0,
              firstQueuedAt: now,
              notBefore: now,
              occurredAt,
            });
          }
        }
      }),
    );
    if (stored.length === 0) return;
    try {
      await this.#deps.log.append(stored);
    } catch (error) {
      this.#report(error, stored.length, 'log');
    }
    try {
      await this.#deps.queue.enqueue(jobs);
    } catch (error) {
      this.#report(error, new Set(jobs.map((j) => j.eventId)).size, 'enqueue');
    }
  }

  #report(error: unknown, count: number, step: PublishStep): void {
    try {
      this.#deps.onError(error, count, step);
    } catch {
      // Reporting failed too: nothing better to do, and the state change stands.
    }
  }
}

/** The event as the replay log keeps it: its payload serialised once, the very bytes signed. */
function storedEvent(event: WebhookEvent): StoredWebhookEvent {
  const { type, timestamp } = event.payload;
  return { id: event.id, tenant: event.tenant, type, timestamp, body: JSON.stringify(event.payload) };
}

/** Tenants a producer instance keeps in its directory cache (a warm instance sees few). */
const MAX_CACHED_TENANTS = 1_000;

/**
 * A tenant's enabled endpoints, cached per instance for `seconds` (BATON_WEBHOOK_DIRECTORY_SECONDS):
 * a tenant without endpoints, the common case, costs one read per instance and period rather than
 * one per message. A lookup in flight is shared by concurrent callers; a failed one is not cached.
 */
export class CachedWebhookDirectory implements WebhookDirectory {
  readonly #store: Pick<WebhookEndpointStore, 'list'>;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  readonly #cache = new Map<
    string,
    { readonly until: number; readonly endpoints: Promise<WebhookEndpoint[]> }
  >();

  constructor(
    store: Pick<WebhookEndpointStore, 'list'>,
    options: { readonly seconds: number; readonly clock: Clock },
  ) {
    this.#store = store;
    this.#ttlMs = options.seconds * 1000;
    this.#clock = options.clock;
  }

  async subscribers(tenant: string): Promise<readonly WebhookEndpoint[]> {
    return (await this.registered(tenant)).filter((e) => e.enabled);
  }

  async registered(tenant: string): Promise<readonly WebhookEndpoint[]> {
    const now = this.#clock().getTime();
    const cached = this.#cache.get(tenant);
    if (cached !== undefined && cached.until > now) return cached.endpoints;
    const endpoints = this.#store.list(tenant);
    const entry = { until: now + this.#ttlMs, endpoints };
    this.#cache.delete(tenant);
    if (this.#cache.size >= MAX_CACHED_TENANTS) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(tenant, entry);
    endpoints.catch(() => {
      if (this.#cache.get(tenant) === entry) this.#cache.delete(tenant);
    });
    return endpoints;
  }
}
