import '../support/quiet-powertools.ts';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoApiKeyStore, RELAY_LOCK_ID } from '../../lambdas/adapters/api-key-store.ts';
import type { DynamoGuardCounterStore } from '../../lambdas/adapters/guard-counter-store.ts';
import type { DynamoGuardStateStore } from '../../lambdas/adapters/guard-state-store.ts';
import { guardAdapters } from '../../lambdas/adapters/guard-wiring.ts';
import { type HeldJobsStore, heldJobKey } from '../../lambdas/adapters/held-jobs-store.ts';
import { S3PayloadStore } from '../../lambdas/adapters/payload-store.ts';
import { senderHold } from '../../lambdas/domain/delivery/guard-hold.ts';
import type { GuardDecision, ScopeGuardState } from '../../lambdas/domain/guard/evaluate.ts';
import {
  type ApiKey,
  ApiKeyNotFoundError,
  ApiKeyRevokedError,
  hashToken,
} from '../../lambdas/domain/keys/api-key.ts';
import { InvalidCursorError } from '../../lambdas/shared/errors.ts';
import { EnvVar, Keys } from '../../lambdas/shared/names.ts';
import { credentials, type ProvisionedStack, region } from '../support/emulators.ts';
import { guardDecision } from '../support/guard.ts';
import { guardCountersContract } from '../support/guard-counters-contract.ts';
import { guardStateStoreContract } from '../support/guard-state-contract.ts';
import { heldEntryOf, heldJobOf, heldJobsContract } from '../support/held-jobs-contract.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

let stack: ProvisionedStack;
let s3: S3Client;
let bucket: string;
let keys: DynamoApiKeyStore;
let state: DynamoGuardStateStore;
let counters: DynamoGuardCounterStore;
let held: HeldJobsStore;

withProvisionedStack(async (started) => {
  stack = started;
  s3 = new S3Client({ endpoint: stack.sqsSns.endpoint, region, credentials, forcePathStyle: true });
  const [name] = [...stack.physical.buckets.values()];
  bucket = name ?? '';
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const env = {
    [EnvVar.guardTable]: stack.tables.guard,
    [EnvVar.payloadBucket]: bucket,
  };
  keys = new DynamoApiKeyStore(stack.clients.doc, stack.tables.apiKeys, {
    clock: () => new Date('2026-03-02T10:30:00.000Z'),
  });
  // Built the way every process builds them: through the wiring factory, from the environment.
  const adapters = guardAdapters({ doc: stack.clients.doc, keyStore: keys, s3, env });
  counters = adapters.counters as DynamoGuardCounterStore;
  state = adapters.state as DynamoGuardStateStore;
  if (adapters.held === undefined) throw new Error('no held-jobs store with a payload bucket set');
  held = adapters.held as HeldJobsStore;
});

const NOW = new Date('2026-03-02T10:30:00.000Z');

const apiKey = (keyId: string, overrides: Partial<ApiKey> = {}): ApiKey => ({
  keyId,
  secretHash: hashToken(`bt_${keyId}_${'s'.repeat(43)}`),
  tenant: 'acme',
  scopes: ['send', 'read'],
  allowedDomains: ['example.com'],
  allowedCidrs: [],
  senderPolicy: 'reject',
  status: 'active',
  createdAt: '2026-01-01T12:00:00.000Z',
  ...overrides,
});

const decision = guardDecision;
const inForce = (d: GuardDecision): ScopeGuardState => ({ actions: [d] });

const guardItem = async (pk: string, sk: string) =>
  (
    await stack.clients.doc.send(
      new GetCommand({ TableName: stack.tables.guard, Key: { pk, sk }, ConsistentRead: true }),
    )
  ).Item;

