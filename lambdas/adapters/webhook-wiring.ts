import type { WebhookEvent } from '../domain/webhooks/events.ts';
import type { WebhookPublisher } from '../domain/webhooks/ports.ts';

// CONTRACT SKELETON (issue 14): the production helper replaces this with the real wiring
// (DynamoWebhookStore + a cached directory + SqsWebhookQueue behind the fan-out), a no-op
// publisher when BATON_WEBHOOKS_TABLE is unset.

/** The publisher a function's handler hands its producers, from its environment. */
export function createWebhookPublisher(_env: NodeJS.ProcessEnv = process.env): WebhookPublisher {
  return {
    async publish(_events: readonly WebhookEvent[]): Promise<void> {},
  };
}
