import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoMessageStore } from '../../lambdas/adapters/message-store.ts';
import type { MessageRecord, Phase } from '../../lambdas/domain/message.ts';
import { ConflictError } from '../../lambdas/shared/errors.ts';
import { mustClaim, raceClaims } from '../support/claims.ts';
import type { ProvisionedStack } from '../support/emulators.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

const NOW = new Date('2030-01-01T12:00:00.000Z');
const LEASE_MS = 60_000;

let ids = 0;
const nextId = (): string => `msg_${String(++ids).padStart(4, '0')}`;

const messageRecord = (id: string, overrides: Partial<MessageRecord> = {}): MessageRecord => ({
  id,
  tenant: 'acme',
  stream: 'transactional',
  phase: 'queued',
  from: 'Shop <orders@example.com>',
  subject: 'Your receipt',
  createdAt: NOW.toISOString(),
  updatedAt: NOW.toISOString(),
  expiresAt: Math.floor(NOW.getTime() / 1000) + 30 * 86_400,
  recipients: [
    { address: 'ana@example.org', kind: 'to', status: 'queued', reason: null, updatedAt: NOW.toISOString() },
  ],
  events: [{ type: 'accepted', at: NOW.toISOString() }],
  seen: [],
  version: 0,
  ...overrides,
});