describe('DynamoGuardCounterStore in the Guard table (as guard-wiring builds it)', () => {
  guardCountersContract(() => counters);

  it('keeps counters and markers in partitions of their own: guard:<scope> and guard:event:<hash>', async () => {
    await counters.add([
      { scope: { kind: 'tenant', tenant: 'layout' }, hour: '2026-03-02T10', counts: { sends: 2 } },
      {
        scope: { kind: 'tenant', tenant: 'layout' },
        hour: '2026-03-02T10',
        counts: { complaints: 1 },
        eventId: 'e1',
      },
    ]);
    await state.putTenant({ tenant: 'layout', state: { actions: [] }, version: 1 });
    await state.claimEvaluation({ kind: 'tenant', tenant: 'layout' }, NOW, 60_000);

    const out = await stack.clients.doc.send(
      new ScanCommand({ TableName: stack.tables.guard, ConsistentRead: true }),
    );
    const items = (out.Items ?? []).filter((i) => JSON.stringify(i).includes('layout'));
    expect(items.map((i) => `${i.pk} ${i.sk}`).toSorted()).toEqual(
      [
        'guard:tenant:layout 2026-03-02T10',
        expect.stringMatching(/^guard:event:[0-9a-f]{32} tenant:layout$/),
        'tenant:layout eval',
        'tenant:layout state',
      ].toSorted(),
    );
    expect(
      await counters.read({ kind: 'tenant', tenant: 'layout' }, '2026-03-02T10', '2026-03-02T10'),
    ).toEqual([{ hour: '2026-03-02T10', counts: { sends: 2, complaints: 1 } }]);
  });
});

describe('DynamoGuardStateStore', () => {
  guardStateStoreContract(() => state);

  it('keeps an evaluation claim under <scope> / eval, with a TTL a day after it', async () => {
    await state.claimEvaluation({ kind: 'key', keyId: 'claim1' }, NOW, 60_000);

    expect(await guardItem('key:claim1', 'eval')).toEqual({
      pk: 'key:claim1',
      sk: 'eval',
      evaluatedAt: NOW.getTime(),
      expiresAt: Math.floor(NOW.getTime() / 1000) + 86_400,
    });
  });

  it('refuses a version below 1 and an interval below 0 (a caller’s bug, never a conflict)', async () => {
    await expect(state.putTenant({ tenant: 'bad', state: { actions: [] }, version: 0 })).rejects.toThrow(
      RangeError,
    );
    await expect(state.claimEvaluation({ kind: 'key', keyId: 'bad' }, NOW, -1)).rejects.toThrow(RangeError);
  });

  it('keys ids with separators apart: a tenant named like a key, ids holding ":"', async () => {
    await state.putTenant({ tenant: 'key:x', state: { actions: [] }, version: 1 });
    expect(await state.claimEvaluation({ kind: 'key', keyId: 'x' }, NOW, 60_000)).toBe(true);
    expect(await state.claimEvaluation({ kind: 'tenant', tenant: 'key:x' }, NOW, 60_000)).toBe(true);
    expect(await state.tenant('key:x')).toMatchObject({ version: 1 });
    expect(await guardItem('tenant:key%3Ax', 'state')).toBeDefined();
  });
});

