/**
 * The api's response bodies as zod schemas, for the OpenAPI document only (issue 15): responses are
 * built by the domain's view functions, not validated, so these schemas are checked against those
 * functions' types at compile time instead (`Fits` below), and against real answers by the e2e
 * suite (test/e2e/openapi.test.ts). Never imported by the api function: it serves the committed
 * document.
 */
import { z } from 'zod';
import type { ScopeGuardState } from '../../domain/guard/evaluate.ts';
import type { HeldListing, HeldResult } from '../../domain/guard/operations.ts';
import type { GuardTarget, ReputationView } from '../../domain/ports.ts';
import type { Problem } from '../../domain/problem.ts';
import { PROBLEM_CATALOG } from '../../domain/problem.ts';
import type { StatsView } from '../../domain/reporting/stats.ts';
import type { MessageView } from '../../domain/reporting/status.ts';
import type { AcceptResult, BatchResult } from '../../domain/send/accept.ts';
import { SUPPRESSION_REASONS, type SuppressionView } from '../../domain/suppression/suppression.ts';
import { WEBHOOK_EVENT_TYPES } from '../../domain/webhooks/events.ts';
import type {
  DeliveryAttemptView,
  ReplayOutcome,
  WebhookEndpointView,
  WebhookEndpointWithSecret,
} from '../../domain/webhooks/operations.ts';
import { LANES } from '../../shared/names.ts';

const time = z.iso.datetime({ offset: true });
const PROBLEM_CODES = Object.keys(PROBLEM_CATALOG) as [keyof typeof PROBLEM_CATALOG];

export const ProblemBody = z
  .object({
    type: z.string().describe('`urn:baton:problem:<code>`'),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    code: z.enum(PROBLEM_CODES),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('One entry per failing field (`to[0]`, `attachments[1].content`).'),
  })
  .describe('RFC 9457 problem details, the only error shape of the api (`application/problem+json`).');

const recipientStatus = z.enum([
  'queued',
  'held',
  'sent',
  'delivered',
  'delayed',
  'bounced',
  'complained',
  'suppressed',
  'failed',
]);

export const MessageViewBody = z.object({
  id: z.string(),
  status: z.enum([
    'queued',
    'held',
    'sending',
    'sent',
    'delivered',
    'partially_delivered',
    'bounced',
    'complained',
    'suppressed',
    'rejected',
    'failed',
  ]),
  stream: z.string(),
  createdAt: time,
  from: z.string(),
  subject: z.string(),
  recipients: z.array(
    z.object({
      address: z.string(),
      status: recipientStatus,
      reason: z.string().nullable().describe('Why it was not delivered, in words; null once delivered.'),
      updatedAt: time,
    }),
  ),
  events: z.array(
    z.object({
      type: z.enum([
        'accepted',
        'suppressed',
        'sent',
        'delivered',
        'delayed',
        'bounced',
        'complained',
        'rejected',
        'failed',
        'rendering_failed',
        'opened',
        'clicked',
        'unsubscribed',
        'retrying',
        'held',
        'released',
      ]),
      at: time,
      recipient: z.string().optional(),
      sesMessageId: z.string().optional(),
      detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
    }),
  ),
});

const acceptStatus = z.enum(['queued', 'held', 'suppressed']);
const acceptedFields = {
  id: z.string(),
  status: acceptStatus.describe('`held`: kept by the abuse guard; `suppressed`: every recipient was.'),
  recipients: z.array(
    z.object({
      address: z.string(),
      status: acceptStatus,
      reason: z.enum(SUPPRESSION_REASONS).optional(),
    }),
  ),
  rewrittenFrom: z.string().nullable().describe('The From used when the sender policy rewrote it.'),
};

export const AcceptedBody = z.object(acceptedFields);

export const BatchBody = z
  .object({
    results: z.array(
      z.union([
        z.object({ index: z.int().nonnegative(), ...acceptedFields }),
        z.object({ index: z.int().nonnegative(), error: ProblemBody }),
      ]),
    ),
  })
  .describe('One result per message, in request order: one bad message never fails the others.');

export const SuppressionViewBody = z.object({
  address: z.string(),
  reason: z.enum(SUPPRESSION_REASONS),
  detail: z.string().nullable(),
  source: z.string().nullable(),
  createdAt: time,
  expiresAt: time.nullable(),
  scope: z
    .enum(['global', 'tenant'])
    .describe("`global`: SES's evidence, every tenant's, lifted by an operator; `tenant`: the caller's."),
});

export const SuppressionListBody = z.object({
  items: z.array(SuppressionViewBody),
  nextCursor: z.string().nullable(),
});

const statsRow = {
  accepted: z.int(),
  rejected: z.int(),
  suppressed: z.int(),
  sent: z.int(),
  delivered: z.int(),
  bounced: z.int(),
  complained: z.int(),
  failed: z.int(),
  bounceRate: z.number().describe('bounced / sent, 4 decimals, 0 when nothing was sent'),
  complaintRate: z.number().describe('complained / sent, 4 decimals, 0 when nothing was sent'),
};

export const StatsBody = z.object({
  from: z.iso.date(),
  to: z.iso.date(),
  days: z.array(z.object({ date: z.iso.date(), ...statsRow })),
  totals: z.object(statsRow),
});

const sample = z.object({ sends: z.int(), over: z.enum(['sends', 'attempts']), events: z.int() });

export const ReputationBody = z.object({
  standing: z.enum(['good', 'warning', 'broadcast_paused', 'held', 'suspended']),
  rates: z.record(z.string(), z.number().nullable()),
  sample: z.record(z.string(), sample.extend({ reached: z.boolean() })),
  window: z.record(z.string(), z.object({ from: time, to: time, hours: z.int() })),
  keys: z.array(z.object({ keyId: z.string(), status: z.string(), reason: z.string().nullable() })),
  reasons: z.array(z.string()),
});

