import { createHmac } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import {
  continueErasure,
  type ErasureDeps,
  erasedKeyFunction,
  eraseFromRecord,
  eraseRecipient,
  isErasedKey,
  loggableKey,
  MalformedErasureJobError,
  parseErasureJob,
  TombstoneAwareSuppressions,
  tombstoneFor,
} from '../../../lambdas/domain/erasure/erasure.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { ConfigurationError, TransientError } from '../../../lambdas/shared/errors.ts';
import { erasureJob, messageRecord, recipient, suppression, T0 } from '../../support/builders.ts';
import {
  InMemoryErasureQueue,
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  testClock,
} from '../../support/fakes.ts';
import { ANA, ANA_KEY, ERASURE_SECRET, keyOf } from '../../support/unit-erasure.ts';

function erasureRig() {
  const messages = new InMemoryMessageStore();
  const suppressions = new InMemorySuppressionStore();
  const queue = new InMemoryErasureQueue();
  const softBounces = new InMemorySoftBounceStore();
  const clock = testClock(T0);
  const deps: ErasureDeps = { messages, suppressions, softBounces, queue, keyOf, clock, segments: 2 };
  return { deps, messages, suppressions, softBounces, queue, clock };
}

/** A record sent to ana (and bob), ana's copy bounced with a diagnostic that quotes her address. */
function bouncedToAna(overrides: Partial<MessageRecord> = {}): MessageRecord {
  return messageRecord({
    phase: 'sent',
    recipients: [
      recipient('Ana@Example.org', 'bounced', {
        reason: 'bounced (Permanent/General): 550 5.1.1 <ana@example.org>: user unknown',
      }),
      recipient('bob@example.org', 'delivered', { kind: 'cc' }),
    ],
    events: [
      { type: 'accepted', at: T0 },
      { type: 'sent', at: T0, sesMessageId: 'ses-1' },
      {
        type: 'bounced',
        at: T0,
        recipient: 'Ana@Example.org',
        detail: { diagnosticCode: 'smtp; 550 5.1.1 <ANA@EXAMPLE.ORG>: user unknown', status: '5.1.1' },
      },
      { type: 'delivered', at: T0, recipient: 'bob@example.org', detail: { smtpResponse: '250 ok' } },
    ],
    ...overrides,
  });
}

describe('the pseudonym of an erased address', () => {
  it('is "erased:" and the first 24 hex digits of the HMAC-SHA256 of the address under the secret', () => {
    // Prepare
    const expected = createHmac('sha256', ERASURE_SECRET).update(ANA).digest('hex').slice(0, 24);

    // Act
    const key = keyOf(ANA);

    // Assess
    expect(key).toBe(`erased:${expected}`);
    expect(isErasedKey(key)).toBe(true);
    expect(loggableKey(key)).toBe(`erased:${expected.slice(0, 8)}`);
  });

  it('differs between deployments (secrets) and between addresses', () => {
    // Act
    const other = erasedKeyFunction('another-secret-of-this-deployment-42')(ANA);

    // Assess
    expect(other).not.toBe(ANA_KEY);
    expect(keyOf('bob@example.org')).not.toBe(ANA_KEY);
  });

  it('refuses a secret shorter than 32 characters, naming its length and never its value', () => {
    // Act
    const build = () => erasedKeyFunction('short');

    // Assess
    expect(build).toThrow(new ConfigurationError('the erasure secret must be at least 32 characters, got 5'));
  });
});

