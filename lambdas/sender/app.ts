import { readFileSync } from 'node:fs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import type { SendJobPointer } from '../adapters/job-queue.ts';
import { addressKey, domainOf } from '../domain/address.ts';
import { backoffSeconds, PAUSED_DELAY_SECONDS } from '../domain/delivery/backoff.ts';
// Types only: mailauth's signer is imported when a key is configured (loadDkimSigner), never up front.
import type { DkimKey, DkimSigner } from '../domain/delivery/dkim.ts';
import { holdJob, senderHold } from '../domain/delivery/guard-hold.ts';
import { composeMime } from '../domain/delivery/mime.ts';
import { DEADLINE_RESERVE_MS, type Pacer, pacedMailer, recipientCount } from '../domain/delivery/pacer.ts';
import { giveUp, type SendDeps, sendJob } from '../domain/delivery/send.ts';
import type { SendJob } from '../domain/message.ts';
import type {
  ApiKeyReader,
  Clock,
  HeldJobs,
  Mailer,
  MessageStore,
  SuppressionStore,
} from '../domain/ports.ts';
import { type StatCounts, StatTally } from '../domain/reporting/stats.ts';
import { utcDay } from '../domain/send/rate-limit.ts';
import type { Suppression } from '../domain/suppression/suppression.ts';
import type { WebhookPublisher } from '../domain/webhooks/ports.ts';
import { WebhookBuffer } from '../domain/webhooks/produce.ts';
import {
  ConfigurationError,
  ConfirmationPendingError,
  OutOfTimeError,
  PermanentError,
  SendingPausedError,
  TransientError,
  UncertainSendError,
} from '../shared/errors.ts';
import { confirmationWindowSeconds, SES_EVENT_ALLOWANCE_SECONDS } from '../shared/event-path.ts';
import { EnvVar } from '../shared/names.ts';
import { describeError, logger, metrics } from '../shared/observability.ts';
import { Tally } from '../shared/tally.ts';

export interface SenderDeps {
  readonly messages: MessageStore;
  readonly suppressions: Pick<SuppressionStore, 'getMany'>;
  readonly mailer: Mailer;
  /**
   * The keys jobs were sent with, re-checked before each send (the abuse guard's state and the
   * key's status are on the key item): a CachedApiKeys, so a batch reads each key at most once
   * and a suspension or hold is seen within the cache's TTL.
   */
  readonly keys: ApiKeyReader;
  /** The same keys uncached: read only to confirm a hold the cached key asks for. */
  readonly keyTable?: ApiKeyReader;
  /** Where the jobs of held messages are kept until an operator releases or cancels them. */
  readonly held: HeldJobs;
  readonly visibility: { delay(record: SQSRecord, seconds: number): Promise<void> };
  /** Absent: messages go out as composed (deployed, SES Easy DKIM signs them). */
  readonly dkim?: DkimKey | undefined;
  /**
   * Signs with `dkim`. The handler passes the signer it loaded during init ({@link loadDkim}).
   * @default mailauth's, imported when the first message is signed ({@link loadDkimSigner})
   */
  readonly signDkim?: DkimSigner | undefined;
  readonly clock: Clock;
  readonly random?: () => number;
  /**
   * Where jobs too large for a queue message were stored (claim check). Absent, a pointer job
   * fails permanently.
   */
  readonly payloads?: PayloadReader | undefined;
  /**
   * The lane queue's maxReceiveCount. On that receive a message that still fails is recorded
   * failed (and redrivable) before SQS moves it to the DLQ. @default never (no DLQ known)
   */
  readonly maxReceiveCount?: number;
  /** @default {@link CLAIM_LEASE_MS} */
  readonly leaseMs?: number;
  /**
   * This instance's pace (its part of the lane's rate, by recipients): every SES send waits its turn,
   * and a record whose turn would come too late for the invocation's deadline is handed back
   * instead of taken. @default unpaced
   */
  readonly pacer?: Pacer;
  /** How long to wait for SES's evidence after an ambiguous answer. @default {@link CONFIRMATION_WINDOW_MS} */
  readonly confirmationWindowMs?: number;
  /**
   * Told the events of the batch's outcomes (message.sent, .failed, .suppressed, .held; issue 14)
   * once, when the batch is done ({@link createSender}'s `publishWebhooks`): never before or around
   * an SES call. Absent: nothing is published.
   */
  readonly webhooks?: WebhookPublisher;
}

