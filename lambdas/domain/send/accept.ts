import type { Lane } from '../../shared/names.ts';
import { addressKey, parseMailbox } from '../address.ts';
import { markGaveUp } from '../delivery/send.ts';
import type { GuardDecision } from '../guard/evaluate.ts';
import { heldEntry, markHeld } from '../guard/hold.ts';
import { holdFor } from '../guard/state.ts';
import type { ApiKey } from '../keys/api-key.ts';
import type {
  MessageRecord,
  OutgoingMessage,
  RecipientKind,
  RecipientState,
  SendJob,
  TimelineEvent,
} from '../message.ts';
import type {
  Clock,
  Guard,
  GuardRecipientTally,
  HeldJobs,
  JobQueue,
  MessageStore,
  StatCounts,
  SuppressionStore,
  UsageStore,
} from '../ports.ts';
import { fail, type Problem, ProblemError, problem } from '../problem.ts';
import {
  isActive,
  type Suppression,
  type SuppressionReason,
  suppressedReason,
} from '../suppression/suppression.ts';
import { rewrite } from '../versioned-write.ts';
import type { WebhookPublisher } from '../webhooks/ports.ts';
import { publishChanges } from '../webhooks/produce.ts';
import { isContentRefusal } from './content-refusal.ts';
import { retryMayChange } from './idempotency.ts';
import { secondsUntilNextUtcDay, utcDay } from './rate-limit.ts';
import { type RawRead, readRawMessage } from './raw.ts';
import { isRawSendRequest } from './raw-request.ts';
import { MAX_RECIPIENTS, validateSendRequest } from './send-request.ts';
import { applySenderPolicy, formatMailbox } from './sender-policy.ts';

/**
 * The largest send job Baton accepts, once encoded as JSON. A job larger than one SQS message
 * (1 MiB) is stored in the payload bucket and the queue carries a pointer (claim check), so the
 * bound is what the API can take: a request is at most 6 MiB (6,291,456 bytes), and its job is
 * about the size of its body; the rest is headroom for what normalising adds (a rewritten From,
 * sanitised HTML). Larger messages are refused with 413 rather than accepted and lost.
 */
export const MAX_JOB_BYTES = 6_500_000;

export interface AcceptDeps {
  readonly messages: Pick<MessageStore, 'create' | 'createMany' | 'update' | 'get'>;
  readonly suppressions: Pick<SuppressionStore, 'getMany'>;
  readonly queue: JobQueue;
  readonly usage: UsageStore;
  readonly clock: Clock;
  readonly newId: () => string;
  readonly retentionDays: number;
  /**
   * Where the jobs of messages the abuse guard holds at accept are kept (issue 13): a held
   * message is recorded and its job kept, never enqueued, until an operator releases it.
   */
  readonly held: Pick<HeldJobs, 'keep' | 'remove'>;
  /** The abuse guard, told what each request did to each recipient (its signals' counts). */
  readonly guard: Pick<Guard, 'recordAccept'>;
  /**
   * Told the events of each message recorded (message.queued, .suppressed, .held) once it is
   * written and queued (issue 14). Absent: nothing is published.
   */
  readonly webhooks?: WebhookPublisher;
  /**
   * How long a batch may spend reading raw messages (MIME parsing is CPU-bound and the api function
   * has a 10 s timeout on a fraction of a core), read on each batch. @default RAW_READ_BUDGET_MS
   */
  readonly rawReadBudgetMs?: () => number;
}

/** Half the api function's timeout: the rest of a batch (writes, enqueues) must still fit. */
export const RAW_READ_BUDGET_MS = 5_000;

export interface AcceptedRecipient {
  readonly address: string;
  /** `held`: accepted and kept by the abuse guard, not sent until an operator releases it. */
  readonly status: 'queued' | 'held' | 'suppressed';
  readonly reason?: SuppressionReason;
}

export interface AcceptResult {
  readonly id: string;
  readonly status: 'queued' | 'held' | 'suppressed';
  readonly recipients: readonly AcceptedRecipient[];
  readonly rewrittenFrom: string | null;
}

export type BatchResult =
  | ({ readonly index: number } & AcceptResult)
  | { readonly index: number; readonly error: Problem };