describe('eraseFromRecord', () => {
  it('replaces the recipient, its event recipient and every quoted spelling of the address', () => {
    // Prepare
    const record = bouncedToAna();

    // Act
    const erased = eraseFromRecord(record, ANA_KEY, keyOf);

    // Assess
    expect(erased).toEqual({
      ...record,
      recipients: [
        recipient(ANA_KEY, 'bounced', {
          reason: `bounced (Permanent/General): 550 5.1.1 <${ANA_KEY}>: user unknown`,
        }),
        recipient('bob@example.org', 'delivered', { kind: 'cc' }),
      ],
      events: [
        { type: 'accepted', at: T0 },
        { type: 'sent', at: T0, sesMessageId: 'ses-1' },
        {
          type: 'bounced',
          at: T0,
          recipient: ANA_KEY,
          detail: { diagnosticCode: `smtp; 550 5.1.1 <${ANA_KEY}>: user unknown`, status: '5.1.1' },
        },
        { type: 'delivered', at: T0, recipient: 'bob@example.org', detail: { smtpResponse: '250 ok' } },
      ],
      version: 2,
    });
  });

  it('scrubs the address from the subject and From of a record it was sent to', () => {
    // Prepare
    const record = messageRecord({ subject: 'Welcome, ana@example.org!', from: 'ana@example.org via Shop' });

    // Act
    const erased = eraseFromRecord(record, ANA_KEY, keyOf);

    // Assess
    expect([erased?.subject, erased?.from]).toEqual([`Welcome, ${ANA_KEY}!`, `${ANA_KEY} via Shop`]);
  });

  it('recognises an internationalised address however its domain is written', () => {
    // Prepare: recorded as sent (punycode); the diagnostic quotes the Unicode domain.
    const key = keyOf('ana@xn--bcher-kva.example');
    const record = messageRecord({
      recipients: [
        recipient('ana@xn--bcher-kva.example', 'bounced', {
          reason: 'bounced: <ana@bücher.example> unknown',
        }),
      ],
    });

    // Act
    const erased = eraseFromRecord(record, key, keyOf);

    // Assess
    expect(erased?.recipients).toEqual([recipient(key, 'bounced', { reason: `bounced: <${key}> unknown` })]);
  });

  it('leaves a record that was not sent to the address alone', () => {
    // Prepare
    const record = messageRecord({
      recipients: [recipient('bob@example.org')],
      subject: 'about ana@example.org',
    });

    // Act
    const erased = eraseFromRecord(record, ANA_KEY, keyOf);

    // Assess
    expect(erased).toBeUndefined();
  });

  it('finds nothing left to erase in a record it erased before', () => {
    // Prepare
    const once = eraseFromRecord(bouncedToAna(), ANA_KEY, keyOf) as MessageRecord;

    // Act
    const twice = eraseFromRecord(once, ANA_KEY, keyOf);

    // Assess
    expect(twice).toBeUndefined();
  });
});

describe('tombstoneFor', () => {
  const now = new Date(T0);

  it('makes a permanent manual tombstone of the erasing tenant, detail "erased", for an address that had no suppression', () => {
    // Act
    const tombstone = tombstoneFor(ANA, ANA_KEY, undefined, now, 'tenant-a');

    // Assess
    expect(tombstone).toEqual({
      tenant: 'tenant-a',
      address: ANA_KEY,
      reason: 'manual',
      detail: 'erased',
      source: 'api',
      createdAt: T0,
      expiresAt: null,
      severity: 2,
    });
  });

  it('carries a complaint over, with the address scrubbed from its detail and evidence', () => {
    // Prepare
    const prior = suppression(ANA, 'complaint', {
      detail: 'abuse report for ana@example.org',
      source: 'msg_7',
      createdAt: '2025-02-01T00:00:00.000Z',
      evidence: { feedbackType: 'abuse', recipient: 'Ana@Example.org' },
    });

    // Act
    const tombstone = tombstoneFor(ANA, ANA_KEY, prior, now, 'tenant-a');

    // Assess
    expect(tombstone).toEqual({
      tenant: 'tenant-a',
      address: ANA_KEY,
      reason: 'complaint',
      detail: `abuse report for ${ANA_KEY}`,
      source: 'msg_7',
      createdAt: '2025-02-01T00:00:00.000Z',
      expiresAt: null,
      severity: 4,
      evidence: { feedbackType: 'abuse', recipient: ANA_KEY },
    });
  });

  it('turns a soft bounce, which would expire, into a permanent manual tombstone', () => {
    // Prepare
    const prior = suppression(ANA, 'soft_bounce', { expiresAt: '2025-03-10T00:00:00.000Z' });

    // Act
    const tombstone = tombstoneFor(ANA, ANA_KEY, prior, now, 'tenant-a');

    // Assess
    expect([tombstone.reason, tombstone.detail, tombstone.expiresAt]).toEqual(['manual', 'erased', null]);
  });
});

