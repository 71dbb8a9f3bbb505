import { describe, expect, it, vi } from 'vitest';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { acceptMessage, MAX_JOB_BYTES } from '../../../lambdas/domain/send/accept.ts';
import { validateSendRequest } from '../../../lambdas/domain/send/send-request.ts';
import { suppressedReason } from '../../../lambdas/domain/suppression/suppression.ts';
import { ConflictError, TransientError } from '../../../lambdas/shared/errors.ts';
import { messageRecord, sendBody, suppression, T0 } from '../../support/builders.ts';
import { acceptHarness } from '../../support/harness.ts';
import { problemOf } from '../../support/problems.ts';

const setUp = acceptHarness;

describe('acceptMessage', () => {
  it('records the message as queued and puts the job on its lane', async () => {
    // Prepare
    const { deps, messages, queue, key } = setUp();
    const body = sendBody();

    // Act
    const result = await acceptMessage(deps, key, body);

    // Assess
    expect(result).toEqual({
      id: 'msg_1',
      status: 'queued',
      recipients: [{ address: 'ana@example.org', status: 'queued' }],
      rewrittenFrom: null,
    });
    expect(messages.peek('msg_1')).toEqual(messageRecord({ keyId: key.keyId }));
    expect(queue.jobs).toEqual([
      {
        lane: 'transactional',
        job: { v: 1, id: 'msg_1', tenant: 'tenant-a', keyId: key.keyId, message: validateSendRequest(body) },
      },
    ]);
  });

  it('writes the record before it enqueues the job, so the sender always finds it', async () => {
    // Prepare
    const { deps, messages, queue, key } = setUp();
    let recordAtEnqueue: MessageRecord | undefined;
    vi.spyOn(queue, 'enqueue').mockImplementation(async () => {
      recordAtEnqueue = messages.peek('msg_1');
    });

    // Act
    await acceptMessage(deps, key, sendBody());

    // Assess
    expect(recordAtEnqueue?.phase).toBe('queued');
  });

  it('puts broadcast mail on the broadcast lane', async () => {
    // Prepare
    const { deps, queue, key } = setUp();

    // Act
    await acceptMessage(
      deps,
      key,
      sendBody({ stream: 'broadcast', listUnsubscribe: 'https://example.com/u' }),
    );

    // Assess
    expect(queue.jobs.map((j) => j.lane)).toEqual(['broadcast']);
  });

  it('reads the suppression list once for all recipients, by normalised address', async () => {
    // Prepare
    const { deps, suppressions, key } = setUp();
    const body = sendBody({ to: ['Ana@Example.org'], cc: ['bob@bücher.example'], bcc: ['carl@example.net'] });

    // Act
    await acceptMessage(deps, key, body);

    // Assess
    expect(suppressions.getManyCalls).toEqual([
      ['ana@example.org', 'bob@xn--bcher-kva.example', 'carl@example.net'],
    ]);
  });

  it('answers a suppressed recipient as suppressed with its reason and still sends to the others', async () => {
    // Prepare
    const { deps, messages, suppressions, queue, key } = setUp();
    const complaint = suppression('bob@example.org', 'complaint', { detail: 'feedback type: abuse' });
    suppressions.seed(complaint);

    // Act
    const result = await acceptMessage(deps, key, sendBody({ to: ['ana@example.org', 'Bob@example.org'] }));

    // Assess
    expect(result).toEqual({
      id: 'msg_1',
      status: 'queued',
      recipients: [
        { address: 'ana@example.org', status: 'queued' },
        { address: 'Bob@example.org', status: 'suppressed', reason: 'complaint' },
      ],
      rewrittenFrom: null,
    });
    const record = messages.peek('msg_1');
    expect(record?.recipients).toEqual([
      { address: 'ana@example.org', kind: 'to', status: 'queued', reason: null, updatedAt: T0 },
      {
        address: 'Bob@example.org',
        kind: 'to',
        status: 'suppressed',
        reason: suppressedReason(complaint),
        updatedAt: T0,
      },
    ]);
    expect(record?.events).toEqual([
      { type: 'accepted', at: T0 },
      { type: 'suppressed', at: T0, recipient: 'Bob@example.org', detail: { reason: 'complaint' } },
    ]);
    expect(queue.jobs).toHaveLength(1);
  });

  it('records a message whose every recipient is suppressed as suppressed and enqueues nothing', async () => {
    // Prepare
    const { deps, messages, suppressions, queue, key } = setUp();
    suppressions.seed(
      suppression('ana@example.org', 'hard_bounce'),
      suppression('bob@example.org', 'unsubscribe'),
    );

    // Act
    const result = await acceptMessage(
      deps,
      key,
      sendBody({ to: ['ana@example.org'], bcc: ['bob@example.org'] }),
    );

    // Assess
    expect(result).toEqual({
      id: 'msg_1',
      status: 'suppressed',
      recipients: [
        { address: 'ana@example.org', status: 'suppressed', reason: 'hard_bounce' },
        { address: 'bob@example.org', status: 'suppressed', reason: 'unsubscribe' },
      ],
      rewrittenFrom: null,
    });
    expect(messages.peek('msg_1')?.phase).toBe('suppressed');
    expect(queue.jobs).toEqual([]);
  });

  it('ignores a soft bounce suppression that has expired', async () => {
    // Prepare
    const { deps, suppressions, queue, key } = setUp();
    suppressions.seed(
      suppression('ana@example.org', 'soft_bounce', { expiresAt: '2025-03-01T11:59:59.999Z' }),
    );

    // Act
    const result = await acceptMessage(deps, key, sendBody());

    // Assess
    expect(result.status).toBe('queued');
    expect(queue.jobs).toHaveLength(1);
  });

  it('lists an address given twice (in any case, in to and cc) once, where it first appears', async () => {
    // Prepare
    const { deps, messages, key } = setUp();
    const body = sendBody({ to: ['ana@example.org', 'ANA@EXAMPLE.ORG'], cc: ['Ana@example.org'] });

    // Act
    const result = await acceptMessage(deps, key, body);

    // Assess
    expect(result.recipients).toEqual([{ address: 'ana@example.org', status: 'queued' }]);
    expect(messages.peek('msg_1')?.recipients.map((r) => [r.address, r.kind])).toEqual([
      ['ana@example.org', 'to'],
    ]);
  });

  it('marks the record failed and answers 503 when the job cannot be enqueued, so nothing is lost silently', async () => {
    // Prepare
    const { deps, messages, queue, clock, key } = setUp();
    vi.spyOn(queue, 'enqueue').mockImplementation(async () => {
      clock.advance(250);
      throw new TransientError('sending the job failed: ThrottlingException');
    });

    // Act
    const p = await problemOf(() => acceptMessage(deps, key, sendBody()));

    // Assess
    const reason = 'Baton could not queue the message; it was not sent. Retry the request.';
    expect(p).toEqual({
      type: 'urn:baton:problem:unavailable',
      title: 'Service unavailable',
      status: 503,
      detail: `${reason} (TransientError)`,
      code: 'unavailable',
    });
    const failedAt = '2025-03-01T12:00:00.250Z';
    expect(messages.peek('msg_1')).toMatchObject({
      phase: 'failed',
      updatedAt: failedAt,
      version: 2,
      recipients: [{ address: 'ana@example.org', kind: 'to', status: 'failed', reason, updatedAt: failedAt }],
      events: [
        { type: 'accepted', at: T0 },
        { type: 'failed', at: failedAt, detail: { reason } },
      ],
    });
  });

  describe('an enqueue that failed only in its answer (the job reached the queue)', () => {
    /** The enqueue lands, the sender picks the job up and moves the record on, then the answer is lost. */
    const landsThenFails = (h: ReturnType<typeof setUp>) =>
      vi.spyOn(h.queue, 'enqueue').mockImplementationOnce(async (_lane, job) => {
        const record = h.messages.peek(job.id) as MessageRecord;
        await h.messages.update({ ...record, phase: 'sending', version: record.version + 1 }, record.version);
        throw new TransientError('sending the job failed: socket hang up');
      });

    it('answers the message accepted and keeps its quota when the sender already holds its record', async () => {
      // Prepare
      const h = setUp({ dailyQuota: 5 });
      landsThenFails(h);

      // Act
      const result = await acceptMessage(h.deps, h.key, sendBody());

      // Assess: a 503 here would make the client send it again, and it goes out twice.
      expect(result).toMatchObject({ id: 'msg_1', status: 'queued' });
      expect(h.messages.peek('msg_1')?.phase).toBe('sending');
      expect(h.usage.quota.get(`${h.key.keyId}#2025-03-01`)).toBe(1);
      expect(h.usage.stats.get('tenant-a#2025-03-01')).toEqual({ accepted: 1 });
    });

    it('still marks the record failed and answers 503 when something else rewrote it meanwhile but nobody claimed it', async () => {
      // Prepare: an erasure (say) rewrites the still-queued record between the create and the mark.
      const h = setUp({ dailyQuota: 5 });
      vi.spyOn(h.queue, 'enqueue').mockRejectedValueOnce(new TransientError('throttled'));
      h.messages.beforeNextUpdate(() => {
        const record = h.messages.peek('msg_1') as MessageRecord;
        h.messages.seed({ ...record, subject: 'rewritten', version: record.version + 1 });
      });

      // Act
      const p = await problemOf(() => acceptMessage(h.deps, h.key, sendBody()));

      // Assess
      expect(p.status).toBe(503);
      expect(h.messages.peek('msg_1')).toMatchObject({ phase: 'failed', subject: 'rewritten', version: 3 });
      expect(h.usage.quota.get(`${h.key.keyId}#2025-03-01`)).toBe(0);
    });

    it('still answers 503 when its own failed mark landed and only that answer was lost', async () => {
      // Prepare
      const h = setUp({ dailyQuota: 5 });
      vi.spyOn(h.queue, 'enqueue').mockRejectedValueOnce(new TransientError('throttled'));
      const update = h.messages.update.bind(h.messages);
      vi.spyOn(h.messages, 'update').mockImplementationOnce(async (next, version) => {
        await update(next, version);
        throw new ConflictError('message msg_1 changed since version 1');
      });

      // Act
      const p = await problemOf(() => acceptMessage(h.deps, h.key, sendBody()));

      // Assess
      expect(p.status).toBe(503);
      expect(h.messages.peek('msg_1')?.phase).toBe('failed');
      expect(h.usage.quota.get(`${h.key.keyId}#2025-03-01`)).toBe(0);
    });
  });

  it('leaves suppressed recipients suppressed when the enqueue fails', async () => {
    // Prepare
    const { deps, messages, suppressions, queue, key } = setUp();
    suppressions.seed(suppression('bob@example.org', 'complaint'));
    vi.spyOn(queue, 'enqueue').mockRejectedValueOnce(new Error('boom'));

    // Act
    const p = await problemOf(() =>
      acceptMessage(deps, key, sendBody({ to: ['ana@example.org', 'bob@example.org'] })),
    );

    // Assess
    expect(p.detail).toBe('Baton could not queue the message; it was not sent. Retry the request. (Error)');
    expect(messages.peek('msg_1')?.recipients.map((r) => r.status)).toEqual(['failed', 'suppressed']);
  });

  it('refuses a message above the job size limit with 413 and records nothing', async () => {
    // Prepare
    const { deps, messages, queue, key } = setUp();
    const body = sendBody({ attachments: [{ filename: 'big.bin', content: 'A'.repeat(MAX_JOB_BYTES) }] });
    const jobBytes = Buffer.byteLength(
      JSON.stringify({ v: 1, id: 'msg_1', tenant: 'tenant-a', message: validateSendRequest(body) }),
    );

    // Act
    const p = await problemOf(() => acceptMessage(deps, key, body));

    // Assess
    expect(p).toEqual({
      type: 'urn:baton:problem:too_large',
      title: 'Request too large',
      status: 413,
      detail: `The message is ${Math.ceil(jobBytes / 1024)} KB once encoded; the limit is ${MAX_JOB_BYTES / 1000} KB including attachments.`,
      code: 'too_large',
    });
    expect(messages.peek('msg_1')).toBeUndefined();
    expect(queue.jobs).toEqual([]);
  });

  it('accepts a message of exactly the job size limit once encoded', async () => {
    // Prepare
    const { deps, queue, key } = setUp();
    const bytesOf = (body: Record<string, unknown>) =>
      Buffer.byteLength(
        JSON.stringify({
          v: 1,
          id: 'msg_1',
          tenant: 'tenant-a',
          keyId: key.keyId,
          message: validateSendRequest(body),
        }),
      );
    const attachment = (n: number) => [{ filename: 'f.bin', content: 'A'.repeat(n) }];
    const room = MAX_JOB_BYTES - bytesOf(sendBody({ subject: 'x', attachments: attachment(0) }));
    // Base64 comes in fours; the subject takes up the rest, one byte per ASCII character.
    const body = sendBody({
      subject: 'x'.repeat(1 + (room % 4)),
      attachments: attachment(room - (room % 4)),
    });

    // Act
    await acceptMessage(deps, key, body);

    // Assess
    expect(bytesOf(body)).toBe(MAX_JOB_BYTES);
    expect(queue.jobs).toHaveLength(1);
  });

  it('lets a validation problem through as 422 and records nothing', async () => {
    // Prepare
    const { deps, messages, suppressions, key } = setUp();

    // Act
    const p = await problemOf(() => acceptMessage(deps, key, sendBody({ to: ['nope'] })));

    // Assess
    expect(p.status).toBe(422);
    expect(p.errors).toEqual([{ path: 'to[0]', message: 'invalid address: must contain "@"' }]);
    expect(messages.peek('msg_1')).toBeUndefined();
    expect(suppressions.getManyCalls).toEqual([]);
  });

  it('refuses a From outside the key’s domains with 403 and records nothing', async () => {
    // Prepare
    const { deps, messages, key } = setUp();

    // Act
    const p = await problemOf(() => acceptMessage(deps, key, sendBody({ from: 'ana@legacy.example' })));

    // Assess
    expect(p.status).toBe(403);
    expect(messages.peek('msg_1')).toBeUndefined();
  });

  it('answers the rewritten From and records it when the key’s policy rewrites', async () => {
    // Prepare
    const { deps, messages, queue, key } = setUp({
      senderPolicy: 'rewrite',
      defaultFrom: 'relay@example.com',
    });

    // Act
    const result = await acceptMessage(deps, key, sendBody({ from: 'Ana <ana@legacy.example>' }));

    // Assess
    expect(result.rewrittenFrom).toBe('Ana via Baton <relay@example.com>');
    expect(messages.peek('msg_1')?.from).toBe('Ana via Baton <relay@example.com>');
    expect(queue.jobs[0]?.job.message.originalFrom).toEqual({ name: 'Ana', address: 'ana@legacy.example' });
  });
});