/** A message that passed validation and policy, ready to be recorded and queued. */
interface Checked {
  readonly message: OutgoingMessage;
  readonly job: SendJob;
  /** The recipients to look up on the suppression list and, unless suppressed, send to. */
  readonly candidates: readonly Candidate[];
  /** Recipients known suppressed already (refused at RCPT over SMTP): recorded so, never sent. */
  readonly knownSuppressed: readonly KnownSuppressed[];
}

export interface SubmissionOptions {
  /**
   * The largest job this entry accepts, once encoded as JSON (the API's is MAX_JOB_BYTES, for its
   * 6 MB requests). A job above one SQS message travels through the payload bucket either way.
   */
  readonly maxJobBytes: number;
  /**
   * Recipients refused at RCPT because they are suppressed (addressKey → suppression): never sent,
   * recorded `suppressed` with their reason in the record and the result, as a suppressed
   * recipient over HTTPS is, even when the suppression was lifted before the message arrived.
   */
  readonly suppressedAtRcpt?: ReadonlyMap<string, Suppression>;
}

interface Prepared {
  readonly record: MessageRecord;
  readonly job: SendJob;
  readonly result: AcceptResult;
}

/**
 * POST /v1/messages after authentication: validate, apply the sender policy, count it against
 * the key's daily quota, pre-check the suppression list (one batched read), record the message,
 * enqueue it on its lane. The record is written before the job is enqueued, so the sender always
 * finds it; if enqueueing fails the record is marked failed and the client gets a 503, so nothing
 * is silently lost.
 */
export async function acceptMessage(deps: AcceptDeps, key: ApiKey, body: unknown): Promise<AcceptResult> {
  return acceptOne(
    deps,
    key,
    () => check(deps, key, validateSendRequest(body), MAX_JOB_BYTES),
    () => bodyRecipients(body),
  );
}

/**
 * A message that arrived over SMTP, read by `readSubmission` (lambdas/domain/smtp/submission.ts)
 * into the OutgoingMessage the JSON API makes: from here the same path as acceptMessage (sender
 * policy, quota, suppression pre-check, record, enqueue, statistics), with its entry's size limit
 * and the recipients the SMTP server refused at RCPT as suppressed.
 */
export async function acceptSubmission(
  deps: AcceptDeps,
  key: ApiKey,
  message: OutgoingMessage,
  options: SubmissionOptions,
): Promise<AcceptResult> {
  return acceptOne(
    deps,
    key,
    () => headerPaths(() => check(deps, key, message, options.maxJobBytes, options.suppressedAtRcpt)),
    () => uniqueRecipients(message).map((c) => c.address),
  );
}

/**
 * POST /v1/messages in the raw form (`{"raw": "<base64 MIME>", "envelope"?: ...}`, issue 15): read
 * by the SMTP path's readSubmission (raw.ts), then accepted as an SMTP message is, with the API's
 * size limit. A refused message is counted as rejected, as a refused JSON body is. `onAccepted`
 * is told the lane of the message once it is accepted (the raw form names it in a header).
 */
export async function acceptRawMessage(
  deps: AcceptDeps,
  key: ApiKey,
  body: unknown,
  onAccepted?: (stream: Lane) => void,
): Promise<AcceptResult> {
  const read = await readRawMessage(key, body, MAX_JOB_BYTES);
  if (!read.ok) {
    await countRejected(deps, key, read.refusal.problem, read.recipients);
    throw read.refusal;
  }
  const result = await acceptSubmission(deps, key, read.message, { maxJobBytes: MAX_JOB_BYTES });
  onAccepted?.(read.message.stream);
  return result;
}

/**
 * The sender policy's field errors named as an SMTP client knows those fields: the From and
 * Reply-To headers (readSubmission names the others so already).
 */
function headerPaths<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (!(error instanceof ProblemError) || error.problem.errors === undefined) throw error;
    const { code, detail, errors } = error.problem;
    const path = (p: string) =>
      p === 'from' ? 'headers.From' : /^replyTo\[\d+\]$/.test(p) ? 'headers.Reply-To' : p;
    throw new ProblemError(
      problem(
        code,
        detail,
        errors.map((e) => ({ ...e, path: path(e.path) })),
      ),
      { ...error.headers },
    );
  }
}

