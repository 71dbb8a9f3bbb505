/**
 * Names that both the CDK stack (`lib/`) and the run-time code (`lambdas/`, `local/`) rely on.
 * Keeping them in one module means the stack and the code cannot drift apart: a renamed variable
 * or key breaks the type-check instead of a deployment.
 *
 * This module must stay free of imports: it is bundled into every Lambda.
 */

/** Environment variables the Lambdas read (through `shared/env.ts`). */
export const EnvVar = {
  apiKeysTable: 'BATON_API_KEYS_TABLE',
  messagesTable: 'BATON_MESSAGES_TABLE',
  suppressionsTable: 'BATON_SUPPRESSIONS_TABLE',
  statsTable: 'BATON_STATS_TABLE',
  idempotencyTable: 'BATON_IDEMPOTENCY_TABLE',
  transactionalQueueUrl: 'BATON_TRANSACTIONAL_QUEUE_URL',
  broadcastQueueUrl: 'BATON_BROADCAST_QUEUE_URL',
  configurationSet: 'BATON_CONFIGURATION_SET',
  /** The lane a sender function drains (`transactional` | `broadcast`). */
  lane: 'BATON_LANE',
  retentionDays: 'BATON_RETENTION_DAYS',
  /** SES recipients per second this function may use (its share of the account's rate). */
  maxSendRate: 'BATON_MAX_SEND_RATE',
  /**
   * How many instances of this sender may run at once (its event source mapping's maximum
   * concurrency). An instance that limits itself to `maxSendRate / maxConcurrency` sends per second
   * keeps the whole lane within its share without coordinating with the others.
   */
  maxConcurrency: 'BATON_MAX_CONCURRENCY',
  /**
   * The lane queue's maxReceiveCount: on its last receive the sender records the message failed
   * (with the last error) before SQS moves it to the dead-letter queue.
   */
  maxReceiveCount: 'BATON_MAX_RECEIVE_COUNT',
  /**
   * Seconds a sender's claim on a message protects its attempt. Optional, default 120. The stack sets
   * it to the sender's timeout plus 90 s (a lane paced slowly gets a longer timeout), always shorter
   * than the lane queue's visibility timeout; the fault soak shortens it together with the visibility
   * timeout so killed senders recover within its run.
   */
  claimLeaseSeconds: 'BATON_CLAIM_LEASE_SECONDS',
  /**
   * Seconds a sender waits for SES's evidence (an event with Baton's id) after a SendEmail whose
   * outcome it did not learn, before it sends again. The stack derives it from the feedback path's
   * settings (shared/event-path.ts); local mode from its own.
   */
  confirmationWindowSeconds: 'BATON_CONFIRMATION_WINDOW_SECONDS',
  /** Optional PEM file with a DKIM private key; when set, the sender signs before SES. */
  dkimKeyFile: 'BATON_DKIM_KEY_FILE',
  dkimSelector: 'BATON_DKIM_SELECTOR',
  /**
   * Seconds the api function caches an API key lookup (hits and misses); optional, default 30,
   * at most 60 so a suspended or revoked key stops working within DESIGN's bound.
   */
  keyCacheSeconds: 'BATON_KEY_CACHE_SECONDS',
  /**
   * The bucket that holds send jobs too large for one SQS message (claim check): the api function
   * writes them, the senders read them back.
   */
  payloadBucket: 'BATON_PAYLOAD_BUCKET',
  /**
   * `true` makes the S3 client address buckets by path (`<endpoint>/<bucket>/<key>`) instead of by
   * host name (`<bucket>.<endpoint>`). Only local mode sets it: its S3 emulator has no wildcard DNS.
   */
  s3ForcePathStyle: 'BATON_S3_FORCE_PATH_STYLE',
  /**
   * ARN of the per-deployment erasure secret (Secrets Manager), read once per cold start: erased
   * addresses are replaced by, and their tombstones keyed by, an HMAC under it.
   */
  erasureSecretArn: 'BATON_ERASURE_SECRET_ARN',
  /**
   * The erasure secret itself, instead of its ARN. Only local mode sets it (it has no Secrets
   * Manager); deployed functions get the ARN.
   */
  erasureSecret: 'BATON_ERASURE_SECRET',
  /** The queue on which an erasure that outlasts its request continues (the erasure worker's). */
  erasureQueueUrl: 'BATON_ERASURE_QUEUE_URL',
  /** SMTP submission port (STARTTLS): 587 deployed, 2525 in local mode; 0 picks a free one. */
  smtpPort: 'BATON_SMTP_PORT',
  /** SMTP port with implicit TLS (465 deployed); unset, none is opened. */
  smtpTlsPort: 'BATON_SMTP_TLS_PORT',
  /** HTTP health port (`GET /health`: 200 while accepting, 503 while draining); unset, none. */
  smtpHealthPort: 'BATON_SMTP_HEALTH_PORT',
  /** Address the SMTP server binds. @default 0.0.0.0 (local mode: 127.0.0.1) */
  smtpHost: 'BATON_SMTP_HOST',
  /** Name in the SMTP greeting and EHLO reply. @default the host name */
  smtpHostname: 'BATON_SMTP_HOSTNAME',
  /**
   * Secrets Manager id of the SMTP TLS certificate: a JSON SecretString
   * `{"certificate": "<PEM chain>", "privateKey": "<PEM>"}`, re-read every
   * BATON_SMTP_TLS_RELOAD_SECONDS, so a renewed certificate is used without a restart.
   */
  smtpTlsSecret: 'BATON_SMTP_TLS_SECRET',
  /** PEM files instead of the secret (local mode's generated self-signed pair). */
  smtpTlsCertFile: 'BATON_SMTP_TLS_CERT_FILE',
  smtpTlsKeyFile: 'BATON_SMTP_TLS_KEY_FILE',
  smtpTlsReloadSeconds: 'BATON_SMTP_TLS_RELOAD_SECONDS',
  /** `1` in local mode only: AUTH is offered without STARTTLS on loopback connections. */
  smtpLocal: 'BATON_SMTP_LOCAL',
  /** Largest message accepted over SMTP, in bytes, advertised in SIZE. @default 26214400 (25 MiB) */
  smtpMaxBytes: 'BATON_SMTP_MAX_BYTES',
  /** Open connections allowed per source address. @default 20 */
  smtpMaxConnectionsPerSource: 'BATON_SMTP_MAX_CONNECTIONS_PER_SOURCE',
  /** Seconds a draining server (SIGTERM) lets sessions finish before it closes them. @default 25 */
  smtpDrainSeconds: 'BATON_SMTP_DRAIN_SECONDS',
  /**
   * The abuse guard's table (issue 13): hourly counters and event markers per key and tenant, each
   * tenant's guard state and policy override, and the held-mail index (Keys.guard).
   */
  guardTable: 'BATON_GUARD_TABLE',
  /**
   * `1` counts mailbox-simulator recipients in the guard's counters (local mode, so the guard can
   * be exercised there); deployed they are left out, as SES leaves them out of its reputation.
   */
  guardCountSimulator: 'BATON_GUARD_COUNT_SIMULATOR',
  /**
   * Seconds between two evaluations of one scope (a key, a tenant). @default 60, the "at
   * most once per scope per minute"; tests of local mode shorten it so a decision need not wait.
   */
  guardEvaluateSeconds: 'BATON_GUARD_EVALUATE_SECONDS',
  /**
   * The Webhooks table (issue 14, Keys.webhooks): endpoints, each endpoint's breaker and concurrency
   * slots, the replay log of produced events and the delivery attempts. Unset, nothing is published.
   */
  webhooksTable: 'BATON_WEBHOOKS_TABLE',
  /** The webhook delivery queue: producers enqueue one job per event and endpoint; the delivery function drains it. */
  webhookQueueUrl: 'BATON_WEBHOOK_QUEUE_URL',
  /**
   * `1` in local mode only: webhook URLs may be `http://127.0.0.1`, `http://localhost` or `http://[::1]`
   * (checkWebhookUrl's allowLoopbackHttp), at registration and at connect time.
   */
  webhookAllowLoopback: 'BATON_WEBHOOK_ALLOW_LOOPBACK',
  /** Seconds producers cache a tenant's endpoints (WebhookDirectory). @default 10 (local mode: 1) */
  webhookDirectorySeconds: 'BATON_WEBHOOK_DIRECTORY_SECONDS',
  /** The scheduled domain doctor (issue 15): the sending domains to check, comma-separated. */
  doctorDomains: 'BATON_DOCTOR_DOMAINS',
} as const;
export type EnvVarName = (typeof EnvVar)[keyof typeof EnvVar];

