/**
 * The shared fakes keep the semantics the domain relies on (the DynamoDB adapters' conditions);
 * if one drifts, every test built on it proves less. These pin the contract down.
 */
import { describe, expect, it } from 'vitest';
import { ConflictError, TransientError } from '../../lambdas/shared/errors.ts';
import { messageRecord, suppression, T0 } from '../support/builders.ts';
import { FakeMailer, InMemoryMessageStore, InMemorySuppressionStore, testClock } from '../support/fakes.ts';

const now = new Date(T0);

describe('InMemoryMessageStore', () => {
  it('claims a queued message: phase sending, a token, a lease and a new version', async () => {
    // Prepare
    const store = new InMemoryMessageStore().seed(messageRecord());

    // Act
    const claim = await store.claim('msg_1', now, 1000);

    // Assess
    expect(claim).toEqual({
      outcome: 'claimed',
      token: 'claim-1',
      record: {
        ...messageRecord(),
        phase: 'sending',
        claimToken: 'claim-1',
        claimUntil: now.getTime() + 1000,
        version: 2,
      },
    });
  });

  it('answers busy while the lease runs and lets a new attempt take over after it', async () => {
    // Prepare
    const store = new InMemoryMessageStore().seed(messageRecord());
    await store.claim('msg_1', now, 1000);

    // Act
    const during = await store.claim('msg_1', new Date(now.getTime() + 1000), 1000);
    const after = await store.claim('msg_1', new Date(now.getTime() + 1001), 1000);

    // Assess
    expect(during.outcome).toBe('busy');
    expect(after).toMatchObject({ outcome: 'claimed', token: 'claim-2' });
  });

  it('answers done for a finished message and missing for an unknown one', async () => {
    // Prepare
    const store = new InMemoryMessageStore().seed(messageRecord({ phase: 'sent' }));

    // Act
    const outcomes = [
      (await store.claim('msg_1', now, 1)).outcome,
      (await store.claim('msg_x', now, 1)).outcome,
    ];

    // Assess
    expect(outcomes).toEqual(['done', 'missing']);
  });

  it('releases only its own live claim', async () => {
    // Prepare
    const store = new InMemoryMessageStore().seed(messageRecord());
    await store.claim('msg_1', now, 1000);

    // Act
    await store.release('msg_1', 'someone-else');
    const afterWrongToken = store.peek('msg_1');
    await store.release('msg_1', 'claim-1');

    // Assess
    expect(afterWrongToken).toMatchObject({ phase: 'sending', claimToken: 'claim-1' });
    expect(store.peek('msg_1')).toEqual({ ...messageRecord(), phase: 'queued', version: 3 });
  });

  it('refuses an update from a stale version, a lost claim or for a missing record', async () => {
    // Prepare
    const store = new InMemoryMessageStore().seed(messageRecord({ version: 2, claimToken: 'claim-9' }));
    const next = messageRecord({ version: 3 });

    // Act
    const attempts = [
      store.update(next, 1),
      store.update(next, 2, 'claim-1'),
      store.update(messageRecord({ id: 'msg_x' }), 1),
    ];

    // Assess
    await expect(attempts[0]).rejects.toThrow(new ConflictError('message msg_1 changed since version 1'));
    await expect(attempts[1]).rejects.toThrow(new ConflictError('message msg_1 changed since version 2'));
    await expect(attempts[2]).rejects.toThrow(new ConflictError('message msg_x changed since version 1'));
  });

  it('replaces the record when the version and claim match', async () => {
    // Prepare
    const store = new InMemoryMessageStore().seed(messageRecord({ version: 2, claimToken: 'claim-9' }));

    // Act
    await store.update(messageRecord({ version: 3, phase: 'sent' }), 2, 'claim-9');

    // Assess
    expect(store.peek('msg_1')).toEqual(messageRecord({ version: 3, phase: 'sent' }));
  });

  it('refuses to create a record twice', async () => {
    // Prepare
    const store = new InMemoryMessageStore();
    await store.create(messageRecord());

    // Act
    const again = store.create(messageRecord());

    // Assess
    await expect(again).rejects.toThrow(new ConflictError('message msg_1 exists already'));
  });

  it('hands out copies, so a caller cannot change what is stored', async () => {
    // Prepare
    const store = new InMemoryMessageStore().seed(messageRecord());
    const copy = (await store.get('msg_1')) as { subject: string };

    // Act
    copy.subject = 'changed';

    // Assess
    expect(store.peek('msg_1')?.subject).toBe('Your receipt');
  });

  it('finds a record by its SES message id', async () => {
    // Prepare
    const store = new InMemoryMessageStore().seed(
      messageRecord(),
      messageRecord({ id: 'msg_2', sesMessageId: 'ses-2' }),
    );

    // Act
    const found = await store.findBySesMessageId('ses-2');

    // Assess
    expect(found?.id).toBe('msg_2');
  });
});