/**
 * Counts a message refused before it reached acceptSubmission (its MIME could not be read into a
 * valid message) as rejected, as a refused POST /v1/messages is counted, and, when the content
 * checks refused it, each of its `recipients` (the envelope's) as a content refusal for the guard.
 */
export async function countRejected(
  deps: Pick<AcceptDeps, 'usage' | 'clock' | 'guard'>,
  key: ApiKey,
  refusal: Problem,
  recipients: readonly string[],
): Promise<void> {
  await count(deps, key, deps.clock(), { rejected: 1 });
  await tellGuard(deps, key, refusedTallies(refusal, recipients));
}

/**
 * Counts an SMTP transaction whose every recipient was refused at RCPT as suppressed, which never
 * reaches DATA: one suppressed message in the tenant's stats (as the same message over HTTPS), and
 * a suppressed-recipient hit per refused address for the guard.
 */
export async function countRefusedAtRcpt(
  deps: Pick<AcceptDeps, 'usage' | 'clock' | 'guard'>,
  key: ApiKey,
  refused: readonly string[],
): Promise<void> {
  if (refused.length === 0) return;
  await count(deps, key, deps.clock(), { suppressed: 1 });
  await tellGuard(
    deps,
    key,
    refused.map((address) => ({ address, outcome: 'suppressed' })),
  );
}

/**
 * One message, checked by `checkOne`, through quota, suppression pre-check, record and enqueue
 * (or, held by the guard, its job kept). `refusedRecipients`: whom a message the checks refused
 * was for, as far as they can be read (the guard counts a content refusal per recipient).
 */
async function acceptOne(
  deps: AcceptDeps,
  key: ApiKey,
  checkOne: () => Checked,
  refusedRecipients: () => readonly string[],
): Promise<AcceptResult> {
  const now = deps.clock();
  let checked: Checked;
  try {
    checked = checkOne();
  } catch (error) {
    if (error instanceof ProblemError) {
      await count(deps, key, now, { rejected: 1 });
      await tellGuard(deps, key, refusedTallies(error.problem, refusedRecipients()));
    }
    throw error;
  }
  if (!(await admit(deps, key, now, 1))) failQuota(key, now);
  const prepared = await orRefund(deps, key, now, 1, async () => {
    const suppressions = await deps.suppressions.getMany(
      checked.candidates.map((c) => c.key),
      key.tenant,
    );
    const p = prepare(deps, key, checked, suppressions, now);
    // The job is kept before the record is written: a held record whose job is missing could
    // never be released (see writeHeld for a record write that fails after it).
    const held = p.result.status === 'held' ? [p] : [];
    const [notKept] = await keepHeld(deps, held);
    if (notKept !== undefined) fail('unavailable', `${NOT_KEPT} (${errorName(notKept)})`);
    await writeHeld(deps, held, () => deps.messages.create(p.record));
    if (p.result.status === 'queued') {
      try {
        await deps.queue.enqueue(p.job.message.stream, p.job);
      } catch (error) {
        // Unless the sender holds the record already: then only the answer failed, and it is queued.
        const marked = await markUnqueued(deps, p.record).catch((markError: unknown) => {
          throw new UnmarkedError(markError);
        });
        if (marked) fail('unavailable', `${UNQUEUED} (${errorName(error)})`);
      }
    }
    return p;
  });
  await publishChanges(deps.webhooks, [{ after: prepared.record }]);
  await count(deps, key, now, tally([prepared.result]));
  await tellGuard(deps, key, acceptedTallies([prepared.result]));
  return prepared.result;
}

/**
 * POST /v1/messages/batch: each message is checked on its own (one bad message never fails the
 * others), then the good ones share one suppression read, batched writes (25 per request) and
 * SendMessageBatch (10 per request). Results come back in request order.
 *
 * With `previous` (the results a first run of the same batch answered, kept under its
 * Idempotency-Key), only the messages answered 429 or 5xx then run again; every other result is
 * final (its message is queued, suppressed or refused for good) and is answered as it was, so a
 * retry never queues a message twice.
 *
 * A message may be in the raw form (acceptRawMessage). `onAccepted` is told the index and lane of
 * each message this run accepted (not those `previous` answered).
 */
