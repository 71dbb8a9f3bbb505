import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import { Pacer } from '../../../lambdas/domain/delivery/pacer.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { laneSendPlans } from '../../../lib/config.ts';
import { sqsRecord, T0 } from '../../support/builders.ts';
import { type TestClock, testClock } from '../../support/fakes.ts';
import { busiestWindow, simulateLane } from '../../support/lane-simulation.ts';
import { runSenderBatch } from '../../support/sender-batch.ts';
import { queuedJob, senderHarness } from '../../support/unit-sender.ts';

// Issue 11 part 4: pacing counts recipients, a sender never takes or keeps more work than it can
// send before its deadline, and a job that reaches the DLQ has its record failed.

const MAX_RECEIVE_COUNT = 10;
const WINDOW_MS = 60_000;

/** A sleep that moves the test clock instead of waiting. */
const movingSleep = (clock: TestClock) => async (ms: number) => clock.advance(ms);

const fifty = (id: string) => Array.from({ length: 50 }, (_, n) => `r${n}.${id}@example.org`);

/** A sender paced like one of the sandbox broadcast lane's two (0.15 recipients/s), its deadline 600 s away. */
function sandboxSender() {
  const clock = testClock(T0);
  const h = senderHarness({
    clock,
    maxReceiveCount: MAX_RECEIVE_COUNT,
    pacer: new Pacer(0.15, clock, movingSleep(clock)),
  });
  const deadline = new Date(Date.parse(T0) + 600_000);
  return { ...h, clock, deadline };
}

