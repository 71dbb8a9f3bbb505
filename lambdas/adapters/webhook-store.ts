import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DeliveryAttempt, StoredWebhookEvent, WebhookEndpoint } from '../domain/webhooks/endpoint.ts';
import type { WebhookDeliveryLog, WebhookEndpointStore, WebhookEventLog } from '../domain/webhooks/ports.ts';

// CONTRACT SKELETON (issue 14): the store helper replaces every body below.

/** The Webhooks table (Keys.webhooks): endpoints, the replay log of events, delivery attempts. */
export class DynamoWebhookStore implements WebhookEndpointStore, WebhookEventLog, WebhookDeliveryLog {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.#doc = doc;
    this.#table = table;
  }

  async create(_endpoint: WebhookEndpoint): Promise<void> {
    throw new Error(`not built yet (${this.#table}, ${typeof this.#doc})`);
  }
  async get(_tenant: string, _id: string): Promise<WebhookEndpoint | undefined> {
    throw new Error('not built yet');
  }
  async list(_tenant: string): Promise<WebhookEndpoint[]> {
    throw new Error('not built yet');
  }
  async update(_next: WebhookEndpoint, _expectedVersion: number): Promise<void> {
    throw new Error('not built yet');
  }
  async delete(_tenant: string, _id: string): Promise<boolean> {
    throw new Error('not built yet');
  }
  async append(_events: readonly StoredWebhookEvent[]): Promise<void> {
    throw new Error('not built yet');
  }
  async event(_tenant: string, _eventId: string): Promise<StoredWebhookEvent | undefined> {
    throw new Error('not built yet');
  }
  async since(
    _tenant: string,
    _since: Date,
    _options?: { readonly limit?: number; readonly cursor?: string },
  ): Promise<{ readonly events: StoredWebhookEvent[]; readonly cursor?: string }> {
    throw new Error('not built yet');
  }
  async record(_attempt: DeliveryAttempt): Promise<void> {
    throw new Error('not built yet');
  }
  async attempts(
    _tenant: string,
    _endpointId: string,
    _options?: { readonly limit?: number; readonly cursor?: string },
  ): Promise<{ readonly attempts: DeliveryAttempt[]; readonly cursor?: string }> {
    throw new Error('not built yet');
  }
}