export async function acceptBatch(
  deps: AcceptDeps,
  key: ApiKey,
  bodies: readonly unknown[],
  previous?: readonly BatchResult[],
  onAccepted?: (index: number, stream: Lane) => void,
): Promise<BatchResult[]> {
  if (previous === undefined) return acceptAll(deps, key, bodies, onAccepted);
  const redo = bodies.flatMap((_, i) => (isFinal(previous[i]) ? [] : [i]));
  const fresh = await acceptAll(
    deps,
    key,
    redo.map((i) => bodies[i]),
    (at, stream) => onAccepted?.(redo[at] as number, stream),
  );
  const results = [...previous];
  fresh.forEach(({ index: at, ...rest }) => {
    const index = redo[at] as number;
    results[index] = { index, ...rest };
  });
  return results;
}

/** A batch result no retry could change: accepted, or refused for a reason that stays. */
export function isFinal(result: BatchResult | undefined): result is BatchResult {
  return result !== undefined && !('error' in result && retryMayChange(result.error.status));
}

async function acceptAll(
  deps: AcceptDeps,
  key: ApiKey,
  bodies: readonly unknown[],
  onAccepted?: (index: number, stream: Lane) => void,
): Promise<BatchResult[]> {
  // Raw messages are read first, one at a time (parsing MIME is asynchronous and CPU-bound). Past
  // the budget the rest are answered 503 unread, so the function never times out with the batch
  // half written; the first is always read, so a repeat always moves on.
  const reads = new Map<number, RawRead>();
  const unread = new Set<number>();
  const budget = deps.rawReadBudgetMs?.() ?? RAW_READ_BUDGET_MS;
  const started = performance.now();
  for (const [index, body] of bodies.entries()) {
    if (!isRawSendRequest(body)) continue;
    if (reads.size > 0 && performance.now() - started > budget) unread.add(index);
    else reads.set(index, await readRawMessage(key, body, MAX_JOB_BYTES));
  }
  const now = deps.clock();
  const results: BatchResult[] = new Array(bodies.length);
  const good: Array<{ index: number; checked: Checked }> = [];
  const guardTallies: GuardRecipientTally[] = [];
  for (const index of unread) results[index] = { index, error: problem('unavailable', UNREAD) };
  bodies.forEach((body, index) => {
    if (unread.has(index)) return;
    const read = reads.get(index);
    try {
      if (read?.ok === false) throw read.refusal;
      const checked = read
        ? headerPaths(() => check(deps, key, read.message, MAX_JOB_BYTES))
        : check(deps, key, validateSendRequest(body), MAX_JOB_BYTES);
      good.push({ index, checked });
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      results[index] = { index, error: error.problem };
      const recipients = !read
        ? bodyRecipients(body)
        : read.ok
          ? uniqueRecipients(read.message).map((c) => c.address)
          : read.recipients;
      guardTallies.push(...refusedTallies(error.problem, recipients));
    }
  });
  const rejected = bodies.length - unread.size - good.length;

  const admitted = await admitPart(deps, key, now, good.length);
  for (const { index } of good.slice(admitted)) results[index] = { index, error: quotaProblem(key) };
  const accepted = good.slice(0, admitted);

  const { prepared, notKept } = await orRefund(deps, key, now, admitted, async () => {
    const suppressions = await deps.suppressions.getMany(
      accepted.flatMap((g) => g.checked.candidates.map((c) => c.key)),
      key.tenant,
    );
    const all = accepted.map((g) => ({
      index: g.index,
      ...prepare(deps, key, g.checked, suppressions, now),
    }));
    // Held jobs are kept before any record is written (see acceptOne): a message whose job was
    // not kept is not recorded at all, and is answered 503 in its place.
    const held = all.filter((p) => p.result.status === 'held');
    const keepFailures = await keepHeld(deps, held);
    const failedIndexes = new Set(held.filter((_, i) => keepFailures[i] !== undefined).map((p) => p.index));
    const recorded = all.filter((p) => !failedIndexes.has(p.index));
    await writeHeld(
      deps,
      recorded.filter((p) => p.result.status === 'held'),
      () => deps.messages.createMany(recorded.map((p) => p.record)),
    );
    return { prepared: recorded, notKept: all.filter((p) => failedIndexes.has(p.index)) };
  });
  // Admitted, then not accepted: their quota is given back, as the retry they are told to make takes it again.
  await refund(deps, key, now, notKept.length);
  for (const p of notKept) results[p.index] = { index: p.index, error: problem('unavailable', NOT_KEPT) };

  const queued = prepared.filter((p) => p.result.status === 'queued');
  // A call that throws as a whole is every job unqueued: the records stand, so the suppressed
  // messages keep their answer, and each queued one is answered 503 in its place like any other.
  const outcomes = await deps.queue
    .enqueueMany(queued.map((p) => ({ lane: p.job.message.stream, job: p.job })))
    .catch((error: unknown) => queued.map(() => (error instanceof Error ? error : new Error(String(error)))));
  const failed = queued.filter((_, i) => outcomes[i] !== undefined);
  // Settled, not all: the others are queued already, and failing the whole request would make the
  // client send them again. A record that cannot be marked stays invisible (its id was never given).
  const marks = await Promise.allSettled(failed.map((p) => markUnqueued(deps, p.record)));
  // A record the sender moved on was queued after all (only the answer failed): it stands.
  const unqueued = new Set(
    failed.filter((_, i) => !(marks[i]?.status === 'fulfilled' && !marks[i].value)).map((p) => p.index),
  );
  // Only a marked record gives its quota back: an unmarked job may have reached the queue (an
  // enqueue can fail in its answer alone) and then goes out, so its quota stays used.
  await refund(deps, key, now, marks.filter((m) => m.status === 'fulfilled' && m.value).length);
  for (const p of prepared) {
    results[p.index] = unqueued.has(p.index)
      ? { index: p.index, error: problem('unavailable', UNQUEUED) }
      : { index: p.index, ...p.result };
  }

  const kept = prepared.filter((p) => !unqueued.has(p.index));
  await publishChanges(
    deps.webhooks,
    kept.map((p) => ({ after: p.record })),
  );
  for (const p of kept) onAccepted?.(p.index, p.job.message.stream);
  const answered = kept.map((p) => p.result);
  const counts = tally(answered);
  await count(deps, key, now, { ...counts, rejected: (counts.rejected ?? 0) + rejected });
  await tellGuard(deps, key, [...acceptedTallies(answered), ...guardTallies]);
  return results;
}

