import '../support/quiet-powertools.ts';
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import {
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  SQSBatchResponse,
  SQSRecord,
} from 'aws-lambda';
import { ulid } from 'ulid';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoApiKeyStore } from '../../lambdas/adapters/api-key-store.ts';
import { SqsErasureQueue } from '../../lambdas/adapters/erasure-queue.ts';
import { createGuard, type GuardAdapters, guardAdapters } from '../../lambdas/adapters/guard-wiring.ts';
import { DynamoIdempotencyStore } from '../../lambdas/adapters/idempotency-store.ts';
import { SqsJobQueue } from '../../lambdas/adapters/job-queue.ts';
import { DynamoMessageStore } from '../../lambdas/adapters/message-store.ts';
import { S3PayloadStore } from '../../lambdas/adapters/payload-store.ts';
import { SesMailer } from '../../lambdas/adapters/ses-mailer.ts';
import { DynamoSoftBounceStore } from '../../lambdas/adapters/soft-bounce-store.ts';
import { DynamoSuppressionStore } from '../../lambdas/adapters/suppression-store.ts';
import { DynamoUsageStore } from '../../lambdas/adapters/usage-store.ts';
import { SqsVisibility } from '../../lambdas/adapters/visibility.ts';
import { WebhookHttpPoster } from '../../lambdas/adapters/webhook-http.ts';
import { SqsWebhookQueue } from '../../lambdas/adapters/webhook-queue.ts';
import { DynamoEndpointStateStore } from '../../lambdas/adapters/webhook-state-store.ts';
import { DynamoWebhookStore } from '../../lambdas/adapters/webhook-store.ts';
import { createWebhookPublisher } from '../../lambdas/adapters/webhook-wiring.ts';
import { createApi } from '../../lambdas/api/app.ts';
import { erasedKeyFunction, TombstoneAwareSuppressions } from '../../lambdas/domain/erasure/erasure.ts';
import { CachedApiKeys, DEFAULT_KEY_CACHE_SECONDS } from '../../lambdas/domain/keys/key-cache.ts';
import type { Clock } from '../../lambdas/domain/ports.ts';
import { RateLimiter } from '../../lambdas/domain/send/rate-limit.ts';
import type { WebhookDeliveryJob, WebhookEndpoint } from '../../lambdas/domain/webhooks/endpoint.ts';
import type { WebhookEventType } from '../../lambdas/domain/webhooks/events.ts';
import { newEndpointId } from '../../lambdas/domain/webhooks/operations.ts';
import { newWebhookSecret } from '../../lambdas/domain/webhooks/signing.ts';
import { createFeedbackBatch } from '../../lambdas/feedback/app.ts';
import { createSender } from '../../lambdas/sender/app.ts';
import { EnvVar, Keys, MessageTag } from '../../lambdas/shared/names.ts';
import { createWebhookDelivery } from '../../lambdas/webhooks/app.ts';
import { synthTemplate } from '../../local/baton-local.ts';
import type { CfnTemplate } from '../../local/plan.ts';
import {
  messageRecord,
  outgoingMessage,
  recipient,
  sendBody,
  sendJob,
  sqsRecord,
  suppression,
} from '../support/builders.ts';
import {
  credentials,
  documentClient,
  type ProvisionedStack,
  region,
  sqsClient,
  startProvisionedStack,
  unreachable,
} from '../support/emulators.ts';
import {
  InMemoryHeldJobs,
  issueApiKey,
  RecordingGuard,
  type TestClock,
  testClock,
} from '../support/fakes.ts';
import { fixtureFiles, fixtureText } from '../support/fixtures.ts';
import { decisionOf, guardMarkOf, keySuspensionDecision } from '../support/guard.ts';
import type { KeyOverrides } from '../support/harness.ts';
import { type HttpRequest, httpEvent, jsonOf } from '../support/http-events.ts';
import {
  addCallMiddleware,
  bucketArn,
  functionsWithEntry,
  IamAuditError,
  IamRecorder,
  missingPermissions,
  policyOfEntry,
  policyOfFunction,
  queueArn,
  type RecordedCall,
  type RolePolicy,
  requirementsOf,
  resourceName,
  tableArn,
  unusedGrants,
  usage,
} from '../support/iam-audit.ts';
import { runSenderBatch, type Sender } from '../support/sender-batch.ts';
import { type SenderRig, startSenderRig } from '../support/sender-rig.ts';
import { WebhookReceiver } from '../support/webhooks.ts';

// Local mode enforces no IAM, so a role that lacks an action its adapter uses passes every local
// test and fails deployed (after SES has sent, for the sender and the api's batch path). Here the
// api, feedback, sender and webhook delivery apps run with their real adapters, wired as their
// handlers wire them, against emulators provisioned from the template, through every route and path
// (error paths by injected failures); every SDK call is recorded as the IAM action and ARN AWS
// would authorise and compared with the function's role in the same template
// (test/support/iam-audit.ts).

const API_ENTRY = 'lambdas/api/handler.ts';
const FEEDBACK_ENTRY = 'lambdas/feedback/handler.ts';
const WEBHOOKS_ENTRY = 'lambdas/webhooks/handler.ts';
const MB = 1024 * 1024;

let stack: ProvisionedStack;
let template: CfnTemplate;
const recorder = new IamRecorder();

// --- injected failures: the error paths (queue down, lost write) use other calls -----------------

type Input = Record<string, unknown>;
interface Fault {
  readonly operation: string;
  readonly table?: string;
  readonly error: Error;
}

/** Fails chosen calls once each, after the recorder saw them (IAM is checked before the service acts). */
class Faults {
  #armed: Fault[] = [];

  instrument<C extends { readonly middlewareStack: object }>(client: C): C {
    addCallMiddleware(
      client,
      'batonInjectedFaults',
      (next, context) => async (args) => {
        const operation = (context.commandName ?? '').replace(/Command$/, '');
        const input: Input = args.input;
        const fault = this.#armed.find(
          (f) => f.operation === operation && (f.table === undefined || f.table === input.TableName),
        );
        if (fault) {
          this.#armed = this.#armed.filter((f) => f !== fault);
          throw fault.error;
        }
        return next(args);
      },
      'low',
    );
    return client;
  }

  failOnce(operation: string, error: Error, table?: string): void {
    this.#armed.push({ operation, error, ...(table ? { table } : {}) });
  }

  clear(): void {
    this.#armed = [];
  }
}

/** An error shaped as the SDK throws a service's answer. */
const serviceError = (name: string, httpStatusCode: number): Error =>
  Object.assign(new Error(`${name} (injected by the test)`), { name, $metadata: { httpStatusCode } });

const faults = new Faults();

// --- clients: one set, recorded and fault-injectable; set-up goes through the stack's own ---------

let dynamo: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let sqs: SQSClient;
let s3: S3Client;

beforeAll(async () => {
  stack = await startProvisionedStack();
  template = synthTemplate('example.com');
  dynamo = faults.instrument(
    recorder.instrument(new DynamoDBClient({ endpoint: stack.dynamo.endpoint, region, credentials })),
  );
  doc = documentClient(dynamo);
  sqs = faults.instrument(recorder.instrument(sqsClient(stack.sqsSns.endpoint)));
  // fauxqs serves S3 on the SQS/SNS endpoint, by path only (as local/baton-local.ts builds it).
  s3 = faults.instrument(
    recorder.instrument(
      new S3Client({ endpoint: stack.sqsSns.endpoint, region, credentials, forcePathStyle: true }),
    ),
  );
});

afterAll(async () => {
  dynamo?.destroy();
  sqs?.destroy();
  s3?.destroy();
  await stack?.stop();
});

beforeEach(() => {
  recorder.reset();
  faults.clear();
});

/** The environment the template gives the one function with `entry`, resolved locally. */
function environmentOf(entry: string): (name: string) => string {
  const [id] = functionsWithEntry(template, entry);
  const env = id === undefined ? undefined : stack.environments.get(id);
  if (!env) throw new Error(`no provisioned function has the entry ${entry}`);
  return (name) => {
    const value = env[name];
    if (value === undefined) throw new Error(`${entry} has no ${name} in its environment`);
    return value;
  };
}

/** The whole environment the template gives the one function with `entry`, resolved locally. */
function environmentMapOf(entry: string): Record<string, string> {
  const [id] = functionsWithEntry(template, entry);
  const env = id === undefined ? undefined : stack.environments.get(id);
  if (!env) throw new Error(`no provisioned function has the entry ${entry}`);
  return { ...env };
}

/** What the recorded calls used that the role does not allow. */
const missingFor = (entry: string) => missingPermissions(recorder.calls(), policyOfEntry(template, entry));

// --- the api ------------------------------------------------------------------------------------

/** createApi exactly as lambdas/api/handler.ts wires it, on the recorded clients and `clock`. */
function apiUnderAudit(clock: Clock, options: { readonly realGuard?: boolean } = {}) {
  const env = environmentOf(API_ENTRY);
  const keyStore = new DynamoApiKeyStore(doc, env(EnvVar.apiKeysTable));
  // The guard's own calls are audited with its adapters (runGuard below); its routes run the real
  // guard, as lambdas/adapters/front-door.ts wires it.
  const guarded = options.realGuard
    ? createGuard({ doc, keyStore, s3, env: environmentMapOf(API_ENTRY), clock })
    : undefined;
  const messages = new DynamoMessageStore(doc, env(EnvVar.messagesTable));
  const suppressionTable = new DynamoSuppressionStore(doc, env(EnvVar.suppressionsTable));
  const erasedKeyOf = erasedKeyFunction(AUDIT_ERASURE_SECRET);
  const environment = environmentMapOf(API_ENTRY);
  return createApi({
    keys: new CachedApiKeys(keyStore, {
      ttlSeconds: DEFAULT_KEY_CACHE_SECONDS,
      clock,
    }),
    messages,
    suppressions: new TombstoneAwareSuppressions(suppressionTable, erasedKeyOf),
    queue: new SqsJobQueue(
      sqs,
      { transactional: env(EnvVar.transactionalQueueUrl), broadcast: env(EnvVar.broadcastQueueUrl) },
      new S3PayloadStore(s3, env(EnvVar.payloadBucket)),
    ),
    usage: new DynamoUsageStore(doc, env(EnvVar.statsTable)),
    idempotency: new DynamoIdempotencyStore(doc, env(EnvVar.idempotencyTable)),
    rateLimiter: new RateLimiter(clock),
    clock,
    newId: () => `msg_${ulid()}`,
    retentionDays: Number(env(EnvVar.retentionDays)),
    keyTable: keyStore,
    held: guarded?.held ?? new InMemoryHeldJobs(),
    guard: guarded?.guard ?? new RecordingGuard(),
    // As lambdas/adapters/front-door.ts builds it: every accepted message is published.
    webhooks: createWebhookPublisher(environment, { doc, sqs }),
    webhookEndpoints: {
      store: new DynamoWebhookStore(doc, env(EnvVar.webhooksTable), clock),
      queue: new SqsWebhookQueue(sqs, env(EnvVar.webhookQueueUrl)),
      allowLoopbackHttp: environment[EnvVar.webhookAllowLoopback] === '1',
    },
    erasure: {
      messages,
      suppressions: suppressionTable,
      softBounces: new DynamoSoftBounceStore(doc, env(EnvVar.suppressionsTable)),
      queue: new SqsErasureQueue(sqs, env(EnvVar.erasureQueueUrl)),
      keyOf: erasedKeyOf,
      clock,
    },
  });
}