describe('InMemorySuppressionStore', () => {
  it('writes only a strictly stronger suppression', async () => {
    // Prepare
    const store = new InMemorySuppressionStore();

    // Act
    const writes = [
      await store.putIfStronger(suppression('a@example.org', 'hard_bounce')),
      await store.putIfStronger(suppression('a@example.org', 'hard_bounce')),
      await store.putIfStronger(suppression('a@example.org', 'soft_bounce')),
      await store.putIfStronger(suppression('a@example.org', 'complaint')),
    ];

    // Assess
    expect(writes).toEqual([true, false, false, true]);
    expect(store.peek('a@example.org')?.reason).toBe('complaint');
  });

  it('answers a batched read with what it holds, expired entries included, and records the call', async () => {
    // Prepare
    const expired = suppression('b@example.org', 'soft_bounce', { expiresAt: '2000-01-01T00:00:00.000Z' });
    const store = new InMemorySuppressionStore().seed(suppression('a@example.org'), expired);

    // Act
    const found = await store.getMany(['a@example.org', 'b@example.org', 'c@example.org', 'a@example.org']);

    // Assess
    expect([...found.keys()]).toEqual(['a@example.org', 'b@example.org']);
    expect(store.getManyCalls).toEqual([
      ['a@example.org', 'b@example.org', 'c@example.org', 'a@example.org'],
    ]);
  });

  it('pages through the list in address order', async () => {
    // Prepare
    const store = new InMemorySuppressionStore().seed(
      suppression('c@example.org'),
      suppression('a@example.org'),
      suppression('b@example.org'),
    );

    // Act
    const first = await store.list(2);
    const second = await store.list(2, first.nextCursor ?? undefined);

    // Assess
    expect(first.items.map((s) => s.address)).toEqual(['a@example.org', 'b@example.org']);
    expect(second).toEqual({ items: [suppression('c@example.org')], nextCursor: null });
  });
});

describe('FakeMailer', () => {
  it('answers with numbered SES ids unless told otherwise, and records every attempt', async () => {
    // Prepare
    const mailer = new FakeMailer().willAnswer(new TransientError('throttled'), 'ses-custom');
    const mail = { raw: new Uint8Array(), from: 'a@example.com', to: [], cc: [], bcc: [], tags: {} };

    // Act
    const outcomes = [
      await mailer.send(mail).catch((e: unknown) => e),
      await mailer.send(mail),
      await mailer.send(mail),
    ];

    // Assess
    expect(outcomes).toEqual([new TransientError('throttled'), 'ses-custom', 'ses-2']);
    expect(mailer.attempts).toHaveLength(3);
    expect(mailer.sent).toHaveLength(2);
  });
});

describe('testClock', () => {
  it('stands still until moved', () => {
    // Prepare
    const clock = testClock('2025-03-01T12:00:00.000Z');

    // Act
    const first = clock().toISOString();
    clock.advance(1500);
    const second = clock().toISOString();
    clock.set('2030-01-01T00:00:00.000Z');

    // Assess
    expect([first, second, clock().toISOString()]).toEqual([
      '2025-03-01T12:00:00.000Z',
      '2025-03-01T12:00:01.500Z',
      '2030-01-01T00:00:00.000Z',
    ]);
  });
});