describe('DynamoApiKeyStore as the guard’s key writer', () => {
  it('suspends a key with the guard’s decision, creating the guard map on a key that had none', async () => {
    await keys.put(apiKey('gw1'));
    const suspended = inForce(decision({ keyId: 'gw1' }));

    const after = await keys.setKeyGuard('gw1', suspended, 'suspended');

    expect(after).toMatchObject({ keyId: 'gw1', status: 'suspended', guard: { key: suspended } });
    expect(await keys.get('gw1')).toEqual({
      ...apiKey('gw1'),
      status: 'suspended',
      guard: { key: suspended },
      updatedAt: NOW.toISOString(),
    });
  });

  it('throttles without touching the status, and resumes to active', async () => {
    await keys.put(apiKey('gw2'));
    const throttled = inForce(decision({ keyId: 'gw2', action: 'throttleKey', signal: 'volumeSpike' }));

    await keys.setKeyGuard('gw2', throttled);
    expect(await keys.get('gw2')).toMatchObject({ status: 'active', guard: { key: throttled } });
    await keys.setKeyGuard('gw2', inForce(decision({ keyId: 'gw2' })), 'suspended');
    const resumed = await keys.setKeyGuard('gw2', { actions: [], reinstatedAt: NOW.toISOString() }, 'active');

    expect(resumed).toMatchObject({
      status: 'active',
      guard: { key: { actions: [], reinstatedAt: NOW.toISOString() } },
    });
  });

  it('reads a corrupt guard mark as none for that scope, keeping the sound one', async () => {
    const paused = inForce(
      decision({ scope: 'tenant', tenantId: 'acme', action: 'pauseBroadcast', signal: 'hardBounceRate' }),
    );
    await keys.put(apiKey('gwc1', { guard: { key: { actions: 'x' }, tenant: paused } as never }));
    await keys.put(apiKey('gwc2', { guard: { tenant: {} } as never }));

    expect((await keys.get('gwc1'))?.guard).toEqual({ tenant: paused });
    expect((await keys.get('gwc2'))?.guard).toEqual({});
    expect((await keys.keysOf('acme')).find((k) => k.keyId === 'gwc1')?.guard).toEqual({ tenant: paused });
  });

  it('suspends a key whose guard mark is not a map (the guard writes a good mark over a corrupt one)', async () => {
    await keys.put(apiKey('gwc3', { guard: 'corrupt' as never }));
    const suspended = inForce(decision({ keyId: 'gwc3' }));

    const after = await keys.setKeyGuard('gwc3', suspended, 'suspended');

    expect(after).toMatchObject({ status: 'suspended', guard: { key: suspended } });
    expect((await keys.markTenant('acme', { actions: [] })).find((k) => k.keyId === 'gwc3')?.guard).toEqual({
      key: suspended,
      tenant: { actions: [] },
    });
  });

  it('never changes a revoked key, and names a key that does not exist (nor the relay lock)', async () => {
    await keys.put(apiKey('gw3', { status: 'revoked' }));

    await expect(keys.setKeyGuard('gw3', { actions: [] }, 'active')).rejects.toThrow(ApiKeyRevokedError);
    await expect(keys.setKeyGuard('gw-none', { actions: [] })).rejects.toThrow(ApiKeyNotFoundError);
    await expect(keys.setKeyGuard(RELAY_LOCK_ID, { actions: [] })).rejects.toThrow(ApiKeyNotFoundError);
    expect(await keys.get('gw3')).toEqual(apiKey('gw3', { status: 'revoked' }));
    expect(await keys.get('gw-none')).toBeUndefined();
  });

  it('marks every non-revoked key of the tenant, only that tenant’s, keeping each key’s own guard state, and returns all its keys', async () => {
    const own = inForce(decision({ keyId: 'mt1', action: 'throttleKey', signal: 'volumeSpike' }));
    await keys.put(apiKey('mt1', { tenant: 'mark-t' }));
    await keys.put(apiKey('mt2', { tenant: 'mark-t', status: 'suspended' }));
    await keys.put(apiKey('mt3', { tenant: 'mark-t', status: 'revoked' }));
    await keys.put(apiKey('mt4', { tenant: 'mark-other' }));
    await keys.setKeyGuard('mt1', own);
    const paused = inForce(
      decision({ scope: 'tenant', tenantId: 'mark-t', action: 'pauseBroadcast', signal: 'hardBounceRate' }),
    );

    const marked = await keys.markTenant('mark-t', paused);

    expect(
      marked.map((k) => [k.keyId, k.status, k.guard?.tenant === undefined ? 'unmarked' : 'marked']),
    ).toEqual([
      ['mt1', 'active', 'marked'],
      ['mt2', 'suspended', 'marked'],
      ['mt3', 'revoked', 'marked'],
    ]);
    expect((await keys.get('mt1'))?.guard).toEqual({ key: own, tenant: paused });
    expect((await keys.get('mt2'))?.guard).toEqual({ tenant: paused });
    expect(await keys.get('mt3')).toMatchObject({ status: 'revoked', guard: { tenant: paused } });
    expect((await keys.get('mt4'))?.guard).toBeUndefined();
  });

  it('marks a revoked key of the tenant too (its status untouched), so the sender holds the mail it queued before it was revoked', async () => {
    await keys.put(apiKey('rv1', { tenant: 'revoked-t' }));
    await keys.put(apiKey('rv2', { tenant: 'revoked-t', status: 'revoked' }));
    const paused = inForce(
      decision({
        scope: 'tenant',
        tenantId: 'revoked-t',
        action: 'pauseBroadcast',
        signal: 'hardBounceRate',
      }),
    );

    await keys.markTenant('revoked-t', paused);

    const revoked = await keys.get('rv2');
    expect(revoked).toMatchObject({ status: 'revoked', guard: { tenant: paused } });
    expect(senderHold(revoked, 'broadcast', NOW)).toMatchObject({ action: 'pauseBroadcast' });
  });

  it('loses neither half when the key’s and the tenant’s state are written at the same time', async () => {
    await keys.put(apiKey('race1', { tenant: 'race-t' }));
    const own = inForce(decision({ keyId: 'race1' }));
    const paused = inForce(
      decision({ scope: 'tenant', tenantId: 'race-t', action: 'holdAll', signal: 'hardBounceRate' }),
    );

    await Promise.all([keys.setKeyGuard('race1', own, 'suspended'), keys.markTenant('race-t', paused)]);

    expect((await keys.get('race1'))?.guard).toEqual({ key: own, tenant: paused });
  });

  it('lists a tenant’s keys, revoked ones too, never the relay lock or another tenant’s', async () => {
    await keys.put(apiKey('ko1', { tenant: 'keysof' }));
    await keys.put(apiKey('ko2', { tenant: 'keysof', status: 'revoked' }));
    await keys.put(apiKey('ko3', { tenant: 'keysof-2' }));
    await stack.clients.doc.send(
      new PutCommand({ TableName: stack.tables.apiKeys, Item: { keyId: RELAY_LOCK_ID, tenant: 'keysof' } }),
    );

    expect((await keys.keysOf('keysof')).map((k) => k.keyId)).toEqual(['ko1', 'ko2']);
    expect(await keys.keysOf('nobody')).toEqual([]);
  });
});