/**
 * The MAIL FROM subdomain a deployment configures unless `-c mailFromSubdomain` says otherwise
 * (lib/config.ts); the domain doctor assumes it when no stack tells it the real one.
 */
export const DEFAULT_MAIL_FROM_SUBDOMAIN = 'bounce';

/** The two delivery lanes; each has its own queue, DLQ, sender function and concurrency. */
export const LANES = ['transactional', 'broadcast'] as const;
export type Lane = (typeof LANES)[number];

/** DynamoDB key and attribute names. Table names themselves are generated by CloudFormation. */
export const Keys = {
  apiKeys: { partition: 'keyId' },
  messages: {
    partition: 'id',
    sesMessageIdIndex: 'bySesMessageId',
    sesMessageId: 'sesMessageId',
    ttl: 'expiresAt',
  },
  suppressions: { partition: 'address', ttl: 'expiresAt' },
  /**
   * `ttl`: set on the abuse guard's counters and event markers (adapters/guard-counter-store.ts);
   * daily statistics and quotas carry none.
   */
  stats: { partition: 'pk', ttl: 'expiresAt' },
  idempotency: { partition: 'pk', ttl: 'expiresAt' },
  /**
   * The Guard table: `pk` names the item's owner (`key:<id>`, `tenant:<t>`, `held:<t>`), `sk` what it
   * is (an hour bucket, an event marker, `state`, a held message id). Items with a TTL expire.
   */
  guard: { partition: 'pk', sort: 'sk', ttl: 'expiresAt' },
  /**
   * The Webhooks table (issue 14). Items:
   * - endpoint: pk `tenant#<tenant>`, sk `endpoint#<id>` (the WebhookEndpoint).
   * - its delivery state: pk `endpoint#<id>`, sk `state` (breaker, concurrency slots).
   * - an attempt: pk `endpoint#<id>`, sk `attempt#<at ISO>#<eventId>#<attempt>`, with TTL.
   * - a produced event: pk `events#<tenant>`, sk `at#<timestamp ISO>#<eventId>` (replay since a time)
   *   and sk `id#<eventId>` (replay by id), both with the body, with TTL.
   * - the events replays queued to an endpoint in an hour: pk `endpoint#<id>`, sk `replay#<hour ISO>`,
   *   with TTL.
   */
  webhooks: { partition: 'pk', sort: 'sk', ttl: 'expiresAt' },
} as const;

