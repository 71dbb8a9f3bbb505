import '../../support/quiet-powertools.ts';
import { describe, expect, it, vi } from 'vitest';
import { HOLD_DAYS, markHeld } from '../../../lambdas/domain/guard/hold.ts';
import type { KeyGuardMark } from '../../../lambdas/domain/guard/state.ts';
import type { ApiKey } from '../../../lambdas/domain/keys/api-key.ts';
import { CachedApiKeys } from '../../../lambdas/domain/keys/key-cache.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { T0 } from '../../support/builders.ts';
import { InMemoryApiKeys, issueApiKey, testClock } from '../../support/fakes.ts';
import { guardDecisionFor } from '../../support/guard.ts';
import { queuedJob, senderHarness } from '../../support/unit-sender.ts';

/** Key `key-1` of tenant-a, active unless told otherwise, with the guard's mark. */
function apiKey(guard: KeyGuardMark = {}, overrides: Partial<ApiKey> = {}): ApiKey {
  return { ...issueApiKey().key, keyId: 'key-1', tenant: 'tenant-a', guard, ...overrides };
}

const NOW = new Date(T0);
const pausedBroadcast: KeyGuardMark = {
  tenant: { actions: [guardDecisionFor('pauseBroadcast', {}, NOW)] },
};
const holdingAll: KeyGuardMark = { tenant: { actions: [guardDecisionFor('holdAll', { rate: 0.08 }, NOW)] } };