/** Any 32+ character secret: the audit is about which calls are made, not about the HMAC. */
const AUDIT_ERASURE_SECRET = 'iam-audit-erasure-secret-0123456789abcdef';

type Api = ReturnType<typeof createApi>;
const exercisedRoutes = new Set<string>();

async function call(
  api: Api,
  routeKey: string,
  request: HttpRequest = {},
): Promise<APIGatewayProxyStructuredResultV2> {
  exercisedRoutes.add(routeKey);
  const event: APIGatewayProxyEventV2 = httpEvent(routeKey, request);
  return api(event);
}

/** A key in the ApiKeys table, with a daily quota and a request rate so those paths run. */
async function seedKey(overrides: KeyOverrides = {}): Promise<string> {
  const { key, token } = issueApiKey({
    tenant: 'tenant-iam',
    dailyQuota: 1000,
    rateLimit: 1000,
    ...overrides,
  });
  await new DynamoApiKeyStore(stack.clients.doc, stack.tables.apiKeys).put(key);
  return token;
}

interface Accepted {
  readonly id: string;
  readonly status: string;
}
interface BatchResults {
  readonly results: ReadonlyArray<{
    readonly id?: string;
    readonly status?: string;
    readonly error?: { readonly code: string };
  }>;
}
const outcomes = (result: APIGatewayProxyStructuredResultV2): string[] =>
  (jsonOf(result) as BatchResults).results.map((r) => r.status ?? r.error?.code ?? '?');

/** Names as `usage` renders them. */
const names = () => ({
  apiKeys: stack.tables.apiKeys,
  messages: stack.tables.messages,
  suppressions: stack.tables.suppressions,
  stats: stack.tables.stats,
  idempotency: stack.tables.idempotency,
  transactional: stack.queues.transactional.name,
  broadcast: stack.queues.broadcast.name,
  bucket: environmentOf(API_ENTRY)(EnvVar.payloadBucket),
  erasureQueue: consumedQueue('lambdas/erasure/handler.ts'),
  feedbackQueue: consumedQueue(FEEDBACK_ENTRY),
  webhooks: stack.tables.webhooks,
  webhookQueue: consumedQueue(WEBHOOKS_ENTRY),
});

/** The queue the function with `entry` consumes (its event source), by local (logical) name. */
function consumedQueue(entry: string): string {
  const [fn] = functionsWithEntry(template, entry);
  const source = stack.plan.eventSources.find((e) => e.function === fn);
  if (!source) throw new Error(`no event source feeds ${entry}`);
  return source.queue;
}

/** The erasure secret's logical id (its ARN's readable tail in local mode). */
function secretLogicalId(): string {
  const [id] =
    Object.entries(template.Resources).find(([, r]) => r.Type === 'AWS::SecretsManager::Secret') ?? [];
  if (!id) throw new Error('the template has no secret');
  return id;
}

// --- webhooks (issue 14) --------------------------------------------------------------------------

/** The Webhooks table of `on`, through its own (unrecorded) clients: for setting up and reading back. */
const webhookStore = (on: ProvisionedStack) => new DynamoWebhookStore(on.clients.doc, on.tables.webhooks);

