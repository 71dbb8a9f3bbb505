/**
 * What the webhook routes do (issue 14): register, list, read, change, delete an endpoint, rotate
 * its secret, list its delivery attempts and replay events to it. Pure over the ports: the clock
 * and the random bytes are injected. Every call names the tenant (the key's), and an endpoint of
 * another tenant answers exactly as one that does not exist.
 */
import { randomBytes } from 'node:crypto';
import { ConflictError, InvalidCursorError, TransientError } from '../../shared/errors.ts';
import type { Clock } from '../ports.ts';
import { fail, ProblemError, problem } from '../problem.ts';
import {
  type DeliveryAttempt,
  SECRET_OVERLAP_SECONDS,
  type StoredWebhookEvent,
  WEBHOOK_ENDPOINT_ID,
  type WebhookDeliveryJob,
  type WebhookEndpoint,
  type WebhookSecret,
} from './endpoint.ts';
import type { WebhookEventType } from './events.ts';
import type {
  WebhookDeliveryLog,
  WebhookDeliveryQueue,
  WebhookEndpointStore,
  WebhookEventLog,
  WebhookReplayBudget,
} from './ports.ts';
import type {
  CreateWebhookRequest,
  DeliveriesQuery,
  ReplayRequest,
  UpdateWebhookRequest,
} from './requests.ts';
import { newWebhookSecret } from './signing.ts';
import { checkWebhookUrl } from './url-policy.ts';

/** A tenant's endpoints, disabled ones included: each costs a lookup per event, and few are needed. */
export const MAX_WEBHOOK_ENDPOINTS = 20;
/** Events one replay request enqueues; the answer says `truncated` (and where to go on) past it. */
export const MAX_REPLAY_EVENTS = 1_000;
/** Events one replay request reads from the log, matching or not, so a request ends in time. */
export const MAX_REPLAY_SCAN = 10_000;
/**
 * Events replays may queue to one endpoint per window. Each queued job costs Baton a receive (and
 * more while the endpoint's slots are full) whatever the receiver does, and each event read from
 * the log a read, so replays called in a loop must not queue or read without end: past the budget a
 * replay answers 429 until the window ends.
 */
export const REPLAY_BUDGET = { events: 10_000, windowSeconds: 3_600 } as const;
const REPLAY_WINDOW_MS = REPLAY_BUDGET.windowSeconds * 1000;
/**
 * Events a replay goes on reading past its limits to finish the instant it stopped in (see
 * replaySince); an instant holding more than this still stops a replay inside it.
 */
const MAX_REPLAY_INSTANT = 10_000;
/** Events a replay reads from the log that count as one queued against the budget. */
const REPLAY_READS_PER_EVENT = MAX_REPLAY_SCAN / MAX_REPLAY_EVENTS;
const REPLAY_PAGE = 500;
/** An update that keeps losing races is a busy endpoint: the caller retries later (503). */
const UPDATE_ATTEMPTS = 3;

/** What the api needs for the webhook routes; absent in ApiDeps, they answer 501. */
export interface WebhookAdminDeps {
  readonly store: WebhookEndpointStore & WebhookEventLog & WebhookDeliveryLog & WebhookReplayBudget;
  readonly queue: WebhookDeliveryQueue;
  /** Local mode only: http and https to 127.0.0.1, localhost and [::1] (checkWebhookUrl). */
  readonly allowLoopbackHttp: boolean;
  /** Random bytes for endpoint ids and secrets. @default crypto.randomBytes */
  readonly random?: (size: number) => Buffer;
}

export interface WebhookOperationsDeps extends WebhookAdminDeps {
  readonly clock: Clock;
  /**
   * The bodies as a replay may send them: an address the tenant erased since appears as its
   * pseudonym (the api wires erasure's eraseFromWebhookBodies). Absent: sent as logged.
   */
  readonly erased?: (tenant: string, bodies: readonly string[]) => Promise<readonly string[]>;
}

/** An endpoint as the api shows it: never a secret (but see WebhookEndpointWithSecret). */
export interface WebhookEndpointView {
  readonly id: string;
  readonly url: string;
  readonly events: readonly WebhookEventType[];
  readonly description: string;
  readonly enabled: boolean;
  readonly disabledReason: WebhookEndpoint['disabledReason'];
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Until when the secret before the last rotation still signs; null when none does. */
  readonly previousSecretExpiresAt: string | null;
}

