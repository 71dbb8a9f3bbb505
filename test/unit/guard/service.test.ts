import { describe, expect, it, vi } from 'vitest';
import {
  addHours,
  type GuardCounts,
  type GuardScopeRef,
  hourOf,
  MS_PER_HOUR,
} from '../../../lambdas/domain/guard/counters.ts';
import type { GuardDecision } from '../../../lambdas/domain/guard/evaluate.ts';
import {
  GuardResumeReasonError,
  GuardService,
  type GuardServiceDeps,
} from '../../../lambdas/domain/guard/service.ts';
import { guardSuspension, holdFor, throttleFor } from '../../../lambdas/domain/guard/state.ts';
import { type ApiKey, ApiKeyRevokedError } from '../../../lambdas/domain/keys/api-key.ts';
import type { GuardFeedback, GuardRecipientTally } from '../../../lambdas/domain/ports.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import {
  InMemoryApiKeys,
  InMemoryGuardCounters,
  InMemoryGuardKeyWriter,
  InMemoryGuardStateStore,
  issueApiKey,
  testClock,
} from '../../support/fakes.ts';

const MINUTE_MS = 60_000;
/** 10:00:00 UTC: each test starts at the top of an hour. */
const START = '2026-03-02T10:00:00.000Z';
const TENANT = 'tenant-a';

function rig(options: { keys?: number; deps?: Partial<GuardServiceDeps> } = {}) {
  const clock = testClock(START);
  const counters = new InMemoryGuardCounters();
  const state = new InMemoryGuardStateStore();
  const apiKeys = new InMemoryApiKeys();
  const writer = new InMemoryGuardKeyWriter(apiKeys);
  const keys = Array.from({ length: options.keys ?? 1 }, () => issueApiKey({ tenant: TENANT }).key);
  apiKeys.add(...keys);
  const actions: GuardDecision[] = [];
  const errors: unknown[] = [];
  const deps: GuardServiceDeps = {
    counters,
    state,
    keys: writer,
    clock,
    onAction: (d) => actions.push(d),
    onError: (e) => errors.push(e),
    ...options.deps,
  };
  const guard = new GuardService(deps);
  const keyIds = keys.map((k) => k.keyId);
  /** The key as the front door reads it now (the guard's state included). */
  const key = async (i = 0): Promise<ApiKey> => {
    const found = await apiKeys.get(keyIds[i] ?? '');
    if (found === undefined) throw new Error('test: no such key');
    return found;
  };
  const bucketOf = async (scope: GuardScopeRef, at = clock()): Promise<GuardCounts> =>
    (await counters.read(scope, hourOf(at), hourOf(at)))[0]?.counts ?? {};
  return { clock, counters, state, apiKeys, writer, guard, keyIds, key, actions, errors, deps, bucketOf };
}

const queued = (...addresses: string[]): GuardRecipientTally[] =>
  addresses.map((address) => ({ address, outcome: 'queued' }));

/** `n` queued recipients, each at a domain of its own (`tag` keeps them apart between calls). */
const toNewDomains = (n: number, tag: string): GuardRecipientTally[] =>
  Array.from({ length: n }, (_, i) => ({ address: `r@d${i}-${tag}.example`, outcome: 'queued' }));

/** 40 sends and 10 suppressed recipients: 20 % of 50 attempts, a key suspended for suppressed hits. */
const suppressedFifth = (): GuardRecipientTally[] => [
  ...toNewDomains(40, 'a'),
  ...toNewDomains(10, 'b').map((t) => ({ ...t, outcome: 'suppressed' as const })),
];

/** `n` hard bounces now, for the tenant only (ids `<prefix><i>`). */
const bounces = (r: { clock: () => Date }, n: number, prefix = 'b'): GuardFeedback[] =>
  Array.from({ length: n }, (_, i) => bounce(`${prefix}${i}`, undefined, r.clock()));

function bounce(
  eventId: string,
  keyId: string | undefined,
  at: Date,
  kind: GuardFeedback['kind'] = 'hardBounce',
) {
  return {
    eventId,
    tenant: TENANT,
    ...(keyId === undefined ? {} : { keyId }),
    recipient: `someone-${eventId}@example.net`,
    kind,
    at,
  } satisfies GuardFeedback;
}

/** `hours` hours of history before the current one, `counts` each hour, for the key and its tenant. */
async function history(r: ReturnType<typeof rig>, hours: number, counts: GuardCounts, keyIndex = 0) {
  const now = hourOf(r.clock());
  const increments = [];
  for (let back = hours; back >= 1; back--) {
    const hour = addHours(now, -back);
    increments.push({ scope: { kind: 'key', keyId: r.keyIds[keyIndex] ?? '' } as const, hour, counts });
    increments.push({ scope: { kind: 'tenant', tenant: TENANT } as const, hour, counts });
  }
  await r.counters.add(increments);
}

