/**
 * The OpenAPI 3.1 document of the HTTP API (issue 15), generated from the zod schemas the api
 * validates requests with (zod 4's own `toJSONSchema`; `io: 'input'`, so a pipe or transform shows
 * what a client sends) and from the response schemas of responses.ts. Every route of `Route` has
 * an operation: the table below is keyed by it, so a new route does not type-check without one.
 *
 * `npm run openapi` writes it to docs/openapi.json; the api function serves that file at
 * `GET /openapi.json` (it never bundles this generator nor zod classic for it).
 */
import { toJSONSchema, z } from 'zod';
import { HELD_QUERY, HELD_REQUEST, MAX_HELD_PAGE, RESUME_REQUEST } from '../../domain/guard/requests.ts';
import type { Scope } from '../../domain/keys/api-key.ts';
import { PROBLEM_CATALOG, type ProblemCode } from '../../domain/problem.ts';
import { MAX_STATS_DAYS } from '../../domain/reporting/stats.ts';
import { STATS_QUERY } from '../../domain/reporting/stats-query.ts';
import { BATCH_REQUEST, MAX_BATCH } from '../../domain/send/batch-request.ts';
import { KEY_FORMAT } from '../../domain/send/idempotency.ts';
import { RAW_SEND_REQUEST } from '../../domain/send/raw-request.ts';
import { ADDRESS_LIST, MAX_RECIPIENTS, SEND_REQUEST } from '../../domain/send/send-request.ts';
import { MANUAL_SUPPRESSION_REQUEST, SUPPRESSION_LIST_QUERY } from '../../domain/suppression/requests.ts';
import { WEBHOOK_EVENT_TYPES } from '../../domain/webhooks/events.ts';
import { MAX_WEBHOOK_ENDPOINTS } from '../../domain/webhooks/operations.ts';
import { WEBHOOK_PAYLOAD_SCHEMAS } from '../../domain/webhooks/payload-schemas.ts';
import {
  CREATE_WEBHOOK_REQUEST,
  DELIVERIES_QUERY,
  REPLAY_WEBHOOK_REQUEST,
  UPDATE_WEBHOOK_REQUEST,
} from '../../domain/webhooks/requests.ts';
import { Route } from '../../shared/names.ts';
import {
  AcceptedBody,
  BatchBody,
  DeliveriesBody,
  ErasureBody,
  HealthBody,
  HeldAnswerBody,
  HeldListBody,
  MessageViewBody,
  ProblemBody,
  ReplayBody,
  ReputationBody,
  ResumeBody,
  StatsBody,
  SuppressionListBody,
  SuppressionViewBody,
  WebhookEndpointBody,
  WebhookEndpointListBody,
  WebhookEndpointWithSecretBody,
} from './responses.ts';

export type JsonObject = { [key: string]: unknown };
type RouteName = Exclude<keyof typeof Route, 'fallback'>;
type Component = keyof typeof REQUESTS | keyof typeof RESPONSES;
// A query's schema: an object of zod (classic or mini) schemas.
type QuerySchema = z.core.$ZodType;

/** Request bodies, by component name (zod classic and zod/mini schemas alike). */
const REQUESTS = {
  SendMessage: SEND_REQUEST,
  RawSendMessage: RAW_SEND_REQUEST,
  SendBatch: BATCH_REQUEST,
  ManualSuppression: MANUAL_SUPPRESSION_REQUEST,
  GuardHeldSelection: HELD_REQUEST,
  GuardResumeRequest: RESUME_REQUEST,
  CreateWebhook: CREATE_WEBHOOK_REQUEST,
  UpdateWebhook: UPDATE_WEBHOOK_REQUEST,
  ReplayWebhook: REPLAY_WEBHOOK_REQUEST,
} as const;