/** The answer of registration and rotation: the new secret, shown this once. */
export interface WebhookEndpointWithSecret extends WebhookEndpointView {
  readonly secret: string;
}

/** One attempt as `GET /v1/webhooks/{id}/deliveries` lists it. */
export type DeliveryAttemptView = Omit<DeliveryAttempt, 'tenant'>;

export interface ReplayOutcome {
  readonly replayed: number;
  /** True when events were left over: replay again with `since: nextSince` for the rest. */
  readonly truncated: boolean;
  readonly nextSince?: string;
}

export function endpointView(endpoint: WebhookEndpoint, now: Date): WebhookEndpointView {
  const previous = endpoint.secrets.find(
    (s) => s.expiresAt !== undefined && Date.parse(s.expiresAt) > now.getTime(),
  );
  return {
    id: endpoint.id,
    url: endpoint.url,
    events: endpoint.events,
    description: endpoint.description,
    enabled: endpoint.enabled,
    disabledReason: endpoint.disabledReason,
    createdAt: endpoint.createdAt,
    updatedAt: endpoint.updatedAt,
    previousSecretExpiresAt: previous?.expiresAt ?? null,
  };
}

/** `POST /v1/webhooks`: checks the URL, stores the endpoint with a new secret, shows it once. */
export async function registerEndpoint(
  deps: WebhookOperationsDeps,
  tenant: string,
  request: CreateWebhookRequest,
): Promise<WebhookEndpointWithSecret> {
  const url = acceptedUrl(deps, request.url);
  const tooMany = (): never =>
    fail(
      'too_many_webhooks',
      `A tenant may register at most ${MAX_WEBHOOK_ENDPOINTS} webhook endpoints; delete one first ` +
        '(one endpoint can receive every event type).',
    );
  if ((await deps.store.list(tenant)).length >= MAX_WEBHOOK_ENDPOINTS) tooMany();
  const now = deps.clock().toISOString();
  const secret = newWebhookSecret(random(deps));
  const endpoint: WebhookEndpoint = {
    id: newEndpointId(random(deps)),
    tenant,
    url,
    events: request.events,
    description: request.description,
    enabled: true,
    disabledReason: null,
    secrets: [{ secret, createdAt: now }],
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
  await deps.store.create(endpoint);
  // Registrations racing each other all passed the count above: count again now that this one is
  // stored, and withdraw it if the tenant is past the cap. The last of the survivors to be stored
  // counted every other survivor, so at most MAX_WEBHOOK_ENDPOINTS remain (a race may refuse more
  // than strictly needed, never admit too many).
  let count: number;
  try {
    count = (await deps.store.list(tenant)).length;
  } catch (error) {
    // The caller is told it failed (and will retry): leave no endpoint it does not know of.
    await deps.store.delete(tenant, endpoint.id).catch(() => undefined);
    throw error;
  }
  if (count > MAX_WEBHOOK_ENDPOINTS) {
    await deps.store.delete(tenant, endpoint.id);
    tooMany();
  }
  return { ...endpointView(endpoint, deps.clock()), secret };
}

/** `GET /v1/webhooks`: the tenant's endpoints, oldest first. */
export async function listEndpoints(
  deps: WebhookOperationsDeps,
  tenant: string,
): Promise<WebhookEndpointView[]> {
  const now = deps.clock();
  return (await deps.store.list(tenant))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
    .map((e) => endpointView(e, now));
}

/** `GET /v1/webhooks/{id}`. */
export async function getEndpoint(
  deps: WebhookOperationsDeps,
  tenant: string,
  id: string,
): Promise<WebhookEndpointView> {
  return endpointView(await found(deps, tenant, id), deps.clock());
}

/**
 * `PATCH /v1/webhooks/{id}`: a new URL is checked again; enabling an endpoint Baton disabled (410,
 * or days of failure) clears the reason, and disabling one is the owner's choice (no reason).
 */
export async function updateEndpoint(
  deps: WebhookOperationsDeps,
  tenant: string,
  id: string,
  request: UpdateWebhookRequest,
): Promise<WebhookEndpointView> {
  const url = request.url === undefined ? undefined : acceptedUrl(deps, request.url);
  return endpointView(
    await rewrite(deps, tenant, id, (current, now) => ({
      ...current,
      ...(url === undefined ? {} : { url }),
      ...(request.events === undefined ? {} : { events: request.events }),
      ...(request.description === undefined ? {} : { description: request.description }),
      ...(request.enabled === undefined ? {} : { enabled: request.enabled, disabledReason: null }),
      updatedAt: now.toISOString(),
    })),
    deps.clock(),
  );
}

/** `DELETE /v1/webhooks/{id}`: its attempts expire with their TTL. */
export async function deleteEndpoint(deps: WebhookOperationsDeps, tenant: string, id: string): Promise<void> {
  if (!(await deps.store.delete(tenant, id))) notFound(id);
}

/**
 * `POST /v1/webhooks/{id}/rotate-secret`: a new current secret; the one it replaces keeps signing
 * for SECRET_OVERLAP_SECONDS (both signatures are sent meanwhile), any older one is dropped.
 */
export async function rotateSecret(
  deps: WebhookOperationsDeps,
  tenant: string,
  id: string,
): Promise<WebhookEndpointWithSecret> {
  const secret = newWebhookSecret(random(deps));
  const rotated = await rewrite(deps, tenant, id, (current, now) => ({
    ...current,
    secrets: rotatedSecrets(current.secrets, secret, now),
    updatedAt: now.toISOString(),
  }));
  return { ...endpointView(rotated, deps.clock()), secret };
}

/** The secrets after a rotation at `now`: the new one, then the current one until the overlap ends. */
export function rotatedSecrets(
  secrets: readonly WebhookSecret[],
  secret: string,
  now: Date,
): WebhookSecret[] {
  const overlapEnd = new Date(now.getTime() + SECRET_OVERLAP_SECONDS * 1000).toISOString();
  const current = secrets.find((s) => s.expiresAt === undefined || Date.parse(s.expiresAt) > now.getTime());
  const kept: WebhookSecret[] = [{ secret, createdAt: now.toISOString() }];
  if (current !== undefined) {
    // A current secret rotated out twice within a day keeps its first (earlier) end.
    const expiresAt =
      current.expiresAt !== undefined && current.expiresAt < overlapEnd ? current.expiresAt : overlapEnd;
    kept.push({ secret: current.secret, createdAt: current.createdAt, expiresAt });
  }
  return kept;
}

/** `GET /v1/webhooks/{id}/deliveries`: the endpoint's attempts, newest first. */
export async function listDeliveries(
  deps: WebhookOperationsDeps,
  tenant: string,
  id: string,
  query: DeliveriesQuery,
): Promise<{ readonly items: DeliveryAttemptView[]; readonly nextCursor: string | null }> {
  await found(deps, tenant, id);
  let page: Awaited<ReturnType<WebhookDeliveryLog['attempts']>>;
  try {
    page = await deps.store.attempts(tenant, id, {
      limit: query.limit,
      ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
    });
  } catch (error) {
    if (!(error instanceof InvalidCursorError)) throw error;
    fail('invalid_request', 'The cursor is not one this API handed out.', [
      { path: 'cursor', message: 'use the nextCursor of a previous page' },
    ]);
  }
  return {
    items: page.attempts.map(({ tenant: _tenant, ...attempt }) => attempt),
    nextCursor: page.cursor ?? null,
  };
}

/**
 * `POST /v1/webhooks/{id}/replay`: queues the events again (one, or every event since a time of
 * the types the endpoint subscribes to, up to MAX_REPLAY_EVENTS), with the same id and the same
 * bytes as the first time, so receivers that keep ids drop what they had.
 */
export async function replayEvents(
  deps: WebhookOperationsDeps,
  tenant: string,
  id: string,
  request: ReplayRequest,
): Promise<ReplayOutcome> {
  const endpoint = await found(deps, tenant, id);
  if (!endpoint.enabled) {
    fail(
      'webhook_disabled',
      `Webhook endpoint ${id} is disabled${endpoint.disabledReason ? ` (${endpoint.disabledReason})` : ''}; ` +
        'enable it (PATCH {"enabled": true}) before replaying to it.',
    );
  }
  const now = deps.clock().getTime();
  // Same ids, and the same bytes unless an address was erased since (then its pseudonym).
  const erased = async (jobs: WebhookDeliveryJob[]): Promise<WebhookDeliveryJob[]> => {
    if (deps.erased === undefined || jobs.length === 0) return jobs;
    const bodies = await deps.erased(
      tenant,
      jobs.map((j) => j.body),
    );
    return jobs.map((j, i) => ({ ...j, body: bodies[i] ?? j.body }));
  };
  const job = (event: StoredWebhookEvent): WebhookDeliveryJob => ({
    v: 1,
    tenant,
    endpointId: endpoint.id,
    eventId: event.id,
    type: event.type,
    body: event.body,
    attempt: 0,
    firstQueuedAt: now,
    notBefore: now,
    occurredAt: Date.parse(event.timestamp),
    replay: true,
  });

  if ('eventId' in request) {
    const event = await deps.store.event(tenant, request.eventId);
    if (!event) fail('not_found', 'No event with this id (events are kept for 30 days).');
    if (!endpoint.events.includes(event.type)) {
      fail(
        'invalid_request',
        `The endpoint does not subscribe to ${event.type} events; add it to its events first.`,
        [{ path: 'eventId', message: `is a ${event.type} event` }],
      );
    }
    await reserveReplay(deps, endpoint.id, 1);
    await deps.queue.enqueue(await erased([job(event)]));
    return { replayed: 1, truncated: false };
  }

  const reserved = await reserveReplay(deps, endpoint.id, MAX_REPLAY_EVENTS);
  const progress = { replayed: 0, scanned: 0 };
  try {
    return await replaySince(
      deps,
      tenant,
      request.since,
      reserved,
      progress,
      (event) => (endpoint.events.includes(event.type) ? job(event) : undefined),
      erased,
    );
  } finally {
    // The call costs what it queued, or a tenth of what it read when more (reading the log costs
    // Baton too, sent or not: MAX_REPLAY_SCAN reads are worth MAX_REPLAY_EVENTS). The rest goes
    // back to the budget (best effort: a lost refund only makes the budget stricter).
    const cost = Math.max(progress.replayed, Math.ceil(progress.scanned / REPLAY_READS_PER_EVENT));
    // Finishing an instant can cost more than was reserved: that is counted too, past the limit.
    const extra = cost - reserved;
    if (extra !== 0) {
      await deps.store
        .takeReplay(endpoint.id, replayWindow(deps), extra, Number.MAX_SAFE_INTEGER)
        .catch(() => undefined);
    }
  }
}

/** Queues the events since `since` that `jobOf` makes a job of, up to `max` (and MAX_REPLAY_SCAN read). */
async function replaySince(
  deps: WebhookOperationsDeps,
  tenant: string,
  since: Date,
  max: number,
  progress: { replayed: number; scanned: number },
  jobOf: (event: StoredWebhookEvent) => WebhookDeliveryJob | undefined,
  /** The jobs as they may be sent (erased addresses as their pseudonyms). */
  sendable: (jobs: WebhookDeliveryJob[]) => Promise<WebhookDeliveryJob[]>,
): Promise<ReplayOutcome> {
  let cursor: string | undefined;
  // The time of the last event taken: a replay only stops between two instants, since the caller
  // goes on from `nextSince` (inclusive). Stopping inside an instant would send its first events
  // again and never reach the rest when one instant holds more than a replay takes (one accepted
  // batch gives an event per message and recipient, all at the same time).
  let lastAt: number | undefined;
  for (;;) {
    const page = await deps.store.since(tenant, since, {
      limit: REPLAY_PAGE,
      ...(cursor === undefined ? {} : { cursor }),
    });
    const jobs: WebhookDeliveryJob[] = [];
    let nextSince: string | undefined;
    for (const event of page.events) {
      const at = Date.parse(event.timestamp);
      const full = progress.replayed + jobs.length >= max || progress.scanned >= MAX_REPLAY_SCAN;
      if (full && (at !== lastAt || progress.scanned >= MAX_REPLAY_SCAN + MAX_REPLAY_INSTANT)) {
        nextSince = event.timestamp;
        break;
      }
      lastAt = at;
      progress.scanned += 1;
      const made = jobOf(event);
      if (made !== undefined) jobs.push(made);
    }
    if (jobs.length > 0) await deps.queue.enqueue(await sendable(jobs));
    progress.replayed += jobs.length;
    const { replayed } = progress;
    if (nextSince !== undefined) return { replayed, truncated: true, nextSince };
    if (page.cursor === undefined) return { replayed, truncated: false };
    cursor = page.cursor;
  }
}

/**
 * Takes up to `wanted` events from the endpoint's replay budget and answers how many were taken;
 * a 429 (with Retry-After) when none are left in this window.
 */
async function reserveReplay(deps: WebhookOperationsDeps, id: string, wanted: number): Promise<number> {
  const window = replayWindow(deps);
  const taken = await deps.store.takeReplay(id, window, wanted, REPLAY_BUDGET.events);
  if (taken <= 0) {
    const ends = window.getTime() + REPLAY_WINDOW_MS;
    throw new ProblemError(
      problem(
        'rate_limited',
        `Replays to webhook endpoint ${id} may queue at most ${REPLAY_BUDGET.events} events an hour; ` +
          `replay again after ${new Date(ends).toISOString()}.`,
      ),
      { 'retry-after': String(Math.max(1, Math.ceil((ends - deps.clock().getTime()) / 1000))) },
    );
  }
  return taken;
}

/** When the replay budget's current window began. */
function replayWindow(deps: WebhookOperationsDeps): Date {
  return new Date(Math.floor(deps.clock().getTime() / REPLAY_WINDOW_MS) * REPLAY_WINDOW_MS);
}

/** `wh_` and 24 base62 characters from unbiased random bytes. */
export function newEndpointId(random: (size: number) => Buffer = randomBytes): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let id = '';
  while (id.length < 24) {
    for (const byte of random(32)) {
      // 248 = 4 × 62: bytes above it are dropped so every character is equally likely.
      if (byte < 248 && id.length < 24) id += alphabet[byte % 62];
    }
  }
  const made = `wh_${id}`;
  if (!WEBHOOK_ENDPOINT_ID.test(made)) throw new Error('endpoint id does not match WEBHOOK_ENDPOINT_ID');
  return made;
}

