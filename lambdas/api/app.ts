import { setTimeout as sleep } from 'node:timers/promises';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { normaliseAddress } from '../domain/address.ts';
import {
  type ErasureDeps,
  type ErasureOutcome,
  eraseFromWebhookBodies,
  eraseRecipient,
  loggableKey,
} from '../domain/erasure/erasure.ts';
import {
  cancelHeld,
  DEFAULT_RELEASE_RATE,
  type GuardOperationsDeps,
  type HeldResult,
  listHeld,
  type ReleasePacing,
  releaseHeld,
  resumeGuard,
} from '../domain/guard/operations.ts';
import { heldQuery, heldRequest, resumeRequest } from '../domain/guard/requests.ts';
import { GuardResumeReasonError } from '../domain/guard/service.ts';
import {
  type ApiKey,
  ApiKeyNotFoundError,
  ApiKeyRevokedError,
  bearerToken,
  type Scope,
} from '../domain/keys/api-key.ts';
import { admitSending, verifyToken } from '../domain/keys/authenticate.ts';
import { MESSAGE_ID } from '../domain/message.ts';
import type {
  ApiKeyReader,
  Guard,
  HeldJobs,
  IdempotencyStore,
  MessageStore,
  SuppressionStore,
} from '../domain/ports.ts';
import { fail, type Problem, ProblemError, problem } from '../domain/problem.ts';
import { statsView } from '../domain/reporting/stats.ts';
import { statsRange } from '../domain/reporting/stats-query.ts';
import { toMessageView } from '../domain/reporting/status.ts';
import {
  type AcceptDeps,
  acceptBatch,
  acceptMessage,
  acceptRawMessage,
  type BatchResult,
  isFinal,
} from '../domain/send/accept.ts';
import { batchMessages } from '../domain/send/batch-request.ts';
import { checkIdempotencyKey, idempotent, type KeptReply, type Reply } from '../domain/send/idempotency.ts';
import { type RateLimiter, secondsUntilNextUtcDay } from '../domain/send/rate-limit.ts';
import { isRawSendRequest } from '../domain/send/raw-request.ts';
import { manualSuppression, suppressionListQuery } from '../domain/suppression/requests.ts';
import {
  GLOBAL_REASONS,
  isActive,
  outranks,
  REASON_WORDS,
  toSuppressionView,
} from '../domain/suppression/suppression.ts';
import { suppressionWebhookEvent } from '../domain/webhooks/events.ts';
import {
  deleteEndpoint,
  getEndpoint,
  listDeliveries,
  listEndpoints,
  registerEndpoint,
  replayEvents,
  rotateSecret,
  updateEndpoint,
  type WebhookAdminDeps,
  type WebhookOperationsDeps,
} from '../domain/webhooks/operations.ts';
import { publishEvents } from '../domain/webhooks/produce.ts';
import {
  createWebhookRequest,
  deliveriesQuery,
  replayRequest,
  updateWebhookRequest,
} from '../domain/webhooks/requests.ts';
import { InvalidCursorError, TransientError } from '../shared/errors.ts';
import { type Lane, Route } from '../shared/names.ts';
import { describeError, logger, metrics } from '../shared/observability.ts';

/**
 * The committed OpenAPI document (docs/openapi.json, `npm run openapi`), served without a key. The
 * file, not its generator: the bundle gets ~120 KB of JSON instead of zod classic's JSON Schema
 * output, and a unit test fails when the file is stale. Loaded and serialized on the first request
 * for it, not at every cold start (almost no instance is ever asked).
 */
