/**
 * One delivery lane run on virtual time: a queue with SQS's receive counts, visibility and
 * dead-letter move, `maxConcurrency` sender instances (each with its own Pacer, as each Lambda
 * instance has) taking batches of the plan's size with the plan's timeout as their deadline, and
 * every SES send logged with its time and recipients. Sleeps move the virtual clock instead of
 * waiting, so an hour of sandbox pacing runs in well under a second.
 */
import type { SQSRecord } from 'aws-lambda';
import { Pacer, recipientCount } from '../../lambdas/domain/delivery/pacer.ts';
import type { OutboundMail } from '../../lambdas/domain/ports.ts';
import { createSender } from '../../lambdas/sender/app.ts';
import type { LaneSendPlan } from '../../lib/config.ts';
import { sqsRecord, T0 } from './builders.ts';
import {
  FakeMailer,
  InMemoryApiKeys,
  InMemoryHeldJobs,
  InMemoryMessageStore,
  InMemorySuppressionStore,
} from './fakes.ts';
import { runSenderBatch } from './sender-batch.ts';
import { queuedJob } from './unit-sender.ts';

/** Virtual time: `sleep` parks the caller until `run` moves the clock to its wake-up time. */
class VirtualTime {
  now = Date.parse(T0);
  readonly #timers: Array<{ at: number; wake: () => void }> = [];
  readonly clock = (): Date => new Date(this.now);
  readonly sleep = (ms: number): Promise<void> =>
    new Promise((wake) => {
      this.#timers.push({ at: this.now + Math.max(0, ms), wake });
    });

