import { describe, expect, it } from 'vitest';
import type { TimelineEvent } from '../../../lambdas/domain/message.ts';
import {
  endpointDisabledWebhookEvent,
  suppressionWebhookEvent,
  WEBHOOK_EVENT_TYPES,
  WebhookEventError,
  type WebhookEventType,
  webhookEventId,
  webhookEventsOf,
} from '../../../lambdas/domain/webhooks/events.ts';
import {
  WEBHOOK_PAYLOAD_SCHEMAS,
  webhookJsonSchemas,
} from '../../../lambdas/domain/webhooks/payload-schemas.ts';
import { messageRecord, recipient, suppression, T0 } from '../../support/builders.ts';

const AT = '2025-03-01T12:05:00.000Z';
const TAGS = { campaign: 'spring' };
const ANA = 'ana@example.org';

/** A record whose timeline ends with `entry`, so its webhook events are those of index 1. */
function recordEndingWith(entry: TimelineEvent) {
  return messageRecord({ events: [{ type: 'accepted', at: T0 }, entry] });
}

describe('webhookEventsOf: one timeline entry to its webhook event', () => {
  const cases: ReadonlyArray<{
    entry: TimelineEvent;
    type: WebhookEventType;
    extra: Record<string, unknown>;
  }> = [
    { entry: { type: 'sent', at: AT, sesMessageId: 'ses-1' }, type: 'message.sent', extra: {} },
    {
      entry: { type: 'delivered', at: AT, recipient: ANA, detail: { smtpResponse: '250 ok' } },
      type: 'message.delivered',
      extra: {},
    },
    {
      entry: { type: 'delayed', at: AT, recipient: ANA, detail: { delayType: 'MailboxFull' } },
      type: 'message.delivery_delayed',
      extra: { delayType: 'MailboxFull', diagnostic: null },
    },
    {
      entry: {
        type: 'bounced',
        at: AT,
        recipient: ANA,
        detail: {
          bounceType: 'Permanent',
          bounceSubType: 'NoEmail',
          diagnosticCode: 'smtp; 550 5.1.1 user unknown',
          status: '5.1.1',
        },
      },
      type: 'message.bounced',
      extra: {
        kind: 'hard',
        type: 'Permanent',
        subType: 'NoEmail',
        diagnostic: 'smtp; 550 5.1.1 user unknown',
      },
    },
    {
      entry: {
        type: 'bounced',
        at: AT,
        recipient: ANA,
        detail: { bounceType: 'Transient', bounceSubType: 'MailboxFull', diagnosticCode: null, status: null },
      },
      type: 'message.bounced',
      extra: { kind: 'soft', type: 'Transient', subType: 'MailboxFull', diagnostic: null },
    },
    {
      entry: { type: 'complained', at: AT, recipient: ANA, detail: { feedbackType: 'abuse' } },
      type: 'message.complained',
      extra: { feedbackType: 'abuse' },
    },
    {
      entry: { type: 'rejected', at: AT, detail: { reason: 'SES rejected the message (Bad content)' } },
      type: 'message.rejected',
      extra: { reason: 'SES rejected the message (Bad content)' },
    },
    {
      entry: { type: 'failed', at: AT, detail: { reason: 'retries exhausted' } },
      type: 'message.failed',
      extra: { reason: 'retries exhausted' },
    },
    {
      entry: { type: 'rendering_failed', at: AT, detail: { reason: 'SES could not render the message: x' } },
      type: 'message.failed',
      extra: { reason: 'SES could not render the message: x' },
    },
    {
      entry: { type: 'suppressed', at: AT, recipient: ANA, detail: { reason: 'complaint' } },
      type: 'message.suppressed',
      extra: { reason: 'complaint' },
    },
    {
      entry: {
        type: 'held',
        at: AT,
        detail: { signal: 'bounceRate', action: 'holdAll', reason: 'bounce rate 6 %', until: AT },
      },
      type: 'message.held',
      extra: { reason: 'bounce rate 6 %', signal: 'bounceRate' },
    },
  ];

  it.each(cases)('maps $entry.type ($type)', ({ entry, type, extra }) => {
    // Prepare
    const record = recordEndingWith(entry);

    // Act
    const events = webhookEventsOf(record, 1, TAGS);

    // Assess
    expect(events.map((e) => e.payload)).toEqual([
      {
        type,
        timestamp: AT,
        data: {
          messageId: 'msg_1',
          recipient: ANA,
          tags: TAGS,
          stream: 'transactional',
          sequence: 1,
          ...extra,
        },
      },
    ]);
    expect(events[0]?.tenant).toBe('tenant-a');
    expect(WEBHOOK_PAYLOAD_SCHEMAS[type].safeParse(events[0]?.payload).success).toBe(true);
  });

  it('maps accepted to message.queued', () => {
    // Prepare
    const record = messageRecord({ stream: 'broadcast' });

    // Act
    const [event] = webhookEventsOf(record, 0, {});

    // Assess
    expect(event?.payload).toEqual({
      type: 'message.queued',
      timestamp: T0,
      data: { messageId: 'msg_1', recipient: ANA, tags: {}, stream: 'broadcast', sequence: 0 },
    });
  });

  it('gives released the signal of the hold it ends', () => {
    // Prepare
    const record = messageRecord({
      events: [
        { type: 'accepted', at: T0 },
        {
          type: 'held',
          at: T0,
          detail: { signal: 'complaintRate', action: 'holdAll', reason: 'r', until: AT },
        },
        { type: 'released', at: AT, detail: { reason: 'looked fine' } },
      ],
    });

    // Act
    const events = webhookEventsOf(record, 2, TAGS);

    // Assess
    expect(events.map((e) => [e.payload.type, e.payload.data])).toEqual([
      [
        'message.released',
        expect.objectContaining({ sequence: 2, reason: 'looked fine', signal: 'complaintRate' }),
      ],
    ]);
  });

  it.each(['opened', 'clicked', 'unsubscribed', 'retrying'] as const)('produces nothing for %s', (type) => {
    // Prepare
    const record = recordEndingWith({ type, at: AT, detail: { reason: 'x' } });

    // Act
    const events = webhookEventsOf(record, 1, TAGS);

    // Assess
    expect(events).toEqual([]);
  });
});

