import '../../support/quiet-powertools.ts';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { sendBody, suppression } from '../../support/builders.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent, jsonOf } from '../../support/http-events.ts';

type Harness = ReturnType<typeof apiHarness>;

/**
 * Makes the accept path's dependencies fail at random while `faulty()`: the suppression read, the
 * record writes and updates, and each job's enqueue. `chance` draws from fast-check's stream, so a
 * failing schedule shrinks and replays.
 */
function injectFaults(h: Harness, chance: (percent: number) => boolean): void {
  const outage = () => new TransientError('dependency unavailable');
  const around = <T extends object, K extends keyof T>(target: T, name: K, percent: number) => {
    const real = (target[name] as (...args: unknown[]) => Promise<unknown>).bind(target);
    vi.spyOn(target, name as never).mockImplementation((async (...args: unknown[]) => {
      if (chance(percent)) throw outage();
      return real(...args);
    }) as never);
  };
  around(h.suppressions, 'getMany', 15);
  around(h.messages, 'createMany', 15);
  around(h.messages, 'update', 20);
  around(h.queue, 'enqueue', 30);
}

/**
 * Records whose enqueue failed and that a second fault left unmarked (still `queued`, no job in the
 * queue): their job might have reached the queue, so their quota stays used (accept.ts
 * `UnmarkedError`). The harness numbers ids msg_1, msg_2, ...
 */
function unmarkedRecords(h: Harness): number {
  const queued = new Set(h.queue.jobs.map(({ job }) => job.id));
  let count = 0;
  for (let n = 1; n <= 2_000; n++) {
    const record = h.messages.peek(`msg_${n}`);
    if (record?.phase === 'queued' && !queued.has(record.id)) count += 1;
  }
  return count;
}

// Issue 11 parts 6 and 7 together: a client retrying a batch with one Idempotency-Key, some
// retries racing, while every dependency of the accept path fails now and then.
describe('a batch retried with one Idempotency-Key while dependencies fail at random', () => {
  it('queues each message at most once, ends with every message final once faults stop, and uses exactly the quota of what was accepted (and of the records a double fault left unmarked)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 63 }),
        fc.infiniteStream(fc.nat({ max: 99 })),
        async (size, dailyQuota, rounds, suppressedMask, draws) => {
          // Prepare
          vi.restoreAllMocks();
          const h = apiHarness(dailyQuota === undefined ? {} : { dailyQuota });
          const to = Array.from({ length: size }, (_, i) => `user${i}@example.org`);
          for (const [i, address] of to.entries()) {
            if ((suppressedMask >> i) & 1) await h.suppressions.put(suppression(address));
          }
          let faulty = true;
          injectFaults(h, (percent) => faulty && (draws.next().value as number) < percent);
          const body = { messages: to.map((address) => sendBody({ to: [address] })) };
          const send = () =>
            h.api(httpEvent(Route.sendBatch, { token: h.token, body, headers: { 'idempotency-key': 'k' } }));

          // Act
          for (const parallel of rounds) await Promise.all(Array.from({ length: parallel }, send));
          faulty = false;
          const last = await send();

          // Assess
          expect(last.statusCode).toBe(207);
          const results = (jsonOf(last) as { results: Array<Record<string, unknown>> }).results;
          const queuedTo = h.queue.jobs.map(({ job }) => job.message.to[0]?.address);
          expect(new Set(queuedTo).size).toBe(queuedTo.length);
          for (const r of results) {
            if (r.status === 'queued') expect(h.queue.jobs.filter((j) => j.job.id === r.id)).toHaveLength(1);
            // Once faults stop, the only answer left that is not final is the quota's.
            if ('error' in r) expect(r.error).toMatchObject({ status: 429 });
          }
          const accepted = results.filter((r) => !('error' in r)).length;
          if (dailyQuota === undefined) expect(accepted).toBe(size);
          else
            expect(h.usage.quota.get(`${h.key.keyId}#2025-03-01`) ?? 0).toBe(accepted + unmarkedRecords(h));
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);
});

describe('a message retried with one Idempotency-Key while dependencies fail at random', () => {
  it('is queued exactly once in the end, answered the same from then on, and uses one message of quota (plus one per record a double fault left unmarked)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 4 }),
        fc.infiniteStream(fc.nat({ max: 99 })),
        async (rounds, draws) => {
          // Prepare
          vi.restoreAllMocks();
          // Room for the 12 sends at most, each of which may leave a record unmarked.
          const h = apiHarness({ dailyQuota: 13, rateLimit: 100 });
          let faulty = true;
          injectFaults(h, (percent) => faulty && (draws.next().value as number) < percent);
          const send = () =>
            h.api(
              httpEvent(Route.sendMessage, {
                token: h.token,
                body: sendBody(),
                headers: { 'idempotency-key': 'k' },
              }),
            );

          // Act
          for (const parallel of rounds) await Promise.all(Array.from({ length: parallel }, send));
          faulty = false;
          const last = await send();
          const again = await send();

          // Assess
          expect(last.statusCode).toBe(202);
          expect(again.body).toBe(last.body);
          expect(h.queue.jobs.map((j) => j.job.id)).toEqual([(jsonOf(last) as { id: string }).id]);
          expect(h.usage.quota.get(`${h.key.keyId}#2025-03-01`)).toBe(1 + unmarkedRecords(h));
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);
});