/** Response bodies, by component name. */
const RESPONSES = {
  Problem: ProblemBody,
  Message: MessageViewBody,
  Accepted: AcceptedBody,
  BatchResults: BatchBody,
  Suppression: SuppressionViewBody,
  SuppressionList: SuppressionListBody,
  Stats: StatsBody,
  Reputation: ReputationBody,
  Erasure: ErasureBody,
  GuardHeldList: HeldListBody,
  GuardHeldAnswer: HeldAnswerBody,
  GuardResume: ResumeBody,
  WebhookEndpoint: WebhookEndpointBody,
  WebhookEndpointWithSecret: WebhookEndpointWithSecretBody,
  WebhookEndpointList: WebhookEndpointListBody,
  WebhookDeliveries: DeliveriesBody,
  WebhookReplay: ReplayBody,
  Health: HealthBody,
} as const;

interface Operation {
  readonly tag: 'Sending' | 'Messages' | 'Suppressions' | 'Reporting' | 'Guard' | 'Webhooks' | 'Service';
  readonly summary: string;
  readonly description: string;
  /** Any one of these scopes will do; null: no key at all. */
  readonly scopes: readonly Scope[] | null;
  readonly path?: Readonly<Record<string, string>>;
  readonly query?: QuerySchema;
  /** A component, or both send forms (JSON or raw). */
  readonly body?: Component | 'SendForms';
  readonly idempotent?: boolean;
  readonly success: {
    readonly status: number;
    readonly description: string;
    /** A component; undefined: no body (204); 'document': this document. */
    readonly body?: Component | 'document';
    readonly headers?: Readonly<Record<string, JsonObject>>;
  };
  /** Problems beyond the ones every authenticated route (and every JSON body) can give. */
  readonly problems: readonly ProblemCode[];
}

const ADDRESS = 'The email address (percent-encode `@` as `%40` if your client needs to).';
const WEBHOOK_ID = 'The endpoint id `POST /v1/webhooks` answered with.';
const NO_STORE = {
  'Cache-Control': { description: '`no-store`: the answer holds a secret.', schema: { type: 'string' } },
};

