import { describe, expect, it } from 'vitest';
import { WEBHOOK_EVENT_TYPES } from '../../../lambdas/domain/webhooks/events.ts';
import {
  createWebhookRequest,
  deliveriesQuery,
  replayRequest,
  updateWebhookRequest,
} from '../../../lambdas/domain/webhooks/requests.ts';
import { problemOfSync } from '../../support/problems.ts';

describe('createWebhookRequest', () => {
  it('keeps the url, the named event types (once each) and the description', () => {
    // Act
    const request = createWebhookRequest({
      url: 'https://hooks.example.com/',
      events: ['message.bounced', 'message.delivered', 'message.bounced'],
      description: 'CRM',
    });

    // Assess
    expect(request).toEqual({
      url: 'https://hooks.example.com/',
      events: ['message.bounced', 'message.delivered'],
      description: 'CRM',
    });
  });

  it.each([
    ['omitted', {}],
    ['empty', { events: [] }],
  ])('subscribes to every event type when events are %s', (_what, extra) => {
    // Act
    const request = createWebhookRequest({ url: 'https://hooks.example.com/', ...extra });

    // Assess
    expect(request.events).toEqual([...WEBHOOK_EVENT_TYPES]);
    expect(request.description).toBe('');
  });

  it('refuses unknown event types with a 422 that names each of them', () => {
    // Act
    const p = problemOfSync(() =>
      createWebhookRequest({
        url: 'https://h.example.com/',
        events: ['message.delivered', 'message.opened', 'x'],
      }),
    );

    // Assess
    expect(p.status).toBe(422);
    expect(p.code).toBe('invalid_request');
    expect(p.detail).toBe('Unknown event types: "message.opened", "x".');
    expect(p.errors?.map((e) => e.path)).toEqual(['events[1]', 'events[2]']);
    expect(p.errors?.[0]?.message).toContain('"message.opened" is not an event type; use message.queued');
  });

  it.each([
    ['a missing url', {}, 'url'],
    ['a url that is not a string', { url: 42 }, 'url'],
    ['events that are not a list', { url: 'https://h.example.com/', events: 'message.sent' }, 'events'],
    ['an event name that is not a string', { url: 'https://h.example.com/', events: [1] }, 'events[0]'],
    [
      'a description over 500 characters',
      { url: 'https://h.example.com/', description: 'd'.repeat(501) },
      'description',
    ],
    [
      'a description with a line break',
      { url: 'https://h.example.com/', description: 'a\nb' },
      'description',
    ],
    ['an unknown field', { url: 'https://h.example.com/', secret: 'mine' }, 'secret'],
    ['a body that is not an object', ['https://h.example.com/'], ''],
  ])('refuses %s with a 422 naming the field', (_what, body, path) => {
    // Act
    const p = problemOfSync(() => createWebhookRequest(body));

    // Assess
    expect(p.status).toBe(422);
    expect(p.errors?.map((e) => e.path)).toContain(path);
  });
});

describe('updateWebhookRequest', () => {
  it('keeps only the fields given', () => {
    // Act / Assess
    expect(updateWebhookRequest({ enabled: false })).toEqual({ enabled: false });
    expect(updateWebhookRequest({ url: 'https://n.example.com/', description: '' })).toEqual({
      url: 'https://n.example.com/',
      description: '',
    });
  });

  it('reads an empty events list as every type, as at registration', () => {
    // Act / Assess
    expect(updateWebhookRequest({ events: [] }).events).toEqual([...WEBHOOK_EVENT_TYPES]);
  });

  it('refuses a body with none of the fields (422)', () => {
    // Act
    const p = problemOfSync(() => updateWebhookRequest({}));

    // Assess
    expect(p.status).toBe(422);
    expect(p.detail).toBe('Give at least one of url, events, enabled, description.');
  });

  it('refuses an enabled that is not a boolean', () => {
    // Act
    const p = problemOfSync(() => updateWebhookRequest({ enabled: 'yes' }));

    // Assess
    expect(p.errors?.map((e) => e.path)).toEqual(['enabled']);
  });
});

describe('replayRequest', () => {
  it('reads {since} as a time and {eventId} as an id', () => {
    // Act / Assess
    expect(replayRequest({ since: '2026-05-01T00:00:00Z' })).toEqual({
      since: new Date('2026-05-01T00:00:00.000Z'),
    });
    expect(replayRequest({ since: '2026-05-01T02:00:00+02:00' })).toEqual({
      since: new Date('2026-05-01T00:00:00.000Z'),
    });
    expect(replayRequest({ eventId: 'evt_1' })).toEqual({ eventId: 'evt_1' });
  });

  it.each([
    ['both', { since: '2026-05-01T00:00:00Z', eventId: 'evt_1' }],
    ['neither', {}],
    ['a since that is not an ISO time', { since: 'yesterday' }],
    ['an empty eventId', { eventId: '' }],
    ['an unknown field', { eventId: 'evt_1', all: true }],
  ])('refuses %s with a 422', (_what, body) => {
    // Act
    const p = problemOfSync(() => replayRequest(body));

    // Assess
    expect(p.status).toBe(422);
    expect(p.errors?.length).toBeGreaterThan(0);
  });
});

describe('deliveriesQuery', () => {
  it('pages 50 by default and passes the cursor on', () => {
    // Act / Assess
    expect(deliveriesQuery({})).toEqual({ limit: 50 });
    expect(deliveriesQuery({ limit: '2', cursor: 'abc' })).toEqual({ limit: 2, cursor: 'abc' });
  });

  it.each(['0', '101', '1.5', ' 5', 'x', '1e1'])('refuses limit=%s with a 422', (limit) => {
    // Act
    const p = problemOfSync(() => deliveriesQuery({ limit }));

    // Assess
    expect(p.status).toBe(422);
    expect(p.errors).toEqual([{ path: 'limit', message: 'must be an integer from 1 to 100' }]);
  });
});