describe('webhookEventsOf: which entries and which recipients', () => {
  it('produces events only for the entries at or after fromIndex, each with its own sequence', () => {
    // Prepare
    const record = messageRecord({
      events: [
        { type: 'accepted', at: T0 },
        { type: 'sent', at: AT },
        { type: 'delivered', at: AT, recipient: ANA },
      ],
    });

    // Act
    const events = webhookEventsOf(record, 1, TAGS);

    // Assess
    expect(events.map((e) => [e.payload.type, e.payload.data.sequence])).toEqual([
      ['message.sent', 1],
      ['message.delivered', 2],
    ]);
  });

  it('gives a message-wide entry one event per recipient not suppressed before it or at acceptance', () => {
    // Prepare: bob was suppressed at acceptance, so he was never queued nor sent.
    const record = messageRecord({
      recipients: [
        recipient(ANA, 'sent'),
        recipient('bob@example.org', 'suppressed'),
        recipient('cy@example.org', 'sent', { kind: 'bcc' }),
      ],
      events: [
        { type: 'accepted', at: T0 },
        { type: 'suppressed', at: T0, recipient: 'bob@example.org', detail: { reason: 'hard_bounce' } },
        { type: 'sent', at: AT },
      ],
    });

    // Act
    const events = webhookEventsOf(record, 0, TAGS);

    // Assess
    expect(events.map((e) => [e.payload.type, e.payload.data.recipient])).toEqual([
      ['message.queued', ANA],
      ['message.queued', 'cy@example.org'],
      ['message.suppressed', 'bob@example.org'],
      ['message.sent', ANA],
      ['message.sent', 'cy@example.org'],
    ]);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  });

  it('skips the failure of a second SES copy that did not change the message', () => {
    // Prepare: feedback records a lost-answer copy's rejection with its own SES id and nothing else.
    const record = recordEndingWith({
      type: 'rejected',
      at: AT,
      detail: { reason: 'SES rejected the message (x)', sesMessageId: 'ses-other' },
    });

    // Act
    const events = webhookEventsOf(record, 1, TAGS);

    // Assess
    expect(events).toEqual([]);
  });

  it('tells no recipient of a failure that it failed once a send attempt suppressed them', () => {
    // Prepare: markFailed writes the suppressions it found, then the failure.
    const record = messageRecord({
      recipients: [recipient(ANA, 'failed'), recipient('bob@example.org', 'suppressed')],
      events: [
        { type: 'accepted', at: T0 },
        { type: 'suppressed', at: AT, recipient: 'bob@example.org', detail: { reason: 'complaint' } },
        { type: 'failed', at: AT, detail: { reason: 'retries exhausted' } },
      ],
    });

    // Act
    const events = webhookEventsOf(record, 1, TAGS);

    // Assess
    expect(events.map((e) => [e.payload.type, e.payload.data.recipient])).toEqual([
      ['message.suppressed', 'bob@example.org'],
      ['message.failed', ANA],
    ]);
  });

  it('produces nothing when fromIndex is past the end of the timeline', () => {
    // Act
    const events = webhookEventsOf(messageRecord(), 5, TAGS);

    // Assess
    expect(events).toEqual([]);
  });

  it('refuses a suppression entry whose reason it does not know, naming the entry', () => {
    // Prepare
    const record = recordEndingWith({
      type: 'suppressed',
      at: AT,
      recipient: ANA,
      detail: { reason: 'whim' },
    });

    // Act
    const act = () => webhookEventsOf(record, 1, TAGS);

    // Assess
    expect(act).toThrow(WebhookEventError);
    expect(act).toThrow('timeline entry 1 of msg_1 is a suppression with no known reason');
  });

  it('keeps an erased recipient as its pseudonym', () => {
    // Prepare
    const pseudonym = 'erased:0123456789abcdef01234567';
    const record = messageRecord({
      recipients: [recipient(pseudonym, 'delivered')],
      events: [
        { type: 'accepted', at: T0 },
        { type: 'sent', at: AT },
        { type: 'delivered', at: AT, recipient: pseudonym },
      ],
    });

    // Act
    const events = webhookEventsOf(record, 0, TAGS);

    // Assess
    expect(events.map((e) => e.payload.data.recipient)).toEqual([pseudonym, pseudonym, pseudonym]);
  });

  it('never carries the subject, the From address or a body', () => {
    // Prepare
    const record = messageRecord({
      from: 'Secret Sender <boss@corp.example>',
      subject: 'Quarterly numbers',
      events: [
        { type: 'accepted', at: T0 },
        { type: 'sent', at: AT },
        {
          type: 'bounced',
          at: AT,
          recipient: ANA,
          detail: { bounceType: 'Permanent', bounceSubType: 'General' },
        },
      ],
    });

    // Act
    const json = JSON.stringify(webhookEventsOf(record, 0, TAGS));

    // Assess
    expect(json).not.toContain('boss@corp.example');
    expect(json).not.toContain('Secret Sender');
    expect(json).not.toContain('Quarterly numbers');
    expect(json).not.toMatch(/"(subject|from|text|html|body)"/);
  });
});