/** Sender policy and the size limit, after validation: everything that can refuse one message. */
function check(
  deps: AcceptDeps,
  key: ApiKey,
  validated: OutgoingMessage,
  maxJobBytes: number,
  suppressedAtRcpt: ReadonlyMap<string, Suppression> = new Map(),
): Checked {
  const atRcpt = new Map([...suppressedAtRcpt].map(([address, s]) => [addressKey(address), s]));
  // Refused at RCPT stays refused, also when the client named the address again: the job never
  // holds it, and it is not looked up again.
  const sendable = (list: OutgoingMessage['to']) => list.filter((m) => !atRcpt.has(addressKey(m.address)));
  const message = applySenderPolicy(
    key,
    atRcpt.size === 0
      ? validated
      : {
          ...validated,
          to: sendable(validated.to),
          cc: sendable(validated.cc),
          bcc: sendable(validated.bcc),
        },
  );
  const job: SendJob = { v: 1, id: deps.newId(), tenant: key.tenant, keyId: key.keyId, message };
  const jobBytes = Buffer.byteLength(JSON.stringify(job));
  if (jobBytes > maxJobBytes) {
    fail(
      'too_large',
      `The message is ${Math.ceil(jobBytes / 1024)} KB once encoded; the limit is ${Math.floor(maxJobBytes / 1000)} KB including attachments.`,
    );
  }
  return {
    message,
    job,
    candidates: uniqueRecipients(message),
    knownSuppressed: knownSuppressed(message, atRcpt),
  };
}

/**
 * The record, job and answer of a checked message. A message the guard holds for its key and lane
 * (`holdFor`) is recorded held (its queued recipients `held`, a `held` timeline event with the
 * reason) and answered `held`; one whose every recipient is suppressed is suppressed either way.
 */
