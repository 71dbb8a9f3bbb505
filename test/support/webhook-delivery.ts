/**
 * Fakes for the delivery function's own ports (lambdas/domain/webhooks/delivery-ports.ts): an
 * in-memory endpoint state store with the adapter's conditional-write semantics, and a poster
 * that answers as the test programs it and keeps what it was asked to send.
 */
import { closedBreaker } from '../../lambdas/domain/webhooks/breaker.ts';
import type { DeliveryDeps } from '../../lambdas/domain/webhooks/deliver.ts';
import type {
  EndpointDeliveryState,
  EndpointStateStore,
  HttpPoster,
  PostResult,
  VersionedEndpointState,
  WebhookRequest,
} from '../../lambdas/domain/webhooks/delivery-ports.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore, RecordingWebhookPublisher } from './webhooks.ts';

export class InMemoryEndpointStateStore implements EndpointStateStore {
  readonly items = new Map<string, VersionedEndpointState>();
  /** Runs before each write is applied (a racing writer can change the item there). */
  beforeWrite: (endpointId: string) => void = () => {};

  async read(endpointId: string): Promise<VersionedEndpointState> {
    return structuredClone(
      this.items.get(endpointId) ?? { state: { breaker: closedBreaker, leases: {} }, version: 0 },
    );
  }

  async write(endpointId: string, state: EndpointDeliveryState, expectedVersion: number): Promise<boolean> {
    this.beforeWrite(endpointId);
    const current = this.items.get(endpointId)?.version ?? 0;
    if (current !== expectedVersion) return false;
    this.items.set(endpointId, { state: structuredClone(state), version: expectedVersion + 1 });
    return true;
  }

  /** The stored state (closed, no slot in use, when none is stored). */
  state(endpointId: string): EndpointDeliveryState {
    return this.items.get(endpointId)?.state ?? { breaker: closedBreaker, leases: {} };
  }

  set(endpointId: string, state: EndpointDeliveryState): void {
    const version = this.items.get(endpointId)?.version ?? 0;
    this.items.set(endpointId, { state: structuredClone(state), version: version + 1 });
  }
}

/** Answers each request with `answer(request, n)` (200 by default) and keeps the requests. */
export class FakePoster implements HttpPoster {
  readonly requests: WebhookRequest[] = [];
  answer: (request: WebhookRequest, n: number) => PostResult = () => ({
    status: 200,
    snippet: 'ok',
    latencyMs: 12,
  });

  async post(request: WebhookRequest): Promise<PostResult> {
    this.requests.push(structuredClone(request));
    return this.answer(request, this.requests.length - 1);
  }
}

/** deliverJob's fakes for one test; `now` is what its clock says (a test moves it by setting it). */
export interface DeliveryRig {
  readonly store: InMemoryWebhookStore;
  readonly state: InMemoryEndpointStateStore;
  readonly poster: FakePoster;
  readonly queue: InMemoryWebhookQueue;
  readonly publisher: RecordingWebhookPublisher;
  now: Date;
  /** The deps over these fakes: random at 0.5, lease ids `lease-0`, `lease-1`, ... */
  deps(): DeliveryDeps;
}

export function deliveryRig(start: Date): DeliveryRig {
  let leases = 0;
  const rig: DeliveryRig = {
    store: new InMemoryWebhookStore(),
    state: new InMemoryEndpointStateStore(),
    poster: new FakePoster(),
    queue: new InMemoryWebhookQueue(),
    publisher: new RecordingWebhookPublisher(),
    now: start,
    deps: () => ({
      endpoints: rig.store,
      state: rig.state,
      poster: rig.poster,
      log: rig.store,
      queue: rig.queue,
      publisher: rig.publisher,
      clock: () => rig.now,
      random: () => 0.5,
      leaseId: () => `lease-${leases++}`,
    }),
  };
  return rig;
}
