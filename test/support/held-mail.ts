/** Held mail of tenant-a's key and the guard operations' ports over fakes, shared by the guard's and the webhook producers' tests. */
import { expect } from 'vitest';
import type { GuardDecision } from '../../lambdas/domain/guard/evaluate.ts';
import { heldEntry, markHeld } from '../../lambdas/domain/guard/hold.ts';
import type { GuardOperationsDeps } from '../../lambdas/domain/guard/operations.ts';
import type { ApiKey } from '../../lambdas/domain/keys/api-key.ts';
import type { MessageRecord } from '../../lambdas/domain/message.ts';
import type { WebhookPublisher } from '../../lambdas/domain/webhooks/ports.ts';
import type { Lane } from '../../lambdas/shared/names.ts';
import { messageRecord, sendJob, T0 } from './builders.ts';
import {
  InMemoryApiKeys,
  InMemoryHeldJobs,
  InMemoryJobQueue,
  InMemoryMessageStore,
  issueApiKey,
  RecordingGuard,
  testClock,
} from './fakes.ts';
import { guardDecision } from './guard.ts';

export function heldMailRig(keyOverrides: Partial<ApiKey> = {}, webhooks?: WebhookPublisher) {
  const clock = testClock(T0);
  const messages = new InMemoryMessageStore();
  const held = new InMemoryHeldJobs();
  const queue = new InMemoryJobQueue();
  const keys = new InMemoryApiKeys();
  const guard = new RecordingGuard();
  const { key } = issueApiKey({ tenant: 'tenant-a', ...keyOverrides });
  keys.add(key);
  const deps: GuardOperationsDeps = {
    messages,
    held,
    queue,
    keys,
    guard,
    clock,
    ...(webhooks === undefined ? {} : { webhooks }),
  };
  /** Holds message `id` (record held, entry and job kept), as the sender's hold would. */
  const hold = async (
    id: string,
    lane: Lane = 'broadcast',
    decision: GuardDecision = guardDecision(),
    overrides: Partial<MessageRecord> = {},
  ): Promise<MessageRecord> => {
    const record = markHeld(
      messageRecord({ id, stream: lane, keyId: key.keyId, ...overrides }),
      decision,
      clock(),
    ) as MessageRecord;
    messages.seed(record);
    await held.keep(
      heldEntry(record, record.hold ?? expect.fail('no hold')),
      sendJob(undefined, id, record.tenant),
    );
    return record;
  };
  return { deps, clock, messages, held, queue, keys, guard, key, hold };
}
