import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import {
  eraseFromRecord,
  TombstoneAwareSuppressions,
  tombstoneFor,
} from '../../../lambdas/domain/erasure/erasure.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { acceptMessage } from '../../../lambdas/domain/send/accept.ts';
import {
  messageRecord,
  outgoingMessage,
  recipient,
  sendBody,
  sendJob,
  sqsRecord,
  T0,
} from '../../support/builders.ts';
import { InMemorySuppressionStore } from '../../support/fakes.ts';
import { acceptHarness } from '../../support/harness.ts';
import { runSenderBatch } from '../../support/sender-batch.ts';
import { ANA, ANA_KEY, keyOf } from '../../support/unit-erasure.ts';
import { senderHarness } from '../../support/unit-sender.ts';

/**
 * The suppression checks of DESIGN §1 (the api's pre-check and the sender's batched check) see an
 * erased address through its tombstone: its handlers wire the stores as these tests do.
 */
const tombstone = () => tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a');

function senderRig(record: MessageRecord) {
  const table = new InMemorySuppressionStore().seed(tombstone());
  const { sender, messages, mailer } = senderHarness({
    suppressions: new TombstoneAwareSuppressions(table, keyOf),
  });
  messages.seed(record);
  return { sender, messages, table, mailer };
}

describe('suppression checks after an erasure', () => {
  it('suppresses an erased recipient at the api’s pre-check, with one batched read', async () => {
    // Prepare
    const { deps, key, suppressions, queue } = acceptHarness();
    suppressions.seed(tombstone());
    const checked = { ...deps, suppressions: new TombstoneAwareSuppressions(suppressions, keyOf) };

    // Act
    const result = await acceptMessage(checked, key, sendBody({ to: [ANA, 'bob@example.org'] }));

    // Assess
    expect(result.recipients).toEqual([
      { address: ANA, status: 'suppressed', reason: 'manual' },
      { address: 'bob@example.org', status: 'queued' },
    ]);
    expect(suppressions.getManyCalls).toHaveLength(1);
    expect(queue.jobs).toHaveLength(1);
  });

  it('keeps the sender from mailing an erased recipient of a message queued before the erasure', async () => {
    // Prepare
    const record = messageRecord({
      recipients: [recipient(ANA), recipient('bob@example.org', 'queued', { kind: 'cc' })],
    });
    const { sender, messages, mailer } = senderRig(record);
    const job = sendJob(outgoingMessage({ to: [{ address: ANA }], cc: [{ address: 'bob@example.org' }] }));

    // Act
    const response = await runSenderBatch(sender, [sqsRecord(JSON.stringify(job))]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(mailer.sent.map((m) => [m.to, m.cc])).toEqual([[[], ['bob@example.org']]]);
    expect(messages.peek('msg_1')?.recipients.map((r) => [r.address, r.status])).toEqual([
      [ANA, 'suppressed'],
      ['bob@example.org', 'sent'],
    ]);
  });

  it('sends nothing to a recipient whose record was erased while its job waited in the queue', async () => {
    // Prepare: the job still holds the address; the record already holds the pseudonym.
    const record = eraseFromRecord(
      messageRecord({ recipients: [recipient(ANA)] }),
      ANA_KEY,
      keyOf,
    ) as MessageRecord;
    const { sender, messages, mailer } = senderRig(record);

    // Act
    await runSenderBatch(sender, [sqsRecord(JSON.stringify(sendJob()))]);

    // Assess
    expect(mailer.attempts).toEqual([]);
    expect(messages.peek('msg_1')?.recipients.map((r) => [r.address, r.status])).toEqual([
      [ANA_KEY, 'suppressed'],
    ]);
  });
});