/**
 * SES message tags that the sender puts on every send. SES copies them into every event it
 * publishes (`mail.tags`), which is how feedback finds the Baton message without a lookup.
 */
export const MessageTag = {
  messageId: 'baton_message_id',
  tenant: 'baton_tenant',
  stream: 'baton_stream',
} as const;

/** The HTTP API's routes (API Gateway route keys, `METHOD /path`). */
export const Route = {
  health: 'GET /health',
  /** The OpenAPI 3.1 document of this API, generated from the validating schemas (no key, issue 15). */
  openapi: 'GET /openapi.json',
  sendMessage: 'POST /v1/messages',
  sendBatch: 'POST /v1/messages/batch',
  getMessage: 'GET /v1/messages/{id}',
  listSuppressions: 'GET /v1/suppressions',
  getSuppression: 'GET /v1/suppressions/{address}',
  putSuppression: 'PUT /v1/suppressions/{address}',
  deleteSuppression: 'DELETE /v1/suppressions/{address}',
  eraseRecipient: 'DELETE /v1/recipients/{address}',
  stats: 'GET /v1/stats',
  /** The caller's tenant's standing with the abuse guard (scope `read`). */
  reputation: 'GET /v1/reputation',
  /** Operator routes of the abuse guard (scope `admin`): held mail, release, cancel, resume. */
  guardHeld: 'GET /v1/guard/held',
  guardRelease: 'POST /v1/guard/release',
  guardCancel: 'POST /v1/guard/cancel',
  guardResume: 'POST /v1/guard/resume',
  /** Webhook endpoints of the caller's tenant (scope `webhooks`, issue 14). */
  createWebhook: 'POST /v1/webhooks',
  listWebhooks: 'GET /v1/webhooks',
  getWebhook: 'GET /v1/webhooks/{id}',
  updateWebhook: 'PATCH /v1/webhooks/{id}',
  deleteWebhook: 'DELETE /v1/webhooks/{id}',
  rotateWebhookSecret: 'POST /v1/webhooks/{id}/rotate-secret',
  webhookDeliveries: 'GET /v1/webhooks/{id}/deliveries',
  replayWebhook: 'POST /v1/webhooks/{id}/replay',
  /** Anything else: answered by the api function with a 404 problem instead of API Gateway's own body. */
  fallback: '$default',
} as const;
export type RouteKey = (typeof Route)[keyof typeof Route];