const OPERATIONS: Readonly<Record<RouteName, Operation>> = {
  health: {
    tag: 'Service',
    summary: 'Health check',
    description: 'Answers 200 while the api function runs.',
    scopes: null,
    success: { status: 200, description: 'Baton is up.', body: 'Health' },
    problems: [],
  },
  openapi: {
    tag: 'Service',
    summary: 'This document',
    description: 'The OpenAPI 3.1 document of this API, generated from the schemas that validate requests.',
    scopes: null,
    success: { status: 200, description: 'The OpenAPI document.', body: 'document' },
    problems: [],
  },
  sendMessage: {
    tag: 'Sending',
    summary: 'Send a message',
    description:
      'Validates the message, applies the sender policy and the suppression list, records it and queues it. ' +
      'The body is the JSON form (`from`, at least one of `to`/`cc`/`bcc`, `subject`, and `text` or `html`; ' +
      `at most ${MAX_RECIPIENTS} recipients) or the raw form (\`raw\`: a whole RFC 5322 message in base64, ` +
      'and an optional `envelope`), which meets the same rules. A recipient on the suppression list comes ' +
      'back `suppressed` (with its `reason`); when every recipient is, nothing is sent and the message is ' +
      'still answered 202.',
    scopes: ['send'],
    body: 'SendForms',
    idempotent: true,
    success: { status: 202, description: 'Accepted and queued (or held, or suppressed).', body: 'Accepted' },
    problems: ['bad_request', 'invalid_message', 'idempotency_conflict', 'idempotency_in_progress'],
  },
  sendBatch: {
    tag: 'Sending',
    summary: 'Send up to 100 messages',
    description:
      `1 to ${MAX_BATCH} messages, each in the JSON or the raw form. Answers 207 with one result per message, ` +
      'in request order: an accepted message or its problem. One bad message never fails the others. ' +
      'When a message was refused for the daily quota, the answer carries `Retry-After`.',
    scopes: ['send'],
    body: 'SendBatch',
    idempotent: true,
    success: {
      status: 207,
      description: 'One result per message.',
      body: 'BatchResults',
      headers: {
        'Retry-After': {
          description: 'Seconds until the daily quota resets, when a message was refused for it.',
          schema: { type: 'integer' },
        },
      },
    },
    problems: ['bad_request', 'invalid_request', 'idempotency_conflict', 'idempotency_in_progress'],
  },
  getMessage: {
    tag: 'Messages',
    summary: "A message's status and timeline",
    description:
      'The message, each recipient with its status and, when not delivered, the reason in words; and its ' +
      "events. Another tenant's message is a 404.",
    scopes: ['read'],
    path: { id: 'The message id (`msg_...`) `POST /v1/messages` answered with.' },
    success: { status: 200, description: 'The message.', body: 'Message' },
    problems: ['not_found'],
  },
  listSuppressions: {
    tag: 'Suppressions',
    summary: 'List suppressions',
    description:
      "The global entries (SES's bounces and complaints) and the caller's tenant's own, a page at a time.",
    scopes: ['read', 'suppressions'],
    query: SUPPRESSION_LIST_QUERY,
    success: { status: 200, description: 'A page of entries.', body: 'SuppressionList' },
    problems: ['invalid_request'],
  },
  getSuppression: {
    tag: 'Suppressions',
    summary: 'Look up an address',
    description: 'The entry that stands for this address (global, or the tenant’s own), or 404.',
    scopes: ['read', 'suppressions'],
    path: { address: ADDRESS },
    success: { status: 200, description: 'The address is suppressed.', body: 'Suppression' },
    problems: ['invalid_request', 'not_found'],
  },
  putSuppression: {
    tag: 'Suppressions',
    summary: 'Suppress an address',
    description:
      "Adds a permanent entry of the caller's tenant (`manual` or `unsubscribe`): its mail to the address " +
      'is suppressed. A stronger entry that stands already is answered instead.',
    scopes: ['suppressions'],
    path: { address: ADDRESS },
    body: 'ManualSuppression',
    success: { status: 200, description: 'The entry that stands.', body: 'Suppression' },
    problems: ['invalid_request'],
  },
  deleteSuppression: {
    tag: 'Suppressions',
    summary: 'Lift a suppression',
    description:
      "Lifts the tenant's own entry. A global entry (a bounce or complaint) is lifted only with the `admin` " +
      'scope; without it the request is refused (403) and nothing is deleted.',
    scopes: ['suppressions', 'admin'],
    path: { address: ADDRESS },
    success: { status: 204, description: 'Lifted (or there was nothing to lift).' },
    problems: ['invalid_request'],
  },
  eraseRecipient: {
    tag: 'Suppressions',
    summary: 'Erase a recipient',
    description:
      "Privacy-law erasure: replaces the address in every message record and event of the caller's tenant " +
      'by an HMAC under a per-deployment secret, and keeps a suppression tombstone, so the address is never ' +
      'mailed again. `complete: false` when the erasure worker carries on.',
    scopes: ['suppressions'],
    path: { address: ADDRESS },
    success: { status: 202, description: 'Erased (or erasing).', body: 'Erasure' },
    problems: ['invalid_request', 'not_implemented'],
  },
  stats: {
    tag: 'Reporting',
    summary: 'Daily statistics',
    description:
      "Per-day counts of the caller's tenant and the totals, with bounce and complaint rates (per recipient " +
      `SES accepted). \`to\` defaults to today (UTC), \`from\` to six days before; at most ${MAX_STATS_DAYS} days.`,
    scopes: ['read'],
    query: STATS_QUERY,
    success: { status: 200, description: 'Every day of the range, zeros included.', body: 'Stats' },
    problems: ['invalid_request'],
  },
  reputation: {
    tag: 'Reporting',
    summary: "The tenant's standing with the abuse guard",
    description:
      'Standing (`good`, `warning`, `broadcast_paused`, `held`, `suspended`), rates with samples, keys, reasons.',
    scopes: ['read'],
    success: { status: 200, description: 'The standing.', body: 'Reputation' },
    problems: [],
  },
  guardHeld: {
    tag: 'Guard',
    summary: 'List held mail',
    description: `Operator: the messages the abuse guard holds for a tenant, oldest first, at most ${MAX_HELD_PAGE} a page.`,
    scopes: ['admin'],
    query: HELD_QUERY,
    success: { status: 200, description: 'A page of held messages.', body: 'GuardHeldList' },
    problems: ['invalid_request'],
  },
  guardRelease: {
    tag: 'Guard',
    summary: 'Release held mail',
    description:
      'Operator: queues held messages (by `ids`, `lane` or `all: true`) at the lanes’ pace. ' +
      '`complete: false`: send the same request again for the rest.',
    scopes: ['admin'],
    body: 'GuardHeldSelection',
    success: { status: 200, description: 'What happened to each message.', body: 'GuardHeldAnswer' },
    problems: ['invalid_request'],
  },
  guardCancel: {
    tag: 'Guard',
    summary: 'Cancel held mail',
    description: 'Operator: fails held messages (by `ids`, `lane` or `all: true`); nothing is sent.',
    scopes: ['admin'],
    body: 'GuardHeldSelection',
    success: { status: 200, description: 'What happened to each message.', body: 'GuardHeldAnswer' },
    problems: ['invalid_request'],
  },
  guardResume: {
    tag: 'Guard',
    summary: 'Resume a tenant or key',
    description:
      'Operator: lifts what the abuse guard put in force on a tenant or key; probation (half thresholds) follows.',
    scopes: ['admin'],
    body: 'GuardResumeRequest',
    success: { status: 200, description: 'The new state.', body: 'GuardResume' },
    problems: ['invalid_request', 'not_found'],
  },
  createWebhook: {
    tag: 'Webhooks',
    summary: 'Register a webhook endpoint',
    description:
      `Registers an https URL (local mode: also http to loopback) for some or all event types, at most ${MAX_WEBHOOK_ENDPOINTS} per tenant; ` +
      'a URL to a private or reserved address is refused (422 `webhook_url_refused` says why). ' +
      'The answer holds the signing secret (`whsec_...`), shown this once.',
    scopes: ['webhooks'],
    body: 'CreateWebhook',
    success: {
      status: 201,
      description: 'Registered.',
      body: 'WebhookEndpointWithSecret',
      headers: NO_STORE,
    },
    problems: ['invalid_request', 'webhook_url_refused', 'too_many_webhooks', 'not_implemented'],
  },
  listWebhooks: {
    tag: 'Webhooks',
    summary: 'List webhook endpoints',
    description: "The caller's tenant's endpoints, oldest first; never a secret.",
    scopes: ['webhooks'],
    success: { status: 200, description: 'The endpoints.', body: 'WebhookEndpointList' },
    problems: ['not_implemented'],
  },
  getWebhook: {
    tag: 'Webhooks',
    summary: 'A webhook endpoint',
    description: "One of the caller's tenant's endpoints; another tenant's is a 404.",
    scopes: ['webhooks'],
    path: { id: WEBHOOK_ID },
    success: { status: 200, description: 'The endpoint.', body: 'WebhookEndpoint' },
    problems: ['not_found', 'not_implemented'],
  },
  updateWebhook: {
    tag: 'Webhooks',
    summary: 'Change a webhook endpoint',
    description:
      'Any of url, events, enabled, description. Enabling an endpoint Baton disabled clears its reason.',
    scopes: ['webhooks'],
    path: { id: WEBHOOK_ID },
    body: 'UpdateWebhook',
    success: { status: 200, description: 'The endpoint.', body: 'WebhookEndpoint' },
    problems: ['invalid_request', 'webhook_url_refused', 'not_found', 'not_implemented'],
  },
  deleteWebhook: {
    tag: 'Webhooks',
    summary: 'Delete a webhook endpoint',
    description: 'Nothing more is delivered to it.',
    scopes: ['webhooks'],
    path: { id: WEBHOOK_ID },
    success: { status: 204, description: 'Deleted.' },
    problems: ['not_found', 'not_implemented'],
  },
  rotateWebhookSecret: {
    tag: 'Webhooks',
    summary: "Rotate an endpoint's secret",
    description:
      'A new secret, shown this once; the previous one keeps signing for a day (both signatures are sent).',
    scopes: ['webhooks'],
    path: { id: WEBHOOK_ID },
    success: {
      status: 200,
      description: 'The endpoint with its new secret.',
      body: 'WebhookEndpointWithSecret',
      headers: NO_STORE,
    },
    problems: ['not_found', 'not_implemented'],
  },
  webhookDeliveries: {
    tag: 'Webhooks',
    summary: "An endpoint's delivery attempts",
    description: 'Each attempt, newest first: status, latency, the first bytes of the answer, the outcome.',
    scopes: ['webhooks'],
    path: { id: WEBHOOK_ID },
    query: DELIVERIES_QUERY,
    success: { status: 200, description: 'A page of attempts.', body: 'WebhookDeliveries' },
    problems: ['invalid_request', 'not_found', 'not_implemented'],
  },
  replayWebhook: {
    tag: 'Webhooks',
    summary: 'Replay events to an endpoint',
    description:
      'Queues again one event (`eventId`) or every event since a time (`since`) of the types the endpoint ' +
      'subscribes to, with the same id and bytes as the first time, so a receiver that keeps ids drops what ' +
      'it had. A disabled endpoint is refused (409); replays are limited per window (429 with `Retry-After`).',
    scopes: ['webhooks'],
    path: { id: WEBHOOK_ID },
    body: 'ReplayWebhook',
    success: { status: 202, description: 'Queued for delivery.', body: 'WebhookReplay' },
    problems: ['invalid_request', 'webhook_disabled', 'not_found', 'not_implemented'],
  },
};