describe('the sender before its deadline', () => {
  it('hands back untaken, delayed until its pace allows, the record it could not send in time', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, clock, deadline } = sandboxSender();
    const records = ['a', 'b', 'c'].map((id) => queuedJob(messages, id, { to: fifty(id) }));

    // Act
    const response = await runSenderBatch(sender, records, undefined, deadline);

    // Assess: a at once, b after 50 / 0.15 = 333.3 s; c's turn would come at 666.7 s, past 600 s.
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-c' }] });
    expect(mailer.sent.map((m) => m.to.length)).toEqual([50, 50]);
    expect(clock().getTime()).toBeLessThanOrEqual(deadline.getTime());
    expect(visibility.delays).toEqual([{ messageId: 'sqs-c', seconds: 334 }]);
    expect(messages.peek('c')).toMatchObject({ phase: 'queued', version: 1 });
  });

  it.each([
    { maxSendRate: 5, lane: 'transactional', before: [6, 50] },
    { maxSendRate: 50, lane: 'broadcast', before: [1, 50] },
    { maxSendRate: 14, lane: 'broadcast', before: [26, 50] },
  ] as const)(
    'sends a whole batch of 50-recipient messages before its timeout right after sending $before recipients (maxSendRate $maxSendRate, $lane)',
    async ({ maxSendRate, lane, before }) => {
      // Prepare: the sender's previous invocation sent smaller messages, which pack into the 60 s
      // window worse than 50s do, so the window is still full when the batch begins.
      const plan = laneSendPlans({ maxSendRate, transactionalShare: 0.7 }).find((p) => p.lane === lane);
      if (!plan) throw new Error(`no ${lane} plan`);
      const clock = testClock(T0);
      const pacer = new Pacer(plan.sendRate / plan.maxConcurrency, clock, movingSleep(clock));
      const h = senderHarness({ clock, maxReceiveCount: MAX_RECEIVE_COUNT, pacer });
      for (const n of before) await pacer.acquire(n);
      const records = Array.from({ length: plan.batchSize }, (_, n) =>
        queuedJob(h.messages, `m${n}`, { to: fifty(`m${n}`) }),
      );

      // Act
      const response = await runSenderBatch(
        h.sender,
        records,
        undefined,
        new Date(clock().getTime() + plan.timeoutSeconds * 1000),
      );

      // Assess
      expect(response).toEqual({ batchItemFailures: [] });
      expect(h.mailer.sent).toHaveLength(plan.batchSize);
    },
  );

  it('keeps as much time before its deadline as its slowest send took, when that is more than its reserve', async () => {
    // Prepare: SES answers each call after 20 s (a slow connection); nothing else waits.
    const clock = testClock(T0);
    const h = senderHarness({ clock, maxReceiveCount: MAX_RECEIVE_COUNT, pacer: new Pacer(100, clock) });
    const inner = h.mailer.send.bind(h.mailer);
    h.mailer.send = async (mail) => {
      clock.advance(20_000);
      return inner(mail);
    };
    const records = ['a', 'b', 'c'].map((id) => queuedJob(h.messages, id));
    const deadline = new Date(Date.parse(T0) + 50_000);

    // Act
    const response = await runSenderBatch(h.sender, records, undefined, deadline);

    // Assess: c's send would have started at 40 s and ended at 60 s, past the deadline.
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-c' }] });
    expect(h.mailer.sent).toHaveLength(2);
    expect(clock().getTime()).toBeLessThanOrEqual(deadline.getTime());
    expect(h.messages.peek('c')).toMatchObject({ phase: 'queued' });
  });

  it('waits out a claim a dead attempt still holds instead of burning its receives, then sends', async () => {
    // Prepare: an attempt claimed the message with the sandbox's lease (874 s timeout + 90 s) and died
    // without giving the claim back (its release failed); SQS brings the message back at once.
    const h = senderHarness({ maxReceiveCount: MAX_RECEIVE_COUNT, leaseMs: 964_000 });
    const heldUntil = Date.parse(T0) + 964_000;
    const { body, messageId } = queuedJob(h.messages, 'held', {
      record: { phase: 'sending', claimToken: 'dead', claimUntil: heldUntil },
    });
    let receives = 0;
    let response = { batchItemFailures: [{ itemIdentifier: messageId }] };

    // Act: each receive after the delay the sender asked for, as SQS would.
    while (response.batchItemFailures.length > 0 && receives < MAX_RECEIVE_COUNT) {
      receives += 1;
      response = await runSenderBatch(h.sender, [sqsRecord(body, { messageId, receiveCount: receives })]);
      h.clock.advance((h.visibility.delays.at(-1)?.seconds ?? 0) * 1000);
    }

    // Assess
    expect(h.messages.peek('held')).toMatchObject({ phase: 'sent' });
    expect(receives).toBeLessThanOrEqual(3);
  });

  it('records a record handed back on its last receive failed, with why, before SQS moves it', async () => {
    // Prepare
    const { sender, messages, visibility, deadline } = sandboxSender();
    const records = [
      queuedJob(messages, 'a', { to: fifty('a') }),
      queuedJob(messages, 'b', { to: fifty('b'), receiveCount: MAX_RECEIVE_COUNT }),
    ];

    // Act
    // Its deadline 300 s away: b's turn would come at 333.3 s.
    const response = await runSenderBatch(sender, records, undefined, new Date(deadline.getTime() - 300_000));

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-b' }] });
    expect(visibility.delays).toEqual([{ messageId: 'sqs-b', seconds: 0 }]);
    expect(messages.peek('b')).toMatchObject({
      phase: 'failed',
      redrivable: true,
      recipients: expect.arrayContaining([
        expect.objectContaining({
          status: 'failed',
          reason: expect.stringContaining("the sender's pace leaves no time for this message"),
        }),
      ]),
    });
  });

  it('fails each record on its own when the batch’s suppression read fails, recording the last receive failed', async () => {
    // Prepare
    const h = senderHarness({
      maxReceiveCount: MAX_RECEIVE_COUNT,
      suppressions: {
        getMany: async () => {
          throw new TransientError('DynamoDB is throttling');
        },
      },
    });
    const records = [
      queuedJob(h.messages, 'early'),
      queuedJob(h.messages, 'last', { receiveCount: MAX_RECEIVE_COUNT }),
    ];

    // Act
    const response = await runSenderBatch(h.sender, records);

    // Assess
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: 'sqs-early' }, { itemIdentifier: 'sqs-last' }],
    });
    expect(h.mailer.attempts).toEqual([]);
    expect(h.visibility.delays).toEqual([
      { messageId: 'sqs-early', seconds: 1 },
      { messageId: 'sqs-last', seconds: 0 },
    ]);
    expect(h.messages.peek('early')).toMatchObject({ phase: 'queued' });
    expect(h.messages.peek('last')).toMatchObject({
      phase: 'failed',
      recipients: [
        { status: 'failed', reason: expect.stringContaining('reading the suppression list failed') },
      ],
    });
  });

  it('records a message failed on its last receive whatever the error, unless it was permanent', async () => {
    // Prepare
    const h = senderHarness({ maxReceiveCount: MAX_RECEIVE_COUNT });
    const record = queuedJob(h.messages, 'odd', { receiveCount: MAX_RECEIVE_COUNT });
    h.messages.claim = async () => {
      throw new Error('an unexpected failure');
    };

    // Act
    const response = await runSenderBatch(h.sender, [record]);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-odd' }] });
    expect(h.messages.peek('odd')).toMatchObject({
      phase: 'failed',
      recipients: [{ status: 'failed', reason: expect.stringContaining('an unexpected failure') }],
    });
  });
});

