import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { holdJob } from '../../../lambdas/domain/delivery/guard-hold.ts';
import { HOLD_DAYS, heldEntry, markHeld } from '../../../lambdas/domain/guard/hold.ts';
import { cancelHeld, listHeld, releaseHeld, resumeGuard } from '../../../lambdas/domain/guard/operations.ts';
import type { ApiKey } from '../../../lambdas/domain/keys/api-key.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { recipient, sendJob, T0 } from '../../support/builders.ts';
import { guardDecision } from '../../support/guard.ts';
import { heldMailRig } from '../../support/held-mail.ts';

const DAY_MS = 86_400_000;

/** Held mail of tenant-a's key, the operations' ports over fakes, and a sleep that moves the clock. */
function rig(keyOverrides: Partial<ApiKey> = {}) {
  const held = heldMailRig(keyOverrides);
  const sleeps: number[] = [];
  const pacing = {
    ratePerSecond: { transactional: 10, broadcast: 2 },
    sleep: async (ms: number) => {
      sleeps.push(ms);
      held.clock.advance(ms);
    },
  };
  return { ...held, sleeps, pacing };
}

describe('releasing held mail', () => {
  it('queues each message again, enqueues its kept job on its lane and forgets it; a second release sends nothing', async () => {
    // Prepare
    const { deps, messages, held, queue, pacing, hold } = rig();
    await hold('msg_1', 'broadcast');
    await hold('msg_2', 'transactional', guardDecision({ action: 'holdAll' }));

    // Act
    const first = await releaseHeld(deps, 'tenant-a', { all: true }, 'list cleaned', pacing);
    const second = await releaseHeld(deps, 'tenant-a', { all: true }, 'list cleaned', pacing);

    // Assess
    expect(first.counts).toMatchObject({ released: 2, held: 0, missing: 0 });
    expect(queue.jobs.map((j) => [j.lane, j.job.id])).toEqual([
      ['broadcast', 'msg_1'],
      ['transactional', 'msg_2'],
    ]);
    expect(held.entries.size).toBe(0);
    const record = messages.peek('msg_1');
    expect([record?.phase, record?.hold, record?.recipients[0]?.status]).toEqual([
      'queued',
      undefined,
      'queued',
    ]);
    expect(record?.events.at(-1)).toMatchObject({ type: 'released', detail: { reason: 'list cleaned' } });
    expect(second.outcomes).toEqual([]);
    expect(queue.jobs).toHaveLength(2);
  });

  it('tells the guard each released message’s recipients once, so their bounces are taken over them', async () => {
    // Prepare
    const { deps, guard, key, pacing, hold } = rig();
    await hold('msg_1', 'broadcast');

    // Act
    await releaseHeld(deps, 'tenant-a', { all: true }, 'list cleaned', pacing);
    await releaseHeld(deps, 'tenant-a', { all: true }, 'list cleaned', pacing);

    // Assess
    expect(guard.released).toEqual([
      { tenant: 'tenant-a', keyId: key.keyId, messageId: 'msg_1', recipients: ['ana@example.org'] },
    ]);
  });

  it('releases by id and by lane only what was asked, and says which ids hold nothing', async () => {
    // Prepare
    const { deps, queue, pacing, hold } = rig();
    await hold('msg_1', 'broadcast');
    await hold('msg_2', 'broadcast');
    await hold('msg_3', 'transactional', guardDecision({ action: 'holdAll' }));

    // Act
    const byId = await releaseHeld(deps, 'tenant-a', { ids: ['msg_2', 'msg_9'] }, 'checked', pacing);
    const byLane = await releaseHeld(deps, 'tenant-a', { lane: 'transactional' }, 'checked', pacing);

    // Assess
    expect(byId.outcomes).toEqual([
      { id: 'msg_2', outcome: 'released', lane: 'broadcast' },
      { id: 'msg_9', outcome: 'missing', reason: 'no held message with this id' },
    ]);
    expect(byLane.outcomes).toEqual([{ id: 'msg_3', outcome: 'released', lane: 'transactional' }]);
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_2', 'msg_3']);
  });

  it('never releases another tenant’s held mail', async () => {
    // Prepare
    const { deps, queue, messages, pacing, hold } = rig();
    await hold('msg_1', 'broadcast', guardDecision({ tenantId: 'tenant-b' }), { tenant: 'tenant-b' });

    // Act
    const result = await releaseHeld(deps, 'tenant-a', { ids: ['msg_1'] }, 'mine now', pacing);
    const all = await releaseHeld(deps, 'tenant-a', { all: true }, 'mine now', pacing);

    // Assess
    expect(result.outcomes).toEqual([
      { id: 'msg_1', outcome: 'missing', reason: 'no held message with this id' },
    ]);
    expect(all.outcomes).toEqual([]);
    expect([queue.jobs, messages.peek('msg_1')?.phase]).toEqual([[], 'held']);
  });

  it('fails a message whose hold has expired instead of sending it, with the reason, and forgets it', async () => {
    // Prepare
    const { deps, clock, messages, held, queue, pacing, hold } = rig();
    await hold('msg_1');
    clock.advance(HOLD_DAYS * DAY_MS);

    // Act
    const result = await releaseHeld(deps, 'tenant-a', { all: true }, 'too late', pacing);

    // Assess
    expect(result.counts).toMatchObject({ expired: 1, released: 0 });
    expect(result.outcomes[0]).toMatchObject({ outcome: 'expired', reason: expect.stringMatching(/7 days/) });
    const record = messages.peek('msg_1');
    expect([record?.phase, record?.recipients[0]?.status]).toEqual(['failed', 'failed']);
    expect(record?.recipients[0]?.reason).toMatch(/held by the abuse guard for 7 days/);
    expect([queue.jobs, held.entries.size]).toEqual([[], 0]);
  });

  it('refuses while the tenant’s pause still holds the lane, and releases the lanes it does not hold', async () => {
    // Prepare: the tenant's broadcast pause is in force on the key (as the guard copies it there).
    const pause = guardDecision({ action: 'pauseBroadcast' });
    const { deps, messages, held, queue, pacing, hold } = rig({ guard: { tenant: { actions: [pause] } } });
    await hold('msg_1', 'broadcast', pause);
    await hold('msg_2', 'transactional', guardDecision({ action: 'holdAll' }));

    // Act
    const result = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);

    // Assess
    expect(result.outcomes).toEqual([
      {
        id: 'msg_1',
        outcome: 'held',
        reason: `the tenant's pauseBroadcast is still in force (${pause.reason}): resume the tenant first`,
      },
      { id: 'msg_2', outcome: 'released', lane: 'transactional' },
    ]);
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_2']);
    expect([messages.peek('msg_1')?.phase, held.entries.size]).toEqual(['held', 1]);
  });

  it.each([
    ['suspended', /key \w+ is suspended: resume the key first/],
    ['revoked', /key \w+ is revoked: its mail cannot be released/],
  ] as const)('refuses while the key that sent it is %s', async (status, words) => {
    // Prepare
    const { deps, queue, pacing, hold } = rig({ status });
    await hold('msg_1', 'transactional', guardDecision({ scope: 'key', action: 'suspendKey' }));

    // Act
    const result = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);

    // Assess
    expect(result.outcomes).toEqual([{ id: 'msg_1', outcome: 'held', reason: expect.stringMatching(words) }]);
    expect(queue.jobs).toEqual([]);
  });

  it('asks the guard for the tenant’s standing when the key is gone', async () => {
    // Prepare
    const { deps, guard, queue, pacing, hold } = rig();
    await hold('msg_1', 'broadcast', guardDecision(), { keyId: 'gonekey1' });
    vi.spyOn(guard, 'reputation').mockResolvedValueOnce({
      standing: 'broadcast_paused',
      rates: {},
      sample: {},
      window: {},
      keys: [],
      reasons: [],
    });

    // Act
    const refused = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);
    const released = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);

    // Assess
    expect(refused.outcomes[0]).toMatchObject({
      outcome: 'held',
      reason: expect.stringMatching(/resume the tenant/),
    });
    expect(released.counts.released).toBe(1);
    expect(queue.jobs).toHaveLength(1);
  });

  it('enqueues no faster than the lane’s rate, waiting with the injected sleep', async () => {
    // Prepare: broadcast at 2 recipients/s; one message of 3 recipients, four of 1.
    const { deps, clock, queue, sleeps, pacing, hold } = rig();
    await hold('msg_1', 'broadcast', guardDecision(), {
      recipients: [recipient('a@example.org'), recipient('b@example.org'), recipient('c@example.org')],
    });
    for (const id of ['msg_2', 'msg_3', 'msg_4', 'msg_5']) await hold(id, 'broadcast');
    const started = clock().getTime();

    // Act
    await releaseHeld(deps, 'tenant-a', { lane: 'broadcast' }, 'ops', pacing);

    // Assess: 3 recipients then 1+1+1 (the last one starts when the earlier six are paid for): 3 s.
    expect(queue.jobs).toHaveLength(5);
    expect(sleeps).toEqual([1500, 500, 500, 500]);
    expect(clock().getTime() - started).toBe(3000);
  });

  it('stops at the deadline: what it did not reach is deferred, still held, and the next release takes it', async () => {
    // Prepare
    const { deps, clock, messages, queue, pacing, hold } = rig();
    for (const id of ['msg_1', 'msg_2', 'msg_3']) await hold(id, 'broadcast');

    // Act: 2/s, so within 600 ms only the first two go (the second after 500 ms).
    const first = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', {
      ...pacing,
      deadline: clock().getTime() + 600,
    });
    const second = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);

    // Assess
    expect(first.counts).toMatchObject({ released: 2, deferred: 1 });
    expect(first.outcomes[2]).toEqual({ id: 'msg_3', outcome: 'deferred' });
    expect(second.outcomes).toEqual([{ id: 'msg_3', outcome: 'released', lane: 'broadcast' }]);
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_2', 'msg_3']);
    expect(messages.peek('msg_3')?.events.filter((e) => e.type === 'released')).toHaveLength(1);
  });

  it('after a crash between enqueue and removing the entry, a re-run enqueues again but releases the record once', async () => {
    // Prepare
    const { deps, messages, held, queue, pacing, hold } = rig();
    await hold('msg_1');
    vi.spyOn(held, 'remove').mockRejectedValueOnce(new Error('process killed'));

    // Act
    await expect(releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing)).rejects.toThrow(
      'process killed',
    );
    const rerun = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);

    // Assess: the job twice (the sender's claim sends it once), the transition once.
    expect(rerun.outcomes).toEqual([{ id: 'msg_1', outcome: 'released', lane: 'broadcast' }]);
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_1']);
    const record = messages.peek('msg_1');
    expect(record?.events.filter((e) => e.type === 'released')).toHaveLength(1);
    expect([record?.phase, held.entries.size]).toEqual(['queued', 0]);
  });

  it('puts the message back on hold when the queue refuses its job, keeping it for the next release', async () => {
    // Prepare
    const { deps, messages, held, queue, pacing, hold } = rig();
    const original = await hold('msg_1');
    queue.failing.add('msg_1');

    // Act
    const refused = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);
    const onHold = messages.peek('msg_1');
    queue.failing.clear();
    const retried = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);

    // Assess
    expect(refused.outcomes).toEqual([
      {
        id: 'msg_1',
        outcome: 'held',
        reason: expect.stringMatching(/^the queue refused it .*run release again$/),
      },
    ]);
    expect([onHold?.phase, onHold?.hold, onHold?.recipients[0]?.status]).toEqual([
      'held',
      original.hold,
      'held',
    ]);
    expect(retried.counts.released).toBe(1);
    expect([queue.jobs.length, held.entries.size, messages.peek('msg_1')?.phase]).toEqual([1, 0, 'queued']);
  });

  it('keeps the entry of a message the sender held again while it was being released', async () => {
    // Prepare: the sender, its key cache not yet showing the resume, holds the released job again
    // (markHeld, then keep: a no-op while the old entry is there) before release removes the entry.
    const { deps, clock, messages, held, pacing, hold } = rig();
    await hold('msg_1');
    const remove = held.remove.bind(held);
    vi.spyOn(held, 'remove').mockImplementationOnce(async (entry) => {
      const queued = messages.peek('msg_1') as MessageRecord;
      const again = markHeld(
        queued,
        guardDecision({ reason: 'still paused (cached)' }),
        clock(),
      ) as MessageRecord;
      messages.write(again);
      await held.keep(heldEntry(again, again.hold ?? expect.fail('no hold')), sendJob(undefined, 'msg_1'));
      await remove(entry);
    });

    // Act
    const result = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);

    // Assess: still listed, with its job, so an operator can release it again.
    expect(result.outcomes).toEqual([
      { id: 'msg_1', outcome: 'held', reason: 'held again by the sender: still paused (cached)' },
    ]);
    const entry = await held.get('tenant-a', 'msg_1');
    expect(entry?.reason).toBe('still paused (cached)');
    expect(entry && (await held.job(entry))?.id).toBe('msg_1');
  });

  it('past the deadline, reads nothing more: the rest is deferred at once', async () => {
    // Prepare
    const { deps, clock, messages, pacing, hold } = rig();
    for (const id of ['msg_1', 'msg_2', 'msg_3', 'msg_4']) await hold(id, 'broadcast');
    const reads = vi.spyOn(messages, 'get');

    // Act: 2/s, so within 400 ms only the first goes.
    const result = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', {
      ...pacing,
      deadline: clock().getTime() + 400,
    });

    // Assess: only the first was read (before and after its release); the others not at all.
    expect(result.counts).toMatchObject({ released: 1, deferred: 3 });
    expect(new Set(reads.mock.calls.map(([id]) => id))).toEqual(new Set(['msg_1']));
  });

  it('forgets an entry whose message was sent or settled meanwhile, sending nothing', async () => {
    // Prepare
    const { deps, messages, held, queue, pacing, hold } = rig();
    const record = await hold('msg_1');
    messages.write({ ...record, phase: 'sent', version: record.version + 1 });

    // Act
    const result = await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);

    // Assess
    expect(result.outcomes).toEqual([
      { id: 'msg_1', outcome: 'missing', reason: 'the message is sent, not held' },
    ]);
    expect([queue.jobs, held.entries.size]).toEqual([[], 0]);
  });
});

