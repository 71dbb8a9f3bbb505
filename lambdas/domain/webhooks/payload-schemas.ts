/**
 * The webhook payloads' zod schemas, one per event type, and the JSON Schemas made from them
 * (docs/webhooks/). Apart from events.ts so that the producers (the senders, the feedback
 * function), which build payloads but never validate them, do not bundle zod: only its types.
 */
import { z } from 'zod';
import { LANES } from '../../shared/names.ts';
import { MESSAGE_ID } from '../message.ts';
import { SUPPRESSION_REASONS } from '../suppression/suppression.ts';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './events.ts';

/** Free text Baton got from elsewhere (SES, the guard, an operator); null when none was given. */
const text = z.string().nullable();

/** What every message event's `data` holds. Strict objects: a field the contract lacks is a bug. */
const messageData = {
  messageId: z.string().regex(MESSAGE_ID),
  recipient: z.string().min(1),
  tags: z.record(z.string(), z.string()),
  stream: z.enum(LANES),
  sequence: z.int().nonnegative(),
};

function body<const T extends WebhookEventType, const D extends z.ZodRawShape>(type: T, data: D) {
  return z.strictObject({ type: z.literal(type), timestamp: z.iso.datetime(), data: z.strictObject(data) });
}

function messageBody<const T extends WebhookEventType, const D extends z.ZodRawShape>(type: T, extra: D) {
  return body(type, { ...messageData, ...extra });
}

const SCHEMAS = {
  'message.queued': messageBody('message.queued', {}),
  'message.sent': messageBody('message.sent', {}),
  'message.delivered': messageBody('message.delivered', {}),
  'message.delivery_delayed': messageBody('message.delivery_delayed', { delayType: text, diagnostic: text }),
  'message.bounced': messageBody('message.bounced', {
    /** `hard` for SES's Permanent bounces (the address is suppressed), `soft` otherwise. */
    kind: z.enum(['hard', 'soft']),
    type: text,
    subType: text,
    diagnostic: text,
  }),
  'message.complained': messageBody('message.complained', { feedbackType: text }),
  'message.rejected': messageBody('message.rejected', { reason: text }),
  'message.failed': messageBody('message.failed', { reason: text }),
  'message.suppressed': messageBody('message.suppressed', { reason: z.enum(SUPPRESSION_REASONS) }),
  'message.held': messageBody('message.held', { reason: text, signal: text }),
  'message.released': messageBody('message.released', { reason: text, signal: text }),
  'suppression.created': body('suppression.created', suppressionData()),
  'suppression.deleted': body('suppression.deleted', suppressionData()),
  'webhook.endpoint.disabled': body('webhook.endpoint.disabled', {
    endpointId: z.string().min(1),
    reason: z.string(),
  }),
} as const;

function suppressionData() {
  return {
    address: z.string().min(1),
    reason: z.enum(SUPPRESSION_REASONS),
    /** `global`: SES's evidence, for every tenant; `tenant`: the tenant's own entry. */
    scope: z.enum(['global', 'tenant']),
  };
}

/** One zod schema per event type, for the whole body (`type`, `timestamp`, `data`). */
export const WEBHOOK_PAYLOAD_SCHEMAS: { readonly [T in WebhookEventType]: (typeof SCHEMAS)[T] } = SCHEMAS;

export type WebhookPayloadOf<T extends WebhookEventType> = z.infer<(typeof SCHEMAS)[T]>;
export type WebhookPayload = { [T in WebhookEventType]: WebhookPayloadOf<T> }[WebhookEventType];
export type MessageWebhookPayload = Extract<WebhookPayload, { type: `message.${string}` }>;

/** One JSON Schema (draft 2020-12) per event type, made from the zod schemas so they cannot drift. */
export function webhookJsonSchemas(): Record<WebhookEventType, Record<string, unknown>> {
  return Object.fromEntries(
    WEBHOOK_EVENT_TYPES.map((type) => [type, z.toJSONSchema(SCHEMAS[type]) as Record<string, unknown>]),
  ) as Record<WebhookEventType, Record<string, unknown>>;
}