/** A configured DKIM key and mailauth's signer, as {@link loadDkim} loads them. */
export interface DkimSigning {
  readonly key: DkimKey;
  readonly sign: DkimSigner;
}

/** Reads claim-checked jobs back (an `S3PayloadStore`). */
export interface PayloadReader {
  readonly bucket: string;
  /** Throws TransientError (retry the record) or PermanentError (the payload is gone). */
  get(key: string): Promise<Uint8Array>;
}

/**
 * A claim-checked job whose recipients were read (for the batch's suppression read) and whose body
 * was let go: it is read again when its turn comes, so a batch of large jobs (SMTP takes 25 MB
 * messages) holds one body at a time instead of ten.
 */
export const STORED = Symbol('stored job');

export interface PreparedBatch {
  readonly jobs: ReadonlyMap<string, SendJob | Error | typeof STORED>;
  /**
   * By tenant, then by normalised address: the global entries and the job's tenant's own (a
   * tenant's manual, unsubscribe or erasure entry blocks only that tenant's mail).
   */
  readonly suppressed: ReadonlyMap<string, ReadonlyMap<string, Suppression>>;
  /** Set when SES reported the account paused: the rest of the batch goes back untouched. */
  paused: boolean;
  /**
   * The batch's statistics (sent, suppressed, failed) by tenant and day; the handler flushes them
   * once the batch is done, one write per tenant and day.
   */
  readonly stats: StatTally;
  /** Outcomes by kind, for the batch's one summary log line. */
  readonly outcomes: Tally;
  /** The webhook events of the outcomes recorded, published once the batch is done. */
  readonly webhooks: WebhookBuffer;
  /** When the invocation ends (epoch ms by the sender's clock); absent, no deadline is kept. */
  readonly deadline?: number | undefined;
  /** Set when a record's turn came too late for the deadline: the rest of the batch goes back too. */
  outOfTime?: boolean;
  /**
   * The longest a record of this batch took beyond its pacing turn (claim, MIME, the SES call, the
   * status write), in ms: kept before the deadline, with the fixed reserve, for every record after it.
   */
  slowestSendMs?: number;
}

/** What `prepare` needs to know about the invocation. */
export interface BatchOptions {
  /** When the invocation ends (the Lambda context's remaining time from now). */
  readonly deadline?: Date | undefined;
}

/**
 * Longer than the sender's 30 s timeout, shorter than the lane queue's 180 s visibility timeout. A lane
 * whose pace needs a longer timeout sets its lease through BATON_CLAIM_LEASE_SECONDS (SenderLane).
 */
export const CLAIM_LEASE_MS = 120_000;

/**
 * The deployed event path's confirmation window when the stack sets none: a minute for SES to
 * publish, the feedback queue's 5 s batching window and 185 s visibility timeout (one redelivery).
 */
export const CONFIRMATION_WINDOW_MS =
  confirmationWindowSeconds({
    publishSeconds: SES_EVENT_ALLOWANCE_SECONDS,
    batchingWindowSeconds: 5,
    visibilitySeconds: 185,
  }) * 1000;

