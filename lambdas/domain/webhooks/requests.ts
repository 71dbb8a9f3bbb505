/**
 * The webhook routes' request bodies and query (issue 14), checked: `POST /v1/webhooks`,
 * `PATCH /v1/webhooks/{id}`, `POST /v1/webhooks/{id}/replay` and the deliveries listing. Every
 * failing field comes back at once in a 400 problem. Whether a URL may receive webhooks is the
 * operations' call (url-policy.ts, a 422 naming the reason): here it only has to be a string.
 */
import { z } from 'zod';
import { CONTROL } from '../keys/api-key.ts';
import { type FieldError, fail } from '../problem.ts';
import { issueErrors } from '../request-issues.ts';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './events.ts';
import { MAX_WEBHOOK_URL_LENGTH } from './url-policy.ts';

export const MAX_DESCRIPTION = 500;
export const MAX_DELIVERIES_PAGE = 100;
export const DEFAULT_DELIVERIES_PAGE = 50;
/** Longer than any id Baton gives an event; a longer one cannot be replayed. */
const MAX_EVENT_ID = 200;

export interface CreateWebhookRequest {
  readonly url: string;
  /** Every type when the request named none. */
  readonly events: readonly WebhookEventType[];
  readonly description: string;
}

export interface UpdateWebhookRequest {
  readonly url?: string;
  readonly events?: readonly WebhookEventType[];
  readonly enabled?: boolean;
  readonly description?: string;
}

export type ReplayRequest = { readonly since: Date } | { readonly eventId: string };

export interface DeliveriesQuery {
  readonly limit: number;
  readonly cursor?: string;
}

// Past the policy's limit, so a long URL is refused by it (422, naming the limit), not here.
const url = z
  .string()
  .min(1)
  .max(4 * MAX_WEBHOOK_URL_LENGTH);
// An enum, so the OpenAPI document lists the types; an unknown one is reported by name (parse).
const notAType = (name: unknown) =>
  `${JSON.stringify(name)} is not an event type; use ${WEBHOOK_EVENT_TYPES.join(', ')}`;
const events = z
  .array(z.enum(WEBHOOK_EVENT_TYPES, { error: (issue) => notAType(issue.input) }))
  .max(WEBHOOK_EVENT_TYPES.length * 2);
// DynamoDB stores UTF-8, which a lone surrogate has no form in: the write would fail with a 500.
const WELL_FORMED = 'must be well-formed Unicode (no lone surrogate)';
const description = z
  .string()
  .max(MAX_DESCRIPTION)
  // A regex, not a refine, so the OpenAPI document says it too (a `pattern`).
  .regex(
    new RegExp(`^[^${CONTROL.source.slice(1, -1)}]*$`),
    'must not contain control characters or line breaks',
  )
  .refine((s) => s.isWellFormed(), WELL_FORMED);

/** The request schemas, exported for the OpenAPI document (issue 15). */
export const CREATE_WEBHOOK_REQUEST = z.strictObject({
  url,
  events: events.optional(),
  description: description.optional(),
});
// The `meta` says in the OpenAPI document which fields go together, as the functions below check.
export const UPDATE_WEBHOOK_REQUEST = z
  .strictObject({
    url: url.optional(),
    events: events.optional(),
    enabled: z.boolean().optional(),
    description: description.optional(),
  })
  .meta({ minProperties: 1 });
export const REPLAY_WEBHOOK_REQUEST = z
  .strictObject({
    since: z.iso.datetime({ offset: true }).optional(),
    eventId: z
      .string()
      .min(1)
      .max(MAX_EVENT_ID)
      .refine((s) => s.isWellFormed(), WELL_FORMED)
      .optional(),
  })
  .meta({ oneOf: [{ required: ['since'] }, { required: ['eventId'] }] });

/** `POST /v1/webhooks`: `{url, events?, description?}`. */
export function createWebhookRequest(body: unknown): CreateWebhookRequest {
  const parsed = parse(CREATE_WEBHOOK_REQUEST, body);
  const types = eventTypes(parsed.events);
  return {
    url: parsed.url,
    events: types ?? [...WEBHOOK_EVENT_TYPES],
    description: parsed.description ?? '',
  };
}

