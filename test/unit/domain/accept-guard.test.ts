/**
 * The abuse guard at accept (issue 13): mail of a lane the tenant's guard state holds is accepted,
 * recorded held and its job kept, never enqueued, and never lost when the job cannot be kept; and
 * every request tells the guard, once, what it did to each recipient.
 */
import { describe, expect, it, vi } from 'vitest';
import type { GuardDecision } from '../../../lambdas/domain/guard/evaluate.ts';
import { heldEntry, holdInfo } from '../../../lambdas/domain/guard/hold.ts';
import { problem } from '../../../lambdas/domain/problem.ts';
import {
  acceptBatch,
  acceptMessage,
  acceptSubmission,
  countRefusedAtRcpt,
  countRejected,
} from '../../../lambdas/domain/send/accept.ts';
import { validateSendRequest } from '../../../lambdas/domain/send/send-request.ts';
import { readSubmission } from '../../../lambdas/domain/smtp/submission.ts';
import { suppressedReason } from '../../../lambdas/domain/suppression/suppression.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { sendBody, suppression, T0 } from '../../support/builders.ts';
import { decisionOf, guardMarkOf } from '../../support/guard.ts';
import { acceptHarness, type KeyOverrides } from '../../support/harness.ts';
import { problemOf } from '../../support/problems.ts';
import { composedMail, envelope } from '../../support/raw-mail.ts';

const NOW = new Date(T0);
const broadcast = (overrides: Record<string, unknown> = {}) =>
  sendBody({ stream: 'broadcast', listUnsubscribe: 'https://example.com/u', ...overrides });
/** An executable attachment: refused by the content checks. */
const EXE = [{ filename: 'invoice.exe', content: 'TVqQAAMAAAAEAAAA' }];

/** The harness with a key whose tenant's guard state holds mail by `decision`. */
function heldBy(decision: GuardDecision, overrides: KeyOverrides = {}) {
  return acceptHarness({ guard: guardMarkOf(decision), ...overrides });
}