describe('a lane paced by recipients (virtual time)', () => {
  const plan = (maxSendRate: number, lane: 'transactional' | 'broadcast') => {
    const found = laneSendPlans({ maxSendRate, transactionalShare: 0.7 }).find((p) => p.lane === lane);
    if (!found) throw new Error(`no ${lane} plan`);
    return found;
  };

  it('sandbox (maxSendRate 1), broadcast, 30 messages of 50: no invocation passes its deadline, each message is sent once, no receive is burnt', async () => {
    // Prepare
    const broadcast = plan(1, 'broadcast');

    // Act
    const run = await simulateLane({ plan: broadcast, recipients: Array(30).fill(50) });

    // Assess
    expect(run.invocations.filter((i) => i.end > i.deadline)).toEqual([]);
    expect(run.deadLettered).toEqual([]);
    expect(run.phases).toEqual(Array(30).fill('sent'));
    expect(run.sends).toHaveLength(30);
    expect(Math.max(...run.receives.values())).toBe(1);
    // One message is more than the lane's whole 60 s share (0.3/s × 60 s = 18), so the share is kept
    // over the span one message costs a sender, 50 / 0.15 = 333.3 s: 100 recipients.
    const spanSeconds = 50 / (broadcast.sendRate / broadcast.maxConcurrency);
    // The window in whole milliseconds, as clocks keep time (333 333 ms).
    expect(busiestWindow(run.sends, Math.floor(spanSeconds * 1000))).toBeLessThanOrEqual(
      broadcast.sendRate * spanSeconds + 1e-9,
    );
    // And no 60 s window holds more than one message per sender.
    expect(busiestWindow(run.sends, WINDOW_MS)).toBeLessThanOrEqual(50 * broadcast.maxConcurrency);
    // 1500 recipients at 0.3/s: 5000 s.
    expect((run.finishedAt - Date.parse(T0)) / 1000).toBeLessThanOrEqual(5_100);
  });

  it.each([
    { maxSendRate: 1, lane: 'broadcast', recipients: Array(60).fill(1) },
    { maxSendRate: 1, lane: 'transactional', recipients: Array(60).fill(1) },
    { maxSendRate: 14, lane: 'broadcast', recipients: Array(30).fill(50) },
    { maxSendRate: 14, lane: 'transactional', recipients: [...Array(20).fill(1), ...Array(20).fill(50)] },
  ] as const)(
    'keeps the $lane lane at maxSendRate $maxSendRate within its share in every 60 s window, every message sent before its deadline on its first receive',
    async ({ maxSendRate, lane, recipients }) => {
      // Prepare
      const lanePlan = plan(maxSendRate, lane);

      // Act
      const run = await simulateLane({ plan: lanePlan, recipients: [...recipients] });

      // Assess
      expect(run.invocations.filter((i) => i.end > i.deadline)).toEqual([]);
      expect(run.deadLettered).toEqual([]);
      expect(new Set(run.phases)).toEqual(new Set(['sent']));
      expect(busiestWindow(run.sends, WINDOW_MS)).toBeLessThanOrEqual(lanePlan.sendRate * 60 + 1e-9);
      expect(Math.max(...run.receives.values())).toBe(1);
    },
  );

  it.each([14, 50])(
    'at maxSendRate %s with SES answering each call in 30 s, no invocation passes its deadline and every message is sent',
    async (maxSendRate) => {
      for (const lanePlan of laneSendPlans({ maxSendRate, transactionalShare: 0.7 })) {
        // Act
        const run = await simulateLane({ plan: lanePlan, recipients: Array(40).fill(50), sendMs: 30_000 });

        // Assess
        expect(run.invocations.filter((i) => i.end > i.deadline)).toEqual([]);
        expect(run.deadLettered).toEqual([]);
        expect(new Set(run.phases)).toEqual(new Set(['sent']));
      }
    },
  );

  it.each([0.5, 2, 3, 5, 40])(
    'at maxSendRate %s, with messages of 1 to 50 recipients, every lane sends everything before its deadlines on the first receive',
    async (maxSendRate) => {
      // Prepare: every third message has 50 recipients, the others 1 to 30.
      const recipients = Array.from({ length: 25 }, (_, i) => (i % 3 === 0 ? 50 : 1 + ((i * 7) % 30)));

      for (const lanePlan of laneSendPlans({ maxSendRate, transactionalShare: 0.7 })) {
        // Act
        const run = await simulateLane({ plan: lanePlan, recipients });

        // Assess
        expect(run.invocations.filter((i) => i.end > i.deadline)).toEqual([]);
        expect(run.deadLettered).toEqual([]);
        expect(new Set(run.phases)).toEqual(new Set(['sent']));
        expect(Math.max(...run.receives.values())).toBe(1);
      }
    },
  );
});