function prepare(
  deps: AcceptDeps,
  key: ApiKey,
  checked: Checked,
  suppressions: ReadonlyMap<string, Suppression>,
  now: Date,
): Prepared {
  const { message, job } = checked;
  const at = now.toISOString();
  const recipients: RecipientState[] = [];
  const response: AcceptedRecipient[] = [];
  const events: TimelineEvent[] = [{ type: 'accepted', at }];
  const suppress = (address: string, kind: RecipientKind, s: Suppression) => {
    // An address the tenant erased is recorded under its pseudonym, never stored again.
    const recorded = s.erasedAs ?? address;
    recipients.push({
      address: recorded,
      kind,
      status: 'suppressed',
      reason: suppressedReason(s),
      updatedAt: at,
    });
    response.push({ address, status: 'suppressed', reason: s.reason });
    events.push({ type: 'suppressed', at, recipient: recorded, detail: { reason: s.reason } });
  };
  for (const { address, key: normalised, kind } of checked.candidates) {
    const s = suppressions.get(normalised);
    if (s && isActive(s, now)) suppress(address, kind, s);
    else {
      recipients.push({ address, kind, status: 'queued', reason: null, updatedAt: at });
      response.push({ address, status: 'queued' });
    }
  }
  for (const { address, kind, suppression } of checked.knownSuppressed) suppress(address, kind, suppression);
  const allSuppressed = recipients.every((r) => r.status === 'suppressed');
  const record: MessageRecord = {
    id: job.id,
    tenant: job.tenant,
    keyId: key.keyId,
    stream: message.stream,
    ...(Object.keys(message.tags).length > 0 ? { tags: { ...message.tags } } : {}),
    phase: allSuppressed ? 'suppressed' : 'queued',
    from: formatMailbox(message.from),
    subject: message.subject,
    createdAt: at,
    updatedAt: at,
    expiresAt: Math.floor(now.getTime() / 1000) + deps.retentionDays * 86_400,
    recipients,
    events,
    seen: [],
    version: 1,
  };
  const rewrittenFrom = message.originalFrom ? formatMailbox(message.from) : null;
  const held = holdOf(record, holdFor(key.guard, message.stream, now), now);
  if (held) {
    const recipients = response.map((r) => (r.status === 'queued' ? { ...r, status: 'held' as const } : r));
    return { record: held, job, result: { id: job.id, status: 'held', recipients, rewrittenFrom } };
  }
  return {
    record,
    job,
    result: {
      id: job.id,
      status: allSuppressed ? 'suppressed' : 'queued',
      recipients: response,
      rewrittenFrom,
    },
  };
}

/** The new record held by `decision`, still its first version (it was never written queued). */
function holdOf(
  record: MessageRecord,
  decision: GuardDecision | undefined,
  now: Date,
): MessageRecord | undefined {
  const held = decision === undefined ? undefined : markHeld(record, decision, now);
  return held === undefined ? undefined : { ...held, version: record.version };
}

/**
 * Writes the records (`write`) after the jobs of `held` were kept. When the write fails the
 * request is answered 503 and the client sends the messages again, so their kept jobs are
 * forgotten (best effort): a later release must not send a second copy. Should a record have been
 * written all the same (only the answer was lost), it stays held with no entry to release it:
 * nobody was given its id, and it reads failed once its hold expires.
 */
async function writeHeld(
  deps: AcceptDeps,
  held: readonly Prepared[],
  write: () => Promise<void>,
): Promise<void> {
  try {
    await write();
  } catch (error) {
    await Promise.allSettled(
      held.map(async (p) => {
        if (p.record.hold !== undefined) await deps.held.remove(heldEntry(p.record, p.record.hold));
      }),
    );
    throw error;
  }
}

const NOT_KEPT =
  'Baton could not keep the message the abuse guard holds; it was not accepted. Retry the request.';

/**
 * Keeps the jobs of held messages (recorded held, never enqueued). One entry per message, in
 * order: undefined when kept, the error when not.
 */
async function keepHeld(deps: AcceptDeps, held: readonly Prepared[]): Promise<Array<unknown>> {
  const outcomes = await Promise.allSettled(
    held.map(async (p) => {
      const hold = p.record.hold;
      if (hold === undefined) throw new Error('a held record without its hold');
      return deps.held.keep(heldEntry(p.record, hold), p.job);
    }),
  );
  return outcomes.map((o) => (o.status === 'rejected' ? (o.reason ?? new Error('not kept')) : undefined));
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'error';
}