/** What every route that takes a key can answer. */
const AUTHENTICATED: readonly ProblemCode[] = [
  'unauthorized',
  'forbidden',
  'rate_limited',
  'internal',
  'unavailable',
];
/** What every route that reads a JSON body can answer. */
const JSON_BODY: readonly ProblemCode[] = [
  'malformed_json',
  'bad_request',
  'too_large',
  'unsupported_media_type',
];

const SCHEMA_REF = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** The OpenAPI 3.1 document, keys in a stable order (Route's, then sorted), so it diffs cleanly. */
export function openApiDocument(): JsonObject {
  const paths: Record<string, Record<string, JsonObject>> = {};
  const problems = new Map<string, JsonObject>();
  for (const name of Object.keys(OPERATIONS) as RouteName[]) {
    const [method = '', path = ''] = Route[name].split(' ');
    paths[path] ??= {};
    paths[path][method.toLowerCase()] = operation(name, OPERATIONS[name], problems);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Baton',
      version: '1',
      summary: 'A serverless email relay on Amazon SES v2.',
      description:
        'JSON over HTTPS. Authenticate with `Authorization: Bearer <api key>`; each operation names the ' +
        'scope it needs (`x-baton-scopes`, any one of them). Errors are RFC 9457 problem details ' +
        '(`application/problem+json`) with a stable `code`; 422s list each failing field in `errors`. ' +
        'Never a 500 for bad input. A path, or a method on a path, not listed here is answered 404 ' +
        '(problem `not_found`), with or without a key.',
    },
    tags: [
      { name: 'Sending', description: 'Submit messages (scope `send`).' },
      { name: 'Messages', description: 'Status and timeline (scope `read`).' },
      {
        name: 'Suppressions',
        description: 'The suppression list and erasure (scopes `read`, `suppressions`).',
      },
      { name: 'Reporting', description: 'Statistics and reputation (scope `read`).' },
      { name: 'Guard', description: "The abuse guard's operator routes (scope `admin`)." },
      { name: 'Webhooks', description: 'Webhook endpoints (scope `webhooks`).' },
      { name: 'Service', description: 'Health and this document (no key).' },
    ],
    security: [{ bearerAuth: [] }],
    paths,
    webhooks: webhooks(),
    components: {
      schemas: componentSchemas(),
      responses: Object.fromEntries([...problems].sort(([a], [b]) => a.localeCompare(b))),
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'bt_<key id>_<secret>',
          description:
            'An API key (`npm run keys -- create`; local mode prints its development key). Scopes: `send`, ' +
            '`read`, `suppressions`, `admin`, `webhooks`.',
        },
      },
      headers: {
        'Retry-After': {
          description: 'Seconds to wait before trying again.',
          schema: { type: 'integer', minimum: 0 },
        },
      },
    },
  };
}