export function createSender(deps: SenderDeps) {
  // import() settles from the module cache after the first call.
  const signDkim: DkimSigner =
    deps.signDkim ?? (async (raw, key, domain) => (await loadDkimSigner())(raw, key, domain));
  const send: SendDeps = {
    messages: deps.messages,
    mailer: deps.pacer ? pacedMailer(deps.mailer, deps.pacer) : deps.mailer,
    clock: deps.clock,
    leaseMs: deps.leaseMs ?? CLAIM_LEASE_MS,
    confirmationWindowMs: deps.confirmationWindowMs ?? CONFIRMATION_WINDOW_MS,
    compose: async (message, id, date) => {
      const raw = await composeMime(message, { id, date });
      // d= is the From domain, so the signature aligns for DMARC; the key's public half must be
      // published at <selector>._domainkey.<domain> (local mode prints the record).
      return deps.dkim ? signDkim(raw, deps.dkim, domainOf(message.from.address)) : raw;
    },
  };

  /**
   * Baton will not send this message (its retries ran out, or its job can never be read): say so on
   * the message, with the last error, so the status API never shows `queued` for a message that sits
   * in the DLQ; and let SQS move it there now. `redrivable`: it was never sent and a DLQ redrive may
   * still send it.
   */
  const deadLetter = async (
    record: SQSRecord,
    id: string,
    error: Error,
    attempt: number,
    redrivable: boolean,
    batch: PreparedBatch,
  ): Promise<void> => {
    const reason = redrivable
      ? `Baton gave up after ${attempt} attempts: ${error.message}. The message is in the dead-letter queue; redriving it sends it.`
      : `Baton cannot send this message: ${error.message}.`;
    const recorded = await giveUp(deps.messages, id, reason, deps.clock(), redrivable, batch.webhooks);
    // A job that could not be read names no tenant we trust; the record written does.
    if (recorded) batch.stats.add(recorded.tenant, utcDay(deps.clock()), { failed: 1 });
    metrics.addMetric('messagesDeadLettered', MetricUnit.Count, 1);
    logger.error('message dead-lettered', {
      messageId: id,
      attempt,
      recorded: recorded !== undefined,
      ...describeError(error),
    });
    await deps.visibility.delay(record, 0);
  };

  /** Backs a record off exponentially (with jitter) instead of letting it come straight back. */
  const retryLater = async (record: SQSRecord, error: Error, ids: Record<string, string>): Promise<void> => {
    const attempt = Number(record.attributes.ApproximateReceiveCount) || 1;
    // Waiting for SES's evidence: come back when the confirmation window ends, not sooner.
    const seconds =
      error instanceof ConfirmationPendingError
        ? Math.ceil(error.retryAfterMs / 1000) + 1
        : backoffSeconds(attempt, deps.random);
    metrics.addMetric('sendRetries', MetricUnit.Count, 1);
    // SES's answer was lost (a 5xx, a reset, a timeout): how often Baton had to wait for evidence.
    if (error.cause instanceof UncertainSendError) metrics.addMetric('sesAnswersLost', MetricUnit.Count, 1);
    logger.warn('send will be retried', { ...ids, attempt, inSeconds: seconds, ...describeError(error) });
    await deps.visibility.delay(record, seconds);
  };

  /**
   * Holds the job's message when its key is suspended or its tenant's lane held (issue 13): the
   * job kept, the record held, the queue message acknowledged. True when held. A message that is
   * not queued any more is left to the usual path (its claim acknowledges a duplicate). A failure
   * of the key read, the keep or the record write sends the queue message back, like a failed send.
   */
  const holdIfGuarded = async (
    record: SQSRecord,
    job: SendJob,
    keyId: string,
    attempt: number,
    lastTry: boolean,
    batch: PreparedBatch,
  ): Promise<boolean> => {
    let held: Awaited<ReturnType<typeof holdJob>>;
    try {
      let cause = senderHold(await deps.keys.get(keyId), job.message.stream, deps.clock());
      // Holding is rare: confirm it on the table itself, so an operator's resume is seen at once,
      // not a key-cache TTL later (a release right after a resume would otherwise be held again).
      if (cause !== undefined && deps.keyTable !== undefined) {
        cause = senderHold(await deps.keyTable.get(keyId), job.message.stream, deps.clock());
      }
      if (cause === undefined) return false;
      held = await holdJob({ ...deps, webhooks: batch.webhooks }, job, cause);
    } catch (error) {
      const failed =
        error instanceof TransientError
          ? error
          : new TransientError('holding the message for the abuse guard failed', { cause: error });
      if (lastTry) await deadLetter(record, job.id, failed, attempt, true, batch);
      else await retryLater(record, failed, { messageId: job.id });
      throw failed;
    }
    if (held?.hold === undefined) return false;
    batch.outcomes.add('held');
    metrics.addMetric('GuardHeld', MetricUnit.Count, 1);
    logger.info('message held by the abuse guard', {
      messageId: job.id,
      keyId,
      action: held.hold.action,
      signal: held.hold.signal,
    });
    return true;
  };

  return {
    /**
     * Publishes the webhook events of the batch's recorded outcomes, in one go (one log write, a
     * SendMessageBatch per ten jobs): the handler's last step, after every record. Never throws.
     */
    async publishWebhooks(batch: PreparedBatch): Promise<void> {
      await batch.webhooks.flush(deps.webhooks);
    },

    /**
     * Parses every job, reads the claim-checked ones back from the payload store (in parallel),
     * and reads the suppression list once per tenant in the batch (in parallel; one tenant, one
     * read, in the usual batch) for all their recipients.
     */
    async prepare(records: readonly SQSRecord[], options: BatchOptions = {}): Promise<PreparedBatch> {
      const jobs = new Map<string, SendJob | Error | typeof STORED>();
      const tenants = new Map<string, string>();
      const keyIds = new Map<string, string>();
      const addresses = new Map<string, string[]>();
      // One after another: a claim-checked job may be tens of MB, and only its recipients are kept.
      for (const record of records) {
        const parsed = parseBody(record.body);
        const job = await loadParsedJob(parsed, deps.payloads);
        jobs.set(record.messageId, job instanceof Error || !isPointer(parsed) ? job : STORED);
        if (job instanceof Error) continue;
        tenants.set(record.messageId, job.tenant);
        if (job.keyId !== undefined) keyIds.set(record.messageId, job.keyId);
        const ofTenant = addresses.get(job.tenant) ?? [];
        for (const m of [...job.message.to, ...job.message.cc, ...job.message.bcc]) {
          ofTenant.push(addressKey(m.address));
        }
        addresses.set(job.tenant, ofTenant);
      }
      // One read per tenant in the batch (in parallel; one tenant, one read, in the usual batch). A
      // read that fails fails that tenant's records on their own (backed off, or recorded failed on
      // their last receive) rather than the whole invocation, which would bring them back with no
      // record written.
      // The guard's re-check reads each key of the batch once, alongside the suppression reads (the
      // cache keeps it for the records after).
      const distinctKeys = [...new Set(keyIds.values())];
      const keyReads = Promise.allSettled(distinctKeys.map((keyId) => deps.keys.get(keyId)));
      const reads = await Promise.allSettled(
        [...addresses].map(
          async ([tenant, list]) => [tenant, await deps.suppressions.getMany(list, tenant)] as const,
        ),
      );
      const suppressed = new Map<string, ReadonlyMap<string, Suppression>>();
      const unread = new Map<string, unknown>();
      [...addresses.keys()].forEach((tenant, i) => {
        const read = reads[i];
        if (read?.status === 'fulfilled') suppressed.set(tenant, read.value[1]);
        else unread.set(tenant, read?.reason);
      });
      for (const id of jobs.keys()) {
        const tenant = tenants.get(id);
        if (tenant === undefined || !unread.has(tenant)) continue;
        jobs.set(
          id,
          new TransientError('reading the suppression list failed', { cause: unread.get(tenant) }),
        );
      }
      // A key that cannot be read fails its own records, retried like a send.
      const keysRead = await keyReads;
      distinctKeys.forEach((keyId, i) => {
        const read = keysRead[i];
        if (read?.status !== 'rejected') return;
        for (const [id, ofJob] of keyIds) {
          if (ofJob === keyId && !(jobs.get(id) instanceof Error)) {
            jobs.set(id, new TransientError('reading the API key failed', { cause: read.reason }));
          }
        }
      });
      return {
        jobs,
        suppressed,
        paused: false,
        stats: new StatTally(),
        outcomes: new Tally(),
        webhooks: new WebhookBuffer(),
        deadline: options.deadline?.getTime(),
      };
    },

    /** One record; throws to report it failed (Powertools turns that into a batchItemFailure). */
    async sendRecord(record: SQSRecord, batch: PreparedBatch): Promise<void> {
      const prepared = batch.jobs.get(record.messageId);
      const job = prepared === STORED ? await loadJob(record.body, deps.payloads) : prepared;
      const attempt = Number(record.attributes.ApproximateReceiveCount) || 1;
      const lastTry = attempt >= (deps.maxReceiveCount ?? Number.POSITIVE_INFINITY);
      if (job === undefined || job instanceof Error) {
        const error = job ?? new PermanentError('send job missing from the prepared batch');
        const id = jobIdOf(record.body);
        if (error instanceof TransientError) {
          // The payload store failed for now (throttling, a 5xx): back off like a failed send.
          if (lastTry && id) await deadLetter(record, id, error, attempt, true, batch);
          else await retryLater(record, error, { sqsMessageId: record.messageId });
        } else {
          logger.error('unreadable send job', { sqsMessageId: record.messageId, ...describeError(error) });
          // It can never be sent (a payload that expired, a job that is not one): off to the DLQ.
          if (id) await deadLetter(record, id, error, attempt, false, batch);
        }
        throw error;
      }
      // Before anything that concerns SES (a paused account, the pace): a held message is not sent.
      if (job.keyId !== undefined && (await holdIfGuarded(record, job, job.keyId, attempt, lastTry, batch))) {
        return;
      }
      if (batch.paused) {
        const paused = new SendingPausedError('SES sending is paused; handed back');
        // Handed back like the others, unless this was its last receive: then it is recorded failed
        // (redrivable) before SQS moves it to the DLQ, as for any send that ran out of tries.
        if (lastTry) await deadLetter(record, job.id, paused, attempt, true, batch);
        else await deps.visibility.delay(record, PAUSED_DELAY_SECONDS);
        throw paused;
      }
      const startedAt = deps.clock().getTime();
      const { wait, fits } = turn(job, batch, deps);
      if (!fits) {
        // Handed back untaken, before any of its time is spent: its turn would come after the deadline,
        // and a sender that timed out would return it (and every record after it) with no word.
        batch.outOfTime = true;
        const error = new OutOfTimeError(
          `the sender's pace leaves no time for this message before the invocation ends (next turn in ${Math.ceil(wait / 1000)} s)`,
        );
        metrics.addMetric('sendsHandedBack', MetricUnit.Count, 1);
        if (lastTry) await deadLetter(record, job.id, error, attempt, true, batch);
        else await deps.visibility.delay(record, Math.min(MAX_HAND_BACK_SECONDS, Math.ceil(wait / 1000)));
        throw error;
      }
      const count = (counts: StatCounts) => batch.stats.add(job.tenant, utcDay(deps.clock()), counts);
      let unbuildable = false;
      const counted: SendDeps = {
        ...send,
        webhooks: batch.webhooks,
        compose: async (message, id, date) => {
          try {
            return await send.compose(message, id, date);
          } catch (error) {
            unbuildable = true;
            throw error;
          }
        },
        // Counted the moment SES takes the message, per recipient (SES's unit), even if recording
        // it afterwards fails: it was sent.
        mailer: {
          send: async (mail) => {
            const answerBy = batch.deadline === undefined ? undefined : batch.deadline - ANSWER_RESERVE_MS;
            const sesMessageId = await send.mailer.send(
              answerBy === undefined ? mail : { ...mail, answerBy },
            );
            count({ sent: recipientCount(mail) });
            return sesMessageId;
          },
        },
      };
      try {
        const outcome = await sendJob(counted, job, batch.suppressed.get(job.tenant) ?? new Map()).finally(
          () => {
            // What the record took beyond its turn: a slow SES call or store is slow for the next one too.
            const took = deps.clock().getTime() - startedAt - wait;
            batch.slowestSendMs = Math.max(batch.slowestSendMs ?? 0, took);
          },
        );
        if (outcome === 'suppressed') count({ suppressed: 1 });
        if (outcome === 'failed') count({ failed: 1 });
        metrics.addMetric(outcomeMetric[outcome], MetricUnit.Count, 1);
        if (outcome === 'sent') {
          // Accepted → sent: the queue's SentTimestamp is when the api enqueued the message.
          const queuedAt = Number(record.attributes.SentTimestamp);
          if (queuedAt > 0) {
            metrics.addMetric('acceptedToSentMs', MetricUnit.Milliseconds, deps.clock().getTime() - queuedAt);
          }
        }
        batch.outcomes.add(outcome);
        logger.debug('message handled', { messageId: job.id, outcome, stream: job.message.stream });
      } catch (error) {
        if (error instanceof SendingPausedError) {
          // First: the rest of the batch must not reach SES, whatever happens to this record.
          batch.paused = true;
          metrics.addMetric('sendingPaused', MetricUnit.Count, 1);
          logger.error('SES sending paused; handing the batch back', { messageId: job.id });
        }
        // On its last receive anything but a permanent failure (which sendJob recorded) is recorded
        // failed now: SQS moves the message to the DLQ next, and its record must not say `queued`.
        if (lastTry && !(error instanceof PermanentError)) {
          const last = error instanceof Error ? error : new Error(String(error));
          await deadLetter(record, job.id, last, attempt, true, batch);
          throw error;
        }
        if (error instanceof SendingPausedError) {
          await deps.visibility.delay(record, PAUSED_DELAY_SECONDS);
        } else if (error instanceof TransientError) {
          await retryLater(record, error, { messageId: job.id });
        } else {
          // The message could not be built: sendJob recorded it failed (a later delivery of the job
          // finds it done), so it counts once.
          if (unbuildable) count({ failed: 1 });
          logger.error('send failed', { messageId: job.id, ...describeError(error) });
        }
        throw error;
      }
    },
  };
}