const UNREAD =
  'This batch ran out of time to read this raw message, so it was not accepted. Send it again ' +
  '(a repeat with the same Idempotency-Key reads only the messages not accepted).';

const UNQUEUED = 'Baton could not queue the message; it was not sent. Retry the request.';

/**
 * Marks the record of a job whose enqueue failed as failed for good (not redrivable), so a job
 * that reached the queue all the same is never sent: the client is told to send it again. False
 * when the sender claimed the record before the mark (the enqueue failed only in its answer), so
 * the message is queued and must be answered so; a 503 would send it twice.
 */
async function markUnqueued(deps: AcceptDeps, record: MessageRecord): Promise<boolean> {
  let claimed = false;
  await rewrite(deps.messages, record, (latest) => {
    // Our own mark, whose answer was lost (the SDK's retry then met its own write).
    if (latest.events.some((e) => e.type === 'failed' && e.detail?.reason === UNQUEUED)) return undefined;
    // The sender claimed it: the job is in the queue after all.
    if (latest.phase !== 'queued') {
      claimed = true;
      return undefined;
    }
    // Unclaimed, maybe rewritten meanwhile (an erasure): mark this version, or it could be lost.
    return markGaveUp(latest, UNQUEUED, deps.clock(), false);
  });
  return !claimed;
}

/** Counts `n` messages against the key's daily quota; true when they fit. */
async function admit(deps: AcceptDeps, key: ApiKey, now: Date, n: number): Promise<boolean> {
  if (key.dailyQuota === undefined || n === 0) return true;
  return deps.usage.consumeQuota(key.keyId, utcDay(now), n, key.dailyQuota);
}

/** How many of `n` messages the quota admits (all, or what is left of today's quota). */
async function admitPart(deps: AcceptDeps, key: ApiKey, now: Date, n: number): Promise<number> {
  if (key.dailyQuota === undefined || n === 0) return n;
  const day = utcDay(now);
  for (let attempt = 0; attempt < 3; attempt++) {
    const used = await deps.usage.quotaUsed(key.keyId, day);
    const fits = Math.min(n, Math.max(0, key.dailyQuota - used));
    if (fits === 0) return 0;
    // Conditional on the total, so concurrent batches cannot overshoot; re-read if one raced us.
    if (await deps.usage.consumeQuota(key.keyId, day, fits, key.dailyQuota)) return fits;
  }
  return 0;
}

/**
 * Runs the steps after `n` messages were admitted; when one throws (the request is answered 5xx
 * and nothing of it was queued), the quota is given back first, so the advised retry fits.
 */
async function orRefund<T>(
  deps: AcceptDeps,
  key: ApiKey,
  now: Date,
  n: number,
  steps: () => Promise<T>,
): Promise<T> {
  try {
    return await steps();
  } catch (error) {
    if (error instanceof UnmarkedError) throw error.cause;
    await refund(deps, key, now, n);
    throw error;
  }
}

/**
 * The enqueue of a message failed and its record could not be marked failed either. The enqueue
 * may have failed in its answer alone (a timeout after SQS took the job), and nothing then stops
 * the job from being sent: its quota stays used, so a key is never over its quota (at worst it
 * loses this message's share when the job was not queued). `cause` is what the client is answered.
 */
class UnmarkedError extends Error {
  override readonly name = 'UnmarkedError';

  constructor(cause: unknown) {
    super('the record of a message whose enqueue failed could not be marked failed', { cause });
  }
}

async function refund(deps: AcceptDeps, key: ApiKey, now: Date, n: number): Promise<void> {
  if (key.dailyQuota !== undefined && n > 0) await deps.usage.refundQuota(key.keyId, utcDay(now), n);
}

function quotaProblem(key: ApiKey): Problem {
  return problem('rate_limited', `This API key's daily quota of ${key.dailyQuota} messages is used up.`);
}

function failQuota(key: ApiKey, now: Date): never {
  throw new ProblemError(quotaProblem(key), { 'retry-after': String(secondsUntilNextUtcDay(now)) });
}

function tally(results: readonly AcceptResult[]): StatCounts {
  const suppressed = results.filter((r) => r.status === 'suppressed').length;
  return { accepted: results.length - suppressed, suppressed };
}

