import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import type { SendJobPointer } from '../../../lambdas/adapters/job-queue.ts';
import type { SendJob } from '../../../lambdas/domain/message.ts';
import { type PayloadReader, STORED } from '../../../lambdas/sender/app.ts';
import { PermanentError, TransientError } from '../../../lambdas/shared/errors.ts';
import { messageRecord, outgoingMessage, recipient, sendJob, sqsRecord } from '../../support/builders.ts';
import type { InMemoryMessageStore } from '../../support/fakes.ts';
import { senderHarness } from '../../support/unit-sender.ts';

const BUCKET = 'baton-payloads';

/**
 * The payload bucket in memory: `get` answers what was stored, an error queued for the key, or
 * the missing-object error S3PayloadStore throws. `hold()` makes every read wait until released,
 * so a test can see which reads were in flight at once.
 */
class InMemoryPayloads implements PayloadReader {
  readonly bucket = BUCKET;
  readonly reads: string[] = [];
  readonly #objects = new Map<string, Uint8Array>();
  readonly #errors = new Map<string, Error>();
  #held: Array<() => void> | undefined;

  store(key: string, body: string): void {
    this.#objects.set(key, new TextEncoder().encode(body));
  }

  failWith(key: string, error: Error): void {
    this.#errors.set(key, error);
  }

  hold(): void {
    this.#held = [];
  }