let openapiBody: Promise<string> | undefined;
function openapi(): Promise<string> {
  openapiBody ??= import('../../docs/openapi.json', { with: { type: 'json' } }).then((m) =>
    JSON.stringify(m.default),
  );
  return openapiBody;
}
const OPENAPI_HEADERS = { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' };

/** API Gateway and Lambda both stop at 6 MB for a synchronous request. */
export const MAX_REQUEST_BYTES = 6 * 1024 * 1024;
/** JSON deeper than this is not a message, and walking it recursively could exhaust the stack. */
const MAX_JSON_DEPTH = 64;
/**
 * How long an erasure scans within its request before the erasure worker takes over: the function
 * stops at 10 s, and the last pages and rewrites started before the deadline must still finish.
 */
export const ERASURE_BUDGET_MS = 6_500;

export interface ApiDeps extends AcceptDeps {
  readonly keys: ApiKeyReader;
  readonly messages: AcceptDeps['messages'] & Pick<MessageStore, 'get'>;
  readonly suppressions: SuppressionStore;
  readonly idempotency: IdempotencyStore;
  /** Per-instance request rate per key (see RateLimiter for how exact that is). */
  readonly rateLimiter: RateLimiter;
  /**
   * Recipient erasure (the raw Suppressions table, the Messages scan, the worker's queue and the
   * pseudonym function). Absent, `DELETE /v1/recipients/{address}` answers 501: a test rig that
   * does not exercise erasure need not build it; the handler always wires it.
   */
  readonly erasure?: ErasureDeps;
  /** The abuse guard (counting at accept, `GET /v1/reputation`, the operator's resume). */
  readonly guard: Guard;
  /**
   * The keys uncached, for the operator's release: it must see a resume at once, not a key-cache
   * TTL later. @default keys
   */
  readonly keyTable?: ApiKeyReader;
  /** Held mail: kept at accept, listed, released and cancelled by the operator's routes. */
  readonly held: HeldJobs;
  /** How fast a release enqueues (see `releasePacing`); tests pass a sleep that moves their clock. */
  readonly release?: {
    readonly ratePerSecond?: Readonly<Record<Lane, number>>;
    readonly sleep?: (ms: number) => Promise<unknown>;
  };
  /**
   * The tenants' webhook endpoints (issue 14): the Webhooks table, the delivery queue (replay) and
   * the URL policy. Absent, the webhook routes answer 501, as erasure does.
   */
  readonly webhookEndpoints?: WebhookAdminDeps;
}

type Event = APIGatewayProxyEventV2;
type Result = APIGatewayProxyStructuredResultV2;
type RouteHandler = (event: Event) => Promise<Result>;

/**
 * The HTTP API as a function of an API Gateway (payload v2) event: routing, authentication,
 * body parsing and the problem-JSON error contract. Business rules live in the domain; this
 * module only translates HTTP to calls and results to HTTP.
 */
export function createApi(deps: ApiDeps): (event: Event) => Promise<Result> {
  const routes = new Map<string, RouteHandler>(
    Object.entries({
      [Route.health]: async () => json(200, { status: 'ok' }),
      [Route.openapi]: async (): Promise<Result> => ({
        statusCode: 200,
        headers: OPENAPI_HEADERS,
        body: await openapi(),
      }),
      [Route.sendMessage]: async (event) => {
        const key = await authenticate(deps, event, 'send');
        const body = jsonBody(event);
        return reply(
          await once(deps, event, key, body, async () => {
            if (isRawSendRequest(body)) {
              const streams: Lane[] = [];
              const accepted = await acceptRawMessage(deps, key, body, (stream) => streams.push(stream));
              countAccepted(streams);
              return { status: 202, body: accepted };
            }
            const accepted = await acceptMessage(deps, key, body);
            countAccepted([streamOf(body)]);
            return { status: 202, body: accepted };
          }),
        );
      },
      [Route.sendBatch]: async (event) => {
        const key = await authenticate(deps, event, 'send');
        const body = jsonBody(event);
        const messages = batchMessages(body);
        return reply(
          await once(deps, event, key, body, async (kept) => {
            // A repeat of a 207 that was kept in part: only its 429 and 5xx messages run again.
            const previous = (kept?.body as { results?: BatchResult[] } | undefined)?.results;
            const streams: Lane[] = [];
            const results = await acceptBatch(deps, key, messages, previous, (_, stream) =>
              streams.push(stream),
            );
            countAccepted(streams);
            const limited = results.some((r) => 'error' in r && r.error.code === 'rate_limited');
            return {
              status: 207,
              body: { results },
              partial: !results.every(isFinal),
              ...(limited
                ? { headers: { 'retry-after': String(secondsUntilNextUtcDay(deps.clock())) } }
                : {}),
            };
          }),
        );
      },
      [Route.getMessage]: async (event) => {
        const key = await authenticate(deps, event, 'read');
        const id = pathParam(event, 'id');
        // Not even shaped like an id (and maybe past DynamoDB's key length): it cannot exist.
        if (!MESSAGE_ID.test(id)) fail('not_found', 'No message with this id.');
        const record = await deps.messages.get(id);
        // Another tenant's message is indistinguishable from one that does not exist.
        if (!record || record.tenant !== key.tenant) fail('not_found', `No message with id ${id}.`);
        return json(200, toMessageView(record, deps.clock()));
      },
      // Suppressions are scoped (domain/suppression/suppression.ts): a key reads, lists and writes the global
      // entries and its own tenant's, never another tenant's.
      [Route.getSuppression]: async (event) => {
        const key = await authenticate(deps, event, 'read', 'suppressions');
        const address = addressParam(event);
        const s = await deps.suppressions.get(address, key.tenant);
        if (!s || !isActive(s, deps.clock()))
          fail('not_found', 'This address is not on the suppression list.');
        return json(200, toSuppressionView(s));
      },
      [Route.putSuppression]: async (event) => {
        const key = await authenticate(deps, event, 'suppressions');
        const address = addressParam(event);
        const now = deps.clock();
        const s = manualSuppression(address, jsonBody(event), now, key.tenant);
        const existing = await deps.suppressions.get(address, key.tenant);
        if (outranks(existing, s, now)) return json(200, toSuppressionView(existing));
        await deps.suppressions.put(s);
        await publishEvents(deps.webhooks, [
          suppressionWebhookEvent('suppression.created', s, key.tenant, now),
        ]);
        return json(200, toSuppressionView(s));
      },
      [Route.deleteSuppression]: async (event) => {
        const key = await authenticate(deps, event, 'suppressions', 'admin');
        const address = addressParam(event);
        const [own, global] = await Promise.all([
          deps.suppressions.get(address, key.tenant),
          deps.suppressions.get(address),
        ]);
        const now = deps.clock();
        const globalStands = global !== undefined && isActive(global, now);
        if (!key.scopes.includes('admin')) {
          // Refused before anything is deleted: a refused request changes nothing.
          if (globalStands) {
            fail(
              'forbidden',
              `This address is suppressed for every tenant (${global.reason}: ${REASON_WORDS[global.reason]}), ` +
                'so only an operator can lift it: a key with the "admin" scope.',
            );
          }
          // SES's evidence about the tenant's own mail to an address it erased is kept on its
          // tombstone (domain/erasure/erasure.ts): lifting the erasure would lift that bounce or complaint,
          // which only an operator may.
          if (own?.tenant !== undefined && isActive(own, now) && GLOBAL_REASONS.includes(own.reason)) {
            fail(
              'forbidden',
              `SES reported about your mail to this address (${own.reason}: ${REASON_WORDS[own.reason]}), ` +
                'so only an operator can lift its suppression: a key with the "admin" scope.',
            );
          }
        }
        // The caller's own entry and erasure tombstone.
        await deps.suppressions.delete(address, key.tenant);
        // Only the tenant's own entry is its event (an erased address as its pseudonym); a lifted
        // global entry is an operator's act, not one tenant's.
        if (own?.tenant !== undefined) {
          const lifted = { ...own, address: own.erasedAs ?? own.address };
          await publishEvents(deps.webhooks, [
            suppressionWebhookEvent('suppression.deleted', lifted, key.tenant, now),
          ]);
        }
        if (globalStands) {
          await deps.suppressions.delete(address);
          logger.info('global suppression lifted', {
            reason: global.reason,
            tenant: key.tenant,
            keyId: key.keyId,
          });
        }
        return { statusCode: 204, headers: {}, body: '' };
      },
      [Route.listSuppressions]: async (event) => {
        const key = await authenticate(deps, event, 'read', 'suppressions');
        const { limit, cursor } = suppressionListQuery(event.queryStringParameters ?? {});
        let page: Awaited<ReturnType<SuppressionStore['list']>>;
        try {
          page = await deps.suppressions.list(limit, cursor, key.tenant);
        } catch (error) {
          if (!(error instanceof InvalidCursorError)) throw error;
          fail('invalid_request', 'The cursor is not one this API handed out.', [
            { path: 'cursor', message: 'use the nextCursor of a previous page' },
          ]);
        }
        return json(200, { items: page.items.map(toSuppressionView), nextCursor: page.nextCursor });
      },
      [Route.stats]: async (event) => {
        const key = await authenticate(deps, event, 'read');
        const range = statsRange(event.queryStringParameters ?? {}, deps.clock());
        // Only the key's tenant: the tenant is part of every item key read.
        const found = await deps.usage.getStats(key.tenant, range.days);
        return json(200, statsView(range, found));
      },
      [Route.eraseRecipient]: async (event) => {
        const key = await authenticate(deps, event, 'suppressions');
        const address = addressParam(event);
        if (!deps.erasure) fail('not_implemented', 'Recipient erasure is not configured in this deployment.');
        const outcome = await eraseRecipient(deps.erasure, key.tenant, address, ERASURE_BUDGET_MS);
        recordErasure(outcome);
        return json(202, erasureBody(outcome));
      },
      [Route.reputation]: async (event) => {
        const key = await authenticate(deps, event, 'read');
        // Only the key's own tenant: the tenant comes from the key, never from the request.
        return json(200, await deps.guard.reputation(key.tenant));
      },
      // The operator's routes: the admin scope only, never send or read, so a stolen tenant key
      // cannot release its own mail or lift the guard's hold on it.
      [Route.guardHeld]: async (event) => {
        const key = await authenticate(deps, event, 'admin');
        const query = heldQuery(event.queryStringParameters ?? {});
        const ops = operationsOf(deps);
        let page: Awaited<ReturnType<typeof listHeld>>;
        try {
          page = await listHeld(ops, query.tenant, query);
        } catch (error) {
          if (!(error instanceof InvalidCursorError)) throw error;
          fail('invalid_request', 'The cursor is not one this API handed out.', [
            { path: 'cursor', message: 'use the nextCursor of a previous page' },
          ]);
        }
        logOperator('guard held listed', key, { tenant: query.tenant, count: page.entries.length });
        return json(200, { tenant: query.tenant, items: page.entries, nextCursor: page.cursor ?? null });
      },
      [Route.guardRelease]: async (event) => {
        const key = await authenticate(deps, event, 'admin');
        const request = heldRequest(jsonBody(event));
        const result = await releaseHeld(
          operationsOf(deps),
          request.tenant,
          request.selection,
          request.reason,
          releasePacing(deps),
        );
        logOperator('guard release', key, { tenant: request.tenant, ...result.counts });
        return json(200, heldAnswer(request.tenant, result));
      },
      [Route.guardCancel]: async (event) => {
        const key = await authenticate(deps, event, 'admin');
        const request = heldRequest(jsonBody(event));
        const result = await cancelHeld(
          operationsOf(deps),
          request.tenant,
          request.selection,
          request.reason,
          {
            maxEntries: MAX_HELD_PER_REQUEST,
            deadline: deps.clock().getTime() + RELEASE_BUDGET_MS,
          },
        );
        logOperator('guard cancel', key, { tenant: request.tenant, ...result.counts });
        return json(200, heldAnswer(request.tenant, result));
      },
      [Route.guardResume]: async (event) => {
        const key = await authenticate(deps, event, 'admin');
        const request = resumeRequest(jsonBody(event));
        let state: Awaited<ReturnType<typeof resumeGuard>>;
        try {
          state = await resumeGuard({ guard: deps.guard }, request.target, request.reason);
        } catch (error) {
          if (error instanceof ApiKeyNotFoundError)
            fail('not_found', `No API key has the id ${error.keyId}.`);
          // The guard's own check of the reason, should it refuse one the request's check let by.
          if (error instanceof GuardResumeReasonError) {
            fail('invalid_request', 'The request is not valid; see errors for each failing field.', [
              { path: 'reason', message: error.message },
            ]);
          }
          if (error instanceof ApiKeyRevokedError) {
            fail(
              'invalid_request',
              `Key ${error.keyId} is revoked, which is permanent: create a new key instead.`,
              [{ path: 'keyId', message: 'is revoked' }],
            );
          }
          throw error;
        }
        logOperator('guard resume', key, { ...request.target });
        return json(200, { target: request.target, state });
      },
      // Webhook endpoints (issue 14): the key's tenant only; the domain answers 404 for another's.
      [Route.createWebhook]: async (event) => {
        const key = await authenticate(deps, event, 'webhooks');
        const ops = webhooksOf(deps);
        const created = await registerEndpoint(ops, key.tenant, createWebhookRequest(jsonBody(event)));
        logWebhook('webhook endpoint registered', key, created.id);
        // The secret is in this answer and no other (until a rotation): nothing on the way may keep it.
        return json(201, created, NO_STORE);
      },
      [Route.listWebhooks]: async (event) => {
        const key = await authenticate(deps, event, 'webhooks');
        return json(200, { items: await listEndpoints(webhooksOf(deps), key.tenant) });
      },
      [Route.getWebhook]: async (event) => {
        const key = await authenticate(deps, event, 'webhooks');
        return json(200, await getEndpoint(webhooksOf(deps), key.tenant, pathParam(event, 'id')));
      },
      [Route.updateWebhook]: async (event) => {
        const key = await authenticate(deps, event, 'webhooks');
        const ops = webhooksOf(deps);
        const id = pathParam(event, 'id');
        const updated = await updateEndpoint(ops, key.tenant, id, updateWebhookRequest(jsonBody(event)));
        logWebhook('webhook endpoint updated', key, updated.id);
        return json(200, updated);
      },
      [Route.deleteWebhook]: async (event) => {
        const key = await authenticate(deps, event, 'webhooks');
        const id = pathParam(event, 'id');
        await deleteEndpoint(webhooksOf(deps), key.tenant, id);
        logWebhook('webhook endpoint deleted', key, id);
        return { statusCode: 204, headers: {}, body: '' };
      },
      [Route.rotateWebhookSecret]: async (event) => {
        const key = await authenticate(deps, event, 'webhooks');
        const rotated = await rotateSecret(webhooksOf(deps), key.tenant, pathParam(event, 'id'));
        logWebhook('webhook secret rotated', key, rotated.id);
        return json(200, rotated, NO_STORE);
      },
      [Route.webhookDeliveries]: async (event) => {
        const key = await authenticate(deps, event, 'webhooks');
        const ops = webhooksOf(deps);
        const query = deliveriesQuery(event.queryStringParameters ?? {});
        return json(200, await listDeliveries(ops, key.tenant, pathParam(event, 'id'), query));
      },
      [Route.replayWebhook]: async (event) => {
        const key = await authenticate(deps, event, 'webhooks');
        const ops = webhooksOf(deps);
        const id = pathParam(event, 'id');
        const outcome = await replayEvents(ops, key.tenant, id, replayRequest(jsonBody(event)));
        logWebhook('webhook events replayed', key, id, { replayed: outcome.replayed });
        return json(202, outcome);
      },
    }),
  );

  return async (event) => {
    const started = Date.now();
    let result: Result;
    try {
      const handler = routes.get(event.routeKey);
      if (!handler) fail('not_found', `No route for ${event.requestContext.http.method} ${event.rawPath}.`);
      result = await handler(event);
    } catch (error) {
      result = errorResult(error);
    }
    const taken = rateTaken.get(event);
    // 503 only (a dependency was unavailable): a 500 is a fault a client could trigger at will,
    // and giving its token back would let it past the limit.
    if (taken !== undefined && result.statusCode === 503) {
      deps.rateLimiter.giveBack(taken.keyId, taken.rate);
    }
    logger.info('request', {
      route: event.routeKey,
      status: result.statusCode,
      ms: Date.now() - started,
    });
    return result;
  };
}

/** Runs a send once per Idempotency-Key (when the client gives one). */
function once(
  deps: ApiDeps,
  event: Event,
  key: ApiKey,
  body: unknown,
  run: (previous?: KeptReply) => Promise<Reply>,
): Promise<Reply> {
  const idempotencyKey = header(event, 'idempotency-key');
  if (idempotencyKey === undefined) return run();
  checkIdempotencyKey(idempotencyKey);
  return idempotent(
    {
      store: deps.idempotency,
      clock: deps.clock,
      onKeepFailed: (error) => logger.warn('idempotent reply not kept for replay', describeError(error)),
    },
    { tenant: key.tenant, route: event.routeKey, key: idempotencyKey, body },
    run,
  );
}

function reply(r: Reply): Result {
  const headers: Record<string, string> = {
    ...r.headers,
    ...(r.replayed ? { 'idempotent-replayed': 'true' } : {}),
  };
  if (r.status >= 400) return problemResult(r.body as Problem, headers);
  return json(r.status, r.body, headers);
}

/** The lane of a body that was accepted (so already validated). */
function streamOf(body: unknown): string {
  const stream = (body as { stream?: unknown } | undefined)?.stream;
  return typeof stream === 'string' ? stream : 'transactional';
}

/** One EMF datum per stream and request, not per message: metrics are billed per line. */
function countAccepted(streams: readonly string[]): void {
  const byStream = new Map<string, number>();
  for (const s of streams) byStream.set(s, (byStream.get(s) ?? 0) + 1);
  for (const [stream, count] of byStream) {
    const single = metrics.singleMetric();
    single.addDimension('stream', stream);
    single.addMetric('messagesAccepted', MetricUnit.Count, count);
  }
}

/**
 * The rate token each request took, by its event: a request answered 503 gives it back (the quota
 * is given back in the domain), so the retry the answer advises is not refused for it.
 */
const rateTaken = new WeakMap<Event, { readonly keyId: string; readonly rate: number }>();

async function authenticate(deps: ApiDeps, event: Event, ...anyOf: Scope[]): Promise<ApiKey> {
  const token = bearerToken(header(event, 'authorization'));
  // The caller's IP comes from API Gateway's request context, never from a client header.
  const key = await verifyToken(deps.keys, token, event.requestContext.http.sourceIp, anyOf);
  // Only the send routes ask for the send scope: a key the abuse guard throttles is refused before
  // the request does any work (or takes a rate token), and may still read its messages.
  if (anyOf.includes('send')) admitSending(key, deps.clock());
  if (key.rateLimit !== undefined) {
    const taken = deps.rateLimiter.take(key.keyId, key.rateLimit);
    if (taken.ok) rateTaken.set(event, { keyId: key.keyId, rate: key.rateLimit });
    else {
      throw new ProblemError(
        problem('rate_limited', `This API key may make ${key.rateLimit} requests per second.`),
        { 'retry-after': String(taken.retryAfterSeconds) },
      );
    }
  }
  return key;
}

function header(event: Event, name: string): string | undefined {
  const headers = event.headers ?? {};
  const found = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return found === undefined ? undefined : headers[found];
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;

function jsonBody(event: Event): unknown {
  const contentType = header(event, 'content-type');
  if (contentType !== undefined && !JSON_TYPE.test(contentType.trim())) {
    fail(
      'unsupported_media_type',
      `Send JSON with Content-Type: application/json (got "${contentType.slice(0, 100)}").`,
    );
  }
  const raw = event.isBase64Encoded
    ? Buffer.from(event.body ?? '', 'base64').toString('utf8')
    : (event.body ?? '');
  if (Buffer.byteLength(raw) > MAX_REQUEST_BYTES) {
    fail('too_large', `The request is larger than ${MAX_REQUEST_BYTES / 1024 / 1024} MB.`);
  }
  if (raw.trim() === '') fail('malformed_json', 'The request body is empty; send a JSON object.');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    fail('malformed_json', `The request body is not valid JSON: ${(error as Error).message}`);
  }
  if (depthExceeds(value, MAX_JSON_DEPTH)) {
    fail('bad_request', `The JSON body is nested more than ${MAX_JSON_DEPTH} levels deep.`);
  }
  return value;
}

function pathParam(event: Event, name: string): string {
  const value = event.pathParameters?.[name];
  if (!value) fail('not_found', `Missing ${name} in the path.`);
  return safeDecode(value);
}

function addressParam(event: Event): string {
  const raw = pathParam(event, 'address');
  const address = normaliseAddress(raw);
  if (!address) {
    fail('invalid_request', 'The path does not hold a valid email address.', [
      { path: 'address', message: 'must be an email address like name@example.com' },
    ]);
  }
  return address;
}

/** Iterative, so a hostile nesting depth cannot overflow the stack while it is measured. */
function depthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const next = stack.pop();
    if (!next || typeof next.value !== 'object' || next.value === null) continue;
    if (next.depth >= limit) return true;
    for (const child of Object.values(next.value)) stack.push({ value: child, depth: next.depth + 1 });
  }
  return false;
}