/** The tenant's daily statistics (the store never throws: see UsageStore.addStats). */
async function count(
  deps: Pick<AcceptDeps, 'usage'>,
  key: ApiKey,
  now: Date,
  counts: StatCounts,
): Promise<void> {
  const nonZero = Object.fromEntries(Object.entries(counts).filter(([, v]) => (v ?? 0) > 0));
  if (Object.keys(nonZero).length > 0) await deps.usage.addStats(key.tenant, utcDay(now), nonZero);
}

/** One tally per recipient of accepted messages, as the result answers each. */
function acceptedTallies(results: readonly AcceptResult[]): GuardRecipientTally[] {
  return results.flatMap((r) => r.recipients.map((x) => ({ address: x.address, outcome: x.status })));
}

/**
 * A content refusal per recipient of the refused message (one when none can be read: the refusal
 * still counts); nothing for any other refusal (a malformed request says nothing about abuse).
 */
function refusedTallies(refusal: Problem, recipients: readonly string[]): GuardRecipientTally[] {
  if (!isContentRefusal(refusal)) return [];
  if (recipients.length === 0) return [{ address: '', outcome: 'refused' }];
  return recipients.map((address) => ({ address, outcome: 'refused' }));
}

/**
 * Tells the guard what one request did, in one call. Awaited, as it is quick (one batched counter
 * write, an evaluation at most once a minute). It never throws by contract (it logs and counts its
 * own failures); should it all the same, the error goes no further: the messages are queued by
 * now, and a 5xx would have the client send them a second time.
 */
async function tellGuard(
  deps: Pick<AcceptDeps, 'guard'>,
  key: ApiKey,
  tallies: readonly GuardRecipientTally[],
): Promise<void> {
  if (tallies.length === 0) return;
  await deps.guard.recordAccept(key, tallies).catch(() => undefined);
}

/**
 * The recipients of a request body the checks refused, as far as they can be read: each address
 * of `to`, `cc` and `bcc` that parses, once, at most MAX_RECIPIENTS (a refused body may list any
 * number).
 */
function bodyRecipients(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  const fields = body as Record<string, unknown>;
  const seen = new Map<string, string>();
  for (const field of ['to', 'cc', 'bcc']) {
    const value = fields[field];
    for (const item of typeof value === 'string' ? [value] : Array.isArray(value) ? value : []) {
      if (seen.size >= MAX_RECIPIENTS) return [...seen.values()];
      if (typeof item !== 'string') continue;
      const parsed = parseMailbox(item);
      if (parsed.ok && !seen.has(addressKey(parsed.value.address))) {
        seen.set(addressKey(parsed.value.address), parsed.value.address);
      }
    }
  }
  return [...seen.values()];
}

interface Candidate {
  readonly address: string;
  readonly key: string;
  readonly kind: RecipientKind;
}

/** Each address once (SES would deliver a duplicate twice), in to, cc, bcc order. */
function uniqueRecipients(message: OutgoingMessage): Candidate[] {
  const seen = new Set<string>();
  const out: Candidate[] = [];
  const add = (kind: RecipientKind, address: string) => {
    const key = addressKey(address);
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ address, key, kind });
  };
  for (const m of message.to) add('to', m.address);
  for (const m of message.cc) add('cc', m.address);
  for (const m of message.bcc) add('bcc', m.address);
  return out;
}

interface KnownSuppressed {
  readonly address: string;
  readonly kind: RecipientKind;
  readonly suppression: Suppression;
}

/**
 * The recipients refused at RCPT, each with the kind the message's headers give it (To, Cc, else
 * Bcc), in the order the SMTP server refused them.
 */
function knownSuppressed(
  message: OutgoingMessage,
  suppressedAtRcpt: ReadonlyMap<string, Suppression>,
): KnownSuppressed[] {
  const shownTo = new Set((message.shownTo ?? message.to).map((m) => addressKey(m.address)));
  const shownCc = new Set((message.shownCc ?? message.cc).map((m) => addressKey(m.address)));
  return [...suppressedAtRcpt].map(([key, suppression]) => ({
    address: key,
    kind: shownTo.has(key) ? 'to' : shownCc.has(key) ? 'cc' : 'bcc',
    suppression,
  }));
}
