import '../support/quiet-powertools.ts';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageRecord, SendJob } from '../../lambdas/domain/message.ts';
import { runSenderBatch } from '../support/sender-batch.ts';
import { type SenderRig, startSenderRig } from '../support/sender-rig.ts';

// One batch, four fates, through the real adapters, the SES stand-in and Powertools' batch
// processor: a duplicate of a sent message, a send SES takes, one SES rejects for good and one SES
// throttles. Only the throttled record may come back to the queue.

// The stand-in draws once per SendEmail HTTP request: < 0.4 throttles, < 0.7 rejects, else accepts.
const draws = [0.9, 0.9, 0.5, 0.1, 0.1, 0.1];
let rig: SenderRig;

beforeAll(async () => {
  rig = await startSenderRig({
    faults: { throttleRate: 0.4, rejectRate: 0.3, random: () => draws.shift() ?? 0.9 },
  });
});

afterAll(async () => {
  await rig?.stop();
});

const idOf = (record: SQSRecord): string => (JSON.parse(record.body) as SendJob).id;

describe('a mixed batch through the real sender', () => {
  it('reports only the throttled record as failed; the rejection is final and the duplicate is not sent again', async () => {
    // Prepare: the first message is sent once already (draw 0.9), so its second delivery is a duplicate.
    const [sentBefore, accepted, rejected, throttled] = await rig.queueBatch('mixed', 4);
    if (!sentBefore || !accepted || !rejected || !throttled) throw new Error('nothing queued');
    await runSenderBatch(rig.sender, [sentBefore]);
    rig.counter.reset();

    // Act
    const response = await runSenderBatch(rig.sender, [sentBefore, accepted, rejected, throttled]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: throttled.messageId }] });
    const status = async (record: SQSRecord) => (await rig.records.get(idOf(record))) as MessageRecord;
    expect((await status(sentBefore)).phase).toBe('sent');
    expect((await status(accepted)).phase).toBe('sent');
    const refused = await status(rejected);
    expect(refused.phase).toBe('failed');
    expect(refused.recipients[0]?.reason).toBe(
      'SES rejected the message: Message rejected by the SES stand-in (injected fault).',
    );
    // The throttled one was given back (claim released) and waits for its retry.
    expect((await status(throttled)).phase).toBe('queued');
    const sends = rig.counter.tallies().find((t) => t.operation === 'SendEmail');
    // accepted, rejected and throttled: one call each (the throttled one retried by the SDK).
    expect(sends).toMatchObject({ calls: 3, attempts: 5 });
    const delays = rig.counter.tallies().find((t) => t.operation === 'ChangeMessageVisibility');
    expect(delays).toMatchObject({ calls: 1 });
    expect(rig.ses.sent().filter((s) => s.batonMessageId === idOf(sentBefore))).toHaveLength(1);
  });
});
