import { describe, expect, it } from 'vitest';
import { DynamoMessageStore } from '../../lambdas/adapters/message-store.ts';
import { giveUp, markGaveUp, type SendDeps, sendJob } from '../../lambdas/domain/delivery/send.ts';
import type { MessageRecord } from '../../lambdas/domain/message.ts';
import { toMessageView } from '../../lambdas/domain/reporting/status.ts';
import { CONFIRMATION_WINDOW_MS } from '../../lambdas/sender/app.ts';
import { ConfirmationPendingError, TransientError, UncertainSendError } from '../../lambdas/shared/errors.ts';
import { sendJob as job, messageRecord, outgoingMessage, recipient } from '../support/builders.ts';
import { mustClaim, raceClaims } from '../support/claims.ts';
import { FakeMailer } from '../support/fakes.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

// Issue 4 part 8 against DynamoDB (dynalite, the Messages table provisioned from the template):
// the claim's condition lets a message Baton gave up on (failed, redrivable) be claimed again by a
// DLQ redrive exactly once, and never one that failed for good.

const NOW = new Date('2030-01-01T12:00:00.000Z');
const LATER = new Date('2030-01-01T12:30:00.000Z');
const LEASE_MS = 120_000;
const REASON =
  'Baton gave up after 10 attempts: SES is unavailable or throttling (TooManyRequestsException). ' +
  'The message is in the dead-letter queue; redriving it sends it.';

let ids = 0;
const nextId = (): string => `msg_redrive_${String(++ids).padStart(3, '0')}`;

