/**
 * One delivery attempt of one webhook job (issue 14), pure over its ports: whether it may go now
 * (its time, the endpoint, the breaker, a concurrency slot), the signed POST, and what follows from
 * the answer (done, retried later as a new job, or the endpoint disabled). It answers what the
 * handler does with the queue message: acknowledge it, or hide it again for a while (not an attempt).
 */
import { ConflictError } from '../../shared/errors.ts';
import { admit, type BreakerState, closedBreaker, record } from './breaker.ts';
import type { EndpointStateStore, HttpPoster, PostResult } from './delivery-ports.ts';
import {
  type AttemptOutcome,
  activeSecrets,
  type DeliveryAttempt,
  subscribes,
  type WebhookDeliveryJob,
  type WebhookEndpoint,
} from './endpoint.ts';
import { endpointDisabledWebhookEvent } from './events.ts';
import type {
  WebhookDeliveryLog,
  WebhookDeliveryQueue,
  WebhookEndpointStore,
  WebhookPublisher,
} from './ports.ts';
import {
  type DeliveryOutcome,
  maxDelaySeconds,
  nextAttempt,
  outcomeOf,
  parseRetryAfter,
} from './schedule.ts';
import { signWebhook } from './signing.ts';

export const deliveryPolicy = {
  /** Deliveries in flight to one endpoint at most, so one slow endpoint cannot take every instance. */
  slots: 4,
  /**
   * How long a slot is held at most: past the function's 30 s timeout (the 15 s request timeout and
   * the writes around it), so only a crashed holder's slot is ever freed by its lease running out.
   */
  leaseSeconds: 45,
  /** When every slot is taken: come back after this many seconds, plus up to `slotsFullJitterSeconds`. */
  slotsFullSeconds: 2,
  slotsFullJitterSeconds: 4,
  /**
   * With `sleep` given, how long a job waits in place for a slot before it is deferred: a fast
   * endpoint's slots free within milliseconds, and a deferral costs seconds and a receive.
   */
  slotsFullWaitMs: 2_000,
  /** Conditional writes tried before giving up on a contended item (the message is then retried). */
  writeTries: 8,
  /** The first bytes of an answer kept in the deliveries log. */
  responseBytes: 1024,
} as const;

export interface DeliveryDeps {
  readonly endpoints: WebhookEndpointStore;
  readonly state: EndpointStateStore;
  readonly poster: HttpPoster;
  readonly log: WebhookDeliveryLog;
  readonly queue: WebhookDeliveryQueue;
  readonly publisher: WebhookPublisher;
  readonly clock: () => Date;
  /** In [0, 1), like Math.random: the retry jitter and the slots-full wait. */
  readonly random: () => number;
  /** A unique id for each attempt's slot lease. */
  readonly leaseId: () => string;
  /** Waits in place for a slot (deliveryPolicy.slotsFullWaitMs); absent, a full endpoint defers at once. */
  readonly sleep?: (ms: number) => Promise<unknown>;
}

/** What became of an attempt that was made, for the handler's metrics. */
export interface AttemptReport {
  readonly outcome: AttemptOutcome;
  /** When the request was started. */
  readonly startedAt: Date;
  /** Baton disabled the endpoint after this attempt (410, or three days of failure). */
  readonly endpointDisabled: boolean;
}

/**
 * `done`: acknowledge the message (delivered, retried as a new job, given up, or nothing to do);
 * `deferSeconds`: hide it that long and see it again, no attempt made.
 */
export type DeliveryDecision =
  | {
      readonly done: true;
      /** Present when an attempt was made. */
      readonly attempt?: AttemptReport;
      /** Why no attempt was made, when none was: the handler logs it. */
      readonly dropped?: DropReason;
    }
  | { readonly deferSeconds: number };

/**
 * `no-endpoint`: deleted since the job was queued; `disabled`: disabled (by its owner or Baton);
 * `not-subscribed`: no longer subscribed to the event's type; `disable-finished`: Baton's own
 * disable, whose endpoint write had been lost, was finished instead.
 */
export type DropReason = 'no-endpoint' | 'disabled' | 'not-subscribed' | 'disable-finished';

/** The conditional writes kept conflicting: the message is retried as it is. */
export class DeliveryStateContendedError extends Error {
  override readonly name = 'DeliveryStateContendedError';
}