function operation(name: RouteName, op: Operation, shared: Map<string, JsonObject>): JsonObject {
  const problems = [
    ...(op.scopes === null ? [] : AUTHENTICATED),
    ...(op.body === undefined ? [] : JSON_BODY),
    ...op.problems,
  ];
  const scopes = op.scopes ?? [];
  const scopeWords = op.scopes === null ? 'No key.' : `Scope: ${scopes.map((s) => `\`${s}\``).join(' or ')}.`;
  return {
    operationId: name,
    tags: [op.tag],
    summary: op.summary,
    description: `${op.description}\n\n${scopeWords}`,
    // One entry per scope: any one of them will do (OpenAPI 3.1 allows roles on non-OAuth schemes).
    security: op.scopes === null ? [] : scopes.map((s) => ({ bearerAuth: [s] })),
    'x-baton-scopes': scopes,
    ...(parameters(op).length > 0 ? { parameters: parameters(op) } : {}),
    ...(op.body === undefined ? {} : { requestBody: requestBody(op.body) }),
    responses: responses(op, problems, shared),
  };
}

function parameters(op: Operation): JsonObject[] {
  const path = Object.entries(op.path ?? {}).map(([name, description]) => ({
    name,
    in: 'path',
    required: true,
    description,
    schema: { type: 'string' },
  }));
  const query = op.query === undefined ? [] : queryParameters(op.query);
  const idempotency = op.idempotent
    ? [
        {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'The same key with the same body within 24 h answers the first response (with ' +
            '`Idempotent-Replayed: true`); with another body, 409.',
          schema: { type: 'string', pattern: KEY_FORMAT.source },
        },
      ]
    : [];
  return [...path, ...query, ...idempotency];
}

/** One parameter per property: its values as the route reads them (`output`), required as sent. */
function queryParameters(schema: QuerySchema): JsonObject[] {
  const output = toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as {
    properties?: Record<string, JsonObject>;
  };
  const input = toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { required?: string[] };
  return Object.entries(output.properties ?? {}).map(([name, property]) => ({
    name,
    in: 'query',
    required: input.required?.includes(name) ?? false,
    schema: property,
  }));
}

function requestBody(body: Component | 'SendForms'): JsonObject {
  const schema =
    body === 'SendForms'
      ? { oneOf: [SCHEMA_REF('SendMessage'), SCHEMA_REF('RawSendMessage')] }
      : SCHEMA_REF(body);
  return { required: true, content: { 'application/json': { schema } } };
}

/**
 * The success answer, and the problem answers by status as references to `shared`: answers with
 * the same status and codes (most operations' 401, 403, 429, 500 and 503) are written once.
 */
function responses(
  op: Operation,
  problems: readonly ProblemCode[],
  shared: Map<string, JsonObject>,
): JsonObject {
  const out: Record<string, JsonObject> = {};
  const { success } = op;
  const headers = {
    ...success.headers,
    ...(op.idempotent
      ? {
          'Idempotent-Replayed': {
            description: '`true` when this is the kept first answer to a repeated Idempotency-Key.',
            schema: { type: 'string', const: 'true' },
          },
        }
      : {}),
  };
  out[String(success.status)] = {
    description: success.description,
    ...(Object.keys(headers).length === 0 ? {} : { headers }),
    ...(success.body === undefined
      ? {}
      : {
          content: {
            'application/json': {
              schema:
                success.body === 'document'
                  ? { type: 'object', required: ['openapi'] }
                  : SCHEMA_REF(success.body),
            },
          },
        }),
  };
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of new Set(problems)) {
    const { status } = PROBLEM_CATALOG[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const status of [...byStatus.keys()].sort((a, b) => a - b)) {
    const codes = byStatus.get(status) ?? [];
    const name = `Problem.${status}.${codes.join('.')}`;
    shared.set(name, {
      description: codes.map((c) => `\`${c}\`: ${PROBLEM_CATALOG[c].title}.`).join(' '),
      ...(problemHeaders(status, codes) ?? {}),
      content: {
        'application/problem+json': {
          schema: {
            ...SCHEMA_REF('Problem'),
            properties: { status: { const: status }, code: { enum: codes } },
          },
        },
      },
    });
    out[String(status)] = { $ref: `#/components/responses/${name}` };
  }
  return out;
}

