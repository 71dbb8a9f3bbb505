/** Webhook events produced by the api (issue 14): sends, and the tenant's suppression routes. */
import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import type { WebhookPublisher } from '../../../lambdas/domain/webhooks/ports.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { sendBody, suppression, T0 } from '../../support/builders.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent } from '../../support/http-events.ts';
import { RecordingWebhookPublisher } from '../../support/webhooks.ts';

function rig(webhooks: WebhookPublisher = new RecordingWebhookPublisher()) {
  return apiHarness({ scopes: ['send', 'read', 'suppressions', 'admin'] }, { deps: () => ({ webhooks }) });
}

describe('events produced by the api', () => {
  it('produces message.queued for a message sent through the api', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { api, token } = rig(publisher);

    // Act
    await api(httpEvent(Route.sendMessage, { token, body: sendBody({ tags: { order: '42' } }) }));

    // Assess
    expect(publisher.events.map((e) => [e.payload.type, e.payload.data])).toEqual([
      [
        'message.queued',
        {
          messageId: 'msg_1',
          recipient: 'ana@example.org',
          tags: { order: '42' },
          stream: 'transactional',
          sequence: 0,
        },
      ],
    ]);
  });

  it('keeps the tags on the record but does not show them in GET /v1/messages/{id} (not in its contract)', async () => {
    // Prepare
    const { api, token, messages } = rig();
    await api(httpEvent(Route.sendMessage, { token, body: sendBody({ tags: { order: '42' } }) }));

    // Act
    const result = await api(httpEvent(Route.getMessage, { token, pathParameters: { id: 'msg_1' } }));

    // Assess
    expect(messages.peek('msg_1')?.tags).toEqual({ order: '42' });
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body ?? '{}')).not.toHaveProperty('tags');
  });

  it('produces suppression.created for the tenant when its PUT stored an entry', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { api, token } = rig(publisher);

    // Act
    await api(
      httpEvent(Route.putSuppression, { token, pathParameters: { address: 'Ana@Example.org' }, body: {} }),
    );

    // Assess
    expect(publisher.events.map((e) => [e.tenant, e.payload])).toEqual([
      [
        'tenant-a',
        {
          type: 'suppression.created',
          timestamp: T0,
          data: { address: 'ana@example.org', reason: 'manual', scope: 'tenant' },
        },
      ],
    ]);
  });

  it('produces nothing for a PUT that changed nothing (a stronger entry stands)', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { api, token, suppressions } = rig(publisher);
    suppressions.seed(suppression('ana@example.org', 'complaint'));

    // Act
    await api(
      httpEvent(Route.putSuppression, { token, pathParameters: { address: 'ana@example.org' }, body: {} }),
    );

    // Assess
    expect(publisher.events).toEqual([]);
  });

  it('produces suppression.deleted when the tenant’s own entry is lifted, and nothing when it had none', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { api, token, suppressions } = rig(publisher);
    suppressions.seed(suppression('ana@example.org', 'unsubscribe', { tenant: 'tenant-a' }));

    // Act
    const first = await api(
      httpEvent(Route.deleteSuppression, { token, pathParameters: { address: 'ana@example.org' } }),
    );
    await api(httpEvent(Route.deleteSuppression, { token, pathParameters: { address: 'ana@example.org' } }));

    // Assess
    expect(first.statusCode).toBe(204);
    expect(publisher.events.map((e) => [e.tenant, e.payload.type, e.payload.data])).toEqual([
      [
        'tenant-a',
        'suppression.deleted',
        { address: 'ana@example.org', reason: 'unsubscribe', scope: 'tenant' },
      ],
    ]);
  });

  it('stores the suppression and answers 200, whatever the publisher does', async () => {
    // Prepare
    const { api, token, suppressions } = rig({
      publish: async () => {
        throw new Error('publisher broke');
      },
    });

    // Act
    const result = await api(
      httpEvent(Route.putSuppression, { token, pathParameters: { address: 'ana@example.org' }, body: {} }),
    );

    // Assess
    expect(result.statusCode).toBe(200);
    expect(suppressions.peek('ana@example.org', 'tenant-a')).toMatchObject({ reason: 'manual' });
  });
});