/** An enabled endpoint of `tenant` subscribed to `events`. */
function webhookEndpoint(
  tenant: string,
  events: readonly WebhookEventType[],
  url = 'https://hooks.example.com/baton',
): WebhookEndpoint {
  const now = new Date().toISOString();
  return {
    id: newEndpointId(),
    tenant,
    url,
    events: [...events],
    description: '',
    enabled: true,
    disabledReason: null,
    secrets: [{ secret: newWebhookSecret(), createdAt: now }],
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
}

// --- the abuse guard's adapters (issue 13), as lambdas/adapters/guard-wiring.ts builds them ------

/**
 * What a process that runs the guard does with its adapters: count (plain and once per event),
 * read the buckets, claim an evaluation, read and write the tenant's record, write the decisions
 * onto the keys; with `held`, keep, list, read back and remove a held message.
 */
/** The guard's adapters and key store as a role's environment wires them (held mail only with a bucket). */
function guardOfRole(entry: string, bucket?: S3Client): { adapters: GuardAdapters; keys: DynamoApiKeyStore } {
  const env = environmentOf(entry);
  const keys = new DynamoApiKeyStore(doc, env(EnvVar.apiKeysTable));
  const adapters = guardAdapters(
    bucket
      ? {
          doc,
          keyStore: keys,
          s3: bucket,
          env: {
            [EnvVar.guardTable]: env(EnvVar.guardTable),
            [EnvVar.payloadBucket]: env(EnvVar.payloadBucket),
          },
        }
      : { doc, keyStore: keys, env: { [EnvVar.guardTable]: env(EnvVar.guardTable) } },
  );
  return { adapters, keys };
}

async function runGuard(adapters: GuardAdapters, keys: DynamoApiKeyStore, held: boolean): Promise<void> {
  const tenant = `guard-${ulid().toLowerCase()}`;
  const keyId = `gk${ulid().toLowerCase()}`;
  await stack.clients.doc.send(
    new PutCommand({
      TableName: stack.tables.apiKeys,
      Item: {
        keyId,
        tenant,
        status: 'active',
        scopes: ['send'],
        secretHash: 'x',
        createdAt: '2026-01-01T00:00:00.000Z',
      },
    }),
  );
  recorder.reset();
  const hour = '2026-03-02T10';
  const tenantScope = { kind: 'tenant', tenant } as const;
  const scopes = [{ kind: 'key', keyId } as const, tenantScope];
  await adapters.counters.add(scopes.map((scope) => ({ scope, hour, counts: { sends: 3 } })));
  // A bucket write that fails releases the event markers it took (DeleteItem), so the retry counts them.
  faults.failOnce('UpdateItem', serviceError('InternalServerError', 500));
  await expect(
    adapters.counters.add(
      scopes.map((scope) => ({ scope, hour, counts: { hardBounces: 1 }, eventId: 'evt-1' })),
    ),
  ).rejects.toThrow();
  await adapters.counters.add(
    scopes.map((scope) => ({ scope, hour, counts: { hardBounces: 1 }, eventId: 'evt-1' })),
  );
  for (const scope of scopes) await adapters.counters.read(scope, '2026-03-01T10', hour);
  await adapters.state.claimEvaluation(tenantScope, new Date('2026-03-02T10:30:00.000Z'), 60_000);
  // The key's own guard state is on its item, read before an evaluation.
  await keys.get(keyId);
  const record = await adapters.state.tenant(tenant);
  await adapters.state.putTenant({ tenant, state: { actions: [] }, version: (record?.version ?? 0) + 1 });
  await keys.setKeyGuard(
    keyId,
    { actions: [keySuspensionDecision({ keyId, tenantId: tenant })] },
    'suspended',
  );
  await keys.markTenant(tenant, { actions: [] });
  await keys.keysOf(tenant);
  if (!held) return;
  if (adapters.held === undefined) throw new Error('no held-jobs store');
  const entry = {
    tenant,
    id: `msg_${ulid()}`,
    lane: 'broadcast' as const,
    keyId,
    heldAt: '2026-03-02T10:30:00.000Z',
    until: '2026-03-09T10:30:00.000Z',
    action: 'pauseBroadcast',
    signal: 'hardBounceRate',
    reason: 'held',
  };
  await adapters.held.keep(entry, { v: 1, id: entry.id, tenant, keyId, message: outgoingMessage() });
  await adapters.held.list(tenant);
  await adapters.held.get(tenant, entry.id);
  await adapters.held.job(entry);
  await adapters.held.remove(entry);
}

describe('the api function’s calls, against its deployed role', () => {
  const apiCalls: RecordedCall[] = [];
  afterEach(() => {
    apiCalls.push(...recorder.calls());
  });

  it('lets the api role send a message the way the adapters do', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    const n = names();

    // Act
    const result = await call(api, 'POST /v1/messages', { token, body: sendBody() });

    // Assess
    expect([result.statusCode, (jsonOf(result) as Accepted).status]).toEqual([202, 'queued']);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:BatchGetItem', n.suppressions],
      ['dynamodb:GetItem', n.apiKeys],
      ['dynamodb:PutItem', n.messages],
      // The tenant's webhook endpoints, looked up to publish message.queued (it has none).
      ['dynamodb:Query', n.webhooks],
      ['dynamodb:UpdateItem', n.stats],
      ['sqs:SendMessage', n.transactional],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role queue a broadcast message on the broadcast lane', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    const body = sendBody({ stream: 'broadcast', listUnsubscribe: 'https://example.com/unsubscribe?u=1' });

    // Act
    const result = await call(api, 'POST /v1/messages', { token, body });

    // Assess
    expect([result.statusCode, (jsonOf(result) as Accepted).status]).toEqual([202, 'queued']);
    expect(usage(recorder.calls()).filter(([action]) => action.startsWith('sqs:'))).toEqual([
      ['sqs:SendMessage', names().broadcast],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role record a message whose recipients are all suppressed, without queueing it', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    await new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions).put(
      suppression('gone@example.org', 'complaint'),
    );
    const n = names();

    // Act
    const result = await call(api, 'POST /v1/messages', {
      token,
      body: sendBody({ to: ['gone@example.org'] }),
    });

    // Assess
    expect([result.statusCode, (jsonOf(result) as Accepted).status]).toEqual([202, 'suppressed']);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:BatchGetItem', n.suppressions],
      ['dynamodb:GetItem', n.apiKeys],
      ['dynamodb:PutItem', n.messages],
      ['dynamodb:Query', n.webhooks],
      ['dynamodb:UpdateItem', n.stats],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role store a 2 MB message in the payload bucket and queue the pointer', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    const attachment = Buffer.alloc(2 * MB, 0x2a).toString('base64');
    const body = sendBody({
      attachments: [{ filename: 'report.bin', contentType: 'application/octet-stream', content: attachment }],
    });
    const n = names();

    // Act
    const result = await call(api, 'POST /v1/messages', { token, body });

    // Assess
    const accepted = jsonOf(result) as Accepted;
    expect([result.statusCode, accepted.status]).toEqual([202, 'queued']);
    expect(usage(recorder.calls()).filter(([action]) => !action.startsWith('dynamodb:'))).toEqual([
      ['s3:PutObject', `${n.bucket}/payloads/${accepted.id}`],
      ['sqs:SendMessage', n.transactional],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role accept a batch (one message invalid) with batched writes on both lanes', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    const messages = [
      sendBody(),
      sendBody({ stream: 'broadcast', listUnsubscribe: 'https://example.com/unsubscribe?u=2' }),
      sendBody({ to: ['not an address'] }),
    ];
    const n = names();

    // Act
    const result = await call(api, 'POST /v1/messages/batch', { token, body: { messages } });

    // Assess
    expect([result.statusCode, outcomes(result)]).toEqual([207, ['queued', 'queued', 'invalid_message']]);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:BatchGetItem', n.suppressions],
      ['dynamodb:BatchWriteItem', n.messages],
      ['dynamodb:GetItem', n.apiKeys],
      ['dynamodb:GetItem', n.stats],
      ['dynamodb:Query', n.webhooks],
      ['dynamodb:UpdateItem', n.stats],
      ['sqs:SendMessage', n.broadcast],
      ['sqs:SendMessage', n.transactional],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role claim-check a large message of a batch', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    const attachment = Buffer.alloc(2 * MB, 0x2a).toString('base64');
    const large = sendBody({
      attachments: [{ filename: 'report.bin', contentType: 'application/octet-stream', content: attachment }],
    });

    // Act
    const result = await call(api, 'POST /v1/messages/batch', {
      token,
      body: { messages: [large, sendBody()] },
    });

    // Assess
    expect([result.statusCode, outcomes(result)]).toEqual([207, ['queued', 'queued']]);
    const [stored] = (jsonOf(result) as BatchResults).results;
    expect(usage(recorder.calls()).filter(([action]) => action.startsWith('s3:'))).toEqual([
      ['s3:PutObject', `${names().bucket}/payloads/${stored?.id}`],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role keep, replay and refuse an Idempotency-Key', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    const headers = { 'idempotency-key': `order-${ulid()}` };
    const n = names();

    // Act
    const first = await call(api, 'POST /v1/messages', { token, headers, body: sendBody() });
    const again = await call(api, 'POST /v1/messages', { token, headers, body: sendBody() });
    const other = await call(api, 'POST /v1/messages', {
      token,
      headers,
      body: sendBody({ subject: 'Other' }),
    });

    // Assess
    expect([
      first.statusCode,
      again.statusCode,
      again.headers?.['idempotent-replayed'],
      other.statusCode,
    ]).toEqual([202, 202, 'true', 409]);
    expect(usage(recorder.calls()).filter(([, resource]) => resource === n.idempotency)).toEqual([
      ['dynamodb:GetItem', n.idempotency],
      ['dynamodb:PutItem', n.idempotency],
      ['dynamodb:UpdateItem', n.idempotency],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role take over an Idempotency-Key whose holder died', async () => {
    // Prepare: the first request's reply is not kept (its write fails), so its lock lapses.
    const clock: TestClock = testClock(new Date().toISOString());
    const api = apiUnderAudit(clock);
    const token = await seedKey();
    const headers = { 'idempotency-key': `order-${ulid()}` };
    faults.failOnce('UpdateItem', serviceError('InternalServerError', 500), stack.tables.idempotency);
    await call(api, 'POST /v1/messages', { token, headers, body: sendBody() });
    clock.advance(16_000);
    recorder.reset();

    // Act
    const retried = await call(api, 'POST /v1/messages', { token, headers, body: sendBody() });

    // Assess
    expect([retried.statusCode, retried.headers?.['idempotent-replayed']]).toEqual([202, undefined]);
    expect(
      recorder
        .calls()
        .filter((c) => c.resources.includes(tableArn(stack.tables.idempotency)))
        .map((c) => c.action),
    ).toEqual(['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:UpdateItem']);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role give back quota, mark the message failed and release the key when the queue is down', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    faults.failOnce('SendMessage', serviceError('ServiceUnavailable', 503));
    const n = names();

    // Act
    const result = await call(api, 'POST /v1/messages', {
      token,
      headers: { 'idempotency-key': `order-${ulid()}` },
      body: sendBody(),
    });

    // Assess
    expect(result.statusCode).toBe(503);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:BatchGetItem', n.suppressions],
      ['dynamodb:DeleteItem', n.idempotency],
      ['dynamodb:GetItem', n.apiKeys],
      ['dynamodb:PutItem', n.idempotency],
      ['dynamodb:PutItem', n.messages],
      ['dynamodb:UpdateItem', n.stats],
      ['sqs:SendMessage', n.transactional],
    ]);
    expect(
      recorder
        .calls()
        .filter((c) => c.action === 'dynamodb:PutItem' && c.resources.includes(tableArn(n.messages))),
    ).toHaveLength(2);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role keep a batch answer in part and resume it on the retry (issue 11 part 6)', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    const request = {
      token,
      headers: { 'idempotency-key': `batch-${ulid()}` },
      body: { messages: [sendBody()] },
    };
    faults.failOnce('SendMessageBatch', serviceError('ServiceUnavailable', 503));
    const first = await call(api, 'POST /v1/messages/batch', request);

    // Act
    const retry = await call(api, 'POST /v1/messages/batch', request);

    // Assess
    expect([outcomes(first), outcomes(retry)]).toEqual([['unavailable'], ['queued']]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role give back quota and mark the messages failed when a batch cannot be queued', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    faults.failOnce('SendMessageBatch', serviceError('ServiceUnavailable', 503));

    // Act
    const result = await call(api, 'POST /v1/messages/batch', {
      token,
      body: { messages: [sendBody(), sendBody()] },
    });

    // Assess
    expect([result.statusCode, outcomes(result)]).toEqual([207, ['unavailable', 'unavailable']]);
    expect(recorder.calls().map((c) => c.action)).toEqual([
      'dynamodb:GetItem',
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
      'dynamodb:BatchGetItem',
      'dynamodb:BatchWriteItem',
      'sqs:SendMessage',
      // Marked failed first: a record the sender had moved on was queued after all, and keeps its quota.
      'dynamodb:PutItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role read a message back', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    const id = `msg_${ulid()}`;
    await new DynamoMessageStore(stack.clients.doc, stack.tables.messages).create(
      messageRecord({ id, tenant: 'tenant-iam' }),
    );
    const n = names();

    // Act
    const found = await call(api, 'GET /v1/messages/{id}', { token, pathParameters: { id } });
    const unknown = await call(api, 'GET /v1/messages/{id}', {
      token,
      pathParameters: { id: `msg_${ulid()}` },
    });

    // Assess
    expect([found.statusCode, unknown.statusCode]).toEqual([200, 404]);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:GetItem', n.apiKeys],
      ['dynamodb:GetItem', n.messages],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role put, get, list page by page and delete suppressions', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();
    const seeded = new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions);
    await seeded.put(suppression('complained@example.org', 'complaint'));
    await seeded.put(suppression('bounced@example.org', 'hard_bounce'));
    const n = names();

    // Act
    const put = await call(api, 'PUT /v1/suppressions/{address}', {
      token,
      pathParameters: { address: 'manual@example.org' },
      body: { reason: 'manual' },
    });
    const weaker = await call(api, 'PUT /v1/suppressions/{address}', {
      token,
      pathParameters: { address: 'complained@example.org' },
      body: { reason: 'manual' },
    });
    const get = await call(api, 'GET /v1/suppressions/{address}', {
      token,
      pathParameters: { address: 'manual@example.org' },
    });
    const firstPage = await call(api, 'GET /v1/suppressions', { token, query: { limit: '1' } });
    const { nextCursor } = jsonOf(firstPage) as { nextCursor: string | null };
    const secondPage = await call(api, 'GET /v1/suppressions', {
      token,
      query: { limit: '1', cursor: nextCursor ?? '' },
    });
    const deleted = await call(api, 'DELETE /v1/suppressions/{address}', {
      token,
      pathParameters: { address: 'manual@example.org' },
    });
    const gone = await call(api, 'GET /v1/suppressions/{address}', {
      token,
      pathParameters: { address: 'manual@example.org' },
    });

    // Assess
    expect([put, weaker, get, firstPage, secondPage, deleted, gone].map((r) => r.statusCode)).toEqual([
      200, 200, 200, 200, 200, 204, 404,
    ]);
    expect((jsonOf(weaker) as { reason: string }).reason).toBe('complaint');
    expect(typeof nextCursor).toBe('string');
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:DeleteItem', n.suppressions],
      ['dynamodb:GetItem', n.apiKeys],
      ['dynamodb:GetItem', n.suppressions],
      ['dynamodb:PutItem', n.suppressions],
      // suppression.created and suppression.deleted, to the tenant's endpoints (it has none).
      ['dynamodb:Query', n.webhooks],
      ['dynamodb:Scan', n.suppressions],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role count a key’s daily quota until it is used up', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey({ dailyQuota: 2 });
    const n = names();

    // Act
    const single = await call(api, 'POST /v1/messages', { token, body: sendBody() });
    const batch = await call(api, 'POST /v1/messages/batch', {
      token,
      body: { messages: [sendBody(), sendBody(), sendBody()] },
    });
    const over = await call(api, 'POST /v1/messages', { token, body: sendBody() });

    // Assess
    expect([single.statusCode, batch.statusCode, outcomes(batch), over.statusCode]).toEqual([
      202,
      207,
      ['queued', 'rate_limited', 'rate_limited'],
      429,
    ]);
    expect(usage(recorder.calls()).filter(([, resource]) => resource === n.stats)).toEqual([
      ['dynamodb:GetItem', n.stats],
      ['dynamodb:UpdateItem', n.stats],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role refuse a key over its request rate, an unknown key and an invalid message', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey({ rateLimit: 1 });
    const other = await seedKey();
    const n = names();

    // Act
    const first = await call(api, 'GET /v1/suppressions/{address}', {
      token,
      pathParameters: { address: 'nobody@example.org' },
    });
    const limited = await call(api, 'GET /v1/suppressions/{address}', {
      token,
      pathParameters: { address: 'nobody@example.org' },
    });
    const unknownKey = await call(api, 'GET /v1/suppressions', { token: `${other.slice(0, -4)}AAAA` });
    const invalid = await call(api, 'POST /v1/messages', { token: other, body: sendBody({ to: [] }) });

    // Assess
    expect([first, limited, unknownKey, invalid].map((r) => r.statusCode)).toEqual([404, 429, 401, 422]);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:GetItem', n.apiKeys],
      ['dynamodb:GetItem', n.suppressions],
      ['dynamodb:UpdateItem', n.stats],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role answer health, the OpenAPI document, statistics, erasure and unknown routes', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey();

    // Act
    const results = [
      await call(api, 'GET /health'),
      await call(api, 'GET /openapi.json'),
      await call(api, 'GET /v1/stats', { token }),
      await call(api, 'DELETE /v1/recipients/{address}', {
        token,
        pathParameters: { address: 'ana@example.org' },
      }),
      await call(api, '$default', { method: 'GET', path: '/v2/nothing' }),
    ];

    // Assess
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200, 202, 404]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role count, evaluate and apply the guard’s decisions, and keep and release held mail', async () => {
    // Prepare
    const { adapters, keys } = guardOfRole(API_ENTRY, s3);

    // Act
    await runGuard(adapters, keys, true);

    // Assess
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role hold mail, show the reputation, and list, resume, release and cancel held mail', async () => {
    // Prepare: a key whose tenant the guard holds, and an operator's key.
    const clock = testClock(new Date().toISOString());
    const api = apiUnderAudit(clock, { realGuard: true });
    const tenant = `tenant-held-${ulid().toLowerCase()}`;
    const token = await seedKey({ tenant, guard: guardMarkOf(decisionOf('holdAll', clock())) });
    const admin = await seedKey({ tenant: 'operators', scopes: ['admin'] });
    const held = jsonOf(await call(api, 'POST /v1/messages', { token, body: sendBody() })) as Accepted;
    const operator = (routeKey: string, body: unknown) => call(api, routeKey, { token: admin, body });

    // Act
    const reputation = await call(api, 'GET /v1/reputation', { token });
    const listed = await call(api, 'GET /v1/guard/held', { token: admin, query: { tenant } });
    const resumed = await operator('POST /v1/guard/resume', { tenant, reason: 'list cleaned' });
    const released = await operator('POST /v1/guard/release', { tenant, all: true, reason: 'list cleaned' });
    const cancelled = await operator('POST /v1/guard/cancel', { tenant, all: true, reason: 'nothing left' });

    // Assess
    expect(held.status).toBe('held');
    expect([reputation, listed, resumed, released, cancelled].map((r) => r.statusCode)).toEqual([
      200, 200, 200, 200, 200,
    ]);
    expect((jsonOf(released) as { counts: { released: number } }).counts.released).toBe(1);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role register, list, read, change, rotate and delete a webhook endpoint', async () => {
    // Prepare
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const token = await seedKey({ tenant: `tenant-wh-${ulid().toLowerCase()}`, scopes: ['webhooks'] });
    const n = names();
    const created = await call(api, 'POST /v1/webhooks', {
      token,
      body: { url: 'https://hooks.example.com/baton', events: ['message.delivered'], description: 'CRM' },
    });
    const { id } = jsonOf(created) as { id: string };
    const pathParameters = { id };

    // Act
    const results = [
      created,
      await call(api, 'GET /v1/webhooks', { token }),
      await call(api, 'GET /v1/webhooks/{id}', { token, pathParameters }),
      await call(api, 'PATCH /v1/webhooks/{id}', {
        token,
        pathParameters,
        body: { events: ['message.delivered', 'message.bounced'], enabled: false },
      }),
      await call(api, 'POST /v1/webhooks/{id}/rotate-secret', { token, pathParameters }),
      await call(api, 'DELETE /v1/webhooks/{id}', { token, pathParameters }),
      await call(api, 'GET /v1/webhooks/{id}', { token, pathParameters }),
    ];

    // Assess: endpoints are items of the tenant's partition, changed by a whole conditional put.
    expect(results.map((r) => r.statusCode)).toEqual([201, 200, 200, 200, 200, 204, 404]);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:DeleteItem', n.webhooks],
      ['dynamodb:GetItem', n.apiKeys],
      ['dynamodb:GetItem', n.webhooks],
      ['dynamodb:PutItem', n.webhooks],
      ['dynamodb:Query', n.webhooks],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('lets the api role publish an accepted message to the tenant’s endpoint, list its deliveries and replay it', async () => {
    // Prepare: an endpoint subscribed to message.queued, and one attempt the delivery function logged.
    const api = apiUnderAudit(testClock(new Date().toISOString()));
    const tenant = `tenant-wh-${ulid().toLowerCase()}`;
    const token = await seedKey({ tenant, scopes: ['send', 'webhooks'] });
    const n = names();
    const created = await call(api, 'POST /v1/webhooks', {
      token,
      body: { url: 'https://hooks.example.com/baton', events: ['message.queued'], description: '' },
    });
    const { id } = jsonOf(created) as { id: string };
    const pathParameters = { id };
    // The calls since `from` (the recorder keeps them all for the least-privilege check below).
    const since = (from: number) => usage(recorder.calls().slice(from));
    const setUp = recorder.calls().length;

    // Act
    const accepted = await call(api, 'POST /v1/messages', { token, body: sendBody() });
    const published = since(setUp);
    const store = new DynamoWebhookStore(stack.clients.doc, stack.tables.webhooks);
    const [event] = (await store.since(tenant, new Date(0))).events;
    if (event === undefined) throw new Error('the accepted message published no event');
    await store.record({
      tenant,
      endpointId: id,
      eventId: event.id,
      type: event.type,
      attempt: 1,
      at: new Date().toISOString(),
      statusCode: 500,
      latencyMs: 12,
      response: 'down for a deploy',
      outcome: 'retry',
    });
    const served = recorder.calls().length;
    const deliveries = await call(api, 'GET /v1/webhooks/{id}/deliveries', { token, pathParameters });
    const one = await call(api, 'POST /v1/webhooks/{id}/replay', {
      token,
      pathParameters,
      body: { eventId: event.id },
    });
    const fromTime = await call(api, 'POST /v1/webhooks/{id}/replay', {
      token,
      pathParameters,
      body: { since: new Date(Date.now() - 60_000).toISOString() },
    });

    // Assess: the event is kept in the tenant's events partition and queued for its endpoint; the
    // attempts are read from the endpoint's partition, the replayed events from the tenant's.
    expect([accepted, deliveries, one, fromTime].map((r) => r.statusCode)).toEqual([202, 200, 202, 202]);
    expect((jsonOf(deliveries) as { items: unknown[] }).items).toHaveLength(1);
    expect([jsonOf(one), jsonOf(fromTime)]).toMatchObject([{ replayed: 1 }, { replayed: 1 }]);
    expect(published.filter(([, resource]) => [n.webhooks, n.webhookQueue].includes(resource))).toEqual([
      ['dynamodb:BatchWriteItem', n.webhooks],
      ['dynamodb:Query', n.webhooks],
      ['sqs:SendMessage', n.webhookQueue],
    ]);
    // The key was read once, before (the api caches it).
    // Replays take the endpoint's hourly replay budget (UpdateItem) and send erased addresses as
    // their pseudonyms (the tombstones, BatchGetItem).
    expect(since(served)).toEqual([
      ['dynamodb:BatchGetItem', n.suppressions],
      ['dynamodb:GetItem', n.webhooks],
      ['dynamodb:Query', n.webhooks],
      ['dynamodb:UpdateItem', n.webhooks],
      ['sqs:SendMessage', n.webhookQueue],
    ]);
    expect(missingFor(API_ENTRY)).toEqual([]);
  });

  it('grants the api role nothing its paths never use (least privilege)', () => {
    // Act: every call the api tests above made, against the role
    const unused = unusedGrants(apiCalls, policyOfEntry(template, API_ENTRY)).map(
      (g) => `${g.action} ${resourceName(g.resource)}`,
    );

    // Assess: only what the audit cannot reach: the secret is read at cold start (the audit passes
    // it in), and the erasure queue takes the rest of a scan that outlasts its time budget.
    expect(unused).toEqual([
      `secretsmanager:GetSecretValue secret:${secretLogicalId()}`,
      `sqs:SendMessage ${names().erasureQueue}`,
    ]);
  });

  it('has exercised every route the template gives the api function', () => {
    // Prepare
    const [apiFunction] = functionsWithEntry(template, API_ENTRY);

    // Act
    const routes = stack.plan.routes.filter((r) => r.function === apiFunction).map((r) => r.routeKey);

    // Assess: every route is the api function's, and each was called above.
    expect(routes).toHaveLength(stack.plan.routes.length);
    expect([...exercisedRoutes].sort()).toEqual([...routes].sort());
  });
});

// --- feedback -----------------------------------------------------------------------------------

/**
 * createFeedbackBatch exactly as lambdas/feedback/handler.ts wires it, batch end included (the
 * statistics and the webhook events, published once per batch). The guard's own calls are audited
 * with its adapters (runGuard).
 */
function feedbackUnderAudit(clock: Clock): (bodies: readonly string[]) => Promise<SQSBatchResponse> {
  const env = environmentOf(FEEDBACK_ENTRY);
  const erasedKeyOf = erasedKeyFunction(AUDIT_ERASURE_SECRET);
  const batch = createFeedbackBatch({
    messages: new DynamoMessageStore(doc, env(EnvVar.messagesTable)),
    suppressions: new TombstoneAwareSuppressions(
      new DynamoSuppressionStore(doc, env(EnvVar.suppressionsTable)),
      erasedKeyOf,
    ),
    erasedKeyOf,
    softBounces: new DynamoSoftBounceStore(doc, env(EnvVar.suppressionsTable)),
    clock,
    usage: new DynamoUsageStore(doc, env(EnvVar.statsTable)),
    guard: new RecordingGuard(),
    webhooks: createWebhookPublisher(environmentMapOf(FEEDBACK_ENTRY), { doc, sqs }),
  });
  return (bodies) => batch(bodies.map((body, i) => sqsRecord(body, { messageId: `sqs-${i}` })));
}

interface FixtureEvent {
  readonly file: string;
  readonly body: string;
  readonly recipients: readonly string[];
}

/**
 * A fixture's SES event re-pointed at one of our messages: `mail.messageId` becomes `sesMessageId`,
 * and the Baton message-id tag is set to `batonMessageId` or removed (then only the GSI finds it).
 * An SNS envelope is kept, with its inner message rewritten.
 */
function pointedAt(file: string, sesMessageId: string, batonMessageId: string | undefined): FixtureEvent {
  const outer = JSON.parse(fixtureText(`ses/${file}`)) as Input;
  const wrapped = typeof outer.Message === 'string';
  const event = (wrapped ? JSON.parse(outer.Message as string) : outer) as { mail: Input };
  const tags = { ...((event.mail.tags as Record<string, string[]> | undefined) ?? {}) };
  delete tags[MessageTag.messageId];
  if (batonMessageId !== undefined) tags[MessageTag.messageId] = [batonMessageId];
  event.mail = { ...event.mail, messageId: sesMessageId, tags };
  const body = wrapped ? JSON.stringify({ ...outer, Message: JSON.stringify(event) }) : JSON.stringify(event);
  return { file, body, recipients: event.mail.destination as string[] };
}

/** Fixture files holding one SES event with a mail object (configuration-set events, notifications). */
function sesEventFixtures(prefix: string): string[] {
  return fixtureFiles('ses').filter((file) => {
    if (!file.startsWith(prefix)) return false;
    try {
      const outer = JSON.parse(fixtureText(`ses/${file}`)) as Input;
      const event = (typeof outer.Message === 'string' ? JSON.parse(outer.Message) : outer) as {
        mail?: Input;
      };
      return typeof event.mail?.messageId === 'string';
    } catch {
      // An SNS envelope around something other than an SES event (the AWS doc's "Hello world!").
      return false;
    }
  });
}

/** A sent message for the event's recipients, with or without SES's id on it. */
async function recordFor(id: string, recipients: readonly string[], sesMessageId?: string): Promise<void> {
  await new DynamoMessageStore(stack.clients.doc, stack.tables.messages).create(
    messageRecord({
      id,
      phase: 'sent',
      recipients: recipients.map((address) => recipient(address, 'sent')),
      ...(sesMessageId ? { sesMessageId } : {}),
    }),
  );
}

const suppressionOf = (address: string) =>
  new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions).get(address);

describe('the feedback function’s calls, against its deployed role', () => {
  const feedbackCalls: RecordedCall[] = [];
  afterEach(() => {
    feedbackCalls.push(...recorder.calls());
  });

  it('lets the feedback role apply every kind of configuration-set event found by its message tag', async () => {
    // Prepare: one message per event kind, without SES's id yet (the tag finds it).
    const files = sesEventFixtures('ses-event_');
    const events = files.map((file) => {
      const id = `msg_${ulid()}`;
      return { id, ...pointedAt(file, `ses-${id}`, id) };
    });
    for (const e of events) await recordFor(e.id, e.recipients);
    const consume = feedbackUnderAudit(testClock(new Date().toISOString()));
    const n = names();

    // Act
    const response = await consume(events.map((e) => e.body));

    // Assess
    expect(files).toHaveLength(10);
    expect(response).toEqual({ batchItemFailures: [] });
    expect((await suppressionOf('recipient@example.com'))?.reason).toBe('complaint');
    // GetItem on Suppressions: the tombstone check before each suppression write. At the batch's
    // end its webhook events (the tenant has no endpoint) and its statistics.
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:GetItem', n.messages],
      ['dynamodb:GetItem', n.suppressions],
      ['dynamodb:PutItem', n.messages],
      ['dynamodb:PutItem', n.suppressions],
      ['dynamodb:Query', n.webhooks],
      ['dynamodb:UpdateItem', n.stats],
    ]);
    expect(missingFor(FEEDBACK_ENTRY)).toEqual([]);
  });

  it('lets the feedback role find untagged notifications by SES message id on the index', async () => {
    // Prepare: identity notifications carry no tags; the records carry SES's id.
    const files = [...sesEventFixtures('ses-notif_'), ...sesEventFixtures('sns-http_')];
    const events = files.map((file) => {
      const id = `msg_${ulid()}`;
      return { id, sesMessageId: `ses-${id}`, ...pointedAt(file, `ses-${id}`, undefined) };
    });
    for (const e of events) await recordFor(e.id, e.recipients, e.sesMessageId);
    const consume = feedbackUnderAudit(testClock(new Date().toISOString()));
    const n = names();

    // Act
    const response = await consume(events.map((e) => e.body));

    // Assess
    expect(files).toHaveLength(21);
    expect(response).toEqual({ batchItemFailures: [] });
    expect((await suppressionOf('bounce@simulator.amazonses.com'))?.reason).toBe('hard_bounce');
    expect((await suppressionOf('complaint@simulator.amazonses.com'))?.reason).toBe('complaint');
    // GetItem on Suppressions: the tombstone check before a suppression write, and the soft-bounce
    // counter of the transient bounces among the notifications.
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:GetItem', n.messages],
      ['dynamodb:GetItem', n.suppressions],
      ['dynamodb:PutItem', n.messages],
      ['dynamodb:PutItem', n.suppressions],
      ['dynamodb:Query', `${n.messages}/index/${Keys.messages.sesMessageIdIndex}`],
      ['dynamodb:Query', n.webhooks],
      ['dynamodb:UpdateItem', n.stats],
    ]);
    expect(missingFor(FEEDBACK_ENTRY)).toEqual([]);
  });

  it('lets the feedback role suppress a bouncing address before the message is recorded, and retry', async () => {
    // Prepare: a fresh permanent bounce for messages Baton has no record of (yet).
    const now = new Date().toISOString();
    const bounce = (file: string, tag: string | undefined) => {
      const e = pointedAt(file, `ses-${ulid()}`, tag);
      const event = JSON.parse(e.body) as { bounce: Input };
      event.bounce = { ...event.bounce, timestamp: now };
      return JSON.stringify(event);
    };
    const consume = feedbackUnderAudit(testClock(now));
    const n = names();

    // Act
    const response = await consume([
      bounce('ses-event_aws-doc_bounce.json', `msg_${ulid()}`),
      bounce('ses-notif_aws-doc_bounce-permanent-general-with-dsn.json', undefined),
    ]);

    // Assess
    // Powertools processes the records in parallel: failures come back in the order they finished.
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['sqs-0', 'sqs-1']);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:GetItem', n.messages],
      ['dynamodb:GetItem', n.suppressions],
      ['dynamodb:PutItem', n.suppressions],
      ['dynamodb:Query', `${n.messages}/index/${Keys.messages.sesMessageIdIndex}`],
    ]);
    expect(missingFor(FEEDBACK_ENTRY)).toEqual([]);
  });

  it('lets the feedback role re-read and rewrite a message another event changed first', async () => {
    // Prepare
    const id = `msg_${ulid()}`;
    const delivery = pointedAt('ses-event_aws-doc_delivery.json', `ses-${id}`, id);
    await recordFor(id, delivery.recipients);
    faults.failOnce('PutItem', serviceError('ConditionalCheckFailedException', 400), stack.tables.messages);
    const consume = feedbackUnderAudit(testClock(new Date().toISOString()));

    // Act
    const response = await consume([delivery.body]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(recorder.calls().map((c) => c.action)).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      // The batch's end: its webhook events (to no endpoint), its statistics.
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
    expect(missingFor(FEEDBACK_ENTRY)).toEqual([]);
  });

  it('lets the feedback role publish a delivery, a bounce and the suppression it adds to the tenant’s endpoint', async () => {
    // Prepare: an endpoint of the tenant subscribed to them, and two sent messages to a new address.
    const tenant = `tenant-wh-${ulid().toLowerCase()}`;
    await webhookStore(stack).create(
      webhookEndpoint(tenant, ['message.delivered', 'message.bounced', 'suppression.created']),
    );
    const to = `bounced-${ulid().toLowerCase()}@example.org`;
    const events = ['ses-event_aws-doc_delivery.json', 'ses-event_aws-doc_bounce.json'].map((file) => {
      const id = `msg_${ulid()}`;
      return { id, body: pointedAt(file, `ses-${id}`, id).body.split('recipient@example.com').join(to) };
    });
    for (const e of events) {
      await new DynamoMessageStore(stack.clients.doc, stack.tables.messages).create(
        messageRecord({ id: e.id, tenant, phase: 'sent', recipients: [recipient(to, 'sent')] }),
      );
    }
    const consume = feedbackUnderAudit(testClock(new Date().toISOString()));
    const n = names();

    // Act
    const response = await consume(events.map((e) => e.body));

    // Assess: the endpoints found (tenant#), the events kept (events#), one job each queued.
    expect(response).toEqual({ batchItemFailures: [] });
    const kept = (await webhookStore(stack).since(tenant, new Date(0))).events.map((e) => e.type);
    expect(kept.sort()).toEqual(['message.bounced', 'message.delivered', 'suppression.created']);
    expect(
      usage(recorder.calls()).filter(([, resource]) => [n.webhooks, n.webhookQueue].includes(resource)),
    ).toEqual([
      ['dynamodb:BatchWriteItem', n.webhooks],
      ['dynamodb:Query', n.webhooks],
      ['sqs:SendMessage', n.webhookQueue],
    ]);
    expect(missingFor(FEEDBACK_ENTRY)).toEqual([]);
  });

  it('lets the feedback role count, evaluate and apply the guard’s decisions', async () => {
    // Prepare
    const { adapters, keys } = guardOfRole(FEEDBACK_ENTRY);

    // Act
    await runGuard(adapters, keys, false);

    // Assess
    expect(adapters.held).toBeUndefined();
    expect(missingFor(FEEDBACK_ENTRY)).toEqual([]);
  });

  it('grants the feedback role nothing its paths never use (least privilege)', () => {
    // Act
    const unused = unusedGrants(feedbackCalls, policyOfEntry(template, FEEDBACK_ENTRY)).map(
      (g) => `${g.action} ${resourceName(g.resource)}`,
    );

    // Assess: only what the audit cannot reach: the secret (cold start) and the queue (the event
    // source mapping's, not the code's).
    expect(unused).toEqual([
      `secretsmanager:GetSecretValue secret:${secretLogicalId()}`,
      `sqs:ChangeMessageVisibility ${names().feedbackQueue}`,
      `sqs:DeleteMessage ${names().feedbackQueue}`,
      `sqs:GetQueueAttributes ${names().feedbackQueue}`,
      `sqs:ReceiveMessage ${names().feedbackQueue}`,
    ]);
  });
});

// --- webhook delivery ----------------------------------------------------------------------------

/**
 * createWebhookDelivery exactly as lambdas/webhooks/handler.ts wires it, on the recorded clients.
 * Loopback receivers are allowed as local mode allows them (the receiver is on 127.0.0.1).
 */
function deliveryUnderAudit(): (records: SQSRecord[]) => Promise<SQSBatchResponse> {
  const env = environmentOf(WEBHOOKS_ENTRY);
  const table = env(EnvVar.webhooksTable);
  const webhooks = new DynamoWebhookStore(doc, table);
  const clock = () => new Date();
  return createWebhookDelivery({
    endpoints: webhooks,
    log: webhooks,
    state: new DynamoEndpointStateStore(doc, table, clock),
    poster: new WebhookHttpPoster({ allowLoopback: true }),
    queue: new SqsWebhookQueue(sqs, env(EnvVar.webhookQueueUrl)),
    publisher: createWebhookPublisher(environmentMapOf(WEBHOOKS_ENTRY), { doc, sqs }),
    visibility: new SqsVisibility(sqs),
    clock,
    random: Math.random,
    leaseId: randomUUID,
    maxReceiveCount: Number(env(EnvVar.maxReceiveCount)),
  });
}

/** A first delivery job of a message.delivered event to `endpoint`, due now. */
function deliveryJob(
  endpoint: WebhookEndpoint,
  overrides: Partial<WebhookDeliveryJob> = {},
): WebhookDeliveryJob {
  const now = Date.now();
  return {
    v: 1,
    tenant: endpoint.tenant,
    endpointId: endpoint.id,
    eventId: `evt_${ulid()}`,
    type: 'message.delivered',
    body: JSON.stringify({ type: 'message.delivered', timestamp: new Date(now).toISOString(), data: {} }),
    attempt: 0,
    firstQueuedAt: now,
    notBefore: now,
    occurredAt: now,
    ...overrides,
  };
}

/**
 * The job as the delivery function receives it from its queue: queued and received for real (a
 * visibility change needs a live receipt handle), with the queue's ARN as its event source.
 */
async function receivedJob(job: WebhookDeliveryJob, receiveCount = 1): Promise<SQSRecord> {
  const queue = stack.queues.webhook;
  const body = JSON.stringify(job);
  await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body }));
  // Other tests' jobs wait on the same queue: received and left to reappear, untouched.
  for (let i = 0; i < 20; i++) {
    const { Messages = [] } = await stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
    );
    const found = Messages.find((m) => m.Body === body);
    if (found?.ReceiptHandle !== undefined && found.MessageId !== undefined) {
      const record = sqsRecord(body, { messageId: found.MessageId, receiveCount });
      return { ...record, receiptHandle: found.ReceiptHandle, eventSourceARN: queueArn(queue.name) };
    }
  }
  throw new Error('the job never came back from the webhook queue');
}