describe('releasing under faults (property)', () => {
  it('whatever fails and however often it is re-run, each message is enqueued only once queued and released once per hold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            queueRefuses: fc.subarray(['msg_1', 'msg_2', 'msg_3', 'msg_4']),
            crashOnRemove: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
          }),
          { maxLength: 5 },
        ),
        async (runs) => {
          // Prepare
          const { deps, messages, held, queue, pacing, hold } = rig();
          for (const id of ['msg_1', 'msg_2', 'msg_3', 'msg_4'])
            await hold(id, 'transactional', guardDecision({ action: 'holdAll' }));
          const enqueue = queue.enqueue.bind(queue);
          vi.spyOn(queue, 'enqueue').mockImplementation(async (lane, job) => {
            // A job only ever reaches the queue for a record the sender may claim.
            expect(messages.peek(job.id)?.phase).toBe('queued');
            await enqueue(lane, job);
          });
          const remove = held.remove.bind(held);
          let removals = 0;
          let crashAt: number | undefined;
          vi.spyOn(held, 'remove').mockImplementation(async (entry) => {
            removals += 1;
            if (removals === crashAt) throw new Error('process killed');
            await remove(entry);
          });

          // Act: faulty runs, then one that goes through.
          for (const run of runs) {
            queue.failing.clear();
            for (const id of run.queueRefuses) queue.failing.add(id);
            crashAt = run.crashOnRemove === undefined ? undefined : removals + 1 + run.crashOnRemove;
            await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing).catch((e: Error) => {
              if (e.message !== 'process killed') throw e;
            });
          }
          queue.failing.clear();
          crashAt = undefined;
          await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);

          // Assess
          expect(held.entries.size).toBe(0);
          for (const id of ['msg_1', 'msg_2', 'msg_3', 'msg_4']) {
            const record = messages.peek(id) as MessageRecord;
            const count = (type: string) => record.events.filter((e) => e.type === type).length;
            expect(record.phase).toBe('queued');
            expect(count('released')).toBe(count('held'));
            expect(record.events.at(-1)?.type).toBe('released');
            expect(queue.jobs.some((j) => j.job.id === id)).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('cancelling held mail', () => {
  it('fails each message with the operator’s reason and forgets it and its job', async () => {
    // Prepare
    const { deps, messages, held, queue, hold } = rig();
    await hold('msg_1');
    await hold('msg_2', 'transactional', guardDecision({ action: 'holdAll' }));

    // Act
    const result = await cancelHeld(deps, 'tenant-a', { lane: 'broadcast' }, 'bought list');

    // Assess
    expect(result.outcomes).toEqual([{ id: 'msg_1', outcome: 'cancelled' }]);
    const record = messages.peek('msg_1');
    expect([record?.phase, record?.recipients[0]?.status, record?.recipients[0]?.reason]).toEqual([
      'failed',
      'failed',
      'cancelled by an operator: bought list',
    ]);
    expect([...held.entries.values()].map((e) => e.entry.id)).toEqual(['msg_2']);
    expect(queue.jobs).toEqual([]);
  });

  it('fails a message whose release stopped half-way, so the job that reached the queue sends nothing', async () => {
    // Prepare: released and enqueued, but the entry was never removed.
    const { deps, messages, held, pacing, hold } = rig();
    await hold('msg_1');
    vi.spyOn(held, 'remove').mockRejectedValueOnce(new Error('process killed'));
    await expect(releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing)).rejects.toThrow();

    // Act
    const result = await cancelHeld(deps, 'tenant-a', { ids: ['msg_1'] }, 'changed my mind');

    // Assess
    expect(result.outcomes).toEqual([{ id: 'msg_1', outcome: 'cancelled' }]);
    expect(messages.peek('msg_1')?.phase).toBe('failed');
    expect(await messages.claim('msg_1', new Date(T0), 60_000)).toMatchObject({ outcome: 'done' });
  });

  it('fails an expired hold with the expiry reason rather than the cancel’s', async () => {
    // Prepare
    const { deps, clock, messages, hold } = rig();
    await hold('msg_1');
    clock.advance(HOLD_DAYS * DAY_MS + 1);

    // Act
    const result = await cancelHeld(deps, 'tenant-a', { all: true }, 'ops');

    // Assess
    expect(result.counts).toMatchObject({ expired: 1, cancelled: 0 });
    expect(messages.peek('msg_1')?.recipients[0]?.reason).toMatch(/held by the abuse guard/);
  });
});