describe('HeldJobsStore on dynalite and fauxqs S3 (as guard-wiring builds it)', () => {
  heldJobsContract(() => held);

  it('keeps the job under payloads/held/<id>.json and two index items in held:<tenant>, expiring a day after the hold', async () => {
    const entry = heldEntryOf('lay out', 'msg/1');
    await held.keep(entry, heldJobOf(entry));

    const payloads = new S3PayloadStore(s3, bucket);
    expect(JSON.parse(Buffer.from(await payloads.get('payloads/held/msg%2F1.json')).toString())).toEqual(
      heldJobOf(entry),
    );
    expect(heldJobKey('msg/1')).toBe('payloads/held/msg%2F1.json');
    const out = await stack.clients.doc.send(
      new QueryCommand({
        TableName: stack.tables.guard,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': 'held:lay%20out' },
      }),
    );
    const expiresAt = Math.floor(Date.parse(entry.until) / 1000) + 86_400;
    expect(out.Items?.map((i) => [i.sk, i[Keys.guard.ttl]])).toEqual([
      [`at:${entry.heldAt}#msg/1`, expiresAt],
      ['id:msg/1', expiresAt],
    ]);
  });

  it('repairs a listing lost between the two writes when the message is kept again', async () => {
    const entry = heldEntryOf('repair', 'm-r1', 2);
    await held.keep(entry, heldJobOf(entry));
    // A crash after the id item and before the list item: the list item is missing.
    await stack.clients.doc.send(
      new DeleteCommand({
        TableName: stack.tables.guard,
        Key: { pk: 'held:repair', sk: `at:${entry.heldAt}#m-r1` },
      }),
    );
    expect((await held.list('repair')).entries).toEqual([]);

    await held.keep(heldEntryOf('repair', 'm-r1', 7), heldJobOf(entry));

    expect((await held.list('repair')).entries).toEqual([entry]);
  });

  it('keeps apart tenants whose names differ only by an encoding, and ids holding the "#" separator', async () => {
    const [plain, encoded] = ['a b', 'a%20b'];
    const first = heldEntryOf(plain, 'm#1', 1);
    const second = heldEntryOf(plain, 'm#2', 2);
    const other = heldEntryOf(encoded, 'm#3', 1);
    for (const entry of [first, second, other]) await held.keep(entry, heldJobOf(entry));

    const page = await held.list(plain, { limit: 1 });

    expect(page.entries).toEqual([first]);
    expect((await held.list(encoded)).entries).toEqual([other]);
    // A cursor handed out for one tenant walks only the partition of the tenant it is used with.
    expect((await held.list(encoded, { cursor: page.cursor ?? '' })).entries).toEqual([other]);
    expect(await held.get(encoded, 'm#1')).toBeUndefined();
    expect(await held.get(plain, 'm#2')).toEqual(second);
  });

  it('refuses a cursor it did not hand out, and a job that is not the entry’s', async () => {
    const entry = heldEntryOf('cursor-t', 'm-c1');
    await held.keep(entry, heldJobOf(entry));

    for (const cursor of [
      'nope',
      Buffer.from('id:m-c1').toString('base64url'),
      Buffer.from('at:x').toString('base64'),
    ]) {
      await expect(held.list('cursor-t', { cursor }), cursor).rejects.toThrow(InvalidCursorError);
    }
    await expect(held.keep(heldEntryOf('cursor-t', 'm-c2'), heldJobOf(entry))).rejects.toThrow(RangeError);
    await expect(held.list('cursor-t', { limit: 0 })).rejects.toThrow(RangeError);
  });
});