/** Makes (or defers) the job's next attempt. */
export async function deliverJob(job: WebhookDeliveryJob, deps: DeliveryDeps): Promise<DeliveryDecision> {
  const now = deps.clock();
  // A retry SQS could only delay 15 minutes of: wait out the rest hidden, without counting an attempt.
  if (job.notBefore > now.getTime()) return { deferSeconds: secondsUntil(job.notBefore, now) };

  const endpoint = await deps.endpoints.get(job.tenant, job.endpointId);
  // Deleted, disabled or no longer subscribed since the job was queued: the owner decided, nothing to record.
  if (endpoint === undefined) return { done: true, dropped: 'no-endpoint' };
  if (!endpoint.enabled) return { done: true, dropped: 'disabled' };
  if (!subscribes(endpoint, job.type)) return { done: true, dropped: 'not-subscribed' };

  // Signed before a slot is taken: a secret that cannot sign throws here, holding no slot.
  const headers = signWebhook({
    id: job.eventId,
    timestamp: now,
    body: job.body,
    secrets: activeSecrets(endpoint, now),
  });
  const lease = deps.leaseId();
  const taken = await acquire(deps, endpoint, lease, now);
  if ('repair' in taken) {
    // The breaker says Baton disabled the endpoint but the endpoint says enabled, and not because its
    // owner re-enabled it since: the endpoint's write was lost (a crash between the two). Finish it.
    await disableEndpoint(deps, endpoint, taken.repair.reason, new Date(taken.repair.disabledAt));
    return { done: true, dropped: 'disable-finished' };
  }
  if ('deferSeconds' in taken) return taken;

  const startedAt = deps.clock();
  const result = await post(deps.poster, { url: endpoint.url, body: job.body, headers });
  const answeredAt = deps.clock();
  const outcome = outcomeOf('status' in result ? result.status : 'network');
  const breaker = await release(deps, endpoint.id, lease, outcome, answeredAt);

  const attempt = job.attempt + 1;
  const entry = (attemptOutcome: AttemptOutcome, nextAttemptAt?: Date): DeliveryAttempt => ({
    tenant: job.tenant,
    endpointId: job.endpointId,
    eventId: job.eventId,
    type: job.type,
    attempt,
    at: startedAt.toISOString(),
    statusCode: 'status' in result ? result.status : null,
    latencyMs: result.latencyMs,
    response: responseText(result),
    outcome: attemptOutcome,
    ...(nextAttemptAt === undefined ? {} : { nextAttemptAt: nextAttemptAt.toISOString() }),
    ...(job.replay ? { replay: true } : {}),
  });
  const report = (attemptOutcome: AttemptOutcome, endpointDisabled = false): DeliveryDecision => ({
    done: true,
    attempt: { outcome: attemptOutcome, startedAt, endpointDisabled },
  });

  if (outcome === 'success') {
    await deps.log.record(entry('success'));
    return report('success');
  }
  if (breaker.status === 'disabled') {
    // 410 is the receiver retiring the endpoint; the breaker disables one that failed for three days.
    const attemptOutcome = outcome === 'disable' ? 'disabled' : 'gave-up';
    await deps.log.record(entry(attemptOutcome));
    const disabled = await disableEndpoint(deps, endpoint, breaker.reason, new Date(breaker.disabledAt));
    return report(attemptOutcome, disabled);
  }

  const retryAfterSeconds =
    outcome === 'retry-after' && 'status' in result
      ? parseRetryAfter(result.retryAfter, answeredAt)
      : undefined;
  const next = nextAttempt({
    attempt,
    firstAttemptAt: new Date(job.firstQueuedAt),
    now: answeredAt,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    random: deps.random,
  });
  if ('giveUp' in next) {
    await deps.log.record(entry('gave-up'));
    return report('gave-up');
  }
  const notBefore = answeredAt.getTime() + next.delaySeconds * 1000;
  // Logged before the retry is queued: if the log write fails the message comes back and the attempt
  // is made again (one more delivery of the same webhook-id), where the other order could queue two retries.
  await deps.log.record(entry('retry', new Date(notBefore)));
  await deps.queue.enqueue([{ ...job, attempt, notBefore }]);
  return report('retry');
}

type Acquired =
  | { readonly acquired: true }
  | { readonly deferSeconds: number }
  | { readonly repair: Disabled };
type Disabled = Extract<BreakerState, { status: 'disabled' }>;