describe('the webhook delivery function’s calls, against its deployed role', () => {
  const deliveryCalls: RecordedCall[] = [];
  let receiver: WebhookReceiver;

  beforeEach(async () => {
    receiver = await WebhookReceiver.start();
  });

  afterEach(async () => {
    deliveryCalls.push(...recorder.calls());
    await receiver.close();
  });

  /** An endpoint of a new tenant on the receiver, which verifies with its secret. */
  async function receiverEndpoint(): Promise<WebhookEndpoint> {
    const endpoint = webhookEndpoint(
      `tenant-wh-${ulid().toLowerCase()}`,
      ['message.delivered'],
      receiver.url(),
    );
    receiver.secrets = endpoint.secrets.map((s) => s.secret);
    await webhookStore(stack).create(endpoint);
    return endpoint;
  }

  it('lets the delivery role post a job, record the attempts and queue the retry of a failed one', async () => {
    // Prepare
    receiver.answer = (_, n) => (n === 0 ? { status: 500, body: 'down for a deploy' } : { status: 200 });
    const endpoint = await receiverEndpoint();
    const deliver = deliveryUnderAudit();
    const n = names();
    recorder.reset();

    // Act
    const failed = await deliver([sqsRecord(JSON.stringify(deliveryJob(endpoint)), { messageId: 'sqs-1' })]);
    const [retry] = await new DynamoWebhookStore(stack.clients.doc, stack.tables.webhooks)
      .attempts(endpoint.tenant, endpoint.id)
      .then((page) => page.attempts);
    const retried = await deliver([
      sqsRecord(JSON.stringify(deliveryJob(endpoint, { eventId: retry?.eventId ?? '', attempt: 1 })), {
        messageId: 'sqs-2',
      }),
    ]);

    // Assess: the endpoint (tenant#) and its state and attempts (endpoint#) read and written by
    // key, the retry a new message on the queue.
    expect([failed, retried]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(receiver.received.map((r) => [r.status, r.verified])).toEqual([
      [500, true],
      [200, true],
    ]);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:GetItem', n.webhooks],
      ['dynamodb:PutItem', n.webhooks],
      ['sqs:SendMessage', n.webhookQueue],
    ]);
    expect(missingFor(WEBHOOKS_ENTRY)).toEqual([]);
  });

  it('lets the delivery role hide a job not due yet, and queue afresh one near its receive limit', async () => {
    // Prepare
    const endpoint = await receiverEndpoint();
    const later = { notBefore: Date.now() + 60 * 60_000 };
    const limit = Number(environmentOf(WEBHOOKS_ENTRY)(EnvVar.maxReceiveCount));
    const hidden = await receivedJob(deliveryJob(endpoint, later));
    const requeued = await receivedJob(deliveryJob(endpoint, later), limit - 1);
    const deliver = deliveryUnderAudit();
    const n = names();
    recorder.reset();

    // Act
    const response = await deliver([hidden, requeued]);

    // Assess: a deferral is no attempt: nothing of the table is read.
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: hidden.messageId }] });
    expect(usage(recorder.calls())).toEqual([
      ['sqs:ChangeMessageVisibility', n.webhookQueue],
      ['sqs:SendMessage', n.webhookQueue],
    ]);
    expect(missingFor(WEBHOOKS_ENTRY)).toEqual([]);
  });

  it('lets the delivery role disable an endpoint that answers 410 and tell the tenant’s other endpoints', async () => {
    // Prepare: the tenant's other endpoint subscribes to webhook.endpoint.disabled.
    receiver.answer = () => ({ status: 410 });
    const endpoint = await receiverEndpoint();
    await webhookStore(stack).create(webhookEndpoint(endpoint.tenant, ['webhook.endpoint.disabled']));
    const deliver = deliveryUnderAudit();
    const n = names();
    recorder.reset();

    // Act
    const response = await deliver([sqsRecord(JSON.stringify(deliveryJob(endpoint)))]);

    // Assess: the endpoint rewritten disabled (tenant#), the event published as producers publish.
    expect(response).toEqual({ batchItemFailures: [] });
    expect(await webhookStore(stack).get(endpoint.tenant, endpoint.id)).toMatchObject({
      enabled: false,
      disabledReason: 'gone',
    });
    const kept = (await webhookStore(stack).since(endpoint.tenant, new Date(0))).events.map((e) => e.type);
    expect(kept).toEqual(['webhook.endpoint.disabled']);
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:BatchWriteItem', n.webhooks],
      ['dynamodb:GetItem', n.webhooks],
      ['dynamodb:PutItem', n.webhooks],
      ['dynamodb:Query', n.webhooks],
      ['sqs:SendMessage', n.webhookQueue],
    ]);
    expect(missingFor(WEBHOOKS_ENTRY)).toEqual([]);
  });

  it('grants the delivery role nothing its paths never use (least privilege)', () => {
    // Act
    const unused = unusedGrants(deliveryCalls, policyOfEntry(template, WEBHOOKS_ENTRY)).map(
      (g) => `${g.action} ${resourceName(g.resource)}`,
    );

    // Assess: only the event source mapping's grants on the queue, not the code's.
    expect(unused).toEqual([
      `sqs:DeleteMessage ${names().webhookQueue}`,
      `sqs:GetQueueAttributes ${names().webhookQueue}`,
      `sqs:ReceiveMessage ${names().webhookQueue}`,
    ]);
  });
});

