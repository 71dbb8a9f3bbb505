import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoIdempotencyStore } from '../../lambdas/adapters/idempotency-store.ts';
import type { IdempotencyRecord } from '../../lambdas/domain/ports.ts';
import { Keys } from '../../lambdas/shared/names.ts';
import type { ProvisionedStack } from '../support/emulators.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

const NOW_MS = Date.parse('2030-01-01T12:00:00.000Z');
const NOW_S = NOW_MS / 1000;

const record = (pk: string, overrides: Partial<IdempotencyRecord> = {}): IdempotencyRecord => ({
  pk,
  bodyHash: 'a'.repeat(64),
  state: 'in_progress',
  lockUntil: NOW_MS + 15_000,
  expiresAt: NOW_S + 86_400,
  ...overrides,
});

describe('DynamoIdempotencyStore against dynalite (Idempotency table provisioned from the template)', () => {
  let stack: ProvisionedStack;
  let store: DynamoIdempotencyStore;

  withProvisionedStack((started) => {
    stack = started;
    store = new DynamoIdempotencyStore(stack.clients.doc, stack.tables.idempotency);
  });

  async function rawItem(pk: string): Promise<Record<string, unknown> | undefined> {
    const out = await stack.clients.doc.send(
      new GetCommand({
        TableName: stack.tables.idempotency,
        Key: { [Keys.idempotency.partition]: pk },
        ConsistentRead: true,
      }),
    );
    return out.Item;
  }

  describe('begin', () => {
    it('creates the record and reads it back as written, without a response', async () => {
      // Prepare
      const r = record('idem#t#r#begin');

      // Act
      const began = await store.begin(r, NOW_S);

      // Assess
      expect(began).toBe(true);
      expect(await store.get('idem#t#r#begin')).toEqual(r);
    });

    it('lets exactly one of ten concurrent requests begin the same key', async () => {
      // Act
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.begin(record('idem#t#r#race', { bodyHash: String(i).repeat(64) }), NOW_S),
        ),
      );

      // Assess
      expect(outcomes.filter(Boolean)).toHaveLength(1);
      const winner = outcomes.indexOf(true);
      expect((await store.get('idem#t#r#race'))?.bodyHash).toBe(String(winner).repeat(64));
    });

    it('refuses a key whose record is still live and leaves the record as it was', async () => {
      // Prepare
      await store.begin(record('idem#t#r#live'), NOW_S);
      await store.complete('idem#t#r#live', { status: 202, body: { id: 'msg_1' } });

      // Act
      const began = await store.begin(record('idem#t#r#live', { bodyHash: 'b'.repeat(64) }), NOW_S + 86_400);

      // Assess
      expect(began).toBe(false);
      expect(await store.get('idem#t#r#live')).toEqual(
        record('idem#t#r#live', { state: 'done', response: { status: 202, body: { id: 'msg_1' } } }),
      );
    });

    it('begins again over a record whose 24 hours are over but which TTL has not deleted yet', async () => {
      // Prepare
      await store.begin(record('idem#t#r#expired'), NOW_S);
      await store.complete('idem#t#r#expired', { status: 202, body: { id: 'msg_1' } });
      const later = NOW_S + 86_401;
      const fresh = record('idem#t#r#expired', {
        bodyHash: 'c'.repeat(64),
        lockUntil: later * 1000 + 15_000,
        expiresAt: later + 86_400,
      });

      // Act
      const began = await store.begin(fresh, later);

      // Assess
      expect(began).toBe(true);
      // The old response is gone with the old record.
      expect(await store.get('idem#t#r#expired')).toEqual(fresh);
    });
  });

  describe('takeOver', () => {
    it('takes over an in-progress record given its expired lock, and moves the lock', async () => {
      // Prepare
      await store.begin(record('idem#t#r#takeover', { lockUntil: NOW_MS - 1 }), NOW_S);

      // Act
      const taken = await store.takeOver('idem#t#r#takeover', NOW_MS - 1, NOW_MS + 15_000, 'next-owner');

      // Assess
      expect(taken).toBe(true);
      expect(await store.get('idem#t#r#takeover')).toMatchObject({
        lockUntil: NOW_MS + 15_000,
        owner: 'next-owner',
      });
    });

    it('refuses a lock value other than the record’s (someone else took it over first)', async () => {
      // Prepare
      await store.begin(record('idem#t#r#stale', { lockUntil: NOW_MS - 1 }), NOW_S);
      await store.takeOver('idem#t#r#stale', NOW_MS - 1, NOW_MS + 15_000, 'next-owner');

      // Act
      const second = await store.takeOver('idem#t#r#stale', NOW_MS - 1, NOW_MS + 16_000, 'next-owner');

      // Assess
      expect(second).toBe(false);
      expect((await store.get('idem#t#r#stale'))?.lockUntil).toBe(NOW_MS + 15_000);
    });

    it('lets only one of two concurrent takeovers win', async () => {
      // Prepare
      await store.begin(record('idem#t#r#duel', { lockUntil: NOW_MS - 1 }), NOW_S);

      // Act
      const outcomes = await Promise.all([
        store.takeOver('idem#t#r#duel', NOW_MS - 1, NOW_MS + 15_000, 'next-owner'),
        store.takeOver('idem#t#r#duel', NOW_MS - 1, NOW_MS + 15_001, 'next-owner'),
      ]);

      // Assess
      expect(outcomes.filter(Boolean)).toHaveLength(1);
    });

    it('refuses a record that is done, and a key that does not exist (without creating it)', async () => {
      // Prepare
      await store.begin(record('idem#t#r#done', { lockUntil: NOW_MS - 1 }), NOW_S);
      await store.complete('idem#t#r#done', { status: 202, body: {} });

      // Act
      const done = await store.takeOver('idem#t#r#done', NOW_MS - 1, NOW_MS + 15_000, 'next-owner');
      const missing = await store.takeOver('idem#t#r#missing', NOW_MS - 1, NOW_MS + 15_000, 'next-owner');

      // Assess
      expect([done, missing]).toEqual([false, false]);
      expect(await rawItem('idem#t#r#missing')).toBeUndefined();
    });
  });

  describe('partial replies and resume (issue 11 part 6)', () => {
    const PARTIAL = { status: 207, body: { results: [{ index: 0, error: { status: 503 } }] } };

    it('keeps a partial reply as partial, and resume takes it back into progress with its response', async () => {
      // Prepare
      await store.begin(record('idem#t#r#partial', { owner: 'first' }), NOW_S);
      await store.complete('idem#t#r#partial', PARTIAL, true);
      const kept = await store.get('idem#t#r#partial');

      // Act
      const taken = await store.resume('idem#t#r#partial', 'first', NOW_MS + 30_000, 'second');

      // Assess
      expect(kept).toMatchObject({ state: 'partial', response: PARTIAL });
      expect(taken).toBe(true);
      expect(await store.get('idem#t#r#partial')).toEqual(
        record('idem#t#r#partial', {
          state: 'in_progress',
          lockUntil: NOW_MS + 30_000,
          owner: 'second',
          response: PARTIAL,
        }),
      );
    });

    it('refuses to resume a copy read before another repeat resumed (and kept) the reply', async () => {
      // Prepare
      await store.begin(record('idem#t#r#stale-partial', { owner: 'first' }), NOW_S);
      await store.complete('idem#t#r#stale-partial', PARTIAL, true);
      await store.resume('idem#t#r#stale-partial', 'first', NOW_MS + 15_000, 'second');
      await store.complete('idem#t#r#stale-partial', PARTIAL, true);

      // Act
      const late = await store.resume('idem#t#r#stale-partial', 'first', NOW_MS + 15_000, 'third');

      // Assess
      expect(late).toBe(false);
      expect((await store.get('idem#t#r#stale-partial'))?.owner).toBe('second');
    });

    it('lets only one of ten concurrent repeats resume a partial reply', async () => {
      // Prepare
      await store.begin(record('idem#t#r#resume-race', { owner: 'first' }), NOW_S);
      await store.complete('idem#t#r#resume-race', PARTIAL, true);

      // Act
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.resume('idem#t#r#resume-race', 'first', NOW_MS + 15_000, `repeat-${i}`),
        ),
      );

      // Assess
      expect(outcomes.filter(Boolean)).toHaveLength(1);
    });

    it('refuses to resume a final reply, an in-progress record and a missing key (without creating it)', async () => {
      // Prepare
      await store.begin(record('idem#t#r#final', { owner: 'first' }), NOW_S);
      await store.complete('idem#t#r#final', { status: 207, body: {} });
      await store.begin(record('idem#t#r#running', { owner: 'first' }), NOW_S);

      // Act
      const outcomes = await Promise.all(
        ['idem#t#r#final', 'idem#t#r#running', 'idem#t#r#absent'].map((pk) =>
          store.resume(pk, 'first', NOW_MS + 15_000, 'second'),
        ),
      );

      // Assess
      expect(outcomes).toEqual([false, false, false]);
      expect(await rawItem('idem#t#r#absent')).toBeUndefined();
    });
  });

  describe('complete and get', () => {
    it('keeps a JSON body verbatim: empty strings, nulls, nested arrays, unicode and numbers', async () => {
      // Prepare
      const body = {
        id: 'msg_01J',
        status: 'queued',
        rewrittenFrom: null,
        recipients: [{ address: 'ana@example.org', status: 'queued', reason: null }],
        empty: '',
        emptyList: [],
        emptyObject: {},
        nested: [[null, ''], [{ a: [] }]],
        text: 'Grüße 🙂 \u0000 "quoted"',
        numbers: [0, -1, 1.5, 1e21],
        flag: false,
      };
      await store.begin(record('idem#t#r#body'), NOW_S);

      // Act
      await store.complete('idem#t#r#body', { status: 207, body });

      // Assess
      expect(await store.get('idem#t#r#body')).toEqual(
        record('idem#t#r#body', { state: 'done', response: { status: 207, body } }),
      );
    });

    it('keeps a problem body replayed for a 4xx', async () => {
      // Prepare
      const problem = {
        type: 'urn:baton:problem:invalid_message',
        title: 'Invalid message',
        status: 422,
        detail: 'The message is not valid; see errors for each failing field.',
        code: 'invalid_message',
        errors: [{ path: 'to[0]', message: 'invalid address' }],
      };
      await store.begin(record('idem#t#r#problem'), NOW_S);

      // Act
      await store.complete('idem#t#r#problem', { status: 422, body: problem });

      // Assess
      expect((await store.get('idem#t#r#problem'))?.response).toEqual({ status: 422, body: problem });
    });

    it('answers undefined for a key never begun', async () => {
      // Act
      const found = await store.get('idem#t#r#never');

      // Assess
      expect(found).toBeUndefined();
    });

    // Regression: an unconditional complete() recreated a released key as an item without expiry.
    it('does not bring a released key back as a record that never expires', async () => {
      // Prepare
      await store.begin(record('idem#t#r#zombie'), NOW_S);
      await store.release('idem#t#r#zombie');

      // Act
      await store.complete('idem#t#r#zombie', { status: 202, body: { id: 'msg_late' } });

      // Assess
      expect(await rawItem('idem#t#r#zombie')).toBeUndefined();
    });
  });

  // Regression: the response was stored as plain JSON and could exceed DynamoDB's 400 KB item limit.
  it('keeps a response larger than one DynamoDB item for replay', async () => {
    // Prepare
    const results = Array.from({ length: 100 }, (_, index) => ({
      index,
      error: {
        type: 'urn:baton:problem:invalid_message',
        title: 'Invalid message',
        status: 422,
        detail: 'The message is not valid; see errors for each failing field.',
        code: 'invalid_message',
        errors: Array.from({ length: 50 }, (_, i) => ({
          path: `to[${i}]`,
          message:
            'invalid address: must be a plain address like name@example.com (no spaces, quotes, comments or brackets)',
        })),
      },
    }));
    await store.begin(record('idem#t#r#large'), NOW_S);

    // Act
    await store.complete('idem#t#r#large', { status: 207, body: { results } });

    // Assess
    expect((await store.get('idem#t#r#large'))?.response).toEqual({ status: 207, body: { results } });
  });

  describe('release', () => {
    it('forgets the key, so the next request begins it afresh', async () => {
      // Prepare
      await store.begin(record('idem#t#r#release'), NOW_S);

      // Act
      await store.release('idem#t#r#release');

      // Assess
      expect(await store.get('idem#t#r#release')).toBeUndefined();
      expect(await store.begin(record('idem#t#r#release'), NOW_S)).toBe(true);
    });

    it('releases a key that does not exist without an error', async () => {
      // Act
      const outcome = store.release('idem#t#r#nothing');

      // Assess
      await expect(outcome).resolves.toBeUndefined();
    });
  });

  it('stores the 24-hour expiry in the attribute the table’s TTL reads (as the template declares it)', async () => {
    // Prepare
    await store.begin(record('idem#t#r#ttl'), NOW_S);
    const logicalId = [...stack.physical.tables].find(([, name]) => name === stack.tables.idempotency)?.[0];

    // Act
    const item = await rawItem('idem#t#r#ttl');

    // Assess
    const table = stack.plan.tables.find((t) => t.logicalId === logicalId);
    expect(table?.ttlAttribute).toBe(Keys.idempotency.ttl);
    expect(item?.[Keys.idempotency.ttl]).toBe(NOW_S + 86_400);
  });
});