describe('acceptMessage under the abuse guard', () => {
  it('records broadcast mail held with the reason and keeps its job while the tenant’s broadcast is paused; nothing is enqueued', async () => {
    // Prepare
    const decision = decisionOf('pauseBroadcast', NOW);
    const { deps, key, messages, queue, held, usage } = heldBy(decision);
    const body = broadcast();

    // Act
    const result = await acceptMessage(deps, key, body);

    // Assess
    expect(result).toEqual({
      id: 'msg_1',
      status: 'held',
      recipients: [{ address: 'ana@example.org', status: 'held' }],
      rewrittenFrom: null,
    });
    const hold = holdInfo(decision, NOW);
    const record = messages.peek('msg_1');
    expect(record).toMatchObject({
      phase: 'held',
      keyId: key.keyId,
      stream: 'broadcast',
      hold,
      // Written once, as a new record: its first version.
      version: 1,
      recipients: [{ address: 'ana@example.org', status: 'held', reason: decision.reason }],
      events: [
        { type: 'accepted', at: T0 },
        {
          type: 'held',
          at: T0,
          detail: {
            signal: 'hardBounceRate',
            action: 'pauseBroadcast',
            reason: decision.reason,
            until: hold.until,
          },
        },
      ],
    });
    expect(queue.jobs).toEqual([]);
    expect([...held.entries.values()]).toEqual([
      {
        entry: heldEntry(record as NonNullable<typeof record>, hold),
        job: { v: 1, id: 'msg_1', tenant: 'tenant-a', keyId: key.keyId, message: validateSendRequest(body) },
      },
    ]);
    // Held mail is accepted mail in the tenant's statistics.
    expect(usage.stats.get('tenant-a#2025-03-01')).toEqual({ accepted: 1 });
  });

  it('queues transactional mail while the tenant’s broadcast is paused', async () => {
    // Prepare
    const { deps, key, queue, held, messages } = heldBy(decisionOf('pauseBroadcast', NOW));

    // Act
    const result = await acceptMessage(deps, key, sendBody());

    // Assess
    expect(result.status).toBe('queued');
    expect(messages.peek('msg_1')?.phase).toBe('queued');
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1']);
    expect(held.entries.size).toBe(0);
  });

  it('holds mail of every lane while all of the tenant’s mail is held', async () => {
    // Prepare
    const { deps, key, queue, held } = heldBy(decisionOf('holdAll', NOW));

    // Act
    const results = [await acceptMessage(deps, key, sendBody()), await acceptMessage(deps, key, broadcast())];

    // Assess
    expect(results.map((r) => r.status)).toEqual(['held', 'held']);
    expect(queue.jobs).toEqual([]);
    expect([...held.entries.values()].map((e) => [e.entry.id, e.entry.lane, e.entry.action])).toEqual([
      ['msg_1', 'transactional', 'holdAll'],
      ['msg_2', 'broadcast', 'holdAll'],
    ]);
  });

  it('no longer holds once the hold is lifted from the key’s copy of the tenant state', async () => {
    // Prepare: an operator resumed the tenant; the guard wrote an empty state onto its keys
    const { deps, key, queue } = acceptHarness({ guard: { tenant: { actions: [] } } });

    // Act
    const result = await acceptMessage(deps, key, broadcast());

    // Assess
    expect(result.status).toBe('queued');
    expect(queue.jobs).toHaveLength(1);
  });

  it('records suppressed recipients of a held message suppressed, the others held', async () => {
    // Prepare
    const { deps, key, held, messages, suppressions } = heldBy(decisionOf('holdAll', NOW));
    suppressions.seed(suppression('gone@example.org', 'complaint'));

    // Act
    const result = await acceptMessage(deps, key, sendBody({ to: ['ana@example.org', 'gone@example.org'] }));

    // Assess
    expect(result.recipients).toEqual([
      { address: 'ana@example.org', status: 'held' },
      { address: 'gone@example.org', status: 'suppressed', reason: 'complaint' },
    ]);
    expect(messages.peek('msg_1')?.recipients.map((r) => [r.address, r.status, r.reason])).toEqual([
      ['ana@example.org', 'held', decisionOf('holdAll', NOW).reason],
      ['gone@example.org', 'suppressed', suppressedReason(suppression('gone@example.org', 'complaint'))],
    ]);
    expect(held.entries.size).toBe(1);
  });

  it('answers a message whose every recipient is suppressed as suppressed, and keeps no job for it', async () => {
    // Prepare
    const { deps, key, held, messages, suppressions } = heldBy(decisionOf('holdAll', NOW));
    suppressions.seed(suppression('ana@example.org'));

    // Act
    const result = await acceptMessage(deps, key, sendBody());

    // Assess
    expect(result.status).toBe('suppressed');
    expect(messages.peek('msg_1')?.phase).toBe('suppressed');
    expect(held.entries.size).toBe(0);
  });

  it('keeps the job before it writes the record, so a held record always has its job', async () => {
    // Prepare
    const { deps, key, held, messages } = heldBy(decisionOf('holdAll', NOW));
    const recordedAtKeep: unknown[] = [];
    const keep = held.keep.bind(held);
    vi.spyOn(held, 'keep').mockImplementation(async (entry, job) => {
      recordedAtKeep.push(messages.peek(entry.id));
      return keep(entry, job);
    });

    // Act
    await acceptMessage(deps, key, sendBody());

    // Assess
    expect(recordedAtKeep).toEqual([undefined]);
    expect(messages.peek('msg_1')?.phase).toBe('held');
  });

  it('answers 503 and records nothing when the job cannot be kept, and gives the quota back', async () => {
    // Prepare
    const { deps, key, held, messages, queue, usage, guard } = heldBy(decisionOf('holdAll', NOW), {
      dailyQuota: 10,
    });
    vi.spyOn(held, 'keep').mockRejectedValue(new TransientError('bucket unavailable'));

    // Act
    const p = await problemOf(() => acceptMessage(deps, key, sendBody()));

    // Assess: nothing was accepted, so the client's retry is the only copy
    expect(p.status).toBe(503);
    expect(p.detail).toMatch(/could not keep the message the abuse guard holds; it was not accepted/);
    expect(messages.peek('msg_1')).toBeUndefined();
    expect(queue.jobs).toEqual([]);
    expect(await usage.quotaUsed(key.keyId, '2025-03-01')).toBe(0);
    expect(guard.accepts).toEqual([]);
  });
});

describe('a held message whose record cannot be written', () => {
  it('forgets its kept job when the record write fails, so the retry the 503 advises is the only copy', async () => {
    // Prepare
    const { deps, key, held, messages } = heldBy(decisionOf('holdAll', NOW));
    vi.spyOn(messages, 'create').mockRejectedValue(new TransientError('table unavailable'));

    // Act: the front door answers it 503 (a TransientError)
    await expect(acceptMessage(deps, key, sendBody())).rejects.toThrow(TransientError);

    // Assess
    expect(held.entries.size).toBe(0);
  });

  it('forgets the kept jobs of a batch whose records cannot be written', async () => {
    // Prepare
    const { deps, key, held, messages } = heldBy(decisionOf('pauseBroadcast', NOW));
    vi.spyOn(messages, 'createMany').mockRejectedValue(new TransientError('table unavailable'));

    // Act
    await expect(acceptBatch(deps, key, [sendBody(), broadcast(), broadcast()])).rejects.toThrow(
      TransientError,
    );

    // Assess
    expect(held.entries.size).toBe(0);
  });
});