function problemHeaders(status: number, codes: readonly ProblemCode[]): JsonObject | undefined {
  const retryAfter = { $ref: '#/components/headers/Retry-After' };
  if (status === 429) return { headers: { 'Retry-After': { ...retryAfter, required: true } } };
  if (status === 503 || codes.includes('idempotency_in_progress'))
    return { headers: { 'Retry-After': retryAfter } };
  return undefined;
}

/** Request schemas as clients send them, response schemas as Baton builds them, sorted by name. */
function componentSchemas(): JsonObject {
  const requests = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(REQUESTS)) requests.add(schema, { id });
  const responses = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(RESPONSES)) responses.add(schema, { id });
  const uri = (id: string) => `#/components/schemas/${id}`;
  const inputs = toJSONSchema(requests, {
    io: 'input',
    uri,
    unrepresentable: 'any',
    override: (ctx) => {
      describeAddresses(ctx);
      caseInsensitivePatterns(ctx);
    },
  }).schemas;
  const outputs = toJSONSchema(responses, { io: 'output', uri, unrepresentable: 'any' }).schemas;
  const all: Record<string, JsonObject> = { ...inputs, ...outputs } as Record<string, JsonObject>;
  describeFields(all);
  // The batch's messages are each a message in either form (checked one by one, not as a list).
  const batch = all.SendBatch as { properties: { messages: JsonObject } };
  batch.properties.messages.items = {
    oneOf: [SCHEMA_REF('SendMessage'), SCHEMA_REF('RawSendMessage')],
    description:
      'A message in the JSON or the raw form. Each is checked on its own: one that fits neither is ' +
      'answered with its problem in `results` (207), never a 422 for the whole batch.',
  };
  for (const type of WEBHOOK_EVENT_TYPES) {
    all[webhookComponent(type)] = toJSONSchema(WEBHOOK_PAYLOAD_SCHEMAS[type]) as JsonObject;
  }
  return Object.fromEntries(
    Object.keys(all)
      .sort()
      .map((name) => {
        // A component's place is its name: no `$schema` (the document's dialect) nor `$id`.
        const { $schema: _dialect, $id: _id, ...schema } = all[name] ?? {};
        return [name, schema];
      }),
  );
}