describe('GuardService.recordAccept: counting', () => {
  it('counts sends, suppressed hits and content refusals for the key and the tenant in one add', async () => {
    // Prepare
    const r = rig();
    const tallies: GuardRecipientTally[] = [
      { address: 'a@x.example', outcome: 'queued' },
      { address: 'b@y.example', outcome: 'queued' },
      { address: 'c@x.example', outcome: 'queued' },
      { address: 'd@z.example', outcome: 'suppressed' },
      { address: 'e@w.example', outcome: 'refused' },
      { address: 'f@v.example', outcome: 'held' },
    ];

    // Act
    await r.guard.recordAccept(await r.key(), tallies);

    // Assess: held is not a send (until released); domains are the key's only.
    expect(r.counters.adds).toHaveLength(1);
    expect(await r.bucketOf({ kind: 'key', keyId: r.keyIds[0] ?? '' })).toEqual({
      sends: 3,
      suppressedHits: 1,
      contentRefusals: 1,
      newRecipientDomains: 2,
    });
    expect(await r.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual({
      sends: 3,
      suppressedHits: 1,
      contentRefusals: 1,
    });
    expect(r.errors).toEqual([]);
  });

  it('counts a recipient domain once per key, in any case or script, and writes nothing for a known one', async () => {
    // Prepare
    const r = rig();
    const keyScope = { kind: 'key', keyId: r.keyIds[0] ?? '' } as const;
    await r.guard.recordAccept(await r.key(), queued('a@bücher.example', 'b@X.example'));

    // Act: the same domains again, spelled otherwise, from this instance and from a fresh one.
    await r.guard.recordAccept(await r.key(), queued('c@xn--bcher-kva.example', 'd@x.EXAMPLE'));
    const domainsInSecondAdd = r.counters.adds[1]?.filter((i) => i.eventId !== undefined) ?? [];
    await new GuardService(r.deps).recordAccept(await r.key(), queued('e@x.example'));

    // Assess
    expect(domainsInSecondAdd).toEqual([]);
    expect(await r.bucketOf(keyScope)).toMatchObject({ sends: 5, newRecipientDomains: 2 });
    expect(r.counters.adds[0]?.map((i) => i.eventId).filter(Boolean)).toEqual([
      'domain:xn--bcher-kva.example',
      'domain:x.example',
    ]);
  });

  it('counts each key’s domains apart: a domain known to one key is new to another', async () => {
    // Prepare
    const r = rig({ keys: 2 });
    await r.guard.recordAccept(await r.key(0), queued('a@x.example'));

    // Act
    await r.guard.recordAccept(await r.key(1), queued('b@x.example'));

    // Assess
    expect(await r.bucketOf({ kind: 'key', keyId: r.keyIds[1] ?? '' })).toMatchObject({
      newRecipientDomains: 1,
    });
  });

  it('leaves mailbox-simulator recipients out, unless told to count them (local mode)', async () => {
    // Prepare
    const deployed = rig();
    const local = rig({ deps: { countSimulator: true } });
    const tallies: GuardRecipientTally[] = [
      { address: 'success@simulator.amazonses.com', outcome: 'queued' },
      { address: 'bounce@SIMULATOR.AmazonSES.com', outcome: 'queued' },
      { address: 'suppressionlist@simulator.amazonses.com', outcome: 'suppressed' },
      { address: 'x@simulator.amazonses.com.attacker.example', outcome: 'queued' },
      { address: 'x@not-simulator.amazonses.com', outcome: 'queued' },
      { address: ' blackhole@simulator.amazonses.com. ', outcome: 'queued' },
    ];

    // Act
    await deployed.guard.recordAccept(await deployed.key(), tallies);
    await local.guard.recordAccept(await local.key(), tallies);

    // Assess: only the domain exactly `simulator.amazonses.com` is the simulator.
    expect(await deployed.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual({ sends: 2 });
    expect(await local.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual({
      sends: 5,
      suppressedHits: 1,
    });
  });

  it('writes nothing when nothing is counted (every recipient held or the simulator)', async () => {
    // Prepare
    const r = rig();

    // Act
    await r.guard.recordAccept(await r.key(), [
      { address: 'a@x.example', outcome: 'held' },
      { address: 'success@simulator.amazonses.com', outcome: 'queued' },
    ]);

    // Assess
    expect(r.counters.adds).toEqual([]);
    expect(r.state.claims).toBe(0);
  });

  it('never throws: a failing counter store is reported, the request goes on, and the domain is tried again', async () => {
    // Prepare
    const r = rig();
    vi.spyOn(r.counters, 'add').mockRejectedValueOnce(new TransientError('throttled'));

    // Act
    await expect(r.guard.recordAccept(await r.key(), queued('a@x.example'))).resolves.toBeUndefined();
    await r.guard.recordAccept(await r.key(), queued('b@x.example'));

    // Assess: the failed call's domain was not taken as known.
    expect(r.errors).toEqual([expect.any(TransientError)]);
    expect(await r.bucketOf({ kind: 'key', keyId: r.keyIds[0] ?? '' })).toEqual({
      sends: 1,
      newRecipientDomains: 1,
    });
  });

  it('never throws when the evaluation fails either (the state store down)', async () => {
    // Prepare
    const r = rig();
    vi.spyOn(r.state, 'tenant').mockRejectedValue(new TransientError('state store down'));

    // Act + Assess
    await expect(r.guard.recordAccept(await r.key(), queued('a@x.example'))).resolves.toBeUndefined();
    expect(r.errors).toEqual([expect.any(TransientError)]);
    expect(await r.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual({ sends: 1 });
  });

  it('forgets the oldest known domains past its bound, so memory stays flat', async () => {
    // Prepare: room for 2 (key, domain) pairs.
    const r = rig({ deps: { knownDomainsLimit: 2 } });
    await r.guard.recordAccept(await r.key(), queued('a@a.example', 'b@b.example', 'c@c.example'));

    // Act: a.example was pushed out: it is sent again (the store's event marker keeps it counted once).
    await r.guard.recordAccept(await r.key(), queued('a@a.example', 'c@c.example'));

    // Assess
    expect(r.counters.adds[1]?.map((i) => i.eventId).filter(Boolean)).toEqual(['domain:a.example']);
    expect(await r.bucketOf({ kind: 'key', keyId: r.keyIds[0] ?? '' })).toMatchObject({
      newRecipientDomains: 3,
    });
  });
});

describe('GuardService.recordRelease: counting', () => {
  it('counts released recipients once per message for the key and the tenant, simulator left out', async () => {
    // Prepare
    const r = rig();
    const keyId = r.keyIds[0] ?? '';
    const released = {
      tenant: TENANT,
      keyId,
      messageId: 'msg_1',
      recipients: ['a@x.example', 'b@y.example', 'success@simulator.amazonses.com'],
    };

    // Act: the same release twice (a re-run after a crash).
    await r.guard.recordRelease([released]);
    await r.guard.recordRelease([released]);

    // Assess
    expect(await r.bucketOf({ kind: 'key', keyId })).toEqual({ releasedSends: 2 });
    expect(await r.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual({ releasedSends: 2 });
  });
});

describe('GuardService.recordFeedback: counting', () => {
  it('counts bounces and complaints for the key and the tenant in the event’s hour, in one add', async () => {
    // Prepare
    const r = rig();
    const keyId = r.keyIds[0] ?? '';
    const earlier = new Date(Date.parse(START) - 2 * MS_PER_HOUR + 5 * MINUTE_MS);

    // Act
    await r.guard.recordFeedback([
      bounce('e1', keyId, r.clock()),
      bounce('e2', keyId, r.clock(), 'transientBounce'),
      bounce('e3', keyId, earlier, 'complaint'),
      bounce('e4', undefined, r.clock()),
    ]);

    // Assess
    expect(r.counters.adds).toHaveLength(1);
    expect(await r.bucketOf({ kind: 'key', keyId })).toEqual({ hardBounces: 1, transientBounces: 1 });
    expect(await r.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual({
      hardBounces: 2,
      transientBounces: 1,
    });
    expect(await r.bucketOf({ kind: 'tenant', tenant: TENANT }, earlier)).toEqual({ complaints: 1 });
  });

  it('counts the same event once, however often it is delivered', async () => {
    // Prepare
    const r = rig();
    const keyId = r.keyIds[0] ?? '';
    const events = [
      bounce('evt-1:a@example.net', keyId, r.clock()),
      bounce('evt-2:b@example.net', keyId, r.clock()),
    ];
    await r.guard.recordFeedback(events);
    const once = await r.bucketOf({ kind: 'tenant', tenant: TENANT });

    // Act: redelivered (the whole batch, and one event twice within a batch).
    await r.guard.recordFeedback(events);
    await new GuardService(r.deps).recordFeedback([events[0] as GuardFeedback, events[0] as GuardFeedback]);

    // Assess
    expect(once).toEqual({ hardBounces: 2 });
    expect(await r.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual(once);
    expect(await r.bucketOf({ kind: 'key', keyId })).toEqual({ hardBounces: 2 });
  });

  it('leaves simulator recipients out of the feedback too, unless told to count them', async () => {
    // Prepare
    const r = rig();
    const local = rig({ deps: { countSimulator: true } });
    const event = { ...bounce('e1', undefined, r.clock()), recipient: 'bounce@simulator.amazonses.com' };

    // Act
    await r.guard.recordFeedback([event]);
    await local.guard.recordFeedback([event]);

    // Assess
    expect(r.counters.adds).toEqual([]);
    expect(await local.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual({ hardBounces: 1 });
  });

  it('throws when the counters cannot be written, so the feedback is retried', async () => {
    // Prepare
    const r = rig();
    vi.spyOn(r.counters, 'add').mockRejectedValueOnce(new TransientError('throttled'));

    // Act + Assess
    await expect(r.guard.recordFeedback([bounce('e1', r.keyIds[0], r.clock())])).rejects.toThrow(
      TransientError,
    );
  });

  it('skips and reports an event it cannot count (no tenant, a bad key id) instead of failing the batch forever', async () => {
    // Prepare
    const r = rig();
    const good = bounce('good', r.keyIds[0], r.clock());

    // Act
    await r.guard.recordFeedback([
      { ...bounce('no-tenant', undefined, r.clock()), tenant: '' },
      { ...bounce('', undefined, r.clock()) },
      bounce('long-key', 'k'.repeat(300), r.clock()),
      good,
    ]);

    // Assess: what can be counted is (the bad key id's bounce still counts for its tenant).
    expect(await r.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual({ hardBounces: 2 });
    expect(await r.bucketOf({ kind: 'key', keyId: r.keyIds[0] ?? '' })).toEqual({ hardBounces: 1 });
    expect(r.errors).toEqual([
      expect.objectContaining({ name: 'InvalidGuardCountError' }),
      expect.objectContaining({ name: 'InvalidGuardCountError' }),
      expect.objectContaining({ name: 'InvalidGuardCountError' }),
    ]);
  });

  it('counts an event whose time is not a date in the current hour rather than failing the batch forever', async () => {
    // Prepare
    const r = rig();

    // Act
    await r.guard.recordFeedback([bounce('e1', undefined, new Date(Number.NaN))]);

    // Assess
    expect(await r.bucketOf({ kind: 'tenant', tenant: TENANT })).toEqual({ hardBounces: 1 });
  });
});

describe('GuardService: evaluation at most once per scope per minute', () => {
  it('evaluates the key and the tenant on the first request, then not again within the minute', async () => {
    // Prepare
    const r = rig();
    const reads = vi.spyOn(r.counters, 'read');

    // Act: 10 requests in the first 59 seconds.
    for (let i = 0; i < 10; i++) {
      await r.guard.recordAccept(await r.key(), queued(`a${i}@x.example`));
      r.clock.advance(5_900);
    }
    const claimsInFirstMinute = r.state.claims;
    const readsInFirstMinute = reads.mock.calls.length;
    r.clock.set('2026-03-02T10:01:00.000Z');
    await r.guard.recordAccept(await r.key(), queued('b@x.example'));

    // Assess: one claim per scope per minute; the buckets read once (key and tenant).
    expect(claimsInFirstMinute).toBe(2);
    expect(readsInFirstMinute).toBe(2);
    expect(r.state.claims).toBe(4);
    expect(reads.mock.calls.length).toBe(4);
  });

  it('lets one of two instances evaluate a scope in a minute (the store’s claim)', async () => {
    // Prepare
    const r = rig();
    const other = new GuardService(r.deps);
    const reads = vi.spyOn(r.counters, 'read');

    // Act
    await r.guard.recordAccept(await r.key(), queued('a@x.example'));
    await other.recordAccept(await r.key(), queued('b@x.example'));

    // Assess: the second instance asked, lost both claims, and read nothing.
    expect(r.state.claims).toBe(4);
    expect(reads.mock.calls.length).toBe(2);
  });

  it('evaluates each distinct scope of a feedback batch once', async () => {
    // Prepare
    const r = rig({ keys: 2 });
    const [k1 = '', k2 = ''] = r.keyIds;
    const reads = vi.spyOn(r.counters, 'read');

    // Act
    await r.guard.recordFeedback([
      bounce('e1', k1, r.clock()),
      bounce('e2', k1, r.clock()),
      bounce('e3', k2, r.clock()),
      bounce('e4', undefined, r.clock()),
    ]);

    // Assess: key 1, key 2, tenant: three claims; each key's buckets and the tenant's read once.
    expect(r.state.claims).toBe(3);
    expect(reads.mock.calls.map(([scope]) => scope)).toEqual([
      { kind: 'tenant', tenant: TENANT },
      { kind: 'key', keyId: k1 },
      { kind: 'key', keyId: k2 },
    ]);
  });

  it('scans the tenant’s keys (for the key count) at most once in a few minutes', async () => {
    // Prepare
    const r = rig();

    // Act: a request a minute for 4 minutes.
    for (let minute = 0; minute < 4; minute++) {
      r.clock.set(new Date(Date.parse(START) + minute * MINUTE_MS).toISOString());
      await r.guard.recordAccept(await r.key(), queued(`a${minute}@x.example`));
    }

    // Assess
    expect(r.writer.scans).toBe(1);
  });

  it('never reads more hours than the counters keep, whatever the tenant’s override asks', async () => {
    // Prepare: a 90-day complaint window (allowed by the policy; the counters keep 35 days).
    const r = rig();
    await r.state.putTenant({
      tenant: TENANT,
      state: { actions: [] },
      override: { tenantComplaint: { windowHours: 90 * 24 } },
      version: 1,
    });

    // Act
    await r.guard.recordAccept(await r.key(), queued('a@x.example'));

    // Assess
    expect(r.errors).toEqual([]);
  });

  it('falls back to the default policy when the stored override is invalid, and reports it', async () => {
    // Prepare: an override the policy refuses, and a key refused 20 % of the time.
    const r = rig();
    await r.state.putTenant({
      tenant: TENANT,
      state: { actions: [] },
      override: { keySuppressedHits: { actAt: 15 } },
      version: 1,
    });
    const tallies = suppressedFifth();

    // Act
    await r.guard.recordAccept(await r.key(), tallies);

    // Assess: suspended under the default 15 %.
    expect(r.errors).toEqual([expect.objectContaining({ name: 'GuardPolicyError' })]);
    expect((await r.key()).status).toBe('suspended');
  });
});

describe('GuardService: acting on decisions', () => {
  it('suspends a key whose suppressed hits reach 15 %, with the decision on the key, and tells', async () => {
    // Prepare: 42 sends and 8 suppressed = 16 % of 50 attempts.
    const r = rig();
    const tallies: GuardRecipientTally[] = [
      ...toNewDomains(42, 'a'),
      ...Array.from({ length: 8 }, (_, i) => ({
        address: `s${i}@x.example`,
        outcome: 'suppressed' as const,
      })),
    ];

    // Act
    await r.guard.recordAccept(await r.key(), tallies);

    // Assess
    const key = await r.key();
    expect(key.status).toBe('suspended');
    expect(guardSuspension(key.guard)).toMatchObject({
      action: 'suspendKey',
      signal: 'suppressedHitRate',
      keyId: key.keyId,
      tenantId: TENANT,
    });
    expect(r.actions.map((d) => [d.scope, d.action])).toEqual([['key', 'suspendKey']]);
    expect(JSON.stringify(r.actions)).not.toMatch(/@/);
  });

  it('does not act on a revoked key, and does not suspend it twice on a later evaluation', async () => {
    // Prepare
    const r = rig({ keys: 2 });
    const [k1 = '', k2 = ''] = r.keyIds;
    await r.apiKeys.setStatus(k2, 'revoked');
    await history(r, 2, { sends: 100 }, 0);
    await history(r, 2, { sends: 100 }, 1);

    // Act: 20 % bounces for both keys over the last two hours, evaluated twice, a minute apart.
    const events = Array.from({ length: 20 }, (_, i) => bounce(`b${i}`, i % 2 === 0 ? k1 : k2, r.clock()));
    await r.guard.recordFeedback(events);
    r.clock.advance(MINUTE_MS);
    await r.guard.recordFeedback([bounce('late', k1, r.clock())]);

    // Assess
    expect((await r.key(0)).status).toBe('suspended');
    expect((await r.key(1)).status).toBe('revoked');
    expect((await r.key(1)).guard?.key).toBeUndefined();
    expect(r.actions.filter((d) => d.scope === 'key').map((d) => [d.keyId, d.action])).toEqual([
      [k1, 'suspendKey'],
    ]);
  });

  it('throttles a key for an hour on a spike to domains it knows, then lets it send again', async () => {
    // Prepare: the key knows its domain; the floor baseline (100/h) makes 1,000 a spike.
    const r = rig();
    await r.guard.recordAccept(await r.key(), queued('a@known.example'));

    // Act
    r.clock.advance(MINUTE_MS);
    await r.guard.recordAccept(
      await r.key(),
      Array.from({ length: 1000 }, (_, i) => ({
        address: `r${i}@known.example`,
        outcome: 'queued' as const,
      })),
    );

    // Assess
    const throttle = throttleFor((await r.key()).guard, r.clock());
    expect(throttle).toMatchObject({ action: 'throttleKey', signal: 'volumeSpike' });
    expect((await r.key()).status).toBe('active');
    r.clock.advance(60 * MINUTE_MS);
    expect(throttleFor((await r.key()).guard, r.clock())).toBeUndefined();
  });

  it('pauses a tenant’s broadcast lane and marks every key of it', async () => {
    // Prepare: 600 sends, 30 hard bounces (5 %).
    const r = rig({ keys: 3 });
    await history(r, 1, { sends: 600 });

    // Act
    await r.guard.recordFeedback(bounces(r, 30));

    // Assess
    const record = await r.state.tenant(TENANT);
    expect(record?.version).toBe(1);
    expect(record?.state.actions.map((a) => a.action)).toEqual(['pauseBroadcast']);
    for (const i of [0, 1, 2]) {
      const key = await r.key(i);
      expect(holdFor(key.guard, 'broadcast', r.clock())).toMatchObject({ action: 'pauseBroadcast' });
      expect(holdFor(key.guard, 'transactional', r.clock())).toBeUndefined();
    }
    expect(r.actions.map((d) => [d.scope, d.action])).toEqual([['tenant', 'pauseBroadcast']]);
  });

  it('holds all of a tenant’s mail above 7 %, on top of a pause in force', async () => {
    // Prepare: paused at 5 %.
    const r = rig({ keys: 2 });
    await history(r, 1, { sends: 600 });
    await r.guard.recordFeedback(bounces(r, 30));

    // Act: 15 more bounces (7.5 %), a minute later.
    r.clock.advance(MINUTE_MS);
    await r.guard.recordFeedback(bounces(r, 15, 'c'));

    // Assess
    const record = await r.state.tenant(TENANT);
    expect(record?.version).toBe(2);
    expect(record?.state.actions.map((a) => a.action)).toEqual(['pauseBroadcast', 'holdAll']);
    expect(holdFor((await r.key(1)).guard, 'transactional', r.clock())).toMatchObject({ action: 'holdAll' });
    expect(r.actions.map((d) => d.action)).toEqual(['pauseBroadcast', 'holdAll']);
  });

  it('re-reads and re-evaluates when another writer changed the tenant record meanwhile', async () => {
    // Prepare: another instance stores the same pause between this one's read and write.
    const r = rig({ keys: 2 });
    await history(r, 1, { sends: 600 });
    const realPut = r.state.putTenant.bind(r.state);
    const puts = vi.spyOn(r.state, 'putTenant').mockImplementationOnce(async (record) => {
      await realPut(record);
      return realPut(record);
    });

    // Act
    await r.guard.recordFeedback(bounces(r, 30));

    // Assess: the pause is in force once; this instance, having lost, had nothing new to do.
    const record = await r.state.tenant(TENANT);
    expect(puts).toHaveBeenCalledTimes(1);
    expect(record?.state.actions.map((a) => a.action)).toEqual(['pauseBroadcast']);
    expect(r.actions).toEqual([]);
    expect(r.errors).toEqual([]);
  });

  it('copies the tenant’s state onto a key that does not carry it yet (a new key, a copy that failed)', async () => {
    // Prepare: the tenant is paused, but its keys were never marked (the writer died after storing).
    const r = rig({ keys: 2 });
    await history(r, 1, { sends: 600 });
    vi.spyOn(r.writer, 'markTenant').mockRejectedValueOnce(new TransientError('ApiKeys throttled'));
    await r.guard.recordFeedback(bounces(r, 30));
    expect(holdFor((await r.key(1)).guard, 'broadcast', r.clock())).toBeUndefined();

    // Act: the next request of one of its keys, a minute later.
    r.clock.advance(MINUTE_MS);
    await r.guard.recordAccept(await r.key(1), queued('a@x.example'));

    // Assess: every key carries the pause now, told once.
    for (const i of [0, 1]) {
      expect(holdFor((await r.key(i)).guard, 'broadcast', r.clock())).toMatchObject({
        action: 'pauseBroadcast',
      });
    }
    expect(r.actions.map((d) => d.action)).toEqual(['pauseBroadcast']);
  });
});

describe('GuardService.resume', () => {
  it('resumes a tenant: nothing in force, the window restarts now, the reason kept, every key marked', async () => {
    // Prepare: paused at 5 %.
    const r = rig({ keys: 2 });
    await history(r, 1, { sends: 600 });
    await r.guard.recordFeedback(bounces(r, 30));
    r.clock.advance(10 * MINUTE_MS);

    // Act
    const state = await r.guard.resume(
      { kind: 'tenant', tenant: TENANT },
      '  list cleaned by the customer  ',
    );

    // Assess
    expect(state).toEqual({
      actions: [],
      reinstatedAt: '2026-03-02T10:10:00.000Z',
      countsAtReinstatement: { hardBounces: 30 },
      resumedReason: 'list cleaned by the customer',
    });
    expect((await r.state.tenant(TENANT))?.state).toEqual(state);
    expect(holdFor((await r.key(1)).guard, 'broadcast', r.clock())).toBeUndefined();
    expect((await r.key(1)).guard?.tenant).toEqual(state);
  });

  it('after a resume, old bounces no longer count and probation halves the thresholds', async () => {
    // Prepare: paused at 5 % over last hour's 600 sends, then resumed.
    const r = rig();
    await history(r, 1, { sends: 600 });
    await r.guard.recordFeedback(bounces(r, 30));
    r.clock.advance(5 * MINUTE_MS);
    await r.guard.resume({ kind: 'tenant', tenant: TENANT }, 'list cleaned');

    // Act: 500 new sends (the sample again) with 11 bounces: 2.2 %, under 4 %, above the halved 2 %.
    r.clock.advance(MINUTE_MS);
    for (let batch = 0; batch < 10; batch++) {
      await r.guard.recordAccept(
        await r.key(),
        queued(...Array.from({ length: 50 }, (_, i) => `r${batch}-${i}@x.example`)),
      );
    }
    r.clock.advance(MINUTE_MS);
    await r.guard.recordFeedback(bounces(r, 11, 'n'));

    // Assess
    const after = r.actions.slice(1);
    expect(after.map((d) => [d.action, d.probation, d.sample.sends, d.sample.events])).toEqual([
      ['pauseBroadcast', true, 500, 11],
    ]);
  });

  it('resumes a key: active again, nothing in force, probation from now', async () => {
    // Prepare: suspended for suppressed hits.
    const r = rig();
    await r.guard.recordAccept(await r.key(), suppressedFifth());
    expect((await r.key()).status).toBe('suspended');

    // Act
    const state = await r.guard.resume({ kind: 'key', keyId: r.keyIds[0] ?? '' }, 'customer rotated the key');

    // Assess: this hour's 50 attempts are behind the reinstatement and no longer count.
    const key = await r.key();
    expect(key.status).toBe('active');
    expect(key.guard?.key).toEqual(state);
    expect(state).toMatchObject({
      actions: [],
      reinstatedAt: START,
      countsAtReinstatement: { sends: 40, suppressedHits: 10, newRecipientDomains: 40 },
      resumedReason: 'customer rotated the key',
    });
    r.clock.advance(MINUTE_MS);
    await r.guard.recordAccept(await r.key(), queued('z@x.example'));
    expect((await r.key()).status).toBe('active');
  });

  it('refuses a resume without a reason, or with one too long to keep', async () => {
    // Prepare
    const r = rig();
    const target = { kind: 'tenant', tenant: TENANT } as const;

    // Act + Assess
    for (const reason of ['', '   \n', 'x'.repeat(501), 'bad\u0000reason']) {
      await expect(r.guard.resume(target, reason)).rejects.toThrow(GuardResumeReasonError);
    }
    await expect(r.guard.resume(target, 'y'.repeat(500))).resolves.toMatchObject({ actions: [] });
  });

  it('does not resume a revoked key', async () => {
    // Prepare
    const r = rig();
    await r.apiKeys.setStatus(r.keyIds[0] ?? '', 'revoked');

    // Act + Assess
    await expect(r.guard.resume({ kind: 'key', keyId: r.keyIds[0] ?? '' }, 'please')).rejects.toThrow(
      ApiKeyRevokedError,
    );
  });
});

describe('GuardService.reputation', () => {
  it('acts on a tenant signal that completed inside the minute after the last evaluation when read', async () => {
    // Prepare: 9 bounces evaluated (under the sample's 10), then the 10th within the same minute,
    // whose evaluation the once-a-minute claim skips.
    const r = rig();
    await history(r, 1, { sends: 600 });
    const storm = bounces(r, 30);
    await r.guard.recordFeedback(storm.slice(0, 9));
    r.clock.advance(10_000);
    await r.guard.recordFeedback(storm.slice(9));
    expect(await r.state.tenant(TENANT)).toBeUndefined();

    // Act: a minute later nothing else happens but a read of the reputation.
    r.clock.advance(MINUTE_MS);
    const view = await r.guard.reputation(TENANT);

    // Assess: the view evaluated first, so it acts on and shows what its own rates say.
    expect(view.standing).toBe('broadcast_paused');
    expect((await r.key(0)).guard?.tenant?.actions.map((d) => d.action)).toEqual(['pauseBroadcast']);
  });

  it('answers the tenant’s standing, its rates and each key’s, the keys’ states and the reasons', async () => {
    // Prepare: a tenant paused at 5 %, one of its keys suspended, one revoked.
    const r = rig({ keys: 3 });
    const [k1 = '', k2 = '', k3 = ''] = r.keyIds;
    await history(r, 1, { sends: 600 });
    await r.apiKeys.setStatus(k3, 'revoked');
    await r.guard.recordFeedback(bounces(r, 30));
    r.clock.advance(MINUTE_MS);
    await r.guard.recordAccept(await r.key(1), suppressedFifth());

    // Act
    const view = await r.guard.reputation(TENANT);

    // Assess
    expect(view.standing).toBe('suspended');
    expect(view.rates.tenantHardBounce).toBe(30 / 640);
    expect(view.sample.tenantHardBounce).toEqual({ sends: 640, over: 'sends', events: 30, reached: true });
    expect(view.window.tenantHardBounce).toMatchObject({ hours: 2 });
    expect(view.rates.tenantComplaint).toBe(0);
    expect(view.rates[`keySuppressedHits:${k2}`]).toBe(0.2);
    expect(view.rates[`keyHardBounce:${k1}`]).toBe(0);
    expect(Object.keys(view.rates).some((name) => name.endsWith(k3))).toBe(false);
    expect(view.keys).toEqual(
      [
        { keyId: k1, status: 'active', reason: null },
        { keyId: k2, status: 'suspended', reason: expect.stringContaining('suppressed-recipient hits') },
      ].sort((a, b) => a.keyId.localeCompare(b.keyId)),
    );
    expect(view.reasons).toEqual([
      expect.stringContaining("the tenant's hard-bounce rate 5 %"),
      expect.stringContaining("the key's suppressed-recipient hits 20 %"),
    ]);
  });

  it('does not call a key suspended that an operator made active again outside resume; the guard may suspend it anew', async () => {
    // Prepare: suspended for suppressed hits, then `keys resume` (status only).
    const r = rig();
    await r.guard.recordAccept(await r.key(), suppressedFifth());
    await r.apiKeys.setStatus(r.keyIds[0] ?? '', 'active');

    // Act: half a minute later (the view reuses the key list that long).
    r.clock.advance(MINUTE_MS / 2);
    const view = await r.guard.reputation(TENANT);
    r.clock.advance(MINUTE_MS / 2);
    await r.guard.recordAccept(await r.key(), queued('a@x.example'));

    // Assess: the view follows the status; the signal (still 20 %, no window restart) suspends again.
    expect(view.standing).toBe('good');
    expect(view.keys).toEqual([{ keyId: r.keyIds[0], status: 'active', reason: null }]);
    expect((await r.key()).status).toBe('suspended');
    expect(r.actions.map((d) => d.action)).toEqual(['suspendKey', 'suspendKey']);
  });

  it('never shows another tenant’s key, even if the key list has one', async () => {
    // Prepare: a key writer whose list leaks another tenant's suspended key.
    const r = rig();
    const stranger = issueApiKey({ tenant: 'tenant-b', status: 'suspended' }).key;
    const realKeysOf = r.writer.keysOf.bind(r.writer);
    vi.spyOn(r.writer, 'keysOf').mockImplementation(async (t) => [...(await realKeysOf(t)), stranger]);

    // Act
    const view = await r.guard.reputation(TENANT);

    // Assess
    expect(view.keys.map((k) => k.keyId)).toEqual([r.keyIds[0]]);
    expect(Object.keys(view.rates).some((name) => name.endsWith(stranger.keyId))).toBe(false);
  });

  it('answers a tenant polling its reputation from memory for 10 s: a read key cannot make each call read every key’s counters', async () => {
    // Prepare
    const r = rig({ keys: 3 });
    await r.guard.reputation(TENANT);
    const reads = vi.spyOn(r.counters, 'read');

    // Act: nine more calls within 10 s, then one after.
    for (let i = 0; i < 9; i++) {
      r.clock.advance(1_000);
      await r.guard.reputation(TENANT);
    }
    const within = reads.mock.calls.length;
    r.clock.advance(1_000);
    await r.guard.reputation(TENANT);

    // Assess
    expect(within).toBe(0);
    expect(reads.mock.calls.length).toBeGreaterThan(0);
  });

  it('is good for a tenant the guard never saw', async () => {
    // Prepare
    const r = rig();

    // Act
    const view = await r.guard.reputation('someone-else');

    // Assess
    expect(view).toMatchObject({ standing: 'good', keys: [], reasons: [] });
    expect(view.rates.tenantHardBounce).toBeNull();
  });

  it('reads at most 100 keys and says so', async () => {
    // Prepare
    const r = rig({ keys: 103 });
    const reads = vi.spyOn(r.counters, 'read');

    // Act
    const view = await r.guard.reputation(TENANT);

    // Assess: the tenant's buckets (once to evaluate it, once for the view) and 100 keys'.
    expect(view.keys).toHaveLength(100);
    expect(reads.mock.calls.length).toBe(102);
    expect(view.reasons).toEqual([expect.stringContaining('100 of its 103 keys')]);
  });
});

describe('scenario replays through the service, with a fake clock', () => {
  it('suspends a stolen key within the hour: two weeks at ~20/h, then 3,000/h to new domains', async () => {
    // Prepare
    const r = rig();
    await history(r, 336, { sends: 20 });

    // Act: 5 requests of 10 recipients a minute (3,000/h), each at a new domain, while the front
    // door accepts them (a suspended key is refused there).
    let accepted = 0;
    let stoppedAtMinute: number | undefined;
    for (let minute = 0; minute < 60 && stoppedAtMinute === undefined; minute++) {
      for (let request = 0; request < 5; request++) {
        r.clock.set(new Date(Date.parse(START) + minute * MINUTE_MS + request * 10_000).toISOString());
        const key = await r.key();
        if (key.status !== 'active') {
          stoppedAtMinute = minute;
          break;
        }
        await r.guard.recordAccept(key, toNewDomains(10, `${minute}-${request}`));
        accepted += 10;
      }
    }

    // Assess: the spike (1,000 = 10 × the 100/h floor) is seen at the first evaluation after it
    // (a minute at most): the first request of minute 20, so 1,010 messages got through.
    expect(stoppedAtMinute).toBe(20);
    expect(accepted).toBe(1010);
    expect(r.actions.map((d) => [d.action, d.signal])).toEqual([['suspendKey', 'volumeSpike']]);
    expect(guardSuspension((await r.key()).guard)?.reason).toContain('recipient domains new to the key');
  });

  it('lets a burst within one minute through until the next evaluation (the once-a-minute limit)', async () => {
    // Prepare: the same stolen key, but sending 3,000 to new domains in the first 30 seconds.
    const r = rig();
    await history(r, 336, { sends: 20 });

    // Act: 60 requests of 50, half a second apart, then one a minute later.
    for (let request = 0; request < 60; request++) {
      r.clock.set(new Date(Date.parse(START) + request * 500).toISOString());
      await r.guard.recordAccept(await r.key(), toNewDomains(50, `${request}`));
    }
    const afterBurst = (await r.key()).status;
    r.clock.set(new Date(Date.parse(START) + MINUTE_MS).toISOString());
    await r.guard.recordAccept(await r.key(), toNewDomains(1, 'late'));

    // Assess: all 3,000 got through (the only evaluation saw the first 50); suspended at 10:01.
    expect(afterBurst).toBe('active');
    expect((await r.key()).status).toBe('suspended');
    expect(r.actions[0]?.sample.sends).toBe(3001);
  });

  /**
   * 800 broadcast sends in batches of 50 (one a minute, from key 0), the bounces of each batch
   * coming back a minute later; returns the sends and bounces counted when the tenant was first acted on.
   */
  async function importList(bouncePerMille: number) {
    const r = rig({ keys: 2 });
    let bounces = 0;
    for (let sends = 50; sends <= 800; sends += 50) {
      await r.guard.recordAccept(
        await r.key(),
        queued(...Array.from({ length: 50 }, (_, i) => `r${sends}-${i}@list.example`)),
      );
      r.clock.advance(MINUTE_MS);
      const due = Math.floor((sends * bouncePerMille) / 1000);
      await r.guard.recordFeedback(
        Array.from({ length: due - bounces }, (_, i) => bounce(`b${bounces + i}`, r.keyIds[0], r.clock())),
      );
      bounces = due;
      r.clock.advance(MINUTE_MS);
    }
    return r;
  }

  it('a bad list import at 5 % holds broadcast mail once the sample is reached; transactional flows', async () => {
    // Act
    const r = await importList(50);

    // Assess: acted on once, at the evaluation after the 500th send (the bounces of the first 450
    // back by then: 22, 4.4 %).
    expect(r.actions.map((d) => [d.action, d.sample.sends, d.sample.events])).toEqual([
      ['pauseBroadcast', 500, 22],
    ]);
    for (const i of [0, 1]) {
      const key = await r.key(i);
      expect(holdFor(key.guard, 'broadcast', r.clock())).toBeDefined();
      expect(holdFor(key.guard, 'transactional', r.clock())).toBeUndefined();
    }
  });

  it('a bad list import above 7 % holds everything', async () => {
    // Act
    const r = await importList(80);

    // Assess: 36 bounces of 500 sends, 7.2 %.
    expect(r.actions.map((d) => [d.action, d.sample.sends, d.sample.events])).toEqual([['holdAll', 500, 36]]);
    expect(holdFor((await r.key(1)).guard, 'transactional', r.clock())).toMatchObject({ action: 'holdAll' });
  });

  it('counts across an hour boundary into two buckets, and the current-hour rules start afresh', async () => {
    // Prepare: 45 attempts at 10:59, 9 of them suppressed (not yet the 50-attempt sample).
    const r = rig();
    r.clock.set('2026-03-02T10:59:30.000Z');
    await r.guard.recordAccept(await r.key(), [
      ...toNewDomains(36, 'a'),
      ...toNewDomains(9, 'b').map((t) => ({ ...t, outcome: 'suppressed' as const })),
    ]);

    // Act: 10 clean sends at 11:00:30: 55 attempts across the boundary, 16 % if added up.
    r.clock.set('2026-03-02T11:00:30.000Z');
    await r.guard.recordAccept(await r.key(), toNewDomains(10, 'c'));

    // Assess
    const keyScope = { kind: 'key', keyId: r.keyIds[0] ?? '' } as const;
    expect(await r.bucketOf(keyScope, new Date('2026-03-02T10:59:00.000Z'))).toMatchObject({
      sends: 36,
      suppressedHits: 9,
    });
    expect(await r.bucketOf(keyScope)).toMatchObject({ sends: 10 });
    expect((await r.key()).status).toBe('active');
  });

  it('no longer counts bounces older than the window (the counters’ retention covers every read)', async () => {
    // Prepare: 8 days ago a 10 % bounce day; none since.
    const r = rig();
    const eightDaysAgo = new Date(Date.parse(START) - 8 * 24 * MS_PER_HOUR);
    await r.counters.add([
      {
        scope: { kind: 'tenant', tenant: TENANT },
        hour: hourOf(eightDaysAgo),
        counts: { sends: 1000, hardBounces: 100 },
      },
    ]);

    // Act
    await r.guard.recordFeedback([bounce('e1', undefined, r.clock(), 'transientBounce')]);
    const view = await r.guard.reputation(TENANT);

    // Assess: outside the 7-day window: the sample is not reached, nothing acted.
    expect(r.actions).toEqual([]);
    expect(view.sample.tenantHardBounce).toMatchObject({ sends: 0, reached: false });
  });
});

describe('GuardService: a corrupt guard mark on a key', () => {
  it('still suspends the key: the corrupt state reads as none and the decision is written over it', async () => {
    // Prepare: a key item whose guard mark the guard did not write.
    const r = rig();
    r.apiKeys.add({ ...(await r.key()), guard: { key: { actions: 'x' }, tenant: {} } as never });

    // Act
    await r.guard.recordAccept(await r.key(), suppressedFifth());

    // Assess
    const key = await r.key();
    expect(r.errors).toEqual([]);
    expect(key.status).toBe('suspended');
    expect(guardSuspension(key.guard)).toMatchObject({ action: 'suspendKey', signal: 'suppressedHitRate' });
  });
});

describe('GuardService: a signal completed between two evaluations is never lost', () => {
  const at = (iso: string) => new Date(iso).toISOString();

  /** An evaluation at 10:59:00 with one send, then 1,500 sends to known domains at 10:59:30. */
  async function spikeInLastMinute(r: ReturnType<typeof rig>): Promise<void> {
    const known = Array.from({ length: 1_500 }, (_, i) => ({
      address: `r${i}@known.example`,
      outcome: 'queued' as const,
    }));
    r.clock.set(at('2026-03-02T10:59:00.000Z'));
    await r.guard.recordAccept(await r.key(), queued('a@known.example'));
    r.clock.set(at('2026-03-02T10:59:30.000Z'));
    await r.guard.recordAccept(await r.key(), known);
  }

  it('suspends a key whose suppressed hits came in the last minute of an hour, at the first evaluation of the next hour', async () => {
    // Prepare: an evaluation at 10:59:00, then 50 attempts at 20 % suppressed at 10:59:30 (within
    // the minute, so not evaluated), and the next request at 11:00:10, in an hour of its own.
    const r = rig();
    r.clock.set(at('2026-03-02T10:59:00.000Z'));
    await r.guard.recordAccept(await r.key(), toNewDomains(1, 'first'));
    r.clock.set(at('2026-03-02T10:59:30.000Z'));
    await r.guard.recordAccept(await r.key(), suppressedFifth());
    const before = (await r.key()).status;

    // Act
    r.clock.set(at('2026-03-02T11:00:10.000Z'));
    await r.guard.recordAccept(await r.key(), toNewDomains(1, 'next'));

    // Assess
    expect(before).toBe('active');
    expect((await r.key()).status).toBe('suspended');
    expect(r.actions.map((d) => [d.action, d.signal])).toEqual([['suspendKey', 'suppressedHitRate']]);
  });

  it('throttles a key that spiked in the last minute of an hour, from the next evaluation, for what is left of that hour', async () => {
    // Prepare: 1,500 sends to known domains at 10:59:30, after an evaluation at 10:59:00.
    const r = rig();
    await spikeInLastMinute(r);

    // Act
    r.clock.set(at('2026-03-02T11:00:10.000Z'));
    await r.guard.recordAccept(await r.key(), queued('b@known.example'));

    // Assess
    const throttle = throttleFor((await r.key()).guard, r.clock());
    expect(throttle).toMatchObject({ action: 'throttleKey', signal: 'volumeSpike' });
  });

  it('does not act again on an earlier hour whose throttle has lapsed', async () => {
    // Prepare: the spike above, throttled at 11:00:10; then, at 12:30, the throttle has lapsed.
    const r = rig();
    await spikeInLastMinute(r);
    r.clock.set(at('2026-03-02T11:00:10.000Z'));
    await r.guard.recordAccept(await r.key(), queued('b@known.example'));

    // Act
    r.clock.set(at('2026-03-02T12:30:00.000Z'));
    await r.guard.recordAccept(await r.key(), queued('c@known.example'));

    // Assess
    expect(r.actions.map((d) => d.action)).toEqual(['throttleKey']);
    expect(throttleFor((await r.key()).guard, r.clock())).toBeUndefined();
  });
});

describe('GuardService: a corrupt tenant record', () => {
  it.each([
    ['a state without actions', {}],
    ['actions that are not a list', { actions: 'pauseBroadcast' }],
    ['no state at all', undefined],
  ])(
    'still pauses the tenant when its stored state is %s: the state reads as none, and is reported',
    async (_, state) => {
      // Prepare: 600 sends, 30 hard bounces (5 %), over a record the guard did not write.
      const r = rig({ keys: 2 });
      r.state.records.set(TENANT, { tenant: TENANT, state, version: 3 } as never);
      await history(r, 1, { sends: 600 });

      // Act
      await r.guard.recordFeedback(bounces(r, 30));

      // Assess
      const record = await r.state.tenant(TENANT);
      expect(record?.version).toBe(4);
      expect(record?.state.actions.map((a) => a.action)).toEqual(['pauseBroadcast']);
      expect(holdFor((await r.key(1)).guard, 'broadcast', r.clock())).toMatchObject({
        action: 'pauseBroadcast',
      });
      expect(r.errors).toHaveLength(1);
    },
  );
});
