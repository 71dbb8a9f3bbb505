/**
 * Probes of the webhook routes' front (issue 14, attack pass): each test here failed before the fix
 * committed with it.
 */
import { describe, expect, it } from 'vitest';
import { WEBHOOK_EVENT_TYPES } from '../../../lambdas/domain/webhooks/events.ts';
import {
  MAX_WEBHOOK_ENDPOINTS,
  registerEndpoint,
  type WebhookOperationsDeps,
} from '../../../lambdas/domain/webhooks/operations.ts';
import { testClock } from '../../support/fakes.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

function setUp() {
  const store = new InMemoryWebhookStore();
  const queue = new InMemoryWebhookQueue();
  let counter = 0;
  const deps: WebhookOperationsDeps = {
    store,
    queue,
    clock: testClock('2026-05-04T10:00:00.000Z'),
    random: (size) => Buffer.alloc(size, ++counter % 256),
    allowLoopbackHttp: false,
  };
  const register = (tenant = 'acme') =>
    registerEndpoint(deps, tenant, {
      url: 'https://hooks.example.com/baton',
      events: [...WEBHOOK_EVENT_TYPES],
      description: '',
    });
  return { deps, store, register };
}

describe('the endpoint cap', () => {
  it(`holds at ${MAX_WEBHOOK_ENDPOINTS} when registrations race`, async () => {
    const { store, register } = setUp();
    for (let i = 0; i < MAX_WEBHOOK_ENDPOINTS - 1; i++) await register();
    const racing = await Promise.allSettled(Array.from({ length: 10 }, () => register()));
    expect((await store.list('acme')).length).toBeLessThanOrEqual(MAX_WEBHOOK_ENDPOINTS);
    // Every refused one is the cap's 409, not an error.
    for (const r of racing) {
      if (r.status === 'rejected') expect(String(r.reason)).toMatch(/too_many_webhooks/);
    }
  });
});