function random(deps: WebhookAdminDeps): (size: number) => Buffer {
  return deps.random ?? randomBytes;
}

function acceptedUrl(deps: WebhookAdminDeps, raw: string): string {
  const checked = checkWebhookUrl(raw, { allowLoopbackHttp: deps.allowLoopbackHttp });
  if (!checked.ok) {
    fail('webhook_url_refused', `This URL cannot receive webhooks: ${checked.reason}.`, [
      { path: 'url', message: checked.reason },
    ]);
  }
  return checked.url;
}

async function found(deps: WebhookOperationsDeps, tenant: string, id: string): Promise<WebhookEndpoint> {
  const endpoint = await deps.store.get(tenant, id);
  // Another tenant's endpoint is indistinguishable from one that does not exist.
  if (!endpoint || endpoint.tenant !== tenant) notFound(id);
  return endpoint;
}

function notFound(id: string): never {
  fail(
    'not_found',
    WEBHOOK_ENDPOINT_ID.test(id) ? `No webhook endpoint with id ${id}.` : 'No webhook endpoint with this id.',
  );
}

/** Reads, changes and writes the endpoint, again on a lost race (the delivery function writes too). */
async function rewrite(
  deps: WebhookOperationsDeps,
  tenant: string,
  id: string,
  change: (current: WebhookEndpoint, now: Date) => Omit<WebhookEndpoint, 'version'>,
): Promise<WebhookEndpoint> {
  for (let attempt = 1; ; attempt++) {
    const current = await found(deps, tenant, id);
    const next: WebhookEndpoint = { ...change(current, deps.clock()), version: current.version + 1 };
    try {
      await deps.store.update(next, current.version);
      return next;
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      if (attempt >= UPDATE_ATTEMPTS) {
        throw new TransientError(`webhook endpoint ${id} kept changing while it was updated`, {
          cause: error,
        });
      }
    }
  }
}