// --- the sender ---------------------------------------------------------------------------------

const SENDER_ENTRY = 'lambdas/sender/handler.ts';

describe('the transactional sender’s calls, against its deployed role', () => {
  // The sender rig's emulators, SES stand-in and queueing; the sender itself is built here on
  // recorded clients (the rig's own are counted, not recorded), with the payload store the rig
  // leaves out, so the claim check's read is audited too.
  let rig: SenderRig;
  let senderFunction: string;
  let env: (name: string) => string;
  const own: Array<{ destroy(): void }> = [];
  let sender: Sender;
  /** The batch's statistics, flushed at its end as the handler does (on the recorded client). */
  let senderStats: DynamoUsageStore;
  let setupS3: S3Client;

  beforeAll(async () => {
    rig = await startSenderRig();
    const id = functionsWithEntry(template, SENDER_ENTRY).find(
      (fn) => rig.stack.environments.get(fn)?.[EnvVar.lane] === 'transactional',
    );
    const vars = id === undefined ? undefined : rig.stack.environments.get(id);
    if (id === undefined || vars === undefined) throw new Error('the template has no transactional sender');
    senderFunction = id;
    env = (name) => {
      const value = vars[name];
      if (value === undefined) throw new Error(`the sender has no ${name} in its environment`);
      return value;
    };
    const ddb = recorder.instrument(
      new DynamoDBClient({ endpoint: rig.stack.dynamo.endpoint, region, credentials }),
    );
    const queue = recorder.instrument(sqsClient(rig.stack.sqsSns.endpoint));
    const bucket = recorder.instrument(
      new S3Client({ endpoint: rig.stack.sqsSns.endpoint, region, credentials, forcePathStyle: true }),
    );
    // One attempt per call: IAM authorises each call once, the SDK's retries of a throttled send only add time.
    const ses = recorder.instrument(
      new SESv2Client({ endpoint: rig.ses.endpoint, region, credentials, maxAttempts: 1 }),
    );
    setupS3 = new S3Client({
      endpoint: rig.stack.sqsSns.endpoint,
      region,
      credentials,
      forcePathStyle: true,
    });
    own.push(ddb, queue, bucket, ses, setupS3);
    const sdoc = documentClient(ddb);
    senderStats = new DynamoUsageStore(sdoc, env(EnvVar.statsTable));
    // As lambdas/sender/handler.ts wires it, but without the pacer around the mailer: it only waits.
    sender = createSender({
      messages: new DynamoMessageStore(sdoc, env(EnvVar.messagesTable)),
      suppressions: new DynamoSuppressionStore(sdoc, env(EnvVar.suppressionsTable)),
      mailer: new SesMailer(ses, env(EnvVar.configurationSet)),
      visibility: new SqsVisibility(queue),
      keys: new DynamoApiKeyStore(sdoc, env(EnvVar.apiKeysTable)),
      // The held-job adapter's calls are audited with it (guard wiring); here the jobs are not held.
      held: new InMemoryHeldJobs(),
      dkim: undefined,
      clock: () => new Date(),
      maxReceiveCount: Number(env(EnvVar.maxReceiveCount)),
      payloads: new S3PayloadStore(bucket, env(EnvVar.payloadBucket)),
      // The tenant's endpoints are looked up for every batch (not cached for the template's 10 s):
      // each test's calls are then its own, whichever tests ran before it.
      webhooks: createWebhookPublisher(
        { ...vars, [EnvVar.webhookDirectorySeconds]: '0.001' },
        { doc: sdoc, sqs: queue },
      ),
    });
  });

  const senderCalls: RecordedCall[] = [];
  afterEach(() => {
    rig?.ses.setFaults({});
    senderCalls.push(...recorder.calls());
  });

  afterAll(async () => {
    for (const client of own) client.destroy();
    await rig?.stop();
  });

  const missingForSender = () =>
    missingPermissions(recorder.calls(), policyOfFunction(template, senderFunction));
  const sesResources = () => ({
    configurationSet: `configuration-set/${env(EnvVar.configurationSet)}`,
    identity: 'identity/example.com',
  });

  it('lets the sender role read the job’s key and keep or remove a held message, and nothing else of the guard table', async () => {
    // Prepare
    const ddb = recorder.instrument(
      new DynamoDBClient({ endpoint: rig.stack.dynamo.endpoint, region, credentials }),
    );
    const bucket = recorder.instrument(
      new S3Client({ endpoint: rig.stack.sqsSns.endpoint, region, credentials, forcePathStyle: true }),
    );
    own.push(ddb, bucket);
    const sdoc = documentClient(ddb);
    const keys = new DynamoApiKeyStore(sdoc, env(EnvVar.apiKeysTable));
    const adapters = guardAdapters({
      doc: sdoc,
      keyStore: keys,
      s3: bucket,
      env: { [EnvVar.guardTable]: env(EnvVar.guardTable), [EnvVar.payloadBucket]: env(EnvVar.payloadBucket) },
    });
    const entry = {
      tenant: 'tenant-a',
      id: `msg_${ulid()}`,
      lane: 'broadcast' as const,
      heldAt: '2026-03-02T10:30:00.000Z',
      until: '2026-03-09T10:30:00.000Z',
      action: 'pauseBroadcast',
      signal: 'hardBounceRate',
      reason: 'held',
    };
    const job = { v: 1 as const, id: entry.id, tenant: entry.tenant, message: outgoingMessage() };
    recorder.reset();

    // Act: read a key, keep a message twice (the second finds the first entry)
    await keys.get('k-unknown');
    await adapters.held?.keep(entry, job);
    await adapters.held?.keep({ ...entry, heldAt: '2026-03-02T10:31:00.000Z' }, job);
    // A duplicate delivery took the message meanwhile: the sender removes the entry it kept.
    await adapters.held?.remove(entry);
    const allowed = missingForSender();
    // Kept for the least-privilege check; counting, next, is refused and so uses no grant.
    senderCalls.push(...recorder.calls());
    recorder.reset();
    await adapters.counters.add([
      { scope: { kind: 'key', keyId: 'k1' }, hour: '2026-03-02T10', counts: { sends: 1 } },
    ]);

    // Assess: counting is not the sender's (LeadingKeys held:* keeps it to the held-mail index).
    expect(allowed).toEqual([]);
    expect(missingForSender().map((m) => `${m.action} ${resourceName(m.resource)}`)).toEqual([
      `dynamodb:UpdateItem ${env(EnvVar.guardTable)}`,
    ]);
  });

  it('lets the sender role deliver a batch the way the adapters do', async () => {
    // Prepare
    const records = await rig.queueBatch('iamdeliver', 2);
    recorder.reset();
    const ses = sesResources();

    // Act
    const response = await runSenderBatch(sender, records, senderStats);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:BatchGetItem', rig.stack.tables.suppressions],
      ['dynamodb:PutItem', rig.stack.tables.messages],
      // message.sent, at the batch's end, to the tenant's endpoints (it has none).
      ['dynamodb:Query', rig.stack.tables.webhooks],
      ['dynamodb:UpdateItem', rig.stack.tables.messages],
      // The batch's statistics, one write per tenant and day.
      ['dynamodb:UpdateItem', rig.stack.tables.stats],
      ['ses:SendEmail', ses.configurationSet],
      ['ses:SendEmail', ses.identity],
      ['ses:SendRawEmail', ses.configurationSet],
      ['ses:SendRawEmail', ses.identity],
    ]);
    expect(missingForSender()).toEqual([]);
  });

  it('lets the sender role read a claim-checked job back from the payload bucket', async () => {
    // Prepare
    const id = `msg_${ulid()}`;
    const to = 'success@simulator.amazonses.com';
    const bucket = env(EnvVar.payloadBucket);
    const now = new Date().toISOString();
    await rig.records.create(
      messageRecord({
        id,
        createdAt: now,
        updatedAt: now,
        recipients: [recipient(to, 'queued', { updatedAt: now })],
      }),
    );
    const job = sendJob(outgoingMessage({ to: [{ address: to }] }), id);
    await setupS3.send(
      new PutObjectCommand({ Bucket: bucket, Key: `payloads/${id}`, Body: JSON.stringify(job) }),
    );
    const pointer = { v: 1, id, tenant: job.tenant, payload: { bucket, key: `payloads/${id}` } };
    recorder.reset();

    // Act
    const response = await runSenderBatch(sender, [sqsRecord(JSON.stringify(pointer))]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(usage(recorder.calls()).filter(([action]) => action.startsWith('s3:'))).toEqual([
      ['s3:GetObject', `${bucket}/payloads/${id}`],
    ]);
    expect(missingForSender()).toEqual([]);
  });

  it('lets the sender role re-check a job’s key and hold the message of a suspended key', async () => {
    // Prepare
    const id = `msg_${ulid()}`;
    const to = 'success@simulator.amazonses.com';
    const now = new Date().toISOString();
    const { key } = issueApiKey({ tenant: 'tenant-iam', status: 'suspended' });
    await new DynamoApiKeyStore(rig.stack.clients.doc, rig.stack.tables.apiKeys).put(key);
    await rig.records.create(
      messageRecord({
        id,
        keyId: key.keyId,
        createdAt: now,
        updatedAt: now,
        recipients: [recipient(to, 'queued', { updatedAt: now })],
      }),
    );
    const job = { ...sendJob(outgoingMessage({ to: [{ address: to }] }), id), keyId: key.keyId };
    recorder.reset();

    // Act
    const response = await runSenderBatch(sender, [sqsRecord(JSON.stringify(job))]);

    // Assess: one read of the key, the record held, nothing sent.
    expect(response).toEqual({ batchItemFailures: [] });
    expect((await rig.records.get(id))?.phase).toBe('held');
    expect(usage(recorder.calls())).toEqual([
      ['dynamodb:BatchGetItem', rig.stack.tables.suppressions],
      ['dynamodb:GetItem', rig.stack.tables.apiKeys],
      ['dynamodb:GetItem', rig.stack.tables.messages],
      ['dynamodb:PutItem', rig.stack.tables.messages],
      // message.held, at the batch's end.
      ['dynamodb:Query', rig.stack.tables.webhooks],
    ]);
    expect(missingForSender()).toEqual([]);
  });

  it('lets the sender role back off a throttled send and give up on the last receive', async () => {
    // Prepare
    const [retried, last] = await rig.queueBatch('iamthrottle', 2);
    if (!retried || !last) throw new Error('nothing queued');
    const lastReceive = {
      ...last,
      attributes: { ...last.attributes, ApproximateReceiveCount: env(EnvVar.maxReceiveCount) },
    };
    rig.ses.setFaults({ throttleRate: 1 });
    recorder.reset();

    // Act
    const response = await runSenderBatch(sender, [retried, lastReceive]);

    // Assess
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      [retried.messageId, last.messageId].sort(),
    );
    expect(usage(recorder.calls()).filter(([action]) => !action.startsWith('ses:'))).toEqual([
      ['dynamodb:BatchGetItem', rig.stack.tables.suppressions],
      ['dynamodb:GetItem', rig.stack.tables.messages],
      ['dynamodb:PutItem', rig.stack.tables.messages],
      // message.failed of the job given up, at the batch's end.
      ['dynamodb:Query', rig.stack.tables.webhooks],
      ['dynamodb:UpdateItem', rig.stack.tables.messages],
      ['sqs:ChangeMessageVisibility', rig.stack.queues.transactional.name],
    ]);
    expect(missingForSender()).toEqual([]);
  });

  it('lets the sender role publish a batch’s sent events to the tenant’s endpoint', async () => {
    // Prepare: a tenant with an endpoint subscribed to message.sent, and one queued message of it.
    const tenant = `tenant-wh-${ulid().toLowerCase()}`;
    await webhookStore(rig.stack).create(webhookEndpoint(tenant, ['message.sent']));
    const id = `msg_${ulid()}`;
    const to = 'success@simulator.amazonses.com';
    const now = new Date().toISOString();
    await rig.records.create(
      messageRecord({
        id,
        tenant,
        createdAt: now,
        updatedAt: now,
        recipients: [recipient(to, 'queued', { updatedAt: now })],
      }),
    );
    const job = sendJob(outgoingMessage({ to: [{ address: to }] }), id, tenant);
    recorder.reset();

    // Act
    const response = await runSenderBatch(sender, [sqsRecord(JSON.stringify(job))]);

    // Assess: the endpoints found (tenant#), the event kept (events#), its job queued.
    expect(response).toEqual({ batchItemFailures: [] });
    const kept = (await webhookStore(rig.stack).since(tenant, new Date(0))).events.map((e) => e.type);
    expect(kept).toEqual(['message.sent']);
    const webhooks = [rig.stack.tables.webhooks, rig.stack.queues.webhook.name];
    expect(usage(recorder.calls()).filter(([, resource]) => webhooks.includes(resource))).toEqual([
      ['dynamodb:BatchWriteItem', rig.stack.tables.webhooks],
      ['dynamodb:Query', rig.stack.tables.webhooks],
      ['sqs:SendMessage', rig.stack.queues.webhook.name],
    ]);
    expect(missingForSender()).toEqual([]);
  });

  it('grants the sender role nothing its paths never use (least privilege)', () => {
    // Act
    const unused = unusedGrants(senderCalls, policyOfFunction(template, senderFunction)).map(
      (g) => `${g.action} ${resourceName(g.resource)}`,
    );

    // Assess: only what the audit cannot reach: the secret (cold start) and the queue (the event
    // source mapping's, not the code's).
    expect(unused).toEqual([
      `secretsmanager:GetSecretValue secret:${secretLogicalId()}`,
      `sqs:DeleteMessage ${rig.stack.queues.transactional.name}`,
      `sqs:GetQueueAttributes ${rig.stack.queues.transactional.name}`,
      `sqs:ReceiveMessage ${rig.stack.queues.transactional.name}`,
    ]);
  });
});