/** `PATCH /v1/webhooks/{id}`: at least one of url, events, enabled, description. */
export function updateWebhookRequest(body: unknown): UpdateWebhookRequest {
  const parsed = parse(UPDATE_WEBHOOK_REQUEST, body);
  if (Object.keys(parsed).length === 0) {
    invalid('Give at least one of url, events, enabled, description.', [
      { path: 'url', message: 'give at least one of url, events, enabled, description' },
    ]);
  }
  const types =
    parsed.events === undefined ? undefined : (eventTypes(parsed.events) ?? [...WEBHOOK_EVENT_TYPES]);
  return {
    ...(parsed.url === undefined ? {} : { url: parsed.url }),
    ...(types === undefined ? {} : { events: types }),
    ...(parsed.enabled === undefined ? {} : { enabled: parsed.enabled }),
    ...(parsed.description === undefined ? {} : { description: parsed.description }),
  };
}

/** `POST /v1/webhooks/{id}/replay`: `{since: <ISO time>}` or `{eventId}`, not both. */
export function replayRequest(body: unknown): ReplayRequest {
  const parsed = parse(REPLAY_WEBHOOK_REQUEST, body);
  if ((parsed.since === undefined) === (parsed.eventId === undefined)) {
    invalid('Give exactly one of since (an ISO time) or eventId.', [
      {
        path: parsed.since === undefined ? 'since' : 'eventId',
        message: 'give exactly one of since or eventId',
      },
    ]);
  }
  return parsed.since === undefined ? { eventId: parsed.eventId ?? '' } : { since: new Date(parsed.since) };
}

const LIMIT_MESSAGE = `must be an integer from 1 to ${MAX_DELIVERIES_PAGE}`;

/** `GET /v1/webhooks/{id}/deliveries?limit=&cursor=`. */
export const DELIVERIES_QUERY = z.strictObject({
  limit: z
    .string()
    .regex(/^\d+$/, LIMIT_MESSAGE)
    .transform(Number)
    .pipe(z.int(LIMIT_MESSAGE).min(1, LIMIT_MESSAGE).max(MAX_DELIVERIES_PAGE, LIMIT_MESSAGE))
    .default(DEFAULT_DELIVERIES_PAGE),
  cursor: z.string().optional(),
});

/** `GET /v1/webhooks/{id}/deliveries?limit=&cursor=`. */
export function deliveriesQuery(query: Readonly<Record<string, string | undefined>>): DeliveriesQuery {
  const parsed = DELIVERIES_QUERY.safeParse(query);
  if (!parsed.success) {
    const { unknown, fields } = issueErrors(parsed.error.issues, 'unknown query parameter');
    invalid('The query is not valid; see errors for each failing parameter.', [...unknown, ...fields]);
  }
  const { limit, cursor } = parsed.data;
  return { limit, ...(cursor ? { cursor } : {}) };
}

/** The types named (deduplicated, in the given order); undefined when none were named. */
function eventTypes(names: readonly WebhookEventType[] | undefined): WebhookEventType[] | undefined {
  if (names === undefined || names.length === 0) return undefined;
  return [...new Set(names)];
}

/** The event names of `body` that are no type, when they are all that is wrong with it. */
function unknownTypes(body: unknown, issues: readonly z.core.$ZodIssue[]): string | undefined {
  const onTypes = issues.every(
    (i) => i.code === 'invalid_value' && i.path.length === 2 && i.path[0] === 'events',
  );
  if (!onTypes || issues.length === 0) return undefined;
  const names = (body as { events: unknown[] }).events;
  const unknown = issues.map((i) => JSON.stringify(names[i.path[1] as number]));
  return `Unknown event type${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`;
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    invalid('The body must be a JSON object.', [{ path: '', message: 'must be an object' }]);
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.flatMap((issue): FieldError[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: pathOf([...issue.path, key]), message: 'unknown field' }))
      : [{ path: pathOf(issue.path), message: issue.message }],
  );
  invalid(
    unknownTypes(body, parsed.error.issues) ?? 'The request is not valid; see errors for each failing field.',
    errors,
  );
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, part) =>
      typeof part === 'number' ? `${out}[${part}]` : out === '' ? String(part) : `${out}.${String(part)}`,
    '',
  );
}

function invalid(detail: string, errors: readonly FieldError[]): never {
  fail('invalid_request', detail, errors);
}