/** The SES event types the configuration set publishes to the feedback topic. */
export const PUBLISHED_SES_EVENTS = [
  'send',
  'reject',
  'bounce',
  'complaint',
  'delivery',
  'deliveryDelay',
  'renderingFailure',
] as const;

/**
 * CloudFormation metadata key on each function: the source entry of its handler, relative to the
 * repository root. Local mode reads it from the synthesized template to run the same module.
 */
export const ENTRY_METADATA_KEY = 'baton:entry';

/**
 * Suppressions-table key prefix of the transient-bounce counters (not suppressions themselves).
 * Every internal key of that table holds a ":", which no address Baton accepts can contain (a
 * dot-atom local part and a host name), so no address maps onto an internal item. Counters written
 * before this prefix (`softbounce#<address>`, itself a valid address) are no longer read; they
 * expire by TTL within the soft-bounce window (docs/suppression.md).
 */
export const SOFT_BOUNCE_KEY_PREFIX = 'softbounce:';

/**
 * Suppressions-table key prefix of a tenant's own entries (manual, unsubscribe, erasure
 * tombstones): `tenant:<tenant>:<address or pseudonym>`. Tenant ids hold no ":" and addresses none
 * either, so the key names its scope without ambiguity and no address can produce it. Global
 * entries (bounces, complaints) are keyed by the plain address, as before scopes existed.
 */
export const TENANT_KEY_PREFIX = 'tenant:';

/**
 * Prefix of an erased address's pseudonym (`erased:<first 24 hex of HMAC-SHA256>`): it replaces
 * the address in message records and keys its suppression tombstone in the Suppressions table.
 */
export const ERASED_KEY_PREFIX = 'erased:';

/** The erasure worker's Powertools service name. */
export const ERASURE_SERVICE = 'baton-erasure';

/** Where the claim check keeps message payloads too large for a queue; IAM grants only this prefix. */
export const PAYLOAD_KEY_PREFIX = 'payloads/';

/**
 * Where the abuse guard keeps the jobs of held messages (`payloads/held/<message id>.json`), in the
 * payload bucket: under the payload prefix, so its lifecycle rule (15 days) outlives a hold (7 days).
 * Its own prefix so that the senders may put here and nowhere else, and only the api may delete.
 */
export const HELD_PAYLOAD_PREFIX = `${PAYLOAD_KEY_PREFIX}held/`;