/**
 * What the send forms' fields mean, beside what their schemas say (DESIGN §2). Words only: every
 * rule a client can break is the validating schema's.
 */
const FIELD_NOTES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  SendMessage: {
    from: 'The sender, `local@domain` or `Name <local@domain>`, in a domain the key may send from.',
    to: `Recipients; at least one of to, cc or bcc, at most ${MAX_RECIPIENTS} in all.`,
    cc: 'Copied recipients, as `to`.',
    bcc: 'Blind-copied recipients, as `to`: in no header.',
    replyTo: 'Where replies go.',
    text: 'The plain-text body; at least one of text or html.',
    html: 'The HTML body, sanitized before it is sent.',
    attachments: 'Base64 content; an `inline` attachment needs a `contentId` (for `cid:`).',
    headers: 'Extra headers; one Baton sets, or one that routes mail, is refused.',
    tags: 'At most 10, names and values of `A-Z a-z 0-9 _ -`; carried on the message’s webhook events.',
    stream: '`transactional` (the default) or `broadcast`, which needs `listUnsubscribe`.',
    listUnsubscribe: 'An https URL for RFC 8058 one-click unsubscribe; required on broadcast.',
  },
  RawSendMessage: {
    raw: 'A whole RFC 5322 message, base64 (as nodemailer builds it); `X-Baton-Stream` and `X-Baton-Tags` headers set the stream and tags.',
    envelope:
      'The recipients (`to`, as RCPT TO: Bcc lives only here) and MAIL FROM (`from`, checked as `from` is). Without it, the To, Cc and Bcc headers.',
  },
};