describe('DynamoMessageStore and the redrive of a message Baton gave up on (dynalite)', () => {
  let store: DynamoMessageStore;

  withProvisionedStack((stack) => {
    store = new DynamoMessageStore(stack.clients.doc, stack.tables.messages);
  });

  /** A queued record as the api writes it, to one recipient. */
  const queued = (overrides: Partial<MessageRecord> = {}): MessageRecord =>
    messageRecord({
      id: nextId(),
      createdAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
      recipients: [recipient('ana@example.org', 'queued', { updatedAt: NOW.toISOString() })],
      events: [{ type: 'accepted', at: NOW.toISOString() }],
      ...overrides,
    });

  /** Writes a record Baton gave up on: failed, redrivable, with the last error on its recipients. */
  const gaveUpOn = async (): Promise<MessageRecord> => {
    const record = markGaveUp(queued({ version: 3 }), REASON, NOW);
    await store.create(record);
    return record;
  };

  const deps = (mailer: FakeMailer, at = LATER): SendDeps => ({
    messages: store,
    mailer,
    clock: () => at,
    leaseMs: LEASE_MS,
    confirmationWindowMs: CONFIRMATION_WINDOW_MS,
    compose: async (_message, id) => new TextEncoder().encode(`raw:${id}`),
  });

  describe('claim', () => {
    it('claims a failed, redrivable message: phase sending, a lease, the record returned', async () => {
      // Prepare
      const record = await gaveUpOn();

      // Act
      const result = await store.claim(record.id, LATER, LEASE_MS);

      // Assess
      if (result.outcome !== 'claimed') throw new Error(`expected a claim, got ${result.outcome}`);
      expect(result.record).toEqual({
        ...record,
        phase: 'sending',
        claimToken: result.token,
        claimUntil: LATER.getTime() + LEASE_MS,
        version: record.version + 1,
      });
    });

    it('gives exactly one of 20 concurrent claims on a redriven message, the others busy', async () => {
      // Prepare
      const record = await gaveUpOn();

      // Act: 20 claims at once (raceClaims fails the test unless one is claimed and 19 busy)
      const { token, stored } = await raceClaims(store, record.id, LATER, LEASE_MS);

      // Assess
      expect(stored?.claimToken).toBe(token);
      expect(stored?.version).toBe(record.version + 1);
    });

    it('answers done for a message that failed for good (not redrivable) and changes nothing', async () => {
      // Prepare
      const record = queued({
        phase: 'failed',
        recipients: [recipient('ana@example.org', 'failed', { reason: 'SES rejected the message' })],
      });
      await store.create(record);

      // Act
      const result = await store.claim(record.id, LATER, LEASE_MS);

      // Assess
      expect(result).toEqual({ outcome: 'done', record });
      expect(await store.get(record.id)).toEqual(record);
    });

    it('answers done once the redriven message was sent', async () => {
      // Prepare
      const record = await gaveUpOn();
      await sendJob(deps(new FakeMailer()), job(outgoingMessage(), record.id), new Map());

      // Act
      const result = await store.claim(record.id, LATER, LEASE_MS);

      // Assess
      expect(result.outcome).toBe('done');
    });

    it('keeps a released redrive claimable, redrivable and with its failed recipients', async () => {
      // Prepare
      const record = await gaveUpOn();
      const first = await mustClaim(store, record.id, LATER, LEASE_MS);
      await store.release(record.id, first.token);

      // Act
      const second = await store.claim(record.id, LATER, LEASE_MS);

      // Assess
      expect(second.outcome).toBe('claimed');
      expect(second.outcome === 'claimed' ? second.record : undefined).toMatchObject({
        redrivable: true,
        recipients: [{ status: 'failed', reason: REASON }],
      });
    });
  });

  describe('giveUp through the adapter', () => {
    it('records a queued message failed and redrivable, as the status API then shows it', async () => {
      // Prepare
      const record = queued();
      await store.create(record);

      // Act
      const recorded = await giveUp(store, record.id, REASON, NOW);

      // Assess
      expect(recorded).toEqual(await store.get(record.id));
      const stored = (await store.get(record.id)) as MessageRecord;
      expect(stored).toMatchObject({ phase: 'failed', redrivable: true, version: record.version + 1 });
      expect(toMessageView(stored, new Date()).status).toBe('failed');
      expect(toMessageView(stored, new Date()).recipients).toEqual([
        { address: 'ana@example.org', status: 'failed', reason: REASON, updatedAt: NOW.toISOString() },
      ]);
    });

    it('leaves a message under a live claim alone', async () => {
      // Prepare
      const record = queued();
      await store.create(record);
      await store.claim(record.id, NOW, LEASE_MS);
      const held = await store.get(record.id);

      // Act
      const recorded = await giveUp(store, record.id, REASON, NOW);

      // Assess
      expect(recorded).toBeUndefined();
      expect(await store.get(record.id)).toEqual(held);
    });
  });

  describe('sendJob on a redriven message', () => {
    it('sends it once and stores it sent, with redrivable and the claim removed from the item', async () => {
      // Prepare
      const record = await gaveUpOn();
      const mailer = new FakeMailer();

      // Act
      const outcome = await sendJob(deps(mailer), job(outgoingMessage(), record.id), new Map());

      // Assess
      expect(outcome).toBe('sent');
      expect(mailer.sent.map((m) => m.to)).toEqual([['ana@example.org']]);
      const stored = (await store.get(record.id)) as MessageRecord;
      expect(stored).not.toHaveProperty('redrivable');
      expect(stored).not.toHaveProperty('claimToken');
      expect(stored).not.toHaveProperty('claimUntil');
      expect(toMessageView(stored, new Date())).toMatchObject({
        status: 'sent',
        recipients: [{ address: 'ana@example.org', status: 'sent', reason: null }],
      });
    });

    it('calls SES once when 20 deliveries of the redriven job race', async () => {
      // Prepare
      const record = await gaveUpOn();
      const mailer = new FakeMailer();
      const send = deps(mailer);

      // Act
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, () =>
          sendJob(send, job(outgoingMessage(), record.id), new Map()).catch((error: unknown) => error),
        ),
      );

      // Assess
      expect(mailer.attempts).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'sent')).toHaveLength(1);
      // The losers found the claim held (retry later) or the message already sent (acknowledge).
      const busy = `message ${record.id} is being sent by another attempt`;
      const others = outcomes
        .filter((o) => o !== 'sent')
        .map((o) => (o instanceof TransientError ? o.message : o));
      expect(others).toHaveLength(19);
      expect(others.filter((o) => o !== 'duplicate' && o !== busy)).toEqual([]);
      expect((await store.get(record.id))?.phase).toBe('sent');
    });
  });

  describe('an SES answer that was lost', () => {
    it('holds the claim in DynamoDB for the confirmation window, then lets one retry send once', async () => {
      // Prepare
      const record = queued();
      await store.create(record);
      const mailer = new FakeMailer().willAnswer(
        new UncertainSendError('SES answered InternalFailure (500)', { requestId: 'req-9' }),
      );
      const first = await sendJob(deps(mailer, NOW), job(outgoingMessage(), record.id), new Map()).catch(
        (error: unknown) => error,
      );
      const justBefore = new Date(NOW.getTime() + CONFIRMATION_WINDOW_MS - 1000);
      const justAfter = new Date(NOW.getTime() + CONFIRMATION_WINDOW_MS + 1000);

      // Act
      const early = await sendJob(
        deps(mailer, justBefore),
        job(outgoingMessage(), record.id),
        new Map(),
      ).catch((error: unknown) => error);
      const late = await Promise.all(
        Array.from({ length: 5 }, () =>
          sendJob(deps(mailer, justAfter), job(outgoingMessage(), record.id), new Map()).catch(
            (error: unknown) => error,
          ),
        ),
      );

      // Assess
      expect(first).toBeInstanceOf(ConfirmationPendingError);
      expect(early).toMatchObject({ retryAfterMs: 1000 });
      expect(late.filter((o) => o === 'sent')).toHaveLength(1);
      expect(mailer.attempts).toHaveLength(2);
      expect(mailer.sent).toHaveLength(1);
      const stored = await store.get(record.id);
      expect(stored?.phase).toBe('sent');
      expect(stored).not.toHaveProperty('uncertain');
      expect(stored?.events.some((e) => e.type === 'retrying' && e.detail?.sesRequestId === 'req-9')).toBe(
        true,
      );
    });

    it('refuses a redrive claim on a message given up on inside its window until the window ends, then one of 5 sends', async () => {
      // Prepare: the uncertain attempt was the last receive; Baton gave up on it at once.
      const record = queued();
      await store.create(record);
      const mailer = new FakeMailer().willAnswer(
        new UncertainSendError('SES answered InternalFailure (500)'),
      );
      await sendJob(deps(mailer, NOW), job(outgoingMessage(), record.id), new Map()).catch(() => undefined);
      await giveUp(store, record.id, REASON, NOW);
      const inside = new Date(NOW.getTime() + 10_000);
      const after = new Date(NOW.getTime() + CONFIRMATION_WINDOW_MS + 1000);

      // Act: a DLQ redrive 10 s later, then five deliveries of it after the window
      const early = await sendJob(deps(mailer, inside), job(outgoingMessage(), record.id), new Map()).catch(
        (error: unknown) => error,
      );
      const late = await Promise.all(
        Array.from({ length: 5 }, () =>
          sendJob(deps(mailer, after), job(outgoingMessage(), record.id), new Map()).catch(
            (error: unknown) => error,
          ),
        ),
      );

      // Assess
      expect(early).toMatchObject({ retryAfterMs: CONFIRMATION_WINDOW_MS - 10_000 });
      expect(late.filter((o) => o === 'sent')).toHaveLength(1);
      expect(mailer.attempts).toHaveLength(2);
      expect(await store.get(record.id)).toMatchObject({ phase: 'sent', recipients: [{ status: 'sent' }] });
    });
  });
});
