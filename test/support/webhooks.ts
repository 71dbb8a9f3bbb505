/**
 * Webhook test support (issue 14): in-memory fakes of lambdas/domain/webhooks/ports.ts, and a real
 * HTTP receiver on 127.0.0.1 that verifies every delivery with the `standardwebhooks` package (an
 * independent implementation of the specification) and answers as the test programs it.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type {
  DeliveryAttempt,
  StoredWebhookEvent,
  WebhookDeliveryJob,
  WebhookEndpoint,
} from '../../lambdas/domain/webhooks/endpoint.ts';
import type { WebhookEvent } from '../../lambdas/domain/webhooks/events.ts';
import type {
  WebhookDeliveryLog,
  WebhookDeliveryQueue,
  WebhookDirectory,
  WebhookEndpointStore,
  WebhookEventLog,
  WebhookPublisher,
  WebhookReplayBudget,
} from '../../lambdas/domain/webhooks/ports.ts';
import {
  type PublishStep,
  WebhookFanout,
  type WebhookFanoutDeps,
} from '../../lambdas/domain/webhooks/publish.ts';
import { ConflictError, InvalidCursorError } from '../../lambdas/shared/errors.ts';
import { T0 } from './builders.ts';
import { testClock } from './fakes.ts';

const copy = <T>(value: T): T => structuredClone(value);

/** The fakes' cursors are positions; anything else is refused, as the adapter refuses a cursor it did not hand out. */
function pagePosition(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  if (!/^\d+$/.test(cursor)) throw new InvalidCursorError('not a position this store handed out');
  return Number(cursor);
}