/** The breaker's admission and a free slot, taken in one conditional write. */
async function acquire(
  deps: DeliveryDeps,
  endpoint: WebhookEndpoint,
  lease: string,
  now: Date,
): Promise<Acquired> {
  let waitedMs = 0;
  for (let i = 0; i < deliveryPolicy.writeTries; i++) {
    const { state, version } = await deps.state.read(endpoint.id);
    let breaker = state.breaker;
    if (breaker.status === 'disabled') {
      // Re-enabled by its owner after Baton disabled it: a fresh start, not three more days of failure.
      if (Date.parse(breaker.disabledAt) < Date.parse(endpoint.updatedAt)) breaker = closedBreaker;
      else return { repair: breaker };
    }
    const admission = admit(breaker, now);
    if (!admission.admitted) {
      const at = admission.retryAt === undefined ? now.getTime() + 60_000 : Date.parse(admission.retryAt);
      return { deferSeconds: secondsUntil(at, now) };
    }
    const leases = liveLeases(state.leases, now);
    if (Object.keys(leases).length >= deliveryPolicy.slots) {
      if (deps.sleep !== undefined && waitedMs < deliveryPolicy.slotsFullWaitMs) {
        const pause = 50 + Math.floor(deps.random() * 150);
        await deps.sleep(pause);
        waitedMs += pause;
        // Waiting is not a lost race: it does not use up a conditional-write try.
        i--;
        continue;
      }
      return {
        deferSeconds:
          deliveryPolicy.slotsFullSeconds +
          Math.floor(deps.random() * (deliveryPolicy.slotsFullJitterSeconds + 1)),
      };
    }
    leases[lease] = now.getTime() + deliveryPolicy.leaseSeconds * 1000;
    if (await deps.state.write(endpoint.id, { breaker: admission.state, leases }, version))
      return { acquired: true };
    await backOff(deps);
  }
  // A burst for one endpoint races on its state item. Nothing was sent yet: come back in a moment
  // (failing the message would leave it hidden for the queue's whole visibility timeout).
  return {
    deferSeconds:
      deliveryPolicy.slotsFullSeconds +
      Math.floor(deps.random() * (deliveryPolicy.slotsFullJitterSeconds + 1)),
  };
}

/** A short random pause after a lost conditional write, so racing writers spread out (with `sleep`). */
async function backOff(deps: DeliveryDeps): Promise<void> {
  await deps.sleep?.(10 + Math.floor(deps.random() * 40));
}

/** The slot given back and the outcome recorded into the breaker, in one conditional write. */
async function release(
  deps: DeliveryDeps,
  endpointId: string,
  lease: string,
  outcome: DeliveryOutcome,
  now: Date,
): Promise<BreakerState> {
  // The attempt was made: its outcome is worth more tries than a slot not yet taken.
  for (let i = 0; i < deliveryPolicy.writeTries * 3; i++) {
    const { state, version } = await deps.state.read(endpointId);
    const leases = liveLeases(state.leases, now);
    delete leases[lease];
    // A re-enabled endpoint's stale 'disabled' breaker was replaced at acquire; one still here is current.
    const breaker = record(state.breaker, outcome, now);
    if (await deps.state.write(endpointId, { breaker, leases }, version)) return breaker;
    await backOff(deps);
  }
  throw new DeliveryStateContendedError(
    `endpoint ${endpointId}'s delivery state kept changing while giving back a slot`,
  );
}

/**
 * Disables the endpoint (version-checked, re-read on a conflict) and tells the tenant's other
 * endpoints. The event's time is the breaker's `disabledAt`, so a repeat after a crash carries the
 * same event id. False when it was already disabled (or deleted): someone else decided, nothing to tell.
 */
async function disableEndpoint(
  deps: DeliveryDeps,
  seen: WebhookEndpoint,
  reason: 'gone' | 'failing',
  at: Date,
): Promise<boolean> {
  let endpoint: WebhookEndpoint | undefined = seen;
  for (let i = 0; i < deliveryPolicy.writeTries; i++) {
    if (endpoint === undefined || !endpoint.enabled) return false;
    try {
      await deps.endpoints.update(
        {
          ...endpoint,
          enabled: false,
          disabledReason: reason,
          updatedAt: deps.clock().toISOString(),
          version: endpoint.version + 1,
        },
        endpoint.version,
      );
      await deps.publisher.publish([endpointDisabledWebhookEvent(endpoint.tenant, endpoint.id, reason, at)]);
      return true;
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      endpoint = await deps.endpoints.get(seen.tenant, seen.id);
    }
  }
  throw new DeliveryStateContendedError(`endpoint ${seen.id} kept changing while being disabled`);
}

function liveLeases(leases: Readonly<Record<string, number>>, now: Date): Record<string, number> {
  return Object.fromEntries(Object.entries(leases).filter(([, until]) => until > now.getTime()));
}

function secondsUntil(at: number, now: Date): number {
  return Math.min(Math.max(1, Math.ceil((at - now.getTime()) / 1000)), maxDelaySeconds);
}

async function post(poster: HttpPoster, request: Parameters<HttpPoster['post']>[0]): Promise<PostResult> {
  try {
    return await poster.post(request);
  } catch (error) {
    // The port promises not to throw; if it does, it is one more failed attempt, not a lost slot.
    return {
      error: 'network',
      detail: error instanceof Error ? error.message : 'unknown error',
      latencyMs: 0,
    };
  }
}

/** The answer's first bytes (whole characters only), or why there was no answer. */
function responseText(result: PostResult): string {
  if ('error' in result) return `${result.error}: ${result.detail}`.slice(0, deliveryPolicy.responseBytes);
  const bytes = Buffer.from(result.snippet, 'utf8');
  if (bytes.length <= deliveryPolicy.responseBytes) return result.snippet;
  return bytes
    .subarray(0, deliveryPolicy.responseBytes)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}