/** Path parameters may arrive percent-encoded (`%40` for `@`) depending on the client. */
function safeDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * `{"erased": n}` once every record of the tenant has been checked; with `"complete": false` when
 * the scan ran out of time and the erasure worker carries on (the tombstone is in place already).
 */
function erasureBody(outcome: ErasureOutcome): { erased: number; complete?: false } {
  return outcome.complete ? { erased: outcome.erased } : { erased: outcome.erased, complete: false };
}

/** Logs the pseudonym's prefix, never the address. */
function recordErasure(outcome: ErasureOutcome): void {
  metrics.addMetric('recipientsErased', MetricUnit.Count, 1);
  if (outcome.erased > 0) metrics.addMetric('erasedRecords', MetricUnit.Count, outcome.erased);
  if (!outcome.complete) metrics.addMetric('erasuresContinued', MetricUnit.Count, 1);
  logger.info('recipient erased', {
    erasedKey: loggableKey(outcome.key),
    records: outcome.erased,
    complete: outcome.complete,
  });
}

function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): Result {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

function problemResult(p: Problem, headers: Record<string, string> = {}): Result {
  return {
    statusCode: p.status,
    headers: { 'content-type': 'application/problem+json', ...headers },
    body: JSON.stringify(p),
  };
}

function errorResult(error: unknown): Result {
  if (error instanceof ProblemError) return problemResult(error.problem, error.headers);
  // A dependency failed (throttling, an outage): not the client's fault, and worth a retry.
  logger.error('request failed', describeError(error));
  const transient = error instanceof TransientError;
  return transient
    ? problemResult(problem('unavailable', 'Baton is busy or a dependency is unavailable; retry shortly.'), {
        'retry-after': '1',
      })
    : problemResult(problem('internal', 'Baton failed to handle the request; it has been logged.'));
}

/**
 * How long a release enqueues within its request: the function stops at 10 s. What is left is
 * answered `deferred` (`complete: false`), and the next release carries on.
 */
export const RELEASE_BUDGET_MS = 6_500;

function operationsOf(deps: ApiDeps): GuardOperationsDeps {
  return {
    messages: deps.messages,
    held: deps.held,
    queue: deps.queue,
    keys: deps.keyTable ?? deps.keys,
    guard: deps.guard,
    clock: deps.clock,
    ...(deps.webhooks ? { webhooks: deps.webhooks } : {}),
  };
}

function releasePacing(deps: ApiDeps): ReleasePacing {
  return {
    ratePerSecond: deps.release?.ratePerSecond ?? {
      transactional: DEFAULT_RELEASE_RATE,
      broadcast: DEFAULT_RELEASE_RATE,
    },
    sleep: deps.release?.sleep ?? sleep,
    deadline: deps.clock().getTime() + RELEASE_BUDGET_MS,
    maxEntries: MAX_HELD_PER_REQUEST,
  };
}

/**
 * Held messages one release or cancel request takes on: its answer lists each (about 50 bytes),
 * and a tenant may hold hundreds of thousands, past Lambda's 6 MB answer; the rest is left for the
 * next request (`complete: false`).
 */
export const MAX_HELD_PER_REQUEST = 1_000;

/** A release's or cancel's answer: `complete` once nothing selected is left for another request. */
function heldAnswer(tenant: string, result: HeldResult) {
  const { more, ...rest } = result;
  return { tenant, ...rest, complete: result.counts.deferred === 0 && !more };
}

/** Every operator action is logged with who did it (the admin key's id); never an address. */
function logOperator(message: string, key: ApiKey, fields: Record<string, unknown>): void {
  logger.info(message, { operatorKeyId: key.keyId, operatorTenant: key.tenant, ...fields });
}

/** For answers that carry a webhook secret. */
const NO_STORE = { 'cache-control': 'no-store' };

function webhooksOf(deps: ApiDeps): WebhookOperationsDeps {
  if (!deps.webhookEndpoints) fail('not_implemented', 'Webhooks are not configured in this deployment.');
  const { erasure } = deps;
  return {
    ...deps.webhookEndpoints,
    clock: deps.clock,
    // A replay names an erased address by its pseudonym only (issue 14).
    ...(erasure === undefined
      ? {}
      : { erased: (tenant, bodies) => eraseFromWebhookBodies(erasure, tenant, bodies) }),
  };
}

/** Who changed which endpoint; never its URL (it may hold a token) nor a secret. */
function logWebhook(
  message: string,
  key: ApiKey,
  endpointId: string,
  fields: Record<string, unknown> = {},
): void {
  logger.info(message, { tenant: key.tenant, keyId: key.keyId, endpointId, ...fields });
}