/**
 * What a SendEmail leaves of the invocation after SES's answer was due: time to record the outcome
 * (uncertain, when it was abandoned) and finish the batch before the Lambda timeout.
 */
export const ANSWER_RESERVE_MS = 3_000;

/** A handed-back record waits at most one message's pace, which the stack keeps under 900 s (laneSendPlans). */
const MAX_HAND_BACK_SECONDS = 900;

/**
 * How long from now the record's send would have to wait for its turn (0 unpaced), and whether that
 * turn plus the time a send takes (the reserve, or the batch's slowest send if longer) falls before the
 * batch's deadline (always, without one). Counted by the job's recipients: suppressed ones are
 * dropped later, so this errs on the safe side.
 */
function turn(
  job: SendJob,
  batch: PreparedBatch,
  deps: Pick<SenderDeps, 'pacer' | 'clock'>,
): { wait: number; fits: boolean } {
  const wait = deps.pacer?.delayFor(recipientCount(job.message)) ?? 0;
  if (batch.deadline === undefined) return { wait, fits: true };
  const reserve = Math.max(DEADLINE_RESERVE_MS, batch.slowestSendMs ?? 0);
  const fits = !batch.outOfTime && deps.clock().getTime() + wait + reserve <= batch.deadline;
  return { wait, fits };
}