/** The Webhooks table's endpoints, event log and attempts, with the adapter's semantics. */
export class InMemoryWebhookStore
  implements WebhookEndpointStore, WebhookEventLog, WebhookDeliveryLog, WebhookDirectory, WebhookReplayBudget
{
  readonly endpoints = new Map<string, WebhookEndpoint>();
  /** Replay counts by endpoint id and window start (ISO). */
  readonly replays = new Map<string, number>();
  readonly events = new Map<string, StoredWebhookEvent>();
  readonly attemptLog: DeliveryAttempt[] = [];

  static #key(tenant: string, id: string): string {
    return `${tenant}\0${id}`;
  }

  async create(endpoint: WebhookEndpoint): Promise<void> {
    const key = InMemoryWebhookStore.#key(endpoint.tenant, endpoint.id);
    if (this.endpoints.has(key)) throw new ConflictError(`webhook endpoint ${endpoint.id} exists already`);
    this.endpoints.set(key, copy(endpoint));
  }

  async get(tenant: string, id: string): Promise<WebhookEndpoint | undefined> {
    const found = this.endpoints.get(InMemoryWebhookStore.#key(tenant, id));
    return found && copy(found);
  }

  async list(tenant: string): Promise<WebhookEndpoint[]> {
    return [...this.endpoints.values()].filter((e) => e.tenant === tenant).map(copy);
  }

  async update(next: WebhookEndpoint, expectedVersion: number): Promise<void> {
    const key = InMemoryWebhookStore.#key(next.tenant, next.id);
    const current = this.endpoints.get(key);
    if (current?.version !== expectedVersion) {
      throw new ConflictError(`webhook endpoint ${next.id} changed since version ${expectedVersion}`);
    }
    this.endpoints.set(key, copy(next));
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    return this.endpoints.delete(InMemoryWebhookStore.#key(tenant, id));
  }

  /** WebhookDirectory, uncached: the enabled endpoints. */
  async subscribers(tenant: string): Promise<readonly WebhookEndpoint[]> {
    return (await this.list(tenant)).filter((e) => e.enabled);
  }

  async takeReplay(endpointId: string, window: Date, wanted: number, limit: number): Promise<number> {
    const key = `${endpointId}\0${window.toISOString()}`;
    const used = this.replays.get(key) ?? 0;
    const taken = wanted < 0 ? Math.max(wanted, -used) : Math.max(0, Math.min(wanted, limit - used));
    this.replays.set(key, used + taken);
    return taken;
  }

  /** WebhookDirectory, uncached: every endpoint, enabled or not. */
  async registered(tenant: string): Promise<readonly WebhookEndpoint[]> {
    return this.list(tenant);
  }

  async append(events: readonly StoredWebhookEvent[]): Promise<void> {
    for (const e of events) this.events.set(InMemoryWebhookStore.#key(e.tenant, e.id), copy(e));
  }

  async event(tenant: string, eventId: string): Promise<StoredWebhookEvent | undefined> {
    const found = this.events.get(InMemoryWebhookStore.#key(tenant, eventId));
    return found && copy(found);
  }

  async since(
    tenant: string,
    since: Date,
    options: { readonly limit?: number; readonly cursor?: string } = {},
  ): Promise<{ readonly events: StoredWebhookEvent[]; readonly cursor?: string }> {
    const all = [...this.events.values()]
      .filter((e) => e.tenant === tenant && Date.parse(e.timestamp) >= since.getTime())
      .sort((a, b) => a.timestamp.localeCompare(b.timestamp) || a.id.localeCompare(b.id));
    const start = pagePosition(options.cursor);
    const limit = options.limit ?? 100;
    const page = all.slice(start, start + limit).map(copy);
    const next = start + limit;
    return next < all.length ? { events: page, cursor: String(next) } : { events: page };
  }

  async record(attempt: DeliveryAttempt): Promise<void> {
    this.attemptLog.push(copy(attempt));
  }

  async attempts(
    tenant: string,
    endpointId: string,
    options: { readonly limit?: number; readonly cursor?: string } = {},
  ): Promise<{ readonly attempts: DeliveryAttempt[]; readonly cursor?: string }> {
    const all = this.attemptLog
      .filter((a) => a.tenant === tenant && a.endpointId === endpointId)
      .sort((a, b) => b.at.localeCompare(a.at));
    const start = pagePosition(options.cursor);
    const limit = options.limit ?? 50;
    const page = all.slice(start, start + limit).map(copy);
    const next = start + limit;
    return next < all.length ? { attempts: page, cursor: String(next) } : { attempts: page };
  }
}

/** The webhook queue: jobs in the order they were enqueued. `failing` makes the next enqueue throw. */
export class InMemoryWebhookQueue implements WebhookDeliveryQueue {
  readonly jobs: WebhookDeliveryJob[] = [];
  failing = false;

  async enqueue(jobs: readonly WebhookDeliveryJob[]): Promise<void> {
    if (this.failing) throw new Error('webhook queue refused the batch');
    this.jobs.push(...jobs.map(copy));
  }
}

/** A publisher that keeps what it was handed (for the producers' unit tests). */
export class RecordingWebhookPublisher implements WebhookPublisher {
  readonly events: WebhookEvent[] = [];

  async publish(events: readonly WebhookEvent[]): Promise<void> {
    this.events.push(...events.map(copy));
  }
}

/** Message events as `[type, messageId, recipient, sequence]` rows, for the producers' assertions. */
export const messageEventRows = (events: readonly WebhookEvent[]) =>
  events.map((e) => {
    const data = e.payload.data as { messageId: string; recipient: string; sequence: number };
    return [e.payload.type, data.messageId, data.recipient, data.sequence];
  });

/** One request the receiver got, with the result of verifying it. */
export interface ReceivedWebhook {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** True when `standardwebhooks` verified the signature with one of the receiver's secrets. */
  readonly verified: boolean;
  /** The parsed body, when verified. */
  readonly payload?: { type: string; timestamp: string; data: Record<string, unknown> };
  /** The status the receiver answered (0: it hung). */
  readonly status: number;
  /** When the request's body had arrived (epoch ms). */
  readonly at: number;
}

/** How the receiver answers the nth request (from 0): a status (and headers, body), or `hang` (never answers). */
export type ReceiverAnswer =
  | { readonly status: number; readonly headers?: Record<string, string>; readonly body?: string }
  | 'hang';

/**
 * A real HTTP server on 127.0.0.1 (a free port) that verifies each delivery with `standardwebhooks`
 * against `secrets` (set them once the endpoint is registered) and answers by `answer(request, n)`,
 * 200 by default. `close()` also ends hung requests.
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  secrets: string[] = [];
  answer: (
    request: { readonly headers: IncomingHttpHeaders; readonly body: string },
    n: number,
  ) => ReceiverAnswer = () => ({ status: 200 });
  readonly #server: Server;
  readonly #hung = new Set<ServerResponse>();
  #count = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        receiver?.handle(req.method ?? '', req.url ?? '', req.headers, Buffer.concat(chunks), res),
      );
    });
    receiver = new WebhookReceiver(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  /** `http://127.0.0.1:<port><path>`. */
  url(path = '/hooks'): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}${path}`;
  }

  /** The verified payloads received so far. */
  verified(): ReceivedWebhook[] {
    return this.received.filter((r) => r.verified);
  }

  /** Waits until `predicate` holds over what was received (polling), or throws after `timeoutMs`. */
  async waitFor(
    predicate: (received: readonly ReceivedWebhook[]) => boolean,
    timeoutMs = 15_000,
  ): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate(this.received)) {
      if (Date.now() > until) {
        throw new Error(
          `webhook receiver: condition not met within ${timeoutMs} ms (${this.received.length} received)`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    for (const res of this.#hung) res.destroy();
    this.#hung.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  private handle(
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    raw: Buffer,
    res: ServerResponse,
  ): void {
    const body = raw.toString('utf8');
    let payload: ReceivedWebhook['payload'];
    let verified = false;
    const flat: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) if (typeof value === 'string') flat[name] = value;
    for (const secret of this.secrets) {
      try {
        payload = new Webhook(secret).verify(body, flat) as ReceivedWebhook['payload'];
        verified = true;
        break;
      } catch {
        // Try the next secret; unverified when none matches.
      }
    }
    const answer = this.answer({ headers, body }, this.#count++);
    const status = answer === 'hang' ? 0 : answer.status;
    this.received.push({
      method,
      path,
      headers,
      body,
      verified,
      ...(payload ? { payload } : {}),
      status,
      at: Date.now(),
    });
    if (answer === 'hang') {
      this.#hung.add(res);
      return;
    }
    res.writeHead(answer.status, answer.headers ?? {});
    res.end(answer.body ?? '');
  }
}

/**
 * A fan-out over the in-memory store (the uncached directory and the log) and queue, its clock at
 * 2025-03-01T12:10:00Z, keeping each failure it reports; `overrides` replace any of its deps.
 */
export function fanoutRig(overrides: Partial<WebhookFanoutDeps> = {}) {
  const store = new InMemoryWebhookStore();
  const queue = new InMemoryWebhookQueue();
  const clock = testClock('2025-03-01T12:10:00.000Z');
  const failures: Array<{ error: unknown; count: number; step: PublishStep }> = [];
  const fanout = new WebhookFanout({
    directory: store,
    log: store,
    queue,
    clock,
    onError: (error, count, step) => failures.push({ error, count, step }),
    ...overrides,
  });
  return { store, queue, clock, failures, fanout };
}

/** An enabled endpoint of tenant-a, subscribed to message.queued and message.delivered, made at T0. */
export function webhookEndpoint(overrides: Partial<WebhookEndpoint> = {}): WebhookEndpoint {
  return {
    id: 'wh_aaaaaaaaaaaaaaaaaaaaaaaa',
    tenant: 'tenant-a',
    url: 'https://hooks.example.com/baton',
    events: ['message.queued', 'message.delivered'],
    description: '',
    enabled: true,
    disabledReason: null,
    secrets: [{ secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', createdAt: T0 }],
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    ...overrides,
  };
}
