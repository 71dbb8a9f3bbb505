import { expect, it } from 'vitest';
import {
  type GuardIncrement,
  type GuardScopeRef,
  InvalidGuardCountError,
} from '../../lambdas/domain/guard/counters.ts';
import type { GuardCounters } from '../../lambdas/domain/ports.ts';

let serial = 0;
/** A scope no other test of the run uses (the stores are shared by a file's tests). */
const freshKey = (): GuardScopeRef => ({ kind: 'key', keyId: `k${++serial}x${Date.now().toString(36)}` });
const freshTenant = (): GuardScopeRef => ({
  kind: 'tenant',
  tenant: `t${++serial}x${Date.now().toString(36)}`,
});

const H10 = '2026-03-01T10';
const H11 = '2026-03-01T11';

const sends = (scope: GuardScopeRef, hour: string, n = 1, eventId?: string): GuardIncrement => ({
  scope,
  hour,
  counts: { sends: n },
  ...(eventId === undefined ? {} : { eventId }),
});

/**
 * The behaviours every GuardCounters implementation must have, registered as tests: the in-memory
 * fake runs them in the unit tier, the DynamoDB adapter against dynalite (both key layouts), so a
 * unit test passing on the fake means the same on DynamoDB.
 */
export function guardCountersContract(store: () => GuardCounters): void {
  it('adds up the counts of a scope and hour over calls and within one', async () => {
    const key = freshKey();
    await store().add([sends(key, H10, 2), { scope: key, hour: H10, counts: { sends: 1, hardBounces: 1 } }]);
    await store().add([{ scope: key, hour: H10, counts: { complaints: 1, hardBounces: 2 } }]);

    expect(await store().read(key, H10, H10)).toEqual([
      { hour: H10, counts: { sends: 3, hardBounces: 3, complaints: 1 } },
    ]);
  });

  it('loses no count when 25 calls add to the same bucket at once', async () => {
    const tenant = freshTenant();

    await Promise.all(Array.from({ length: 25 }, () => store().add([sends(tenant, H10, 2)])));

    expect(await store().read(tenant, H10, H10)).toEqual([{ hour: H10, counts: { sends: 50 } }]);
  });

  it('counts a redelivered event once, whether it comes again in a later call or the same one', async () => {
    const key = freshKey();
    const bounce: GuardIncrement = { scope: key, hour: H10, counts: { hardBounces: 1 }, eventId: 'evt-1' };

    await store().add([bounce, bounce]);
    await store().add([bounce]);

    expect(await store().read(key, H10, H10)).toEqual([{ hour: H10, counts: { hardBounces: 1 } }]);
  });

  it('counts a redelivered event once even when the copy is added in a later hour', async () => {
    const key = freshKey();

    await store().add([{ scope: key, hour: H10, counts: { complaints: 1 }, eventId: 'evt-late' }]);
    await store().add([{ scope: key, hour: H11, counts: { complaints: 1 }, eventId: 'evt-late' }]);

    expect(await store().read(key, H10, H11)).toEqual([{ hour: H10, counts: { complaints: 1 } }]);
  });

  it('counts an event once even when its copies are added concurrently', async () => {
    const key = freshKey();
    const bounce: GuardIncrement = { scope: key, hour: H10, counts: { hardBounces: 1 }, eventId: 'evt-race' };

    await Promise.all(Array.from({ length: 10 }, () => store().add([bounce])));

    expect(await store().read(key, H10, H10)).toEqual([{ hour: H10, counts: { hardBounces: 1 } }]);
  });

  it('counts one event once in each scope it is added to, and distinct events each', async () => {
    const key = freshKey();
    const tenant = freshTenant();
    const event = (scope: GuardScopeRef, eventId: string): GuardIncrement => ({
      scope,
      hour: H10,
      counts: { complaints: 1 },
      eventId,
    });

    await store().add([event(key, 'evt-a'), event(tenant, 'evt-a'), event(key, 'evt-b')]);
    await store().add([event(key, 'evt-a'), event(tenant, 'evt-a'), event(tenant, 'evt-b')]);

    expect(await store().read(key, H10, H10)).toEqual([{ hour: H10, counts: { complaints: 2 } }]);
    expect(await store().read(tenant, H10, H10)).toEqual([{ hour: H10, counts: { complaints: 2 } }]);
  });

  it('keeps each hour in its own bucket, the last minute of one hour apart from the first of the next', async () => {
    const key = freshKey();

    await store().add([sends(key, H10, 1), sends(key, H11, 4)]);

    expect(await store().read(key, H10, H10)).toEqual([{ hour: H10, counts: { sends: 1 } }]);
    expect(await store().read(key, H11, H11)).toEqual([{ hour: H11, counts: { sends: 4 } }]);
  });

  it('reads the hours in range that have a bucket, in order, across a day and a month boundary', async () => {
    const key = freshKey();
    const hours = ['2026-02-28T22', '2026-02-28T23', '2026-03-01T00', '2026-03-01T02', '2026-03-01T03'];
    // Added out of order, one call each, so neither the writes nor their order decide the answer.
    for (const [i, hour] of [...hours.entries()].reverse()) await store().add([sends(key, hour, i + 1)]);

    const read = await store().read(key, '2026-02-28T23', '2026-03-01T02');

    expect(read).toEqual([
      { hour: '2026-02-28T23', counts: { sends: 2 } },
      { hour: '2026-03-01T00', counts: { sends: 3 } },
      { hour: '2026-03-01T02', counts: { sends: 4 } },
    ]);
  });

  it('reads nothing for a range ending before it starts, or for hours without counts', async () => {
    const key = freshKey();
    await store().add([sends(key, H10)]);

    expect(await store().read(key, H11, H10)).toEqual([]);
    expect(await store().read(key, '2026-03-02T00', '2026-03-02T23')).toEqual([]);
  });

  it('never reads another scope: a tenant named like a key, ids that contain separators', async () => {
    const suffix = `${++serial}`;
    const scopes: GuardScopeRef[] = [
      { kind: 'key', keyId: `same${suffix}` },
      { kind: 'tenant', tenant: `same${suffix}` },
      { kind: 'tenant', tenant: `key:same${suffix}` },
      { kind: 'key', keyId: `same${suffix}:${H10}` },
      { kind: 'key', keyId: `same${suffix}@${H10}` },
      { kind: 'key', keyId: `same${suffix}%3A` },
      { kind: 'key', keyId: `same${suffix}:` },
      { kind: 'key', keyId: `same${suffix}#x y/ü🙂` },
      { kind: 'key', keyId: `Same${suffix}` },
      // The longest id, each character 9 bytes once percent-encoded: the key still fits DynamoDB's.
      { kind: 'tenant', tenant: `${suffix}${'€'.repeat(200 - suffix.length)}` },
    ];

    // Scope i gets i + 1 sends, so any mix-up shows in the counts.
    await store().add(scopes.map((scope, i) => sends(scope, H10, i + 1)));

    for (const [i, scope] of scopes.entries()) {
      expect(await store().read(scope, H10, H10), JSON.stringify(scope)).toEqual([
        { hour: H10, counts: { sends: i + 1 } },
      ]);
    }
  });

  it('writes no bucket for increments that count nothing', async () => {
    const key = freshKey();

    await store().add([
      { scope: key, hour: H10, counts: {} },
      { scope: key, hour: H10, counts: { sends: 0 } },
    ]);
    await store().add([]);

    expect(await store().read(key, H10, H10)).toEqual([]);
  });

  it('refuses a call with an invalid increment before counting any of it', async () => {
    const key = freshKey();
    const invalid: GuardIncrement[] = [
      { scope: key, hour: '2026-03-01T24', counts: { sends: 1 } },
      { scope: key, hour: '2026-03-01 10', counts: { sends: 1 } },
      { scope: key, hour: H10, counts: { sends: -1 } },
      { scope: key, hour: H10, counts: { sends: 1.5 } },
      { scope: key, hour: H10, counts: { bogus: 1 } as GuardIncrement['counts'] },
      { scope: { kind: 'key', keyId: '' }, hour: H10, counts: { sends: 1 } },
      { scope: { kind: 'tenant', tenant: 'x'.repeat(201) }, hour: H10, counts: { sends: 1 } },
      { scope: { kind: 'key', keyId: 'half\uD800' }, hour: H10, counts: { sends: 1 } },
      { scope: key, hour: H10, counts: { sends: 1 }, eventId: '' },
    ];

    for (const bad of invalid) {
      await expect(store().add([sends(key, H10), bad]), JSON.stringify(bad)).rejects.toThrow(
        InvalidGuardCountError,
      );
    }
    expect(await store().read(key, H10, H10)).toEqual([]);
  });

  it('refuses to read an invalid scope or hour, or a range longer than the counters are kept', async () => {
    const key = freshKey();

    await expect(store().read(key, 'yesterday', H10)).rejects.toThrow(/"yesterday" is not an hour/);
    await expect(store().read({ kind: 'tenant', tenant: '' }, H10, H10)).rejects.toThrow(
      InvalidGuardCountError,
    );
    await expect(store().read(key, '2026-01-01T00', '2026-03-01T00')).rejects.toThrow(
      /a read covers at most 840 hours, not 1417/,
    );
  });
}