const outcomeMetric = {
  sent: 'messagesSent',
  duplicate: 'duplicateDeliveries',
  suppressed: 'messagesSuppressed',
  failed: 'messagesFailed',
} as const;

function parseJob(body: string): SendJob | Error {
  return asJob(parseBody(body));
}

function asJob(parsed: unknown): SendJob | Error {
  return parsed instanceof Error || isSendJob(parsed) ? parsed : new PermanentError('not a Baton send job');
}

/**
 * The record's job: inline, or read back from the payload store when the queue carries a pointer
 * (see `SqsJobQueue`). Failures come back as values, one per record, so one bad record never
 * fails the batch.
 */
async function loadJob(body: string, payloads: PayloadReader | undefined): Promise<SendJob | Error> {
  return loadParsedJob(parseBody(body), payloads);
}

/** `loadJob` for a body already parsed (`parseBody`). */
async function loadParsedJob(parsed: unknown, payloads: PayloadReader | undefined): Promise<SendJob | Error> {
  if (parsed instanceof Error || !isPointer(parsed)) return asJob(parsed);
  const { id, payload } = parsed;
  if (payloads === undefined) {
    return new PermanentError(`send job ${id} is stored in a payload bucket, but none is configured`);
  }
  // Only the configured bucket is read: a pointer is data, and data does not choose what we read.
  if (payload.bucket !== payloads.bucket) {
    return new PermanentError(`send job ${id} points outside the payload bucket`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await payloads.get(payload.key);
  } catch (error) {
    return error instanceof TransientError || error instanceof PermanentError
      ? error
      : new TransientError(`reading send job ${id} failed`, { cause: error });
  }
  const job = parseJob(new TextDecoder().decode(bytes));
  if (job instanceof Error) return new PermanentError(`stored send job ${id}: ${job.message}`);
  if (job.id !== id || job.tenant !== parsed.tenant) {
    return new PermanentError(`stored send job ${id} belongs to another message`);
  }
  return job;
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return new PermanentError('send job is not JSON');
  }
}