describe('acceptBatch under the abuse guard', () => {
  it('holds the broadcast messages and queues the transactional ones of one batch', async () => {
    // Prepare
    const { deps, key, queue, held } = heldBy(decisionOf('pauseBroadcast', NOW));

    // Act
    const results = await acceptBatch(deps, key, [
      sendBody({ to: ['ana@example.org'] }),
      broadcast({ to: ['bob@example.org'] }),
    ]);

    // Assess
    expect(results).toEqual([
      {
        index: 0,
        id: 'msg_1',
        status: 'queued',
        recipients: [{ address: 'ana@example.org', status: 'queued' }],
        rewrittenFrom: null,
      },
      {
        index: 1,
        id: 'msg_2',
        status: 'held',
        recipients: [{ address: 'bob@example.org', status: 'held' }],
        rewrittenFrom: null,
      },
    ]);
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1']);
    expect([...held.entries.values()].map((e) => e.job.id)).toEqual(['msg_2']);
  });

  it('answers 503 for a message whose job cannot be kept, records it not, gives its quota back; the others stand', async () => {
    // Prepare
    const { deps, key, queue, held, messages, usage } = heldBy(decisionOf('pauseBroadcast', NOW), {
      dailyQuota: 10,
    });
    const keep = held.keep.bind(held);
    vi.spyOn(held, 'keep').mockImplementation(async (entry, job) => {
      if (entry.id === 'msg_2') throw new TransientError('bucket unavailable');
      return keep(entry, job);
    });

    // Act
    const results = await acceptBatch(deps, key, [sendBody(), broadcast(), broadcast()]);

    // Assess
    expect(results.map((r) => ('error' in r ? r.error.status : r.status))).toEqual(['queued', 503, 'held']);
    expect(messages.peek('msg_2')).toBeUndefined();
    expect(messages.peek('msg_3')?.phase).toBe('held');
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1']);
    expect([...held.entries.values()].map((e) => e.job.id)).toEqual(['msg_3']);
    expect(await usage.quotaUsed(key.keyId, '2025-03-01')).toBe(2);
  });
});

describe('acceptSubmission under the abuse guard', () => {
  it('holds a message that arrived over SMTP as it holds a JSON one', async () => {
    // Prepare
    const { deps, key, queue, held, messages } = heldBy(decisionOf('holdAll', NOW));
    const message = await readSubmission(await composedMail({}), envelope(['ana@example.org']));

    // Act
    const result = await acceptSubmission(deps, key, message, { maxJobBytes: 1_000_000 });

    // Assess
    expect(result.status).toBe('held');
    expect(messages.peek('msg_1')).toMatchObject({ phase: 'held', keyId: key.keyId });
    expect(queue.jobs).toEqual([]);
    expect([...held.entries.values()].map((e) => e.job.keyId)).toEqual([key.keyId]);
  });
});