describe('TombstoneAwareSuppressions', () => {
  function rig() {
    const table = new InMemorySuppressionStore();
    return { table, store: new TombstoneAwareSuppressions(table, keyOf) };
  }

  it('answers for an erased address with its tombstone, under the address asked for', async () => {
    // Prepare
    const { table, store } = rig();
    table.seed(tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a'));

    // Act
    const found = await store.get(ANA, 'tenant-a');

    // Assess
    expect(found).toEqual({
      ...tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a'),
      address: ANA,
      erasedAs: ANA_KEY,
    });
  });

  it('reads the plain and the tombstone key of every recipient in one batched read', async () => {
    // Prepare
    const { table, store } = rig();
    table.seed(
      suppression('bob@example.org', 'hard_bounce'),
      tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a'),
    );

    // Act
    const found = await store.getMany([ANA, 'bob@example.org', 'cy@example.org'], 'tenant-a');

    // Assess
    expect(table.getManyCalls).toEqual([
      [ANA, 'bob@example.org', 'cy@example.org', ANA_KEY, keyOf('bob@example.org'), keyOf('cy@example.org')],
    ]);
    expect([...found.keys()].sort()).toEqual([ANA, ANA_KEY, 'bob@example.org'].sort());
    expect([found.get(ANA)?.address, found.get(ANA)?.reason]).toEqual([ANA, 'manual']);
  });

  it('finds the tombstone of a recipient that is already erased in its record', async () => {
    // Prepare
    const { table, store } = rig();
    table.seed(tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a'));

    // Act
    const found = await store.getMany([ANA_KEY], 'tenant-a');

    // Assess
    expect(table.getManyCalls).toEqual([[ANA_KEY]]);
    expect(found.get(ANA_KEY)?.reason).toBe('manual');
  });

  it('prefers a stronger plain suppression to the tombstone', async () => {
    // Prepare
    const { table, store } = rig();
    table.seed(
      suppression(ANA, 'complaint'),
      tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a'),
    );

    // Act
    const [one, many] = [await store.get(ANA, 'tenant-a'), (await store.getMany([ANA], 'tenant-a')).get(ANA)];

    // Assess
    expect([one?.reason, many?.reason]).toEqual(['complaint', 'complaint']);
  });

  it('writes later evidence about mail of the tenant that erased the address onto its tombstone, never under the address', async () => {
    // Prepare
    const { table, store } = rig();
    table.seed(tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a'));

    // Act
    const wrote = await store.putIfStronger(
      suppression(ANA, 'complaint', { detail: 'complaint about mail to ana@example.org', source: 'msg_9' }),
      'tenant-a',
    );

    // Assess
    expect(wrote).toBe(true);
    expect(table.peek(ANA)).toBeUndefined();
    expect(table.peek(ANA_KEY, 'tenant-a')).toEqual({
      ...suppression(ANA_KEY, 'complaint', { detail: `complaint about mail to ${ANA_KEY}`, source: 'msg_9' }),
      tenant: 'tenant-a',
    });
  });

  it('puts a manual suppression of an erased address on its tombstone', async () => {
    // Prepare
    const { table, store } = rig();
    table.seed(tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a'));

    // Act
    await store.put(suppression(ANA, 'unsubscribe', { detail: 'asked by phone', tenant: 'tenant-a' }));

    // Assess
    expect(table.peek(ANA, 'tenant-a')).toBeUndefined();
    expect(table.peek(ANA_KEY, 'tenant-a')?.reason).toBe('unsubscribe');
  });

  it('keeps the tombstone when another scope deletes the address; the tenant that erased it lifts it', async () => {
    // Prepare
    const { table, store } = rig();
    table.seed(tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a'));

    // Act / Assess
    await store.delete(ANA);
    await store.delete(ANA, 'tenant-b');
    expect((await store.get(ANA, 'tenant-a'))?.reason).toBe('manual');
    await store.delete(ANA, 'tenant-a');
    expect(await store.get(ANA, 'tenant-a')).toBeUndefined();
  });

  it('keeps evidence about another tenant’s mail, or with no tenant, global: under the plain address', async () => {
    // Prepare
    const { table, store } = rig();
    table.seed(tombstoneFor(ANA, ANA_KEY, undefined, new Date(T0), 'tenant-a'));

    // Act
    await store.putIfStronger(suppression(ANA, 'hard_bounce'), 'tenant-b');

    // Assess: every tenant sees the bounce; tenant-b learns nothing of tenant-a's erasure.
    expect(table.peek(ANA)?.reason).toBe('hard_bounce');
    expect((await store.get(ANA, 'tenant-b'))?.address).toBe(ANA);
    expect((await store.list(100, undefined, 'tenant-b')).items.map((s) => s.address)).toEqual([ANA]);
  });

  it('stores suppressions of addresses that were never erased as before', async () => {
    // Prepare
    const { table, store } = rig();

    // Act
    await store.putIfStronger(suppression('bob@example.org', 'hard_bounce'));

    // Assess
    expect(table.peek('bob@example.org')).toEqual(suppression('bob@example.org', 'hard_bounce'));
    expect(await store.get('bob@example.org')).toEqual(suppression('bob@example.org', 'hard_bounce'));
  });
});

describe('eraseRecipient', () => {
  it('erases the address from every record of the tenant, only the tenant’s, and counts them', async () => {
    // Prepare
    const { deps, messages } = erasureRig();
    messages.seed(
      bouncedToAna({ id: 'msg_1' }),
      messageRecord({ id: 'msg_2', recipients: [recipient('ana@example.org', 'delivered')] }),
      messageRecord({ id: 'msg_3', recipients: [recipient('bob@example.org', 'delivered')] }),
      messageRecord({ id: 'msg_4', tenant: 'tenant-b', recipients: [recipient('ana@example.org')] }),
    );

    // Act
    const outcome = await eraseRecipient(deps, 'tenant-a', ANA, 5_000);

    // Assess
    expect(outcome).toEqual({ key: ANA_KEY, erased: 2, complete: true });
    expect(messages.peek('msg_1')?.recipients.map((r) => r.address)).toEqual([ANA_KEY, 'bob@example.org']);
    expect(messages.peek('msg_2')?.recipients.map((r) => r.address)).toEqual([ANA_KEY]);
    expect(messages.peek('msg_3')?.version).toBe(1);
    expect(messages.peek('msg_4')?.recipients.map((r) => r.address)).toEqual(['ana@example.org']);
  });

  it('replaces the tenant’s own entry by its tombstone and leaves global evidence to the other tenants', async () => {
    // Prepare
    const { deps, suppressions } = erasureRig();
    suppressions.seed(
      suppression(ANA, 'hard_bounce', { detail: '550 5.1.1 <ana@example.org>', source: 'msg_1' }),
      suppression(ANA, 'unsubscribe', { tenant: 'tenant-a' }),
    );
    const deleted = vi.spyOn(suppressions, 'delete');

    // Act
    await eraseRecipient(deps, 'tenant-a', ANA, 5_000);

    // Assess
    expect(suppressions.peek(ANA, 'tenant-a')).toBeUndefined();
    expect(suppressions.peek(ANA)?.reason).toBe('hard_bounce');
    expect(suppressions.peek(ANA_KEY, 'tenant-a')).toEqual({
      ...suppression(ANA_KEY, 'hard_bounce', { detail: `550 5.1.1 <${ANA_KEY}>`, source: 'msg_1' }),
      tenant: 'tenant-a',
    });
    expect(deleted.mock.calls).toEqual([[ANA, 'tenant-a']]);
  });

  it('takes only its own messages out of the soft-bounce counter: the other tenants’ bounces still count for them', async () => {
    // Prepare: ana bounced transiently on one message of tenant-a and two of tenant-b.
    const { deps, messages, softBounces } = erasureRig();
    const at = Date.parse(T0);
    messages.seed(
      messageRecord({ id: 'msg_a1', tenant: 'tenant-a' }),
      messageRecord({ id: 'msg_b1', tenant: 'tenant-b' }),
      messageRecord({ id: 'msg_b2', tenant: 'tenant-b' }),
    );
    softBounces.states.set(ANA, {
      address: ANA,
      bounces: { msg_a1: at, msg_b1: at, msg_b2: at },
      version: 4,
    });

    // Act: tenant-a erases ana (and tenant-c, which never mailed her, too).
    await eraseRecipient(deps, 'tenant-a', ANA, 5_000);
    await eraseRecipient(deps, 'tenant-c', ANA, 5_000);

    // Assess
    expect((await softBounces.get(ANA))?.bounces).toEqual({ msg_b1: at, msg_b2: at });
  });

  it('deletes the soft-bounce counter when every bounce in it was the erasing tenant’s', async () => {
    // Prepare
    const { deps, messages, softBounces, suppressions } = erasureRig();
    messages.seed(messageRecord({ id: 'msg_a1', tenant: 'tenant-a' }));
    softBounces.states.set(ANA, { address: ANA, bounces: { msg_a1: Date.parse(T0) }, version: 1 });
    const deleted = vi.spyOn(suppressions, 'delete');

    // Act
    await eraseRecipient(deps, 'tenant-a', ANA, 5_000);

    // Assess
    expect(deleted.mock.calls).toContainEqual([`softbounce:${ANA}`]);
  });

  it('writes the tombstone before it deletes anything, so the address is never unsuppressed', async () => {
    // Prepare
    const { deps, messages, suppressions, softBounces } = erasureRig();
    suppressions.seed(suppression(ANA, 'complaint'));
    messages.seed(messageRecord({ id: 'msg_a1', tenant: 'tenant-a' }));
    softBounces.states.set(ANA, { address: ANA, bounces: { msg_a1: Date.parse(T0) }, version: 1 });
    const order: string[] = [];
    vi.spyOn(suppressions, 'putIfStronger').mockImplementation(async (s) => {
      order.push(`put ${s.address}`);
      return true;
    });
    vi.spyOn(suppressions, 'delete').mockImplementation(async (address) => {
      order.push(`delete ${address}`);
    });

    // Act
    await eraseRecipient(deps, 'tenant-a', ANA, 5_000);

    // Assess
    expect(order).toEqual([`put ${ANA_KEY}`, `delete ${ANA}`, `delete softbounce:${ANA}`]);
  });

  it('answers 0 the second time and keeps the tombstone as it was', async () => {
    // Prepare
    const { deps, messages, suppressions, clock } = erasureRig();
    messages.seed(bouncedToAna());
    suppressions.seed(suppression(ANA, 'complaint'));
    await eraseRecipient(deps, 'tenant-a', ANA, 5_000);
    const tombstone = suppressions.peek(ANA_KEY, 'tenant-a');
    clock.advance(60_000);

    // Act
    const again = await eraseRecipient(deps, 'tenant-a', ANA, 5_000);

    // Assess
    expect(again).toEqual({ key: ANA_KEY, erased: 0, complete: true });
    expect(suppressions.peek(ANA_KEY, 'tenant-a')).toEqual(tombstone);
    expect(messages.peek('msg_1')?.version).toBe(2);
  });

  it('re-reads and erases a record another writer changed meanwhile, keeping that writer’s change', async () => {
    // Prepare
    const { deps, messages } = erasureRig();
    messages.seed(bouncedToAna());
    messages.beforeNextUpdate(() => {
      const current = messages.peek('msg_1') as MessageRecord;
      messages.write({
        ...current,
        events: [...current.events, { type: 'opened', at: T0, recipient: 'bob@example.org' }],
        version: current.version + 1,
      });
    });

    // Act
    const outcome = await eraseRecipient(deps, 'tenant-a', ANA, 5_000);

    // Assess
    expect(outcome.erased).toBe(1);
    const record = messages.peek('msg_1');
    expect(record?.version).toBe(3);
    expect(record?.events.at(-1)).toEqual({ type: 'opened', at: T0, recipient: 'bob@example.org' });
    expect(JSON.stringify(record).toLowerCase()).not.toContain('ana@example.org');
  });

  it('hands the rest of the scan to the erasure queue when its time budget runs out', async () => {
    // Prepare: one record per page, each page takes a second; the budget is 2.5 s.
    const { deps, messages, queue, clock } = erasureRig();
    messages.scanPageSize = 1;
    messages.onScanPage = () => clock.advance(1_000);
    messages.seed(
      ...['msg_a', 'msg_b', 'msg_c', 'msg_d', 'msg_e', 'msg_f'].map((id) =>
        messageRecord({ id, recipients: [recipient(ANA)] }),
      ),
    );

    // Act
    const outcome = await eraseRecipient(deps, 'tenant-a', ANA, 2_500);

    // Assess: pages start while the clock is short of the deadline; each one moves it a second, so
    // the two segments' first pages (0 s, 1 s) and one more (2 s) run, and none after 2.5 s.
    expect(outcome).toEqual({ key: ANA_KEY, erased: 3, complete: false });
    expect(queue.jobs).toHaveLength(1);
    const [job] = queue.jobs;
    expect(job).toMatchObject({
      baton: 'erasure',
      v: 1,
      tenant: 'tenant-a',
      key: ANA_KEY,
      segments: 2,
      erased: 3,
      startedAt: T0,
      round: 1,
    });
    expect(job?.positions.some((p) => !p.done)).toBe(true);
    expect(JSON.stringify(job)).not.toContain('ana');
  });

  it('fails when the rest of the scan cannot be queued, with the tombstone already in place', async () => {
    // Prepare
    const { deps, messages, queue, suppressions, clock } = erasureRig();
    messages.scanPageSize = 1;
    messages.onScanPage = () => clock.advance(1_000);
    messages.seed(
      ...['msg_a', 'msg_b', 'msg_c'].map((id) => messageRecord({ id, recipients: [recipient(ANA)] })),
    );
    vi.spyOn(queue, 'enqueue').mockRejectedValueOnce(
      new TransientError('queueing the rest of an erasure failed'),
    );

    // Act
    const erasing = eraseRecipient(deps, 'tenant-a', ANA, 500);

    // Assess
    await expect(erasing).rejects.toThrow(new TransientError('queueing the rest of an erasure failed'));
    expect(suppressions.peek(ANA_KEY, 'tenant-a')?.reason).toBe('manual');
  });
});

describe('continueErasure', () => {
  it('finishes a scan in steps, each queueing the next, until every record is erased', async () => {
    // Prepare
    const { deps, messages, queue, clock } = erasureRig();
    messages.scanPageSize = 1;
    messages.onScanPage = () => clock.advance(1_000);
    const ids = Array.from({ length: 9 }, (_, i) => `msg_${String.fromCharCode(97 + i)}`);
    messages.seed(...ids.map((id) => messageRecord({ id, recipients: [recipient(ANA)] })));
    await eraseRecipient(deps, 'tenant-a', ANA, 1_500);

    // Act
    const rounds: Array<{ erased: number; complete: boolean }> = [];
    for (let job = queue.jobs.shift(); job !== undefined; job = queue.jobs.shift()) {
      const outcome = await continueErasure(deps, job, clock().getTime() + 1_500);
      rounds.push({ erased: outcome.erased, complete: outcome.complete });
    }

    // Assess
    expect(rounds.at(-1)?.complete).toBe(true);
    expect(rounds.slice(0, -1).every((r) => !r.complete)).toBe(true);
    expect(ids.map((id) => messages.peek(id)?.recipients[0]?.address)).toEqual(ids.map(() => ANA_KEY));
    expect(ids.map((id) => messages.peek(id)?.version)).toEqual(ids.map(() => 2));
  });

  it('re-runs a redelivered step without changing anything twice', async () => {
    // Prepare
    const { deps, messages } = erasureRig();
    messages.seed(bouncedToAna());
    const job = erasureJob({ key: ANA_KEY });
    await continueErasure(deps, job, Date.parse(T0) + 1_000);

    // Act
    const again = await continueErasure(deps, job, Date.parse(T0) + 1_000);

    // Assess
    expect([again.erased, again.complete, messages.peek('msg_1')?.version]).toEqual([0, true, 2]);
  });
});

describe('parseErasureJob', () => {
  const job = erasureJob({
    key: ANA_KEY,
    positions: [{ done: true }, { done: false, after: 'msg_01J' }],
    erased: 3,
    round: 2,
  });

  it('reads back the job an erasure queued', () => {
    // Act
    const parsed = parseErasureJob(JSON.stringify(job));

    // Assess
    expect(parsed).toEqual(job);
  });

  it('refuses a body that is not JSON', () => {
    // Act
    const parse = () => parseErasureJob('{not json');

    // Assess
    expect(parse).toThrow(new MalformedErasureJobError('the erasure job is not JSON'));
  });

  it.each([
    ['an SES event', { eventType: 'Bounce', mail: {} }],
    ['a plain address instead of the pseudonym', { ...job, key: ANA }],
    ['positions that do not match the segments', { ...job, positions: [{ done: true }] }],
    ['a position without its state', { ...job, positions: [{ after: 'msg_1' }, { done: true }] }],
    ['no tenant', { ...job, tenant: '' }],
    ['another version', { ...job, v: 2 }],
  ])('refuses %s', (_, body) => {
    // Act
    const parse = () => parseErasureJob(JSON.stringify(body));

    // Assess
    expect(parse).toThrow(new MalformedErasureJobError('not a Baton erasure job'));
  });
});