function isSendJob(value: unknown): value is SendJob {
  const job = value as Partial<SendJob> | null;
  return job?.v === 1 && typeof job.id === 'string' && typeof job.message === 'object';
}

function isPointer(value: unknown): value is SendJobPointer {
  const p = value as Partial<SendJobPointer> | null;
  return (
    p?.v === 1 &&
    typeof p.id === 'string' &&
    typeof p.tenant === 'string' &&
    typeof p.payload === 'object' &&
    p.payload !== null &&
    typeof p.payload.bucket === 'string' &&
    typeof p.payload.key === 'string' &&
    !('message' in p)
  );
}

/**
 * The DKIM key configured (`BATON_DKIM_KEY_FILE`, `BATON_DKIM_SELECTOR`) and the signer for it,
 * loaded during init; absent = SES Easy DKIM only. The signer comes first so a bundle without it
 * fails naming the variable, whatever the file.
 */
export async function loadDkim(
  file: string | undefined,
  selector: string | undefined,
): Promise<DkimSigning | undefined> {
  if (!file) return undefined;
  const sign = await loadDkimSigner();
  const key = loadDkimKey(file, selector);
  return key && { key, sign };
}

/**
 * mailauth's signer (lambdas/domain/delivery/dkim.ts), imported only when a key is configured: deployed,
 * SES Easy DKIM signs and mailauth with its dependencies would be most of the sender's bundle.
 * The stack bundles the sender with `process.env.BATON_DKIM_SIGNER` defined as `"omitted"`
 * (SENDER_BUNDLE_DEFINE in lib/constructs/sender-lane.ts): esbuild then drops the branch with the
 * import, and the module with it. Run from source (local mode, tests) the variable is unset and the
 * signer loads. Without it a configured key is a configuration error, never mail sent unsigned.
 */
