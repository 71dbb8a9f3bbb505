import { describe, expect, it, vi } from 'vitest';
import type { ApiKey } from '../../../lambdas/domain/keys/api-key.ts';
import { type Problem, problem } from '../../../lambdas/domain/problem.ts';
import { acceptBatch } from '../../../lambdas/domain/send/accept.ts';
import { validateSendRequest } from '../../../lambdas/domain/send/send-request.ts';
import { applySenderPolicy } from '../../../lambdas/domain/send/sender-policy.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { sendBody, suppression, T0 } from '../../support/builders.ts';
import { acceptHarness } from '../../support/harness.ts';
import { problemOfSync } from '../../support/problems.ts';

const setUp = acceptHarness;

/** What validation and the sender policy answer for `body` on their own (the batch must pass it on as is). */
function refusalOf(key: ApiKey, body: unknown): Problem {
  return problemOfSync(() => applySenderPolicy(key, validateSendRequest(body)));
}

const UNQUEUED = 'Baton could not queue the message; it was not sent. Retry the request.';
const queued = (index: number, id: string, address: string) => ({
  index,
  id,
  status: 'queued',
  recipients: [{ address, status: 'queued' }],
  rewrittenFrom: null,
});

describe('acceptBatch', () => {
  it('answers one result per message in request order: accepted, invalid, forbidden and suppressed', async () => {
    // Prepare
    const { deps, key, suppressions } = setUp();
    suppressions.seed(suppression('gone@example.org', 'complaint'));
    const invalid = sendBody({ to: ['not an address'] });
    const forbidden = sendBody({ from: 'someone@other.org' });
    const bodies = [
      sendBody({ to: ['ana@example.org'] }),
      invalid,
      forbidden,
      sendBody({ to: ['gone@example.org'] }),
      sendBody({ to: ['bob@example.org'] }),
    ];

    // Act
    const results = await acceptBatch(deps, key, bodies);

    // Assess
    expect(refusalOf(key, invalid).code).toBe('invalid_message');
    expect(refusalOf(key, forbidden).code).toBe('forbidden');
    expect(results).toEqual([
      queued(0, 'msg_1', 'ana@example.org'),
      { index: 1, error: refusalOf(key, invalid) },
      { index: 2, error: refusalOf(key, forbidden) },
      {
        index: 3,
        id: 'msg_2',
        status: 'suppressed',
        recipients: [{ address: 'gone@example.org', status: 'suppressed', reason: 'complaint' }],
        rewrittenFrom: null,
      },
      queued(4, 'msg_3', 'bob@example.org'),
    ]);
  });

  it('records every accepted message, suppressed ones included, and nothing for a refused one', async () => {
    // Prepare
    const { deps, key, messages, suppressions } = setUp();
    suppressions.seed(suppression('gone@example.org'));

    // Act
    await acceptBatch(deps, key, [
      sendBody({ to: ['ana@example.org'] }),
      sendBody({ to: ['not an address'] }),
      sendBody({ to: ['gone@example.org'] }),
    ]);

    // Assess
    expect(messages.peek('msg_1')?.phase).toBe('queued');
    expect(messages.peek('msg_2')?.phase).toBe('suppressed');
    expect(messages.peek('msg_3')).toBeUndefined();
  });

  it('reads the suppression list once for the whole batch, by normalised address', async () => {
    // Prepare
    const { deps, key, suppressions } = setUp();

    // Act
    await acceptBatch(deps, key, [
      sendBody({ to: ['Ana@Example.ORG'], cc: ['carl@example.org'] }),
      sendBody({ to: 'broken' }),
      sendBody({ to: ['bob@bücher.example'] }),
    ]);

    // Assess
    expect(suppressions.getManyCalls).toEqual([
      ['ana@example.org', 'carl@example.org', 'bob@xn--bcher-kva.example'],
    ]);
  });

  it('writes all records with one batched write and never one by one', async () => {
    // Prepare
    const { deps, key, messages } = setUp();
    const createMany = vi.spyOn(messages, 'createMany');
    const create = vi.spyOn(messages, 'create');

    // Act
    await acceptBatch(
      deps,
      key,
      Array.from({ length: 30 }, (_, i) => sendBody({ to: [`user${i}@example.org`] })),
    );

    // Assess
    expect(create).not.toHaveBeenCalled();
    expect(createMany).toHaveBeenCalledTimes(1);
    expect(createMany.mock.calls[0]?.[0].map((r) => r.id)).toEqual(
      Array.from({ length: 30 }, (_, i) => `msg_${i + 1}`),
    );
  });

  it('enqueues the queued messages with one batched call, in order, each on its own lane', async () => {
    // Prepare
    const { deps, key, queue, suppressions } = setUp();
    suppressions.seed(suppression('gone@example.org'));
    const enqueueMany = vi.spyOn(queue, 'enqueueMany');
    const enqueue = vi.spyOn(queue, 'enqueue');

    // Act
    await acceptBatch(deps, key, [
      sendBody({ to: ['ana@example.org'] }),
      sendBody({ to: ['gone@example.org'] }),
      sendBody({ to: ['bob@example.org'], stream: 'broadcast', listUnsubscribe: 'https://example.com/u' }),
    ]);

    // Assess
    expect(enqueueMany).toHaveBeenCalledTimes(1);
    expect(enqueueMany.mock.calls[0]?.[0].map((i) => [i.lane, i.job.id])).toEqual([
      ['transactional', 'msg_1'],
      ['broadcast', 'msg_3'],
    ]);
    // The fake's enqueueMany goes through enqueue once per job: no call outside the batch.
    expect(enqueue).toHaveBeenCalledTimes(2);
    expect(queue.jobs.map((j) => [j.lane, j.job.id, j.job.tenant])).toEqual([
      ['transactional', 'msg_1', 'tenant-a'],
      ['broadcast', 'msg_3', 'tenant-a'],
    ]);
  });

  it('records nothing and enqueues nothing when every message is refused', async () => {
    // Prepare
    const { deps, key, queue, messages } = setUp();
    const createMany = vi.spyOn(messages, 'createMany');

    // Act
    const results = await acceptBatch(deps, key, [sendBody({ from: 'x@other.org' }), 42]);

    // Assess
    expect(results.map((r) => ('error' in r ? r.error.code : r.status))).toEqual([
      'forbidden',
      'invalid_message',
    ]);
    expect(createMany.mock.calls.flatMap(([records]) => records)).toEqual([]);
    expect(queue.jobs).toEqual([]);
  });

  describe('a message the queue refuses', () => {
    it('answers it 503 in its place, marks its record failed, and accepts the others', async () => {
      // Prepare
      const { deps, key, queue, messages } = setUp();
      queue.failing.add('msg_2');

      // Act
      const results = await acceptBatch(deps, key, [
        sendBody({ to: ['ana@example.org'] }),
        sendBody({ to: ['bob@example.org'] }),
        sendBody({ to: ['cleo@example.org'] }),
      ]);

      // Assess
      expect(results).toEqual([
        queued(0, 'msg_1', 'ana@example.org'),
        { index: 1, error: problem('unavailable', UNQUEUED) },
        queued(2, 'msg_3', 'cleo@example.org'),
      ]);
      expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_3']);
      expect(messages.peek('msg_2')).toMatchObject({
        phase: 'failed',
        version: 2,
        recipients: [{ address: 'bob@example.org', status: 'failed', reason: UNQUEUED, updatedAt: T0 }],
        events: [
          { type: 'accepted', at: T0 },
          { type: 'failed', at: T0, detail: { reason: UNQUEUED } },
        ],
      });
      expect(messages.peek('msg_1')?.phase).toBe('queued');
    });

    it('keeps a suppressed recipient of a refused message suppressed', async () => {
      // Prepare
      const { deps, key, queue, messages, suppressions } = setUp();
      suppressions.seed(suppression('gone@example.org'));
      queue.failing.add('msg_1');

      // Act
      await acceptBatch(deps, key, [sendBody({ to: ['ana@example.org', 'gone@example.org'] })]);

      // Assess
      expect(messages.peek('msg_1')?.recipients.map((r) => [r.address, r.status])).toEqual([
        ['ana@example.org', 'failed'],
        ['gone@example.org', 'suppressed'],
      ]);
    });

    // Regression: one record that could not be marked failed used to fail the whole batch.
    it('answers accepted, and keeps the quota of, a message whose enqueue failed only in its answer', async () => {
      // Prepare: the first job lands and the sender takes it, but SQS's answer says it failed.
      const { deps, key, queue, messages, usage } = setUp({ dailyQuota: 5 });
      vi.spyOn(queue, 'enqueueMany').mockImplementationOnce(async (items) => {
        const record = messages.peek('msg_1');
        if (record) await messages.update({ ...record, phase: 'sending', version: 2 }, 1);
        return items.map((_, i) => (i === 0 ? new Error('InternalError') : undefined));
      });

      // Act
      const results = await acceptBatch(deps, key, [
        sendBody({ to: ['ana@example.org'] }),
        sendBody({ to: ['bob@example.org'] }),
      ]);

      // Assess
      expect(results).toEqual([queued(0, 'msg_1', 'ana@example.org'), queued(1, 'msg_2', 'bob@example.org')]);
      expect(usage.quota.get(`${key.keyId}#2025-03-01`)).toBe(2);
      expect(usage.stats.get('tenant-a#2025-03-01')).toEqual({ accepted: 2 });
    });

    it('still answers the others when the refused message cannot be marked failed either', async () => {
      // Prepare
      const { deps, key, queue, messages } = setUp();
      queue.failing.add('msg_2');
      vi.spyOn(messages, 'update').mockRejectedValueOnce(new TransientError('throttled'));

      // Act
      const results = await acceptBatch(deps, key, [
        sendBody({ to: ['ana@example.org'] }),
        sendBody({ to: ['bob@example.org'] }),
      ]);

      // Assess
      expect(results).toEqual([
        queued(0, 'msg_1', 'ana@example.org'),
        { index: 1, error: problem('unavailable', UNQUEUED) },
      ]);
    });
  });

  describe('daily quota', () => {
    const QUOTA_USED_UP = (quota: number) =>
      problem('rate_limited', `This API key's daily quota of ${quota} messages is used up.`);

    it('accepts what is left of the quota in order and answers each message beyond it 429', async () => {
      // Prepare
      const { deps, key, usage, queue, messages } = setUp({ dailyQuota: 5 });
      usage.quota.set(`${key.keyId}#2025-03-01`, 2);

      // Act
      const results = await acceptBatch(
        deps,
        key,
        Array.from({ length: 5 }, (_, i) => sendBody({ to: [`user${i}@example.org`] })),
      );

      // Assess
      expect(results).toEqual([
        queued(0, 'msg_1', 'user0@example.org'),
        queued(1, 'msg_2', 'user1@example.org'),
        queued(2, 'msg_3', 'user2@example.org'),
        { index: 3, error: QUOTA_USED_UP(5) },
        { index: 4, error: QUOTA_USED_UP(5) },
      ]);
      expect(usage.quota.get(`${key.keyId}#2025-03-01`)).toBe(5);
      expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_2', 'msg_3']);
      expect(messages.peek('msg_4')).toBeUndefined();
      expect(messages.peek('msg_5')).toBeUndefined();
    });

    it('does not count refused messages against the quota', async () => {
      // Prepare
      const { deps, key, usage } = setUp({ dailyQuota: 2 });

      // Act
      const results = await acceptBatch(deps, key, [
        sendBody({ to: ['not an address'] }),
        sendBody({ to: ['ana@example.org'] }),
        sendBody({ from: 'x@other.org' }),
        sendBody({ to: ['bob@example.org'] }),
      ]);

      // Assess
      expect(results.map((r) => ('error' in r ? r.error.code : r.status))).toEqual([
        'invalid_message',
        'queued',
        'forbidden',
        'queued',
      ]);
      expect(usage.quota.get(`${key.keyId}#2025-03-01`)).toBe(2);
    });

    it('answers every message 429 when the quota is used up, and records nothing', async () => {
      // Prepare
      const { deps, key, usage, queue, messages } = setUp({ dailyQuota: 3 });
      usage.quota.set(`${key.keyId}#2025-03-01`, 3);
      const createMany = vi.spyOn(messages, 'createMany');

      // Act
      const results = await acceptBatch(deps, key, [sendBody(), sendBody()]);

      // Assess
      expect(results).toEqual([
        { index: 0, error: QUOTA_USED_UP(3) },
        { index: 1, error: QUOTA_USED_UP(3) },
      ]);
      expect(createMany.mock.calls.flatMap(([records]) => records)).toEqual([]);
      expect(queue.jobs).toEqual([]);
      expect(usage.quota.get(`${key.keyId}#2025-03-01`)).toBe(3);
    });

    it('reads no quota for a key without one', async () => {
      // Prepare
      const { deps, key, usage } = setUp();
      const consume = vi.spyOn(usage, 'consumeQuota');
      const used = vi.spyOn(usage, 'quotaUsed');

      // Act
      await acceptBatch(deps, key, [sendBody(), sendBody()]);

      // Assess
      expect(consume).not.toHaveBeenCalled();
      expect(used).not.toHaveBeenCalled();
    });

    it('never admits more than the quota across concurrent batches, and uses all of it', async () => {
      // Prepare
      const { deps, key, usage, queue } = setUp({ dailyQuota: 10 });

      // Act
      const batches = await Promise.all(
        Array.from({ length: 5 }, (_, b) =>
          acceptBatch(
            deps,
            key,
            Array.from({ length: 3 }, (_, i) => sendBody({ to: [`b${b}m${i}@example.org`] })),
          ),
        ),
      );

      // Assess
      const outcomes = batches.flat().map((r) => ('error' in r ? r.error.code : r.status));
      expect(outcomes.filter((o) => o === 'queued')).toHaveLength(10);
      expect(outcomes.filter((o) => o === 'rate_limited')).toHaveLength(5);
      expect(queue.jobs).toHaveLength(10);
      expect(usage.quota.get(`${key.keyId}#2025-03-01`)).toBe(10);
    });
  });
});