describe('event ids', () => {
  it('gives the same id for the same message, sequence and recipient, on every call', () => {
    // Prepare
    const record = recordEndingWith({ type: 'delivered', at: AT, recipient: ANA });

    // Act
    const first = webhookEventsOf(record, 1, TAGS);
    const again = webhookEventsOf(record, 1, { other: 'tags' });

    // Assess
    expect(first[0]?.id).toBe(again[0]?.id);
    expect(first[0]?.id).toBe(webhookEventId('msg_1', 1, ANA));
    expect(first[0]?.id).toMatch(/^evt_[0-9a-f]{32}$/);
  });

  it('gives different ids to a different sequence, recipient or message', () => {
    // Act
    const ids = [
      webhookEventId('msg_1', 1, ANA),
      webhookEventId('msg_1', 2, ANA),
      webhookEventId('msg_1', 1, 'bob@example.org'),
      webhookEventId('msg_2', 1, ANA),
      webhookEventId('msg_1', 1),
      // A separator no part can fake: msg_1 + "1x" vs msg_11 + "x" stay apart.
      webhookEventId('msg_11', 1, ANA),
    ];

    // Assess
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('suppression and endpoint events', () => {
  it('describes a tenant suppression being created, with its scope', () => {
    // Act
    const event = suppressionWebhookEvent(
      'suppression.created',
      suppression(ANA, 'manual', { tenant: 'tenant-a' }),
      'tenant-a',
      new Date(AT),
    );

    // Assess
    expect(event.payload).toEqual({
      type: 'suppression.created',
      timestamp: AT,
      data: { address: ANA, reason: 'manual', scope: 'tenant' },
    });
    expect(event.id).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(WEBHOOK_PAYLOAD_SCHEMAS['suppression.created'].safeParse(event.payload).success).toBe(true);
  });

  it('describes a global suppression being lifted, the same id for the same lift', () => {
    // Prepare
    const entry = suppression(ANA, 'hard_bounce');

    // Act
    const first = suppressionWebhookEvent('suppression.deleted', entry, 'tenant-a', new Date(AT));
    const again = suppressionWebhookEvent('suppression.deleted', entry, 'tenant-a', new Date(AT));
    const created = suppressionWebhookEvent('suppression.created', entry, 'tenant-a', new Date(AT));

    // Assess
    expect(first.payload.data).toEqual({ address: ANA, reason: 'hard_bounce', scope: 'global' });
    expect(first.id).toBe(again.id);
    expect(created.id).not.toBe(first.id);
  });

  it('describes an endpoint that was disabled', () => {
    // Act
    const event = endpointDisabledWebhookEvent('tenant-a', 'whe_1', 'failing for 5 days', new Date(AT));

    // Assess
    expect(event.payload).toEqual({
      type: 'webhook.endpoint.disabled',
      timestamp: AT,
      data: { endpointId: 'whe_1', reason: 'failing for 5 days' },
    });
    expect(WEBHOOK_PAYLOAD_SCHEMAS['webhook.endpoint.disabled'].safeParse(event.payload).success).toBe(true);
  });
});

describe('schemas', () => {
  const delivered = {
    type: 'message.delivered',
    timestamp: AT,
    data: { messageId: 'msg_1', recipient: ANA, tags: {}, stream: 'transactional', sequence: 3 },
  };

  it('accepts a well-formed body', () => {
    // Act
    const result = WEBHOOK_PAYLOAD_SCHEMAS['message.delivered'].safeParse(delivered);

    // Assess
    expect(result.success).toBe(true);
  });

  it.each([
    ['an extra field in data', { ...delivered, data: { ...delivered.data, subject: 'hi' } }],
    ['an extra top-level field', { ...delivered, body: 'hello' }],
    ['a missing recipient', { ...delivered, data: { ...delivered.data, recipient: undefined } }],
    ['a missing sequence', { ...delivered, data: { ...delivered.data, sequence: undefined } }],
    ['a negative sequence', { ...delivered, data: { ...delivered.data, sequence: -1 } }],
    ['a timestamp that is not ISO', { ...delivered, timestamp: 'yesterday' }],
    ['another type', { ...delivered, type: 'message.sent' }],
    ['an unknown stream', { ...delivered, data: { ...delivered.data, stream: 'bulk' } }],
  ])('rejects %s', (_name, body) => {
    // Act
    const result = WEBHOOK_PAYLOAD_SCHEMAS['message.delivered'].safeParse(body);

    // Assess
    expect(result.success).toBe(false);
  });

  it('rejects a bounce without its kind, and one with a kind other than hard or soft', () => {
    // Prepare
    const data = { ...delivered.data, type: 'Permanent', subType: 'General', diagnostic: null };

    // Act
    const missing = WEBHOOK_PAYLOAD_SCHEMAS['message.bounced'].safeParse({
      ...delivered,
      type: 'message.bounced',
      data,
    });
    const wrong = WEBHOOK_PAYLOAD_SCHEMAS['message.bounced'].safeParse({
      ...delivered,
      type: 'message.bounced',
      data: { ...data, kind: 'medium' },
    });

    // Assess
    expect(missing.success).toBe(false);
    expect(wrong.success).toBe(false);
  });

  it('generates one JSON Schema per type, closed to extra fields', () => {
    // Act
    const schemas = webhookJsonSchemas();

    // Assess
    expect(Object.keys(schemas).sort()).toEqual([...WEBHOOK_EVENT_TYPES].sort());
    for (const type of WEBHOOK_EVENT_TYPES) {
      const schema = schemas[type];
      expect(schema).toMatchObject({
        type: 'object',
        additionalProperties: false,
        required: ['type', 'timestamp', 'data'],
        properties: { type: { const: type }, data: { type: 'object', additionalProperties: false } },
      });
    }
    expect(schemas['message.bounced']).toMatchObject({
      properties: { data: { properties: { kind: { enum: ['hard', 'soft'] } } } },
    });
  });

  it('lists every event type of the contract', () => {
    // Assess
    expect(WEBHOOK_EVENT_TYPES).toEqual([
      'message.queued',
      'message.sent',
      'message.delivered',
      'message.delivery_delayed',
      'message.bounced',
      'message.complained',
      'message.rejected',
      'message.failed',
      'message.suppressed',
      'message.held',
      'message.released',
      'suppression.created',
      'suppression.deleted',
      'webhook.endpoint.disabled',
    ]);
  });
});
