import { expect, it } from 'vitest';
import type { HeldEntry } from '../../lambdas/domain/guard/hold.ts';
import type { SendJob } from '../../lambdas/domain/message.ts';
import type { HeldJobs } from '../../lambdas/domain/ports.ts';
import type { Lane } from '../../lambdas/shared/names.ts';
import { outgoingMessage, sendJob } from './builders.ts';

let serial = 0;
/** A tenant no other test of the run uses (the stores are shared by a file's tests). */
const freshTenant = (): string => `held-t${++serial}x${Date.now().toString(36)}`;

const minute = (n: number): string =>
  new Date(Date.parse('2026-03-02T10:00:00.000Z') + n * 60_000).toISOString();

/** A held entry of `tenant` for message `id`, held at minute `at` past 10:00, for seven days. */
export function heldEntryOf(tenant: string, id: string, at = 0, lane: Lane = 'broadcast'): HeldEntry {
  const heldAt = minute(at);
  return {
    tenant,
    id,
    lane,
    keyId: 'k-held',
    heldAt,
    until: new Date(Date.parse(heldAt) + 7 * 86_400_000).toISOString(),
    action: lane === 'broadcast' ? 'pauseBroadcast' : 'holdAll',
    signal: 'hardBounceRate',
    reason: 'the tenant’s hard-bounce rate 5 % is at or above 4 %',
  };
}

export function heldJobOf(entry: HeldEntry): SendJob {
  return {
    ...sendJob(outgoingMessage({ stream: entry.lane, subject: `held ${entry.id}` }), entry.id, entry.tenant),
    keyId: 'k-held',
  };
}

/** Every entry of the tenant, following the cursor, `limit` a page. */
async function listAll(store: HeldJobs, tenant: string, limit: number, lane?: Lane): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 50; pages++) {
    const page = await store.list(tenant, {
      limit,
      ...(cursor === undefined ? {} : { cursor }),
      ...(lane ? { lane } : {}),
    });
    expect(page.entries.length).toBeLessThanOrEqual(limit);
    ids.push(...page.entries.map((e) => e.id));
    if (page.cursor === undefined) return ids;
    cursor = page.cursor;
  }
  throw new Error('the listing never ended');
}

/**
 * The behaviours every HeldJobs implementation must have, registered as tests: InMemoryHeldJobs in
 * the unit tier, HeldJobsStore on dynalite and fauxqs' S3, so a caller's unit test on the fake
 * means the same deployed.
 */
export function heldJobsContract(store: () => HeldJobs): void {
  it('keeps a held message’s job and entry, and gives both back', async () => {
    const tenant = freshTenant();
    const entry = heldEntryOf(tenant, `m-${serial}-1`);
    const job = heldJobOf(entry);

    await store().keep(entry, job);

    expect(await store().get(tenant, entry.id)).toEqual(entry);
    expect(await store().job(entry)).toEqual(job);
    expect(await store().list(tenant)).toEqual({ entries: [entry] });
  });

  it('changes nothing when the same message is kept again, even held again later', async () => {
    const tenant = freshTenant();
    const first = heldEntryOf(tenant, `m-${serial}-again`, 1);
    const again = heldEntryOf(tenant, first.id, 9);

    await store().keep(first, heldJobOf(first));
    await store().keep(again, heldJobOf(again));

    expect(await store().get(tenant, first.id)).toEqual(first);
    expect((await store().list(tenant)).entries).toEqual([first]);
  });

  it('lists oldest first (then by id), every entry once across pages, one lane when asked', async () => {
    const tenant = freshTenant();
    const entries = [
      heldEntryOf(tenant, 'm-c', 3, 'transactional'),
      heldEntryOf(tenant, 'm-a', 1),
      heldEntryOf(tenant, 'm-e', 5),
      heldEntryOf(tenant, 'm-b', 3),
      heldEntryOf(tenant, 'm-d', 4, 'transactional'),
    ];
    for (const entry of entries) await store().keep(entry, heldJobOf(entry));

    for (const limit of [1, 2, 5, 100]) {
      expect(await listAll(store(), tenant, limit), `limit ${limit}`).toEqual([
        'm-a',
        'm-b',
        'm-c',
        'm-d',
        'm-e',
      ]);
    }
    expect(await listAll(store(), tenant, 1, 'transactional')).toEqual(['m-c', 'm-d']);
    expect(await listAll(store(), tenant, 2, 'broadcast')).toEqual(['m-a', 'm-b', 'm-e']);
  });

  it('never gives one tenant another tenant’s entries or jobs', async () => {
    const [owner, other] = [freshTenant(), freshTenant()];
    const entry = heldEntryOf(owner, `m-${serial}-own`);
    await store().keep(entry, heldJobOf(entry));
    const madeUp = { ...entry, tenant: other };

    expect(await store().list(other)).toEqual({ entries: [] });
    expect(await store().get(other, entry.id)).toBeUndefined();
    expect(await store().job(madeUp)).toBeUndefined();
    await store().remove(madeUp);
    expect(await store().job(entry)).toEqual(heldJobOf(entry));
    expect(await store().get(owner, entry.id)).toEqual(entry);
  });

  it('forgets a removed entry and its job; removing again or removing what was never kept is no error', async () => {
    const tenant = freshTenant();
    const [gone, stays] = [heldEntryOf(tenant, 'm-gone', 1), heldEntryOf(tenant, 'm-stays', 2)];
    await store().keep(gone, heldJobOf(gone));
    await store().keep(stays, heldJobOf(stays));

    await store().remove(gone);
    await store().remove(gone);
    await store().remove(heldEntryOf(tenant, 'm-never'));

    expect(await store().get(tenant, gone.id)).toBeUndefined();
    expect(await store().job(gone)).toBeUndefined();
    expect((await store().list(tenant)).entries).toEqual([stays]);
    expect(await store().job(stays)).toEqual(heldJobOf(stays));
  });
}