describe('what each request tells the abuse guard', () => {
  it('tells it once per message, one tally per recipient: queued, held or suppressed', async () => {
    // Prepare
    const { deps, key, guard, suppressions } = acceptHarness();
    suppressions.seed(suppression('gone@example.org'));

    // Act
    await acceptMessage(deps, key, sendBody({ to: ['ana@example.org', 'gone@example.org'] }));

    // Assess
    expect(guard.accepts).toEqual([
      {
        keyId: key.keyId,
        tenant: 'tenant-a',
        recipients: [
          { address: 'ana@example.org', outcome: 'queued' },
          { address: 'gone@example.org', outcome: 'suppressed' },
        ],
      },
    ]);
  });

  it('tells it held recipients as held, not as sends', async () => {
    // Prepare
    const { deps, key, guard } = heldBy(decisionOf('holdAll', NOW));

    // Act
    await acceptMessage(deps, key, sendBody());

    // Assess
    expect(guard.accepts.map((a) => a.recipients)).toEqual([
      [{ address: 'ana@example.org', outcome: 'held' }],
    ]);
  });

  it('answers an accepted message as accepted even if the guard breaks its promise never to throw', async () => {
    // Prepare: a 5xx after the message was queued would have the client send it a second time
    const { deps, key, guard, queue } = acceptHarness();
    vi.spyOn(guard, 'recordAccept').mockRejectedValue(new Error('guard bug'));

    // Act
    const result = await acceptMessage(deps, key, sendBody());
    const batch = await acceptBatch(deps, key, [sendBody()]);

    // Assess
    expect([result.status, ...batch.map((r) => ('error' in r ? r.error.status : r.status))]).toEqual([
      'queued',
      'queued',
    ]);
    expect(queue.jobs).toHaveLength(2);
  });

  it('counts a content refusal per recipient of a message the content checks refused', async () => {
    // Prepare
    const { deps, key, guard } = acceptHarness();

    // Act
    await problemOf(() =>
      acceptMessage(
        deps,
        key,
        sendBody({ to: ['Ana <ana@example.org>', 'bob@example.net'], attachments: EXE }),
      ),
    );

    // Assess
    expect(guard.accepts.map((a) => a.recipients)).toEqual([
      [
        { address: 'ana@example.org', outcome: 'refused' },
        { address: 'bob@example.net', outcome: 'refused' },
      ],
    ]);
  });

  it('counts header injection as a content refusal', async () => {
    // Prepare
    const { deps, key, guard } = acceptHarness();

    // Act
    await problemOf(() => acceptMessage(deps, key, sendBody({ subject: 'Hi\r\nBcc: all@example.net' })));

    // Assess
    expect(guard.accepts.map((a) => a.recipients)).toEqual([
      [{ address: 'ana@example.org', outcome: 'refused' }],
    ]);
  });

  it('counts one content refusal when the refused message’s recipients cannot be read', async () => {
    // Prepare
    const { deps, key, guard } = acceptHarness();

    // Act
    await problemOf(() => acceptMessage(deps, key, sendBody({ to: 42, attachments: EXE })));

    // Assess
    expect(guard.accepts.map((a) => a.recipients)).toEqual([[{ address: '', outcome: 'refused' }]]);
  });

  it('tells it nothing of a refusal that is not about content (a missing field, a foreign From)', async () => {
    // Prepare
    const { deps, key, guard } = acceptHarness();

    // Act
    await problemOf(() => acceptMessage(deps, key, sendBody({ subject: undefined })));
    await problemOf(() => acceptMessage(deps, key, sendBody({ from: 'someone@other.org' })));

    // Assess
    expect(guard.accepts).toEqual([]);
  });

  it('tells it once for a whole batch, content refusals included', async () => {
    // Prepare
    const { deps, key, guard } = heldBy(decisionOf('pauseBroadcast', NOW));

    // Act
    await acceptBatch(deps, key, [
      sendBody({ to: ['ana@example.org'] }),
      broadcast({ to: ['bob@example.org'] }),
      sendBody({ to: ['carl@example.org'], attachments: EXE }),
      sendBody({ to: ['dora@example.org'], subject: '' }),
    ]);

    // Assess
    expect(guard.accepts.map((a) => a.recipients)).toEqual([
      [
        { address: 'ana@example.org', outcome: 'queued' },
        { address: 'bob@example.org', outcome: 'held' },
        { address: 'carl@example.org', outcome: 'refused' },
      ],
    ]);
  });

  it('counts an SMTP message the content checks refused before accept per envelope recipient', async () => {
    // Prepare
    const { deps, key, guard, usage } = acceptHarness();
    const refusal = problem('invalid_message', 'The message is not valid.', [
      {
        path: 'attachments[0].filename',
        message: 'executable or script attachments are not allowed (.exe files run when opened)',
      },
    ]);

    // Act
    await countRejected(deps, key, refusal, ['ana@example.org', 'bob@example.org']);

    // Assess
    expect(usage.stats.get('tenant-a#2025-03-01')).toEqual({ rejected: 1 });
    expect(guard.accepts.map((a) => a.recipients)).toEqual([
      [
        { address: 'ana@example.org', outcome: 'refused' },
        { address: 'bob@example.org', outcome: 'refused' },
      ],
    ]);
  });

  it('counts every recipient of an SMTP transaction refused at RCPT as a suppressed hit', async () => {
    // Prepare
    const { deps, key, guard, usage } = acceptHarness();

    // Act
    await countRefusedAtRcpt(deps, key, ['gone@example.org', 'left@example.org']);

    // Assess
    expect(usage.stats.get('tenant-a#2025-03-01')).toEqual({ suppressed: 1 });
    expect(guard.accepts.map((a) => a.recipients)).toEqual([
      [
        { address: 'gone@example.org', outcome: 'suppressed' },
        { address: 'left@example.org', outcome: 'suppressed' },
      ],
    ]);
  });
});