// --- the helper itself --------------------------------------------------------------------------

/** A client whose calls stop after the recorder: nothing reaches the network. */
function stubbed<C extends { readonly middlewareStack: object }>(client: C, audit: IamRecorder): C {
  audit.instrument(client);
  addCallMiddleware(
    client,
    'batonStub',
    () => async () => ({ output: { $metadata: {} }, response: {} }),
    'low',
  );
  return client;
}

describe('the IAM audit helper', () => {
  it('records each SDK call as the IAM action and resource ARN that authorise it', async () => {
    // Prepare
    const audit = new IamRecorder();
    const ddb = documentClient(stubbed(new DynamoDBClient(unreachable), audit));
    const queue = stubbed(sqsClient(unreachable.endpoint), audit);
    const bucket = stubbed(new S3Client({ ...unreachable, forcePathStyle: true }), audit);
    const ses = stubbed(new SESv2Client(unreachable), audit);

    // Act
    await ddb.send(new PutCommand({ TableName: 'Messages', Item: { id: 'm' } }));
    await ddb.send(
      new BatchWriteCommand({ RequestItems: { Messages: [{ PutRequest: { Item: { id: 'm' } } }] } }),
    );
    await ddb.send(new BatchGetCommand({ RequestItems: { Suppressions: { Keys: [{ address: 'a@b.c' }] } } }));
    await ddb.send(
      new QueryCommand({
        TableName: 'Messages',
        IndexName: 'bySes',
        KeyConditionExpression: 'x = :x',
        ExpressionAttributeValues: { ':x': 'y' },
      }),
    );
    await queue.send(
      new SendMessageBatchCommand({
        QueueUrl: 'http://127.0.0.1:9/000000000000/Lane',
        Entries: [{ Id: '1', MessageBody: '{}' }],
      }),
    );
    await bucket.send(new PutObjectCommand({ Bucket: 'payloads', Key: 'payloads/msg_1', Body: 'x' }));
    await ses.send(
      new SendEmailCommand({
        FromEmailAddress: 'Shop <orders@Example.com>',
        ConfigurationSetName: 'Set',
        Content: { Raw: { Data: Buffer.from('x') } },
      }),
    );

    // Assess
    const ses0 = 'arn:aws:ses:us-east-1:000000000000';
    expect(audit.calls().map((c) => [c.operation, c.action, c.resources])).toEqual([
      ['PutItem', 'dynamodb:PutItem', [tableArn('Messages')]],
      ['BatchWriteItem', 'dynamodb:BatchWriteItem', [tableArn('Messages')]],
      ['BatchGetItem', 'dynamodb:BatchGetItem', [tableArn('Suppressions')]],
      ['Query', 'dynamodb:Query', [`${tableArn('Messages')}/index/bySes`]],
      ['SendMessageBatch', 'sqs:SendMessage', [queueArn('Lane')]],
      ['PutObject', 's3:PutObject', [`${bucketArn('payloads')}/payloads/msg_1`]],
      ['SendEmail', 'ses:SendEmail', [`${ses0}:identity/example.com`, `${ses0}:configuration-set/Set`]],
      ['SendEmail', 'ses:SendRawEmail', [`${ses0}:identity/example.com`, `${ses0}:configuration-set/Set`]],
    ]);
    expect(audit.calls().map((c) => c.service)).toEqual([
      'DynamoDB',
      'DynamoDB',
      'DynamoDB',
      'DynamoDB',
      'SQS',
      'S3',
      'SESv2',
      'SESv2',
    ]);
  });

  it('reports an action the role does not grant, so the guard can fail', async () => {
    // Prepare: the feedback role may not batch-write Messages (the api's past omission).
    const audit = new IamRecorder();
    const ddb = documentClient(stubbed(new DynamoDBClient(unreachable), audit));
    await ddb.send(
      new BatchWriteCommand({
        RequestItems: { [stack.tables.messages]: [{ PutRequest: { Item: { id: 'm' } } }] },
      }),
    );
    await ddb.send(new PutCommand({ TableName: stack.tables.messages, Item: { id: 'm' } }));

    // Act
    const missing = missingPermissions(audit.calls(), policyOfEntry(template, FEEDBACK_ENTRY));

    // Assess
    expect(missing).toEqual([
      { action: 'dynamodb:BatchWriteItem', resource: tableArn(stack.tables.messages) },
    ]);
  });

  it('grants objects under the api role’s payload prefix and nothing outside it', () => {
    // Prepare
    const bucket = bucketArn(environmentOf(API_ENTRY)(EnvVar.payloadBucket));
    const recorded = [
      {
        service: 'S3',
        operation: 'PutObject',
        action: 's3:PutObject',
        resources: [`${bucket}/payloads/msg_1`],
      },
      { service: 'S3', operation: 'PutObject', action: 's3:PutObject', resources: [`${bucket}/other/msg_1`] },
      {
        service: 'S3',
        operation: 'GetObject',
        action: 's3:GetObject',
        resources: [`${bucket}/payloads/msg_1`],
      },
    ];

    // Act
    const missing = missingPermissions(recorded, policyOfEntry(template, API_ENTRY));

    // Assess
    expect(missing).toEqual([
      { action: 's3:GetObject', resource: `${bucket}/payloads/msg_1` },
      { action: 's3:PutObject', resource: `${bucket}/other/msg_1` },
    ]);
  });

  it('evaluates a LeadingKeys condition against the partition key of every item a call names', () => {
    // Prepare: a table keyed on pk/sk, a role that may only write items of partitions held:*
    const template = {
      Resources: {
        Fn: { Type: 'AWS::Lambda::Function', Properties: { Role: { 'Fn::GetAtt': ['Role', 'Arn'] } } },
        Role: { Type: 'AWS::IAM::Role', Properties: {} },
        Guard: {
          Type: 'AWS::DynamoDB::Table',
          Properties: {
            KeySchema: [
              { AttributeName: 'pk', KeyType: 'HASH' },
              { AttributeName: 'sk', KeyType: 'RANGE' },
            ],
          },
        },
        Policy: {
          Type: 'AWS::IAM::Policy',
          Properties: {
            Roles: [{ Ref: 'Role' }],
            PolicyDocument: {
              Statement: [
                {
                  Effect: 'Allow',
                  Action: ['dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:Query', 'dynamodb:Scan'],
                  Resource: { 'Fn::GetAtt': ['Guard', 'Arn'] },
                  Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['held:*'] } },
                },
              ],
            },
          },
        },
      },
    };
    const policy = policyOfFunction(template, 'Fn');
    const put = (pk: unknown) =>
      requirementsOf('DynamoDB', 'PutItem', { TableName: 'Guard', Item: { pk, sk: 'id:held:x' } });
    const query = requirementsOf('DynamoDB', 'Query', {
      TableName: 'Guard',
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :at)',
      ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
      ExpressionAttributeValues: { ':pk': { S: 'tenant:held:x' }, ':at': { S: 'at:' } },
    });

    const batchWrite = (...pks: string[]) =>
      requirementsOf('DynamoDB', 'BatchWriteItem', {
        RequestItems: {
          Guard: pks.map((pk, i) =>
            i % 2 === 0
              ? { PutRequest: { Item: { pk, sk: `s${i}` } } }
              : { DeleteRequest: { Key: { pk: { S: pk }, sk: { S: `s${i}` } } } },
          ),
          // Another table's items are that table's business (its own statement), not this one's.
          Other: [{ PutRequest: { Item: { id: 'guard:key:k1' } } }],
        },
      });

    // Act / Assess: the item's partition decides, never its sort key; a Scan names no item; a batch
    // write names every item it puts or deletes.
    expect(missingPermissions(batchWrite('held:a', 'held:b'), policy)).toEqual([
      { action: 'dynamodb:BatchWriteItem', resource: tableArn('Other') },
    ]);
    expect(
      missingPermissions(batchWrite('held:a', 'guard:key:k1'), policy).map((m) => resourceName(m.resource)),
    ).toEqual(['Guard', 'Other']);
    expect(missingPermissions(put({ S: 'held:acme' }), policy)).toEqual([]);
    expect(missingPermissions(put('held:acme'), policy)).toEqual([]);
    expect(missingPermissions(put({ S: 'guard:key:k1' }), policy).map((m) => m.action)).toEqual([
      'dynamodb:PutItem',
    ]);
    expect(missingPermissions(query, policy).map((m) => m.action)).toEqual(['dynamodb:Query']);
    expect(missingPermissions(requirementsOf('DynamoDB', 'Scan', { TableName: 'Guard' }), policy)).toEqual(
      [],
    );
  });

  it('lets a Deny win over an Allow and refuses a statement it cannot evaluate', () => {
    // Prepare
    const statement = (extra: Input) => ({
      Resources: {
        Fn: { Type: 'AWS::Lambda::Function', Properties: { Role: { 'Fn::GetAtt': ['Role', 'Arn'] } } },
        Role: { Type: 'AWS::IAM::Role', Properties: {} },
        Policy: {
          Type: 'AWS::IAM::Policy',
          Properties: {
            Roles: [{ Ref: 'Role' }],
            PolicyDocument: {
              Statement: [
                { Effect: 'Allow', Action: 'sqs:*', Resource: '*' },
                { Resource: '*', ...extra },
              ],
            },
          },
        },
      },
    });
    const denied: RolePolicy = policyOfFunction(
      statement({ Effect: 'Deny', Action: 'sqs:DeleteMessage' }),
      'Fn',
    );
    const recorded = ['sqs:SendMessage', 'sqs:DeleteMessage'].map((action) => ({
      service: 'SQS',
      operation: action.slice(4),
      action,
      resources: [queueArn('Q')],
    }));

    // Act
    const missing = missingPermissions(recorded, denied);
    const conditional = () =>
      policyOfFunction(
        statement({
          Effect: 'Allow',
          Action: 'sqs:SendMessage',
          Condition: { Bool: { 'aws:SecureTransport': 'true' } },
        }),
        'Fn',
      );

    // Assess
    expect(missing).toEqual([{ action: 'sqs:DeleteMessage', resource: queueArn('Q') }]);
    expect(conditional).toThrow(
      new IamAuditError(
        'role Role: only a ForAllValues:StringLike condition on dynamodb:LeadingKeys can be audited, not {"Bool":{"aws:SecureTransport":"true"}}',
      ),
    );
  });
  it('lists the grants no recorded call needed, leaving out the runtime’s log grants', () => {
    // Prepare
    const policy = policyOfFunction(
      {
        Resources: {
          Fn: { Type: 'AWS::Lambda::Function', Properties: { Role: { Ref: 'Role' } } },
          Role: {
            Type: 'AWS::IAM::Role',
            Properties: {
              Policies: [
                {
                  PolicyDocument: {
                    Statement: [
                      {
                        Effect: 'Allow',
                        Action: ['sqs:SendMessage', 'sqs:DeleteMessage'],
                        Resource: queueArn('Q'),
                      },
                      { Effect: 'Allow', Action: 'logs:PutLogEvents', Resource: '*' },
                    ],
                  },
                },
              ],
            },
          },
        },
      },
      'Fn',
    );
    const recorded = [
      {
        service: 'SQS',
        operation: 'SendMessageBatch',
        action: 'sqs:SendMessage',
        resources: [queueArn('Q')],
      },
    ];

    // Act
    const unused = unusedGrants(recorded, policy);

    // Assess
    expect(unused).toEqual([{ action: 'sqs:DeleteMessage', resource: queueArn('Q') }]);
  });
});
