/**
 * The send path wired to in-memory fakes for the unit tests: `sendJob`'s dependencies, the sender
 * (createSender) and queued jobs as the lane queue delivers them. The clock stands at T0.
 */
import type { SQSRecord } from 'aws-lambda';
import type { SendDeps } from '../../lambdas/domain/delivery/send.ts';
import type { MessageRecord, OutgoingMessage } from '../../lambdas/domain/message.ts';
import { CONFIRMATION_WINDOW_MS, createSender, type SenderDeps } from '../../lambdas/sender/app.ts';
import type { Lane } from '../../lambdas/shared/names.ts';
import { messageRecord, outgoingMessage, recipient, sendJob, sqsRecord, T0 } from './builders.ts';
import {
  FakeMailer,
  InMemoryApiKeys,
  InMemoryHeldJobs,
  InMemoryMessageStore,
  InMemorySuppressionStore,
  RecordingVisibility,
  testClock,
} from './fakes.ts';

/** The claim `sendJob` takes in these tests (the sender's CLAIM_LEASE_MS). */
export const SEND_LEASE_MS = 120_000;
/** How long `sendJob` waits for SES's evidence after an ambiguous answer in these tests. */
export const SEND_CONFIRMATION_MS = CONFIRMATION_WINDOW_MS;

/** `sendJob`'s dependencies with `records` seeded; `compose` writes `raw:<id>` and notes each call. */
export function sendHarness(...records: MessageRecord[]) {
  const messages = new InMemoryMessageStore().seed(...records);
  const mailer = new FakeMailer();
  const clock = testClock(T0);
  const composed: Array<{ id: string; date: string; subject: string }> = [];
  const deps: SendDeps = {
    messages,
    mailer,
    clock,
    leaseMs: SEND_LEASE_MS,
    confirmationWindowMs: SEND_CONFIRMATION_MS,
    compose: async (message: OutgoingMessage, id: string, date: Date) => {
      composed.push({ id, date: date.toISOString(), subject: message.subject });
      return new TextEncoder().encode(`raw:${id}`);
    },
  };
  return { deps, messages, mailer, clock, composed };
}

/**
 * createSender over fresh fakes, retry jitter at its middle (`random` 0.5: the first receive
 * waits ceil(0.5 × 2) = 1 s); `deps` adds or replaces dependencies (DKIM, payloads, a
 * maxReceiveCount, a tombstone-aware view of the suppressions). `apiKeys` holds the keys the
 * sender re-checks (none: every job's key is gone, so it is sent), `held` the jobs it holds.
 */
export function senderHarness(deps: Partial<SenderDeps> = {}) {
  const messages = new InMemoryMessageStore();
  const suppressions = new InMemorySuppressionStore();
  const mailer = new FakeMailer();
  const visibility = new RecordingVisibility();
  const clock = testClock(T0);
  const apiKeys = new InMemoryApiKeys();
  const held = new InMemoryHeldJobs();
  const sender = createSender({
    messages,
    suppressions,
    mailer,
    visibility,
    clock,
    keys: apiKeys,
    held,
    ...deps,
    random: deps.random ?? (() => 0.5),
  });
  return { sender, messages, suppressions, mailer, visibility, clock, apiKeys, held };
}

export interface QueuedJobOptions {
  /** @default [`<id>@example.org`] */
  readonly to?: readonly string[];
  /** @default 'tenant-a' */
  readonly tenant?: string;
  /** @default 1 */
  readonly receiveCount?: number;
  /** Laid over the seeded record. */
  readonly record?: Partial<MessageRecord>;
  /** The key that sent it, on the record and the job (the sender re-checks it). */
  readonly keyId?: string;
  /** @default 'transactional' */
  readonly stream?: Lane;
}

/** Seeds a queued record for message `id` and returns the SQS record (`sqs-<id>`) carrying its job. */
export function queuedJob(
  messages: InMemoryMessageStore,
  id: string,
  options: QueuedJobOptions = {},
): SQSRecord {
  const to = options.to ?? [`${id}@example.org`];
  const tenant = options.tenant ?? 'tenant-a';
  const stream = options.stream ?? 'transactional';
  const keyId = options.keyId === undefined ? {} : { keyId: options.keyId };
  messages.seed(
    messageRecord({
      id,
      tenant,
      stream,
      recipients: to.map((a) => recipient(a)),
      ...keyId,
      ...options.record,
    }),
  );
  const job = {
    ...sendJob(outgoingMessage({ to: to.map((address) => ({ address })), stream }), id, tenant),
    ...keyId,
  };
  return sqsRecord(JSON.stringify(job), { messageId: `sqs-${id}`, receiveCount: options.receiveCount ?? 1 });
}