describe('listing held mail and resuming', () => {
  it('lists the tenant’s held entries oldest first, by lane, marking expired holds', async () => {
    // Prepare
    const { deps, clock, hold } = rig();
    await hold('msg_1', 'broadcast');
    clock.advance(DAY_MS);
    await hold('msg_2', 'transactional', guardDecision({ action: 'holdAll' }));
    clock.advance((HOLD_DAYS - 1) * DAY_MS);

    // Act
    const all = await listHeld(deps, 'tenant-a');
    const broadcast = await listHeld(deps, 'tenant-a', { lane: 'broadcast' });
    const other = await listHeld(deps, 'tenant-b');

    // Assess
    expect(all.entries.map((e) => [e.id, e.lane, e.expired])).toEqual([
      ['msg_1', 'broadcast', true],
      ['msg_2', 'transactional', false],
    ]);
    expect(broadcast.entries.map((e) => e.id)).toEqual(['msg_1']);
    expect(other.entries).toEqual([]);
  });

  it('hands a resume to the guard with its reason', async () => {
    // Prepare
    const { deps, guard } = rig();

    // Act
    await resumeGuard(deps, { kind: 'tenant', tenant: 'tenant-a' }, 'list cleaned');

    // Assess
    expect(guard.resumes).toEqual([
      { target: { kind: 'tenant', tenant: 'tenant-a' }, reason: 'list cleaned' },
    ]);
  });
});