function describeFields(schemas: Record<string, JsonObject>): void {
  for (const [component, notes] of Object.entries(FIELD_NOTES)) {
    const properties = (schemas[component]?.properties ?? {}) as Record<string, JsonObject>;
    for (const [field, description] of Object.entries(notes)) {
      const property = properties[field];
      if (property === undefined) throw new Error(`${component} has no field ${field} to describe`);
      property.description = description;
    }
  }
}

/**
 * The address lists take one address or a list (a pipe from string-or-array to parsed mailboxes);
 * as sent, the items are strings, which the pipe's input side cannot say.
 */
function describeAddresses(ctx: { zodSchema: unknown; jsonSchema: JsonObject }): void {
  if (ctx.zodSchema !== ADDRESS_LIST) return;
  const address = {
    type: 'string',
    description: '`local@domain` or `Name <local@domain>`; an IDN domain is converted to punycode.',
  };
  for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
  ctx.jsonSchema.anyOf = [address, { type: 'array', items: address }];
}

type RegexCheck = { _zod?: { def?: { format?: string; pattern?: RegExp } } };

/**
 * JSON Schema's `pattern` has no flags: a regex checked case-insensitively (`/^[a-z0-9]…$/i`, the
 * attachments' contentType) is written with both cases in its ranges, so it refuses no more.
 */
function caseInsensitivePatterns(ctx: { zodSchema: unknown; jsonSchema: JsonObject }): void {
  const checks = (ctx.zodSchema as { _zod?: { def?: { checks?: RegexCheck[] } } })._zod?.def?.checks ?? [];
  for (const check of checks) {
    const pattern = check._zod?.def?.pattern;
    if (check._zod?.def?.format !== 'regex' || pattern === undefined || !pattern.flags.includes('i'))
      continue;
    if (ctx.jsonSchema.pattern === pattern.source)
      ctx.jsonSchema.pattern = pattern.source.replace(/a-z/g, 'a-zA-Z');
  }
}

const webhookComponent = (type: string) => `WebhookEvent.${type}`;

/** OpenAPI 3.1's `webhooks`: one POST per event type, signed as Standard Webhooks sign. */
function webhooks(): JsonObject {
  const header = (name: string, description: string) => ({
    name,
    in: 'header',
    required: true,
    description,
    schema: { type: 'string' },
  });
  return Object.fromEntries(
    WEBHOOK_EVENT_TYPES.map((type) => [
      type,
      {
        post: {
          operationId: `webhook.${type}`,
          summary: `The ${type} event`,
          description:
            'Sent to each enabled endpoint registered for this type, signed with its secret (Standard Webhooks). ' +
            'A 2xx answer is a success; other answers and timeouts are retried for three days; 410 disables ' +
            'the endpoint.',
          parameters: [
            header('webhook-id', "The event's id: the same on every retry, for deduplication."),
            header('webhook-timestamp', 'Unix seconds when this attempt was signed.'),
            header(
              'webhook-signature',
              'Space-separated `v1,<base64 HMAC-SHA256>` signatures of `id.timestamp.body`, one per live secret.',
            ),
          ],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: SCHEMA_REF(webhookComponent(type)) } },
          },
          responses: {
            '2XX': { description: 'Received.' },
            '410': { description: 'Gone: Baton disables the endpoint.' },
          },
        },
      },
    ]),
  );
}