/**
 * Guard-table partition prefix of the held-mail index (`held:<tenant>`): the senders may write
 * these items and no other item of the table (IAM's dynamodb:LeadingKeys).
 */
export const HELD_INDEX_PREFIX = 'held:';

/**
 * Webhooks-table partition prefixes (Keys.webhooks): a tenant's endpoints (`tenant#<tenant>`), its
 * produced events (`events#<tenant>`), and an endpoint's delivery state, attempts and replay budget
 * (`endpoint#<id>`). The stores write them and IAM confines each function to its own
 * (dynamodb:LeadingKeys), so both read them from here.
 */
export const WebhookPartition = {
  endpoints: 'tenant#',
  events: 'events#',
  delivery: 'endpoint#',
} as const;

/**
 * Key prefix of the abuse guard's hourly counters and event markers (adapters/guard-counter-store.ts)
 * in the Guard table. Should they share a table with other items (the Stats table, as first
 * planned): tenant ids hold no ":", so no `<tenant>#<day>` statistics key starts with it, and quota
 * keys start with `quota#`.
 */
export const GUARD_KEY_PREFIX = 'guard:';

/** The senders' Powertools service name: their logs' `service` and their metrics' dimension. */
export const SENDER_SERVICE = 'baton-sender';

/** CloudWatch metrics namespace of Baton's own metrics (EMF). */
export const METRICS_NAMESPACE = 'Baton';

/**
 * The abuse guard's metrics (EMF, namespace METRICS_NAMESPACE). `action`: one per decision acted
 * on, with the dimensions `Action` (warn, throttleKey, suspendKey, pauseBroadcast, holdAll) and
 * `Scope` (key, tenant) besides Powertools' `service`; `errors`: a guard step that failed (the mail
 * flowed on), dimension `service` only. The alarm and the dashboard read these names.
 */
export const GuardMetric = {
  action: 'GuardAction',
  errors: 'GuardErrors',
  actionDimension: 'Action',
  scopeDimension: 'Scope',
} as const;

/**
 * Webhook metrics (issue 14, EMF in METRICS_NAMESPACE); the alarms and the dashboard read these
 * names. `publishFailures`: a producer (api, SMTP, sender, feedback) could not hand a state change's events over (log or queue failed), dimension
 * `service`; the rest the delivery function emits with its `service` dimension only: attempts made,
 * delivered (2xx), failed attempts, and the state change → first attempt latency (ms).
 */
export const WebhookMetric = {
  publishFailures: 'WebhookPublishFailures',
  attempts: 'WebhookAttempts',
  delivered: 'WebhookDelivered',
  failedAttempts: 'WebhookFailedAttempts',
  firstAttemptLatency: 'WebhookFirstAttemptLatency',
} as const;

/**
 * The stack output listing the SES identities Baton sends from (comma-separated), which
 * `npm run keys -- create --stack` checks a new key's domains against.
 */
export const SENDING_DOMAINS_OUTPUT = 'SendingDomains';

/** The stack output naming the region the stack (and SES) runs in, which `npm run doctor -- --stack` reads. */
export const REGION_OUTPUT = 'Region';

/**
 * The scheduled domain doctor (issue 15), EMF in METRICS_NAMESPACE with its `service` dimension:
 * `checkFailed` once per failing check (dimension `check`, the check id), `checksRegressed` the
 * checks that passed before and fail now (the alarm's metric).
 */
export const DoctorMetric = {
  checkFailed: 'doctorCheckFailed',
  checkDimension: 'check',
  checksRegressed: 'doctorChecksRegressed',
} as const;

/** The doctor function's Powertools service name. */
export const DOCTOR_SERVICE = 'baton-doctor';

/**
 * Guard-table partition prefix of the scheduled doctor's baseline (`doctor:<domain>`, sk
 * `baseline`): the last run's statuses. Its role may touch these items only (dynamodb:LeadingKeys).
 */
export const DOCTOR_BASELINE_PREFIX = 'doctor:';