export async function loadDkimSigner(): Promise<DkimSigner> {
  if (process.env.BATON_DKIM_SIGNER !== 'omitted') {
    try {
      return (await import('../domain/delivery/dkim.ts')).signDkim;
    } catch (error) {
      throw new ConfigurationError(
        `${EnvVar.dkimKeyFile} is set, but the DKIM signer (mailauth) cannot be loaded`,
        { cause: error },
      );
    }
  }
  throw new ConfigurationError(
    `${EnvVar.dkimKeyFile} is set, but this sender was bundled without a DKIM signer (deployed, SES ` +
      `Easy DKIM signs): unset ${EnvVar.dkimKeyFile}`,
  );
}

/** A PEM private key from a file (local mode's development key, or your own); absent = SES Easy DKIM only. */
export function loadDkimKey(file: string | undefined, selector: string | undefined): DkimKey | undefined {
  if (!file) return undefined;
  try {
    return { selector: selector ?? 'baton', privateKey: readFileSync(file, 'utf8') };
  } catch (error) {
    throw new ConfigurationError(`cannot read the DKIM key file ${file}`, { cause: error });
  }
}

/** Baton's message id from a raw job or pointer body, when it has one (for a job that failed to load). */
function jobIdOf(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { id?: unknown } | null)?.id;
    return typeof id === 'string' && id !== '' ? id : undefined;
  } catch {
    return undefined;
  }
}
