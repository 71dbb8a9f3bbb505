import type { Lane } from '../shared/names.ts';
import { normaliseAddress } from './address.ts';
import type { ApiKey } from './api-key.ts';
import type {
  MessageRecord,
  OutgoingMessage,
  RecipientKind,
  RecipientState,
  SendJob,
  TimelineEvent,
} from './message.ts';
import type { Clock, JobQueue, MessageStore, SuppressionStore } from './ports.ts';
import { fail } from './problem.ts';
import { validateSendRequest } from './send-request.ts';
import { applySenderPolicy, formatMailbox } from './sender-policy.ts';
import { isActive, type SuppressionReason, suppressedReason } from './suppression.ts';

/**
 * The largest send job Baton puts on a queue. SQS takes 1 MiB per message; the margin covers the
 * JSON envelope. Larger messages are refused with 413 rather than accepted and lost.
 */
export const MAX_JOB_BYTES = 1_000_000;

export interface AcceptDeps {
  readonly messages: Pick<MessageStore, 'create' | 'update'>;
  readonly suppressions: Pick<SuppressionStore, 'getMany'>;
  readonly queue: JobQueue;
  readonly clock: Clock;
  readonly newId: () => string;
  readonly retentionDays: number;
}

export interface AcceptedRecipient {
  readonly address: string;
  readonly status: 'queued' | 'suppressed';
  readonly reason?: SuppressionReason;
}

export interface AcceptResult {
  readonly id: string;
  readonly status: 'queued' | 'suppressed';
  readonly recipients: readonly AcceptedRecipient[];
  readonly rewrittenFrom: string | null;
}

/**
 * POST /v1/messages after authentication: validate, apply the sender policy, pre-check the
 * suppression list (one batched read), record the message, enqueue it on its lane.
 * The record is written before the job is enqueued, so the sender always finds it; if enqueueing
 * fails the record is marked failed and the client gets a 503, so nothing is silently lost.
 */
export async function acceptMessage(deps: AcceptDeps, key: ApiKey, body: unknown): Promise<AcceptResult> {
  const message = applySenderPolicy(key, validateSendRequest(body));
  const id = deps.newId();
  const job: SendJob = { v: 1, id, tenant: key.tenant, message };
  const jobBytes = Buffer.byteLength(JSON.stringify(job));
  if (jobBytes > MAX_JOB_BYTES) {
    fail(
      'too_large',
      `The message is ${Math.ceil(jobBytes / 1024)} KB once encoded; the limit is ${MAX_JOB_BYTES / 1000} KB including attachments.`,
    );
  }

  const now = deps.clock();
  const at = now.toISOString();
  const candidates = uniqueRecipients(message);
  const suppressions = await deps.suppressions.getMany(candidates.map((r) => r.key));

  const recipients: RecipientState[] = [];
  const response: AcceptedRecipient[] = [];
  const events: TimelineEvent[] = [{ type: 'accepted', at }];
  for (const { address, key: normalised, kind } of candidates) {
    const s = suppressions.get(normalised);
    if (s && isActive(s, now)) {
      recipients.push({ address, kind, status: 'suppressed', reason: suppressedReason(s), updatedAt: at });
      response.push({ address, status: 'suppressed', reason: s.reason });
      events.push({ type: 'suppressed', at, recipient: address, detail: { reason: s.reason } });
    } else {
      recipients.push({ address, kind, status: 'queued', reason: null, updatedAt: at });
      response.push({ address, status: 'queued' });
    }
  }
  const allSuppressed = recipients.every((r) => r.status === 'suppressed');

  const record: MessageRecord = {
    id,
    tenant: key.tenant,
    stream: message.stream,
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
  await deps.messages.create(record);

  if (!allSuppressed) await enqueueOrFail(deps, message.stream, job, record);

  return {
    id,
    status: allSuppressed ? 'suppressed' : 'queued',
    recipients: response,
    rewrittenFrom: message.originalFrom ? formatMailbox(message.from) : null,
  };
}

async function enqueueOrFail(
  deps: AcceptDeps,
  lane: Lane,
  job: SendJob,
  record: MessageRecord,
): Promise<void> {
  try {
    await deps.queue.enqueue(lane, job);
  } catch (error) {
    const at = deps.clock().toISOString();
    const reason = 'Baton could not queue the message; it was not sent. Retry the request.';
    await deps.messages.update(
      {
        ...record,
        phase: 'failed',
        updatedAt: at,
        recipients: record.recipients.map((r) =>
          r.status === 'queued' ? { ...r, status: 'failed', reason, updatedAt: at } : r,
        ),
        events: [...record.events, { type: 'failed', at, detail: { reason } }],
        version: record.version + 1,
      },
      record.version,
    );
    fail('unavailable', `${reason} (${error instanceof Error ? error.name : 'error'})`);
  }
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
    const key = normaliseAddress(address) ?? address.toLowerCase();
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ address, key, kind });
  };
  for (const m of message.to) add('to', m.address);
  for (const m of message.cc) add('cc', m.address);
  for (const m of message.bcc) add('bcc', m.address);
  return out;
}