  /**
   * Runs `tasks` to the end. Each task is always either running or asleep on one timer, so once every
   * unfinished task sleeps (MIME building and the batch processor take several event-loop turns to get
   * there) the clock jumps to the earliest wake-up.
   */
  async run(tasks: readonly Promise<void>[]): Promise<void> {
    let finished = 0;
    const finish = () => {
      finished += 1;
    };
    for (const t of tasks) t.then(finish, finish);
    for (;;) {
      for (let turns = 0; this.#timers.length < tasks.length - finished; turns++) {
        if (turns > 10_000) throw new Error('a task neither finishes nor sleeps');
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (finished === tasks.length) return;
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers.shift();
      if (next === undefined) throw new Error('nothing is running and nothing sleeps');
      this.now = Math.max(this.now, next.at);
      next.wake();
    }
  }
}

interface QueuedMessage {
  readonly sqsId: string;
  readonly body: string;
  receives: number;
  visibleAt: number;
}

export interface LaneRun {
  /** Each invocation's start, end and deadline (epoch ms). */
  readonly invocations: ReadonlyArray<{ start: number; end: number; deadline: number }>;
  /** Each SES send: when, and to how many recipients. */
  readonly sends: ReadonlyArray<{ at: number; recipients: number }>;
  /** Baton ids of the jobs SQS moved to the dead-letter queue. */
  readonly deadLettered: readonly string[];
  /** Receives per Baton id. */
  readonly receives: ReadonlyMap<string, number>;
  readonly messages: InMemoryMessageStore;
  /** Each message's phase at the end, in queueing order. */
  readonly phases: readonly (string | undefined)[];
  /** When the last job left the queue (epoch ms). */
  readonly finishedAt: number;
}

export interface LaneSimulation {
  readonly plan: LaneSendPlan;
  /** Messages to queue, each with its number of recipients. */
  readonly recipients: readonly number[];
  /** @default 10 */
  readonly maxReceiveCount?: number;
  /** How long each SES call takes, in virtual milliseconds. @default 0 */
  readonly sendMs?: number;
}

/** Most recipients any window of `windowMs` holds: for each send, the window ending with it. */
export function busiestWindow(sends: LaneRun['sends'], windowMs: number): number {
  let most = 0;
  for (const s of sends) {
    const total = sends
      .filter((o) => o.at > s.at - windowMs && o.at <= s.at)
      .reduce((sum, o) => sum + o.recipients, 0);
    most = Math.max(most, total);
  }
  return most;
}

export async function simulateLane(options: LaneSimulation): Promise<LaneRun> {
  const { plan } = options;
  const maxReceiveCount = options.maxReceiveCount ?? 10;
  const time = new VirtualTime();
  const messages = new InMemoryMessageStore();
  const suppressions = new InMemorySuppressionStore();
  const sends: Array<{ at: number; recipients: number }> = [];
  const fake = new FakeMailer();
  const mailer = {
    send: async (mail: OutboundMail) => {
      sends.push({ at: time.now, recipients: recipientCount(mail) });
      if (options.sendMs) await time.sleep(options.sendMs);
      return fake.send(mail);
    },
  };
  const queue = new Map<string, QueuedMessage>();
  const receives = new Map<string, number>();
  const deadLettered: string[] = [];
  const visibilityMs = (6 * plan.timeoutSeconds + 1) * 1000;
  const visibility = {
    async delay(record: SQSRecord, seconds: number) {
      const m = queue.get(record.messageId);
      if (m) m.visibleAt = time.now + seconds * 1000;
    },
  };
  const ids = options.recipients.map((_, n) => `msg_${String(n).padStart(3, '0')}`);
  for (const [n, count] of options.recipients.entries()) {
    const id = ids[n] ?? '';
    const to = Array.from({ length: count }, (_, r) => `r${r}.${id}@example.org`);
    const { body } = queuedJob(messages, id, { to });
    queue.set(`sqs-${id}`, { sqsId: `sqs-${id}`, body, receives: 0, visibleAt: time.now });
  }
  const idOf = (m: QueuedMessage) => m.sqsId.slice('sqs-'.length);

  const invocations: Array<{ start: number; end: number; deadline: number }> = [];
  let finishedAt = time.now;
  const poller = async () => {
    const sender = createSender({
      messages,
      suppressions,
      mailer,
      visibility,
      keys: new InMemoryApiKeys(),
      held: new InMemoryHeldJobs(),
      clock: time.clock,
      random: () => 0.5,
      maxReceiveCount,
      leaseMs: (plan.timeoutSeconds + 90) * 1000,
      // Each instance paces itself to its part of the lane's rate, as the handler does.
      pacer: new Pacer(plan.sendRate / plan.maxConcurrency, time.clock, time.sleep),
    });
    while (queue.size > 0) {
      const batch: SQSRecord[] = [];
      const visible = [...queue.values()]
        .filter((m) => m.visibleAt <= time.now)
        .sort((a, b) => a.visibleAt - b.visibleAt);
      for (const m of visible) {
        if (batch.length === plan.batchSize) break;
        // SQS moves a message past its maxReceiveCount to the DLQ instead of delivering it again.
        if (m.receives >= maxReceiveCount) {
          queue.delete(m.sqsId);
          deadLettered.push(idOf(m));
          continue;
        }
        m.receives += 1;
        m.visibleAt = time.now + visibilityMs;
        receives.set(idOf(m), m.receives);
        batch.push(sqsRecord(m.body, { messageId: m.sqsId, receiveCount: m.receives }));
      }
      if (batch.length === 0) {
        const next = Math.min(...[...queue.values()].map((m) => m.visibleAt));
        await time.sleep(Math.max(1000, next - time.now));
        continue;
      }
      const start = time.now;
      const deadline = start + plan.timeoutSeconds * 1000;
      const response = await runSenderBatch(sender, batch, undefined, new Date(deadline));
      invocations.push({ start, end: time.now, deadline });
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      for (const r of batch) if (!failed.has(r.messageId)) queue.delete(r.messageId);
      if (queue.size === 0) finishedAt = time.now;
    }
  };
  const pollers = Array.from({ length: plan.maxConcurrency }, poller);
  await time.run(pollers);
  await Promise.all(pollers);
  const phases = ids.map((id) => messages.peek(id)?.phase);
  return { invocations, sends, deadLettered, receives, messages, phases, finishedAt };
}