export const ErasureBody = z.object({
  erased: z.int().nonnegative().describe('Records rewritten so far.'),
  complete: z
    .literal(false)
    .optional()
    .describe('Present when the scan ran out of time: the erasure worker carries on.'),
});

const lane = z.enum(LANES);

export const HeldListBody = z.object({
  tenant: z.string(),
  items: z.array(
    z.object({
      tenant: z.string(),
      id: z.string(),
      lane,
      keyId: z.string().optional(),
      heldAt: time,
      until: time,
      action: z.string(),
      signal: z.string(),
      reason: z.string(),
      expired: z.boolean(),
    }),
  ),
  nextCursor: z.string().nullable(),
});

const outcomeKinds = ['released', 'cancelled', 'expired', 'held', 'missing', 'deferred'] as const;

export const HeldAnswerBody = z.object({
  tenant: z.string(),
  counts: z.object(
    Object.fromEntries(outcomeKinds.map((k) => [k, z.int()])) as Record<
      (typeof outcomeKinds)[number],
      z.ZodInt
    >,
  ),
  outcomes: z.array(
    z.object({
      id: z.string(),
      outcome: z.enum(outcomeKinds),
      lane: lane.optional(),
      reason: z.string().optional(),
    }),
  ),
  complete: z.boolean().describe('False when messages are left: send the same request again.'),
});

const guardDecision = z.looseObject({
  scope: z.string(),
  tenantId: z.string(),
  keyId: z.string().optional(),
  action: z.string(),
  signal: z.string(),
  reason: z.string().optional(),
});

export const ResumeBody = z.object({
  target: z.union([
    z.object({ kind: z.literal('tenant'), tenant: z.string() }),
    z.object({ kind: z.literal('key'), keyId: z.string() }),
  ]),
  state: z.looseObject({
    actions: z.array(guardDecision),
    reinstatedAt: time.optional(),
    resumedReason: z.string().optional(),
  }),
});

const endpointFields = {
  id: z.string(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  description: z.string(),
  enabled: z.boolean(),
  disabledReason: z
    .enum(['gone', 'failing'])
    .nullable()
    .describe('Why Baton disabled it: `gone` (a 410) or `failing` (days of failure).'),
  createdAt: time,
  updatedAt: time,
  previousSecretExpiresAt: time
    .nullable()
    .describe('Until when the secret before the last rotation still signs.'),
};

export const WebhookEndpointBody = z.object(endpointFields);

export const WebhookEndpointWithSecretBody = z.object({
  ...endpointFields,
  secret: z.string().describe('`whsec_...`: shown in this answer only.'),
});

export const WebhookEndpointListBody = z.object({ items: z.array(WebhookEndpointBody) });

export const DeliveriesBody = z.object({
  items: z.array(
    z.object({
      endpointId: z.string(),
      eventId: z.string(),
      type: z.enum(WEBHOOK_EVENT_TYPES),
      attempt: z.int().positive(),
      at: time,
      statusCode: z.int().nullable().describe('The receiver’s status; null when none came.'),
      latencyMs: z.number(),
      response: z.string().describe('The first bytes (at most 1 KiB) of the answer, or why none came.'),
      outcome: z.enum(['success', 'retry', 'gave-up', 'disabled']),
      nextAttemptAt: time.optional(),
      replay: z.boolean().optional(),
    }),
  ),
  nextCursor: z.string().nullable(),
});

export const ReplayBody = z.object({
  replayed: z.int().nonnegative(),
  truncated: z.boolean().describe('True when events were left: replay again with since: nextSince.'),
  nextSince: time.optional(),
});

export const HealthBody = z.object({ status: z.literal('ok') });

// --- compile-time checks: what the producing functions return fits each schema -----------------

type Writable<T> =
  T extends ReadonlyArray<infer U>
    ? Writable<U>[]
    : T extends object
      ? { -readonly [K in keyof T]: Writable<T[K]> }
      : T;
/** `true` when every value of `View` (as the code builds it) is one the schema describes. */
type Fits<View, S extends z.ZodType> = Writable<View> extends z.output<S> ? true : false;

export const RESPONSE_TYPES_FIT = [
  true satisfies Fits<Problem, typeof ProblemBody>,
  true satisfies Fits<MessageView, typeof MessageViewBody>,
  true satisfies Fits<AcceptResult, typeof AcceptedBody>,
  true satisfies Fits<{ results: BatchResult[] }, typeof BatchBody>,
  true satisfies Fits<SuppressionView, typeof SuppressionViewBody>,
  true satisfies Fits<StatsView, typeof StatsBody>,
  true satisfies Fits<ReputationView, typeof ReputationBody>,
  true satisfies Fits<{ erased: number; complete?: false }, typeof ErasureBody>,
  true satisfies Fits<WebhookEndpointView, typeof WebhookEndpointBody>,
  true satisfies Fits<WebhookEndpointWithSecret, typeof WebhookEndpointWithSecretBody>,
  true satisfies Fits<{ items: DeliveryAttemptView[]; nextCursor: string | null }, typeof DeliveriesBody>,
  true satisfies Fits<ReplayOutcome, typeof ReplayBody>,
  true satisfies Fits<
    { tenant: string; items: HeldListing[]; nextCursor: string | null },
    typeof HeldListBody
  >,
  true satisfies Fits<
    Omit<HeldResult, 'more'> & { tenant: string; complete: boolean },
    typeof HeldAnswerBody
  >,
  true satisfies Fits<{ target: GuardTarget; state: ScopeGuardState }, typeof ResumeBody>,
  true satisfies Fits<{ status: 'ok' }, typeof HealthBody>,
] as const;
