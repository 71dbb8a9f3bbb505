import { expect, it } from 'vitest';
import type { GuardStateStore } from '../../lambdas/domain/ports.ts';
import { GUARD_NOW, keySuspensionDecision } from './guard.ts';

let serial = 0;
/** A tenant no other test of the run uses (the stores are shared by a file's tests). */
const freshTenant = (): string => `state-t${++serial}x${Date.now().toString(36)}`;

/**
 * The behaviours every GuardStateStore must have, registered as tests: DynamoGuardStateStore on
 * dynalite runs them, and so can an in-memory fake, so a GuardService unit test on the fake means
 * the same on DynamoDB.
 */
export function guardStateStoreContract(store: () => GuardStateStore): void {
  it('reads nothing for a tenant the guard never acted on', async () => {
    expect(await store().tenant(freshTenant())).toBeUndefined();
  });

  it('writes version 1 once, then each next version only over the one before it', async () => {
    const tenant = freshTenant();
    const paused = {
      actions: [
        keySuspensionDecision({
          scope: 'tenant',
          tenantId: tenant,
          action: 'pauseBroadcast',
          signal: 'hardBounceRate',
        }),
      ],
    };

    expect(await store().putTenant({ tenant, state: { actions: [] }, version: 1 })).toBe(true);
    expect(await store().putTenant({ tenant, state: paused, version: 1 })).toBe(false);
    expect(await store().putTenant({ tenant, state: paused, version: 3 })).toBe(false);
    expect(
      await store().putTenant({
        tenant,
        state: paused,
        override: { tenantHardBounce: { actAt: 0.05 } },
        version: 2,
      }),
    ).toBe(true);
    expect(await store().putTenant({ tenant, state: { actions: [] }, version: 2 })).toBe(false);

    expect(await store().tenant(tenant)).toEqual({
      tenant,
      state: paused,
      override: { tenantHardBounce: { actAt: 0.05 } },
      version: 2,
    });
  });

  it('lets exactly one of ten racing writers of the same version win', async () => {
    const tenant = freshTenant();
    await store().putTenant({ tenant, state: { actions: [] }, version: 1 });

    const won = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        store().putTenant({
          tenant,
          state: { actions: [], reinstatedAt: `2026-03-02T10:0${i}:00.000Z` },
          version: 2,
        }),
      ),
    );

    expect(won.filter(Boolean)).toHaveLength(1);
  });

  it('writes nothing for a version below 1 (refused, or reported as a conflict)', async () => {
    const tenant = freshTenant();
    const written = await store()
      .putTenant({ tenant, state: { actions: [] }, version: 0 })
      .catch((error: unknown) => {
        expect(error).toBeInstanceOf(RangeError);
        return false;
      });
    expect(written).toBe(false);
    expect(await store().tenant(tenant)).toBeUndefined();
  });

  it('claims an evaluation once per interval per scope, one winner among racers', async () => {
    const id = freshTenant();
    const scope = { kind: 'key', keyId: id } as const;
    const at = (ms: number) => new Date(GUARD_NOW.getTime() + ms);

    const racers = await Promise.all(
      Array.from({ length: 8 }, () => store().claimEvaluation(scope, at(0), 60_000)),
    );
    const soon = await store().claimEvaluation(scope, at(59_999), 60_000);
    const later = await store().claimEvaluation(scope, at(60_000), 60_000);
    const tenantOfTheSameName = await store().claimEvaluation({ kind: 'tenant', tenant: id }, at(0), 60_000);

    expect(racers.filter(Boolean)).toHaveLength(1);
    expect([soon, later, tenantOfTheSameName]).toEqual([false, true, true]);
  });
}