describe('the sender re-checks the abuse guard before each send', () => {
  it('holds queued broadcast mail of a tenant whose broadcast lane is paused, and acknowledges it', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, apiKeys, held } = senderHarness();
    apiKeys.add(apiKey(pausedBroadcast));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1', stream: 'broadcast' });
    const batch = await sender.prepare([record]);

    // Act
    await sender.sendRecord(record, batch);

    // Assess: not sent, the record held with the reason, its job kept, the queue message acknowledged.
    expect(mailer.attempts).toEqual([]);
    const stored = messages.peek('msg_1');
    expect(stored).toMatchObject({
      phase: 'held',
      hold: {
        at: T0,
        until: new Date(NOW.getTime() + HOLD_DAYS * 86_400_000).toISOString(),
        action: 'pauseBroadcast',
        signal: 'hardBounceRate',
      },
      recipients: [{ status: 'held' }],
    });
    expect(stored?.events.at(-1)).toMatchObject({ type: 'held', detail: { action: 'pauseBroadcast' } });
    const kept = await held.get('tenant-a', 'msg_1');
    expect(kept).toMatchObject({ lane: 'broadcast', keyId: 'key-1', action: 'pauseBroadcast' });
    expect(await held.job(kept as NonNullable<typeof kept>)).toMatchObject({ id: 'msg_1', keyId: 'key-1' });
    expect(visibility.delays).toEqual([]);
    expect(batch.outcomes.drain()).toEqual({ held: 1 });
  });

  it('keeps sending transactional mail while broadcast is paused', async () => {
    // Prepare
    const { sender, messages, mailer, apiKeys, held } = senderHarness();
    apiKeys.add(apiKey(pausedBroadcast));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1', stream: 'transactional' });

    // Act
    await sender.sendRecord(record, await sender.prepare([record]));

    // Assess
    expect(mailer.sent).toHaveLength(1);
    expect(messages.peek('msg_1')?.phase).toBe('sent');
    expect(held.entries.size).toBe(0);
  });

  it('holds mail of every lane when the tenant is held', async () => {
    // Prepare
    const { sender, messages, mailer, apiKeys } = senderHarness();
    apiKeys.add(apiKey(holdingAll));
    const records = [
      queuedJob(messages, 'msg_t', { keyId: 'key-1', stream: 'transactional' }),
      queuedJob(messages, 'msg_b', { keyId: 'key-1', stream: 'broadcast' }),
    ];
    const batch = await sender.prepare(records);

    // Act
    for (const r of records) await sender.sendRecord(r, batch);

    // Assess
    expect(mailer.attempts).toEqual([]);
    expect([messages.peek('msg_t')?.hold?.action, messages.peek('msg_b')?.hold?.action]).toEqual([
      'holdAll',
      'holdAll',
    ]);
  });

  it('holds mail of a key the guard suspended, with the guard’s reason', async () => {
    // Prepare
    const { sender, messages, mailer, apiKeys } = senderHarness();
    const suspension = guardDecisionFor(
      'suspendKey',
      { signal: 'suppressedHitRate', reason: 'too many hits' },
      NOW,
    );
    apiKeys.add(apiKey({ key: { actions: [suspension] } }, { status: 'suspended' }));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1' });

    // Act
    await sender.sendRecord(record, await sender.prepare([record]));

    // Assess
    expect(mailer.attempts).toEqual([]);
    expect(messages.peek('msg_1')).toMatchObject({
      phase: 'held',
      hold: { action: 'suspendKey', signal: 'suppressedHitRate', reason: 'too many hits' },
      recipients: [{ status: 'held', reason: 'too many hits' }],
    });
  });

  it('holds mail of a key an operator suspended, saying so', async () => {
    // Prepare
    const { sender, messages, mailer, apiKeys, held } = senderHarness();
    apiKeys.add(apiKey({}, { status: 'suspended' }));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1' });

    // Act
    await sender.sendRecord(record, await sender.prepare([record]));

    // Assess
    expect(mailer.attempts).toEqual([]);
    expect(messages.peek('msg_1')?.hold).toMatchObject({
      action: 'suspendKey',
      signal: 'operator',
      reason: 'the API key was suspended by an operator',
    });
    expect(held.entries.size).toBe(1);
  });

  it('sends as before when the job names no key, or its key was deleted', async () => {
    // Prepare
    const { sender, messages, mailer } = senderHarness();
    const records = [
      queuedJob(messages, 'msg_old', {}),
      queuedJob(messages, 'msg_gone', { keyId: 'key-deleted' }),
    ];
    const batch = await sender.prepare(records);

    // Act
    for (const r of records) await sender.sendRecord(r, batch);

    // Assess
    expect(mailer.sent).toHaveLength(2);
  });

  it('reads each key once per batch, however many of its jobs the batch has', async () => {
    // Prepare
    const source = new InMemoryApiKeys().add(apiKey(), { ...apiKey(), keyId: 'key-2' });
    const get = vi.spyOn(source, 'get');
    const keys = new CachedApiKeys(source, { clock: testClock(T0) });
    const { sender, messages, mailer } = senderHarness({ keys });
    const records = [
      queuedJob(messages, 'msg_1', { keyId: 'key-1' }),
      queuedJob(messages, 'msg_2', { keyId: 'key-1' }),
      queuedJob(messages, 'msg_3', { keyId: 'key-2' }),
      queuedJob(messages, 'msg_4', { keyId: 'key-1' }),
    ];

    // Act
    const batch = await sender.prepare(records);
    for (const r of records) await sender.sendRecord(r, batch);

    // Assess
    expect(mailer.sent).toHaveLength(4);
    expect(get.mock.calls.map(([id]) => id).sort()).toEqual(['key-1', 'key-2']);
  });

  it('retries the jobs of a key that could not be read, and only those', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, apiKeys } = senderHarness();
    apiKeys.add(apiKey(), { ...apiKey(), keyId: 'key-2' });
    vi.spyOn(apiKeys, 'get').mockImplementation(async (id) => {
      if (id === 'key-1') throw new TransientError('ApiKeys throttled');
      return { ...apiKey(), keyId: id };
    });
    const records = [
      queuedJob(messages, 'msg_1', { keyId: 'key-1' }),
      queuedJob(messages, 'msg_2', { keyId: 'key-2' }),
    ];
    const batch = await sender.prepare(records);

    // Act
    const first = sender.sendRecord(records[0] as (typeof records)[0], batch);
    await expect(first).rejects.toThrow(TransientError);
    await sender.sendRecord(records[1] as (typeof records)[1], batch);

    // Assess
    expect(mailer.sent.map((m) => m.to)).toEqual([['msg_2@example.org']]);
    expect(messages.peek('msg_1')?.phase).toBe('queued');
    expect(visibility.delays).toEqual([{ messageId: 'sqs-msg_1', seconds: 1 }]);
  });

  it('keeps the job before holding the record: a failed keep leaves it queued and retried', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, apiKeys, held } = senderHarness();
    apiKeys.add(apiKey(holdingAll));
    vi.spyOn(held, 'keep').mockRejectedValueOnce(new TransientError('S3 slow down'));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1' });
    const batch = await sender.prepare([record]);

    // Act
    const outcome = sender.sendRecord(record, batch);

    // Assess: nothing sent, nothing held, back on the queue; the next receive holds it.
    await expect(outcome).rejects.toThrow(TransientError);
    expect(mailer.attempts).toEqual([]);
    expect(messages.peek('msg_1')?.phase).toBe('queued');
    expect(visibility.delays).toEqual([{ messageId: 'sqs-msg_1', seconds: 1 }]);
    await sender.sendRecord(record, await sender.prepare([record]));
    expect(messages.peek('msg_1')?.phase).toBe('held');
    expect(held.entries.size).toBe(1);
  });

  it('retries when the record cannot be written after the job was kept, and holds it once', async () => {
    // Prepare
    const { sender, messages, mailer, visibility, apiKeys, held } = senderHarness();
    apiKeys.add(apiKey(holdingAll));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1' });
    vi.spyOn(messages, 'update').mockRejectedValueOnce(new Error('DynamoDB 500'));

    // Act
    await expect(sender.sendRecord(record, await sender.prepare([record]))).rejects.toThrow();
    await sender.sendRecord(record, await sender.prepare([record]));

    // Assess
    expect(mailer.attempts).toEqual([]);
    expect(visibility.delays).toEqual([{ messageId: 'sqs-msg_1', seconds: 1 }]);
    expect(messages.peek('msg_1')?.events.filter((e) => e.type === 'held')).toHaveLength(1);
    expect(held.entries.size).toBe(1);
  });

  it('acknowledges a duplicate delivery of a held job without sending it, whatever the key says now', async () => {
    // Prepare: held on the first delivery; the second finds it held (tenant still held, then resumed).
    const { sender, messages, mailer, visibility, apiKeys, held } = senderHarness();
    apiKeys.add(apiKey(holdingAll));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1' });
    await sender.sendRecord(record, await sender.prepare([record]));
    const heldRecord = messages.peek('msg_1');

    // Act
    await sender.sendRecord(record, await sender.prepare([record]));
    await apiKeys.put(apiKey());
    const batch = await sender.prepare([record]);
    await sender.sendRecord(record, batch);

    // Assess
    expect(mailer.attempts).toEqual([]);
    expect(visibility.delays).toEqual([]);
    expect(messages.peek('msg_1')).toEqual(heldRecord);
    expect(held.entries.size).toBe(1);
    expect(batch.outcomes.drain()).toEqual({ duplicate: 1 });
  });

  it('never gives up on a held message: a key read failing on its last receive leaves it held', async () => {
    // Prepare: a duplicate of a held message's job comes back for its last receive.
    const { sender, messages, mailer, apiKeys } = senderHarness({ maxReceiveCount: 3 });
    apiKeys.add(apiKey(holdingAll));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1', receiveCount: 3 });
    const heldRecord = markHeld(
      messages.peek('msg_1') as MessageRecord,
      guardDecisionFor('holdAll', {}, NOW),
      NOW,
    );
    messages.write(heldRecord as MessageRecord);
    vi.spyOn(apiKeys, 'get').mockRejectedValue(new TransientError('ApiKeys throttled'));

    // Act
    const outcome = sender.sendRecord(record, await sender.prepare([record]));

    // Assess: retried (SQS moves it to the DLQ), but the record stays held, not failed.
    await expect(outcome).rejects.toThrow(TransientError);
    expect(messages.peek('msg_1')).toEqual(heldRecord);
    expect(mailer.attempts).toEqual([]);
  });

  it('leaves a message already sent alone: a late duplicate of its job is not held', async () => {
    // Prepare
    const { sender, messages, mailer, apiKeys, held } = senderHarness();
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1' });
    apiKeys.add(apiKey());
    await sender.sendRecord(record, await sender.prepare([record]));
    await apiKeys.put(apiKey(holdingAll));

    // Act
    await sender.sendRecord(record, await sender.prepare([record]));

    // Assess
    expect(mailer.sent).toHaveLength(1);
    expect(messages.peek('msg_1')?.phase).toBe('sent');
    expect(held.entries.size).toBe(0);
  });

  it('forgets the kept job when another attempt took the message between the read and the write', async () => {
    // Prepare: a second delivery of the job claims the message just before the hold is written.
    const { sender, messages, mailer, visibility, apiKeys, held, clock } = senderHarness();
    apiKeys.add(apiKey(holdingAll));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1' });
    messages.beforeNextUpdate(async () => {
      await messages.claim('msg_1', clock(), 60_000);
    });

    // Act
    const outcome = sender.sendRecord(record, await sender.prepare([record]));

    // Assess: the other attempt holds the claim, so this one comes back later; no held entry is left.
    await expect(outcome).rejects.toThrow();
    expect(mailer.attempts).toEqual([]);
    expect(messages.peek('msg_1')?.phase).toBe('sending');
    expect(held.entries.size).toBe(0);
    expect(visibility.delays).toHaveLength(1);
  });

  it('lets a conflicting write by someone else be re-read and still holds the message', async () => {
    // Prepare: feedback-like writer bumps the version between read and write.
    const { sender, messages, apiKeys } = senderHarness();
    apiKeys.add(apiKey(holdingAll));
    const record = queuedJob(messages, 'msg_1', { keyId: 'key-1' });
    messages.beforeNextUpdate(() => {
      const current = messages.peek('msg_1');
      if (current) messages.write({ ...current, version: current.version + 1 });
    });

    // Act
    await sender.sendRecord(record, await sender.prepare([record]));

    // Assess
    expect(messages.peek('msg_1')).toMatchObject({ phase: 'held', version: 3 });
  });
});