describe('DynamoMessageStore against dynalite (Messages table provisioned from the template)', () => {
  let stack: ProvisionedStack;
  let store: DynamoMessageStore;

  withProvisionedStack((started) => {
    stack = started;
    store = new DynamoMessageStore(stack.clients.doc, stack.tables.messages);
  });

  const created = async (overrides: Partial<MessageRecord> = {}): Promise<MessageRecord> => {
    const record = messageRecord(nextId(), overrides);
    await store.create(record);
    return record;
  };

  /** Claims and fails the test unless the claim was taken; returns the token and the new record. */
  const claimed = (id: string, now = NOW) => mustClaim(store, id, now, LEASE_MS);

  describe('create', () => {
    it('stores the record so that get returns it unchanged', async () => {
      // Prepare
      const record = messageRecord(nextId());

      // Act
      await store.create(record);

      // Assess
      expect(await store.get(record.id)).toEqual(record);
    });

    it('refuses a second record with the same id with ConflictError and keeps the first', async () => {
      // Prepare
      const first = await created();
      const second = messageRecord(first.id, { subject: 'Impostor' });

      // Act
      const outcome = store.create(second);

      // Assess
      await expect(outcome).rejects.toBeInstanceOf(ConflictError);
      await expect(outcome).rejects.toThrow(`message ${first.id} exists already`);
      expect((await store.get(first.id))?.subject).toBe('Your receipt');
    });

    it('answers undefined for an id that was never created', async () => {
      // Act
      const found = await store.get('msg_never');

      // Assess
      expect(found).toBeUndefined();
    });
  });

  describe('claim', () => {
    it('claims a queued message and returns it in phase sending with the lease and token stored', async () => {
      // Prepare
      const record = await created();

      // Act
      const result = await store.claim(record.id, NOW, LEASE_MS);

      // Assess
      if (result.outcome !== 'claimed') throw new Error(`expected claimed, got ${result.outcome}`);
      expect(result.token).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(result.record).toEqual({
        ...record,
        phase: 'sending',
        claimToken: result.token,
        claimUntil: NOW.getTime() + LEASE_MS,
        version: 1,
      });
      expect(await store.get(record.id)).toEqual(result.record);
    });

    it('answers busy to a second claim while the first lease is live, and leaves the holder in place', async () => {
      // Prepare
      const record = await created();
      const first = await claimed(record.id);

      // Act
      const second = await store.claim(record.id, new Date(NOW.getTime() + LEASE_MS - 1), LEASE_MS);

      // Assess
      expect(second).toEqual({ outcome: 'busy', record: first.record });
    });

    it('lets a later attempt take over once the lease has expired, with a new token and lease', async () => {
      // Prepare
      const record = await created();
      const first = await claimed(record.id);
      const later = new Date(NOW.getTime() + LEASE_MS + 1);

      // Act
      const takeover = await store.claim(record.id, later, LEASE_MS);

      // Assess
      if (takeover.outcome !== 'claimed') throw new Error(`expected claimed, got ${takeover.outcome}`);
      expect(takeover.token).not.toBe(first.token);
      expect(takeover.record).toMatchObject({
        phase: 'sending',
        claimToken: takeover.token,
        claimUntil: later.getTime() + LEASE_MS,
        version: 2,
      });
    });

    it('still answers busy at the exact instant the lease ends (claimUntil is exclusive of takeover)', async () => {
      // Prepare
      const record = await created();
      await claimed(record.id);

      // Act
      const atExpiry = await store.claim(record.id, new Date(NOW.getTime() + LEASE_MS), LEASE_MS);

      // Assess
      expect(atExpiry.outcome).toBe('busy');
    });

    it.each<Phase>(['sent', 'failed', 'suppressed', 'rejected', 'held'])(
      'answers done for a message in phase %s and changes nothing',
      async (phase) => {
        // Prepare
        const record = await created({ phase });

        // Act
        const result = await store.claim(record.id, NOW, LEASE_MS);

        // Assess
        expect(result).toEqual({ outcome: 'done', record });
      },
    );

    it('answers missing for an unknown id and creates no item', async () => {
      // Prepare
      const id = nextId();

      // Act
      const result = await store.claim(id, NOW, LEASE_MS);

      // Assess
      expect(result).toEqual({ outcome: 'missing' });
      const raw = await stack.clients.dynamo.send(
        new GetItemCommand({
          TableName: stack.tables.messages,
          Key: { id: { S: id } },
          ConsistentRead: true,
        }),
      );
      expect(raw.Item).toBeUndefined();
    });

    it('gives exactly one of 20 concurrent claims on the same queued message', async () => {
      // Prepare
      const record = await created();

      // Act: 20 claims at once (raceClaims fails the test unless one is claimed and 19 busy)
      const { token, stored } = await raceClaims(store, record.id, NOW, LEASE_MS);

      // Assess
      expect(stored?.claimToken).toBe(token);
      expect(stored?.version).toBe(1);
    });
  });

  describe('release', () => {
    it('puts the message back to queued and removes the claim when the holder releases it', async () => {
      // Prepare
      const record = await created();
      const { token } = await claimed(record.id);

      // Act
      await store.release(record.id, token);

      // Assess
      const stored = await store.get(record.id);
      expect(stored).toEqual({ ...record, phase: 'queued', version: 2 });
      expect((await store.claim(record.id, NOW, LEASE_MS)).outcome).toBe('claimed');
    });

    it('ignores a release with a token other than the holder’s and keeps the claim', async () => {
      // Prepare
      const record = await created();
      const holder = await claimed(record.id);

      // Act
      await store.release(record.id, 'someone-elses-token');

      // Assess
      expect(await store.get(record.id)).toEqual(holder.record);
    });

    it('ignores a release from an attempt whose lease was taken over', async () => {
      // Prepare
      const record = await created();
      const stale = await claimed(record.id);
      const current = await claimed(record.id, new Date(NOW.getTime() + LEASE_MS + 1));

      // Act
      await store.release(record.id, stale.token);

      // Assess
      expect(await store.get(record.id)).toEqual(current.record);
    });

    it('ignores a release after the message was sent', async () => {
      // Prepare
      const record = await created();
      const { token, record: sending } = await claimed(record.id);
      const sent: MessageRecord = { ...sending, phase: 'sent', version: sending.version + 1 };
      await store.update(sent, sending.version, token);

      // Act
      await store.release(record.id, token);

      // Assess
      expect(await store.get(record.id)).toEqual(sent);
    });
  });

  describe('update', () => {
    it('replaces the record when the version matches and the claim is still held', async () => {
      // Prepare
      const record = await created();
      const { token, record: sending } = await claimed(record.id);
      const next: MessageRecord = {
        ...sending,
        phase: 'sent',
        sesMessageId: '0100018f-ses-1',
        version: sending.version + 1,
      };

      // Act
      await store.update(next, sending.version, token);

      // Assess
      expect(await store.get(record.id)).toEqual(next);
    });

    it('refuses a write based on a stale version with ConflictError and keeps the newer record', async () => {
      // Prepare
      const record = await created();
      const newer: MessageRecord = { ...record, subject: 'Newer', version: 1 };
      await store.update(newer, 0);
      const stale: MessageRecord = { ...record, subject: 'Stale', version: 1 };

      // Act
      const outcome = store.update(stale, 0);

      // Assess
      await expect(outcome).rejects.toBeInstanceOf(ConflictError);
      await expect(outcome).rejects.toThrow(`message ${record.id} changed since version 0`);
      expect(await store.get(record.id)).toEqual(newer);
    });

    it('refuses a write with the wrong claim token with ConflictError even when the version matches', async () => {
      // Prepare
      const record = await created();
      const { record: sending } = await claimed(record.id);
      const next: MessageRecord = { ...sending, phase: 'sent', version: sending.version + 1 };

      // Act
      const outcome = store.update(next, sending.version, 'not-the-holder');

      // Assess
      await expect(outcome).rejects.toBeInstanceOf(ConflictError);
      await expect(outcome).rejects.toThrow(`message ${record.id} changed since version ${sending.version}`);
      expect(await store.get(record.id)).toEqual(sending);
    });

    it('refuses a write from a holder whose lease was taken over', async () => {
      // Prepare
      const record = await created();
      const stale = await claimed(record.id);
      const current = await claimed(record.id, new Date(NOW.getTime() + LEASE_MS + 1));
      const next: MessageRecord = { ...current.record, phase: 'sent', version: current.record.version + 1 };

      // Act
      const outcome = store.update(next, current.record.version, stale.token);

      // Assess
      await expect(outcome).rejects.toBeInstanceOf(ConflictError);
      expect(await store.get(record.id)).toEqual(current.record);
    });

    it('refuses to update a message that does not exist', async () => {
      // Prepare
      const record = messageRecord(nextId());

      // Act
      const outcome = store.update({ ...record, version: 1 }, 0);

      // Assess
      await expect(outcome).rejects.toBeInstanceOf(ConflictError);
      expect(await store.get(record.id)).toBeUndefined();
    });
  });

  describe('findBySesMessageId', () => {
    it('finds the message through the bySesMessageId index and returns the whole record', async () => {
      // Prepare
      const record = await created();
      const sent: MessageRecord = { ...record, phase: 'sent', sesMessageId: `ses-${record.id}`, version: 1 };
      await store.update(sent, 0);
      await created({ sesMessageId: 'ses-some-other-message' });

      // Act
      const found = await store.findBySesMessageId(`ses-${record.id}`);

      // Assess
      expect(found).toEqual(sent);
    });

    it('answers undefined for an SES message id no record carries', async () => {
      // Act
      const found = await store.findBySesMessageId('ses-unknown');

      // Assess
      expect(found).toBeUndefined();
    });
  });
});