describe('releasing while the sender holds the released job again', () => {
  it('keeps the message releasable when the sender kept its job before release removed the entry and wrote the record after', async () => {
    // Prepare: release enqueues msg_1; a sender, its key cache not yet showing the resume, reads
    // the record (queued) and keeps the job (a no-op: the old entry is still there) before release
    // removes the entry; its record write lands only after release has looked for a hold again.
    const { deps, clock, messages, held, pacing, hold } = rig();
    await hold('msg_1');
    let writeRecord: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      writeRecord = resolve;
    });
    const senderMessages = {
      get: (id: string) => messages.get(id),
      update: async (next: MessageRecord, version: number) => {
        await gate;
        return messages.update(next, version);
      },
    };
    let sender: Promise<unknown> = Promise.resolve();
    const remove = held.remove.bind(held);
    vi.spyOn(held, 'remove').mockImplementationOnce(async (entry) => {
      const job = (await held.job(entry)) ?? expect.fail('no job');
      sender = holdJob({ messages: senderMessages, held, clock }, job, guardDecision({ reason: 'cached' }));
      await new Promise((resolve) => setTimeout(resolve, 0));
      await remove(entry);
    });

    // Act
    await releaseHeld(deps, 'tenant-a', { all: true }, 'ops', pacing);
    writeRecord();
    await sender;

    // Assess: held, and still listed with its job, so an operator can release it again.
    expect(messages.peek('msg_1')?.phase).toBe('held');
    const entry = await held.get('tenant-a', 'msg_1');
    expect(entry).toBeDefined();
    expect(entry && (await held.job(entry))?.id).toBe('msg_1');
  });
});