  release(): void {
    for (const resume of this.#held?.splice(0) ?? []) resume();
    this.#held = undefined;
  }

  async get(key: string): Promise<Uint8Array> {
    this.reads.push(key);
    if (this.#held) await new Promise<void>((resume) => this.#held?.push(resume));
    const error = this.#errors.get(key);
    if (error) throw error;
    const bytes = this.#objects.get(key);
    if (!bytes) throw new PermanentError(`payload ${key} is missing (expired or never stored): NoSuchKey`);
    return bytes;
  }
}

function setUp(options: { payloads?: InMemoryPayloads | null } = {}) {
  const payloads = options.payloads === null ? undefined : (options.payloads ?? new InMemoryPayloads());
  return { ...senderHarness({ payloads }), payloads };
}

const pointerTo = (job: SendJob, bucket = BUCKET): SendJobPointer => ({
  v: 1,
  id: job.id,
  tenant: job.tenant,
  payload: { bucket, key: `payloads/${job.id}` },
});

/** A queued message whose job went to the payload store; the SQS record carries the pointer. */
function claimChecked(
  messages: InMemoryMessageStore,
  payloads: InMemoryPayloads | undefined,
  id: string,
  to: string[],
  receiveCount = 1,
) {
  const job = sendJob(
    outgoingMessage({
      to: to.map((address) => ({ address })),
      attachments: [
        {
          filename: 'big.bin',
          contentType: 'application/octet-stream',
          content: 'QUJD',
          disposition: 'attachment',
        },
      ],
    }),
    id,
  );
  messages.seed(messageRecord({ id, recipients: to.map((a) => recipient(a)) }));
  payloads?.store(`payloads/${id}`, JSON.stringify(job));
  return { job, record: sqsRecord(JSON.stringify(pointerTo(job)), { messageId: `sqs-${id}`, receiveCount }) };
}

/** A queued message whose job is inline in the SQS record, as before claim checks. */
function inline(messages: InMemoryMessageStore, id: string, to: string[]) {
  const job = sendJob(outgoingMessage({ to: to.map((address) => ({ address })) }), id);
  messages.seed(messageRecord({ id, recipients: to.map((a) => recipient(a)) }));
  return { job, record: sqsRecord(JSON.stringify(job), { messageId: `sqs-${id}` }) };
}

describe('createSender with claim-checked jobs', () => {
  describe('prepare', () => {
    it('reads pointer jobs back and checks their recipients in the one suppression read', async () => {
      // Prepare
      const { sender, messages, suppressions, payloads } = setUp();
      const big = claimChecked(messages, payloads, 'msg_big', ['Ana@Example.org']);
      const small = inline(messages, 'msg_small', ['bob@example.org']);

      // Act
      const batch = await sender.prepare([big.record, small.record]);

      // Assess
      // The large job's body is let go once its recipients are known; it is read again at its turn.
      expect(batch.jobs).toEqual(
        new Map<string, unknown>([
          ['sqs-msg_big', STORED],
          ['sqs-msg_small', small.job],
        ]),
      );
      expect(big.job.message.to).toHaveLength(1);
      expect(payloads?.reads).toEqual(['payloads/msg_big']);
      expect(suppressions.getManyCalls).toEqual([['ana@example.org', 'bob@example.org']]);
    });

    it('reads the payloads of a batch one at a time, so a batch of large jobs never holds them all, before the suppression read', async () => {
      // Prepare
      const { sender, messages, suppressions, payloads } = setUp();
      const records = ['msg_1', 'msg_2', 'msg_3'].map(
        (id, n) => claimChecked(messages, payloads, id, [`r${n}@example.org`]).record,
      );
      payloads?.hold();

      // Act
      const prepared = sender.prepare(records);
      await new Promise((resolve) => setTimeout(resolve, 0));
      const inFlight = [...(payloads?.reads ?? [])];
      const readsBeforeRelease = suppressions.getManyCalls.length;
      payloads?.release();
      await prepared;

      // Assess
      expect(inFlight).toEqual(['payloads/msg_1']);
      expect(payloads?.reads).toEqual(['payloads/msg_1', 'payloads/msg_2', 'payloads/msg_3']);
      expect(readsBeforeRelease).toBe(0);
      expect(suppressions.getManyCalls).toEqual([['r0@example.org', 'r1@example.org', 'r2@example.org']]);
    });

    it('fails only the record whose payload is missing, permanently', async () => {
      // Prepare
      const { sender, messages, suppressions, payloads } = setUp();
      const gone = claimChecked(messages, undefined, 'msg_gone', ['ana@example.org']);
      const fine = claimChecked(messages, payloads, 'msg_fine', ['bob@example.org']);

      // Act
      const batch = await sender.prepare([gone.record, fine.record]);

      // Assess
      expect(batch.jobs).toEqual(
        new Map<string, SendJob | Error | typeof STORED>([
          [
            'sqs-msg_gone',
            new PermanentError('payload payloads/msg_gone is missing (expired or never stored): NoSuchKey'),
          ],
          ['sqs-msg_fine', STORED],
        ]),
      );
      expect(suppressions.getManyCalls).toEqual([['bob@example.org']]);
    });

    it('keeps a transient payload-store failure transient', async () => {
      // Prepare
      const { sender, messages, payloads } = setUp();
      const { record } = claimChecked(messages, payloads, 'msg_1', ['ana@example.org']);
      const slowDown = new TransientError('reading payload payloads/msg_1 failed: SlowDown');
      payloads?.failWith('payloads/msg_1', slowDown);

      // Act
      const batch = await sender.prepare([record]);

      // Assess
      expect(batch.jobs.get('sqs-msg_1')).toBe(slowDown);
    });

    it('treats an unexpected payload-store failure as transient, keeping it as the cause', async () => {
      // Prepare
      const { sender, messages, payloads } = setUp();
      const { record } = claimChecked(messages, payloads, 'msg_1', ['ana@example.org']);
      const reset = new Error('socket hang up');
      payloads?.failWith('payloads/msg_1', reset);

      // Act
      const job = (await sender.prepare([record])).jobs.get('sqs-msg_1');

      // Assess
      expect(job).toEqual(new TransientError('reading send job msg_1 failed'));
      expect((job as Error).cause).toBe(reset);
    });

    it('never reads a bucket other than the configured one', async () => {
      // Prepare
      const { sender, payloads } = setUp();
      const job = sendJob(outgoingMessage(), 'msg_1');
      const record = sqsRecord(JSON.stringify(pointerTo(job, 'someone-elses-bucket')), {
        messageId: 'sqs-1',
      });

      // Act
      const batch = await sender.prepare([record]);

      // Assess
      expect(batch.jobs.get('sqs-1')).toEqual(
        new PermanentError('send job msg_1 points outside the payload bucket'),
      );
      expect(payloads?.reads).toEqual([]);
    });

    it('refuses a stored job that belongs to another message', async () => {
      // Prepare
      const { sender, payloads } = setUp();
      const job = sendJob(outgoingMessage(), 'msg_1');
      payloads?.store('payloads/msg_1', JSON.stringify(sendJob(outgoingMessage(), 'msg_2')));

      // Act
      const batch = await sender.prepare([sqsRecord(JSON.stringify(pointerTo(job)), { messageId: 'sqs-1' })]);

      // Assess
      expect(batch.jobs.get('sqs-1')).toEqual(
        new PermanentError('stored send job msg_1 belongs to another message'),
      );
    });

    it('refuses a stored object that is not a send job', async () => {
      // Prepare
      const { sender, payloads } = setUp();
      const job = sendJob(outgoingMessage(), 'msg_1');
      payloads?.store('payloads/msg_1', '{"truncated":');

      // Act
      const batch = await sender.prepare([sqsRecord(JSON.stringify(pointerTo(job)), { messageId: 'sqs-1' })]);

      // Assess
      expect(batch.jobs.get('sqs-1')).toEqual(
        new PermanentError('stored send job msg_1: send job is not JSON'),
      );
    });

    it('fails a pointer job permanently when no payload store is configured', async () => {
      // Prepare
      const { sender } = setUp({ payloads: null });
      const job = sendJob(outgoingMessage(), 'msg_1');

      // Act
      const batch = await sender.prepare([sqsRecord(JSON.stringify(pointerTo(job)), { messageId: 'sqs-1' })]);

      // Assess
      expect(batch.jobs.get('sqs-1')).toEqual(
        new PermanentError('send job msg_1 is stored in a payload bucket, but none is configured'),
      );
    });
  });

  describe('sendRecord', () => {
    it('sends the message read back from the payload store, attachment included', async () => {
      // Prepare
      const { sender, messages, mailer, payloads, visibility } = setUp();
      const { record } = claimChecked(messages, payloads, 'msg_1', ['ana@example.org']);

      // Act
      await sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      expect(mailer.sent.map((m) => m.to)).toEqual([['ana@example.org']]);
      const raw = Buffer.from(mailer.sent[0]?.raw ?? []).toString('latin1');
      expect(raw).toContain('filename=big.bin');
      expect(raw).toContain('QUJD');
      expect(messages.peek('msg_1')).toMatchObject({ phase: 'sent' });
      expect(visibility.delays).toEqual([]);
    });

    it('fails a record whose payload is missing without sending it, records it failed for good and lets it reach the DLQ at once', async () => {
      // Prepare
      const { sender, messages, mailer, visibility } = setUp();
      const { record } = claimChecked(messages, undefined, 'msg_1', ['ana@example.org']);

      // Act
      const outcome = sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      await expect(outcome).rejects.toThrow(
        new PermanentError('payload payloads/msg_1 is missing (expired or never stored): NoSuchKey'),
      );
      expect(mailer.attempts).toEqual([]);
      expect(visibility.delays).toEqual([{ messageId: 'sqs-msg_1', seconds: 0 }]);
      const stored = messages.peek('msg_1');
      expect(stored).toMatchObject({ phase: 'failed' });
      expect(stored?.redrivable).toBeUndefined();
      expect(stored?.recipients[0]?.reason).toBe(
        'Baton cannot send this message: payload payloads/msg_1 is missing (expired or never stored): NoSuchKey.',
      );
    });

    it('backs off and retries a record whose payload could not be read for now', async () => {
      // Prepare
      const { sender, messages, mailer, visibility, payloads } = setUp();
      const { record } = claimChecked(messages, payloads, 'msg_1', ['ana@example.org'], 3);
      const slowDown = new TransientError('reading payload payloads/msg_1 failed: SlowDown');
      payloads?.failWith('payloads/msg_1', slowDown);

      // Act
      const outcome = sender.sendRecord(record, await sender.prepare([record]));

      // Assess
      await expect(outcome).rejects.toBe(slowDown);
      // Third receive: a window of 2 × 2² = 8 s, half of it.
      expect(visibility.delays).toEqual([{ messageId: 'sqs-msg_1', seconds: 4 }]);
      expect(mailer.attempts).toEqual([]);
      expect(messages.peek('msg_1')).not.toHaveProperty('claimToken');
    });
  });
});
